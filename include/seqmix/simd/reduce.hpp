// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/reduce.hpp: horizontal reductions (hsum, NaN-propagating hmax/hmin) and a NaN-propagating
// elementwise max for running row maxima.
#pragma once

#include <limits>

#include "arch.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::vec {

/// Sum of the lanes of x (order: xsimd::hadd's pairwise tree; NaN or inf in any lane propagates).
/// Shapes: one batch -> scalar. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE float hsum(const xsimd::batch<float, A>& x) noexcept {
  return xsimd::hadd(x);
}

/// Largest lane of x; NaN if any lane is NaN (unlike vmaxps, which drops NaN depending on operand order).
/// Shapes: one batch -> scalar. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE float hmax(const xsimd::batch<float, A>& x) noexcept {
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A> && fbatch<A>::size == 8) {
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0) return std::numeric_limits<float>::quiet_NaN();
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  } else
#endif
#if defined(__AVX512F__)
  if constexpr (detail::is_avx512<A>) {
    if (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q) != 0) return std::numeric_limits<float>::quiet_NaN();
    return _mm512_reduce_max_ps(x);
  } else
#endif
  {
    alignas(64) float v[fbatch<A>::size];
    x.store_aligned(v);
    float r = v[0];
    for (std::size_t i = 0; i < fbatch<A>::size; ++i) {
      if (v[i] != v[i]) return std::numeric_limits<float>::quiet_NaN();
      r = v[i] > r ? v[i] : r;
    }
    return r;
  }
}

/// Smallest lane of x; NaN if any lane is NaN. Shapes: one batch -> scalar. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE float hmin(const xsimd::batch<float, A>& x) noexcept {
  return -vec::hmax(-x);
}

/// Elementwise max that propagates NaN from either operand (for running maxima whose NaN must reach the
/// output row). Shapes: elementwise on two batches. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> max_nan(const xsimd::batch<float, A>& a,
                                                    const xsimd::batch<float, A>& b) noexcept {
  return xsimd::select(xsimd::isnan(a), a, xsimd::select(xsimd::isnan(b), b, xsimd::max(a, b)));
}

}  // namespace seqmix::vec
SEQMIX_DIAG_POP
