// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/detail/decode_kernels.hpp: AVX2 decode micro-kernels that read K and V rows
// straight from the cache (float, f16 or bf16, converted in registers), with no packing: scores by
// 4-row x 2-key dot products reduced with a horizontal-add tree, P V by 4-row x 16-column blocks.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"
#include "kernels.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define SEQMIX_FA_DIRECT_DECODE 1
#include <immintrin.h>
#else
#define SEQMIX_FA_DIRECT_DECODE 0
#endif

namespace seqmix::detail::fa {

/// Storage types the direct decode kernels read.
template <class C>
inline constexpr bool direct_storage = std::is_same_v<C, float> || std::is_same_v<C, f16> || std::is_same_v<C, bf16>;

#if SEQMIX_FA_DIRECT_DECODE

template <class C>
SEQMIX_ALWAYS_INLINE __m256 load8(const C* p) noexcept {
  if constexpr (std::is_same_v<C, float>) {
    return _mm256_loadu_ps(p);
  } else if constexpr (std::is_same_v<C, f16>) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
}

/// Lane i of the result is the horizontal sum of a_i.
SEQMIX_ALWAYS_INLINE __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                                  __m256 a7) noexcept {
  const __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20), _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

/// For every kv head hk < H: S_hk[r][j] = q_{hk,r} . k_{j,hk} for r < M, j < nk. Keys are visited in
/// memory order (key pairs outer, heads inner), so a [.., T, Hkv, D] cache streams sequentially.
/// q rows of head hk start at q + hk * M * ldq; S_hk = s + hk * M * block_k; krow(j, hk) -> key row.
template <class C, class RowFn>
inline void qk_direct(const float* SEQMIX_RESTRICT q, index_t ldq, index_t M, index_t H, RowFn krow, index_t nk,
                      index_t D, float* SEQMIX_RESTRICT s) noexcept {
  for (index_t r0 = 0; r0 < M; r0 += 4) {
    const index_t nr = std::min<index_t>(4, M - r0);
    const index_t o1 = (nr > 1 ? 1 : 0) * ldq, o2 = (nr > 2 ? 2 : 0) * ldq, o3 = (nr > 3 ? 3 : 0) * ldq;
    for (index_t j = 0; j < nk; j += 2) {
      const index_t j1 = j + 1 < nk ? j + 1 : j;
      for (index_t hk = 0; hk < H; ++hk) {
        const float* q0 = q + (hk * M + r0) * ldq;
        const C* ka = krow(j, hk);
        const C* kb = krow(j1, hk);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (index_t d = 0; d < D; d += 8) {
          const __m256 x = load8(ka + d), y = load8(kb + d);
          const __m256 u0 = _mm256_loadu_ps(q0 + d), u1 = _mm256_loadu_ps(q0 + o1 + d);
          const __m256 u2 = _mm256_loadu_ps(q0 + o2 + d), u3 = _mm256_loadu_ps(q0 + o3 + d);
          a0 = _mm256_fmadd_ps(u0, x, a0);
          a1 = _mm256_fmadd_ps(u1, x, a1);
          a2 = _mm256_fmadd_ps(u2, x, a2);
          a3 = _mm256_fmadd_ps(u3, x, a3);
          b0 = _mm256_fmadd_ps(u0, y, b0);
          b1 = _mm256_fmadd_ps(u1, y, b1);
          b2 = _mm256_fmadd_ps(u2, y, b2);
          b3 = _mm256_fmadd_ps(u3, y, b3);
        }
        alignas(32) float t[8];
        _mm256_store_ps(t, hsum8(a0, a1, a2, a3, b0, b1, b2, b3));
        float* sh = s + (hk * M + r0) * block_k;
        for (index_t r = 0; r < nr; ++r) {
          sh[r * block_k + j] = t[r];
          if (j + 1 < nk) sh[r * block_k + j + 1] = t[4 + r];
        }
      }
    }
  }
}

/// O[r] = alpha[r] O[r] + sum_{j < nk} P[r][j] v_j for r < M; value j at vrow(j) (Dv % 8 == 0, O rows Dvp apart).
template <class C, class RowFn>
inline void pv_direct(const float* SEQMIX_RESTRICT p, index_t M, RowFn vrow, index_t nk, index_t Dv, index_t Dvp,
                      const float* SEQMIX_RESTRICT alpha, float* SEQMIX_RESTRICT o) noexcept {
  for (index_t r0 = 0; r0 < M; r0 += 4) {
    const index_t nr = std::min<index_t>(4, M - r0);
    const index_t rr[4] = {r0, r0 + (nr > 1 ? 1 : 0), r0 + (nr > 2 ? 2 : 0), r0 + (nr > 3 ? 3 : 0)};
    for (index_t c = 0; c < Dv; c += 16) {
      const bool two = c + 16 <= Dv;
      __m256 acc[4][2];
      for (int r = 0; r < 4; ++r) {
        const __m256 al = _mm256_set1_ps(alpha[rr[r]]);
        acc[r][0] = _mm256_mul_ps(_mm256_loadu_ps(o + rr[r] * Dvp + c), al);
        acc[r][1] = two ? _mm256_mul_ps(_mm256_loadu_ps(o + rr[r] * Dvp + c + 8), al) : _mm256_setzero_ps();
      }
      if (two) {
        for (index_t j = 0; j < nk; ++j) {
          const C* vp = vrow(j) + c;
          const __m256 v0 = load8(vp), v1 = load8(vp + 8);
          for (int r = 0; r < 4; ++r) {
            const __m256 pb = _mm256_set1_ps(p[rr[r] * block_k + j]);
            acc[r][0] = _mm256_fmadd_ps(pb, v0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(pb, v1, acc[r][1]);
          }
        }
      } else {
        for (index_t j = 0; j < nk; ++j) {
          const __m256 v0 = load8(vrow(j) + c);
          for (int r = 0; r < 4; ++r) acc[r][0] = _mm256_fmadd_ps(_mm256_set1_ps(p[rr[r] * block_k + j]), v0, acc[r][0]);
        }
      }
      for (index_t r = nr; r-- > 0;) {  // duplicated rows (r >= nr) alias row r0 and are not stored
        _mm256_storeu_ps(o + rr[r] * Dvp + c, acc[r][0]);
        if (two) _mm256_storeu_ps(o + rr[r] * Dvp + c + 8, acc[r][1]);
      }
    }
  }
}

#endif

}  // namespace seqmix::detail::fa
