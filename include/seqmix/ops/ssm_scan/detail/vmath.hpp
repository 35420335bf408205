// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/vmath.hpp: float32 SIMD math the SSM kernels need (exp, log1p-based
// softplus, silu: thin forwards to simd/math.hpp, plus exp2 for the scan's inner loop) and loads/stores that
// widen any storage type to float.
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"
#include "../../../simd/math.hpp"

namespace seqmix::detail::ssm {

template <class A>
using fbatch = xsimd::batch<float, A>;

/// exp(x): the library's vec::exp (simd/math.hpp).
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vexp(fbatch<A> x) noexcept {
  return vec::exp(x);
}

/// 2^x: one rounding, a degree-6 polynomial on [-1/2, 1/2] (rel. error ~2e-7) and an exponent add;
/// inputs are clamped to [-126, 127] (so 2^-126 stands in for underflow: never a denormal). NaN propagates.
/// The scans pre-scale their A by log2(e) and call this instead of vexp (fewer operations per element).
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vexp2(fbatch<A> x) noexcept {
  using B = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  x = xsimd::min(B(127.0f), x);
  x = xsimd::max(B(-126.0f), x);
  const B n = xsimd::nearbyint(x);
  const B f = x - n;
  B p = B(1.5403530393381606e-4f);
  p = xsimd::fma(p, f, B(1.3333558146428443e-3f));
  p = xsimd::fma(p, f, B(9.6181291076284772e-3f));
  p = xsimd::fma(p, f, B(5.5504108664821580e-2f));
  p = xsimd::fma(p, f, B(2.4022650695910071e-1f));
  p = xsimd::fma(p, f, B(6.9314718055994531e-1f));
  p = xsimd::fma(p, f, B(1.0f));
  const I e = (xsimd::to_int(n) + I(127)) << 23;
  return p * xsimd::bitwise_cast<B>(e);
}

inline constexpr float log2e_f = 1.44269504088896341f;

/// silu(x) = x * sigmoid(x): vec::silu.
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vsilu(fbatch<A> x) noexcept {
  return vec::silu(x);
}

/// softplus(x) = log1p(exp(x)), = x for x > 20 (SPEC §2.13): vec::softplus.
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vsoftplus(fbatch<A> x) noexcept {
  return vec::softplus(x);
}

inline float softplus_scalar(float x) noexcept { return x > 20.0f ? x : std::log1p(std::exp(x)); }
inline double softplus_scalar(double x) noexcept { return x > 20.0 ? x : std::log1p(std::exp(x)); }
inline float silu_scalar(float x) noexcept { return x / (1.0f + std::exp(-x)); }
inline double silu_scalar(double x) noexcept { return x / (1.0 + std::exp(-x)); }

/// Loads n (<= width) contiguous values of any storage type as floats; lanes >= n are `fill`.
template <class A, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_n(const T* p, index_t n, float fill = 0.0f) noexcept {
  constexpr index_t W = static_cast<index_t>(fbatch<A>::size);
  if constexpr (std::is_same_v<T, float>) {
    if (n == W) return fbatch<A>::load_unaligned(p);
  }
  alignas(64) float tmp[W];
  for (index_t i = 0; i < W; ++i) tmp[i] = i < n ? to_float(p[i]) : fill;
  return fbatch<A>::load_aligned(tmp);
}
/// Full-width contiguous load of any storage type.
template <class A, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_w(const T* p) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return fbatch<A>::load_unaligned(p);
  } else if constexpr (std::is_same_v<T, double>) {
    return fbatch<A>::load_unaligned(p);  // xsimd converts
  } else {
    constexpr index_t W = static_cast<index_t>(fbatch<A>::size);
    alignas(64) float tmp[W];
    for (index_t i = 0; i < W; ++i) tmp[i] = to_float(p[i]);
    return fbatch<A>::load_aligned(tmp);
  }
}
/// Stores the first n lanes (n <= width) to contiguous storage of any type.
template <class A, class T>
SEQMIX_ALWAYS_INLINE void store_n(T* p, fbatch<A> v, index_t n) noexcept {
  constexpr index_t W = static_cast<index_t>(fbatch<A>::size);
  if constexpr (std::is_same_v<T, float>) {
    if (n == W) {
      v.store_unaligned(p);
      return;
    }
  }
  alignas(64) float tmp[W];
  v.store_aligned(tmp);
  for (index_t i = 0; i < n; ++i) p[i] = from_float<T>(tmp[i]);
}

}  // namespace seqmix::detail::ssm
