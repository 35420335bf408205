// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/vmath.hpp: float32 SIMD math the SSM kernels need (exp, log1p-based
// softplus, silu) and loads/stores that widen any storage type to float. Stand-in until simd/math.hpp.
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"

namespace seqmix::detail::ssm {

template <class A>
using fbatch = xsimd::batch<float, A>;

/// exp(x), Cephes-style range reduction and degree-5 polynomial (rel. error ~2 ulp); inputs below
/// -87.3 give ~1e-38 (never a denormal), above 88.3 give ~3e38. NaN propagates.
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vexp(fbatch<A> x) noexcept {
  using B = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  x = xsimd::min(B(88.3762626647949f), x);
  x = xsimd::max(B(-87.3365447504f), x);  // NaN (second operand) survives max/min on x86 order
  const B n = xsimd::nearbyint(x * B(1.44269504088896341f));
  B r = xsimd::fnma(n, B(0.693359375f), x);
  r = xsimd::fnma(n, B(-2.12194440e-4f), r);
  B p = B(1.9875691500E-4f);
  p = xsimd::fma(p, r, B(1.3981999507E-3f));
  p = xsimd::fma(p, r, B(8.3334519073E-3f));
  p = xsimd::fma(p, r, B(4.1665795894E-2f));
  p = xsimd::fma(p, r, B(1.6666665459E-1f));
  p = xsimd::fma(p, r, B(5.0000001201E-1f));
  const B r2 = r * r;
  p = xsimd::fma(p, r2, r + B(1.0f));
  const I e = (xsimd::to_int(n) + I(127)) << 23;
  return p * xsimd::bitwise_cast<B>(e);
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

/// silu(x) = x * sigmoid(x).
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vsilu(fbatch<A> x) noexcept {
  using B = fbatch<A>;
  return x / (B(1.0f) + vexp2<A>(x * B(-log2e_f)));
}

/// log(x) for x >= 1 (the only range softplus needs); Cephes logf polynomial.
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vlog_ge1(fbatch<A> x) noexcept {
  using B = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  const I bits = xsimd::bitwise_cast<I>(x);
  const I ex = (bits >> 23) - I(126);
  B m = xsimd::bitwise_cast<B>((bits & I(0x007fffff)) | I(0x3f000000));  // [0.5, 1)
  const auto small = m < B(0.707106781186547524f);
  const B e = xsimd::to_float(ex) - xsimd::select(small, B(1.0f), B(0.0f));
  m = xsimd::select(small, m + m, m) - B(1.0f);
  const B z = m * m;
  B y = B(7.0376836292E-2f);
  y = xsimd::fma(y, m, B(-1.1514610310E-1f));
  y = xsimd::fma(y, m, B(1.1676998740E-1f));
  y = xsimd::fma(y, m, B(-1.2420140846E-1f));
  y = xsimd::fma(y, m, B(1.4249322787E-1f));
  y = xsimd::fma(y, m, B(-1.6668057665E-1f));
  y = xsimd::fma(y, m, B(2.0000714765E-1f));
  y = xsimd::fma(y, m, B(-2.4999993993E-1f));
  y = xsimd::fma(y, m, B(3.3333331174E-1f));
  y = y * m * z;
  y = xsimd::fma(e, B(-2.12194440e-4f), y);
  y = xsimd::fnma(B(0.5f), z, y);
  return xsimd::fma(e, B(0.693359375f), m + y);
}

/// softplus(x) = log1p(exp(x)), = x for x > 20 (SPEC §2.13).
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vsoftplus(fbatch<A> x) noexcept {
  using B = fbatch<A>;
  const B e = vexp<A>(xsimd::min(x, B(20.0f)));
  const B u = B(1.0f) + e;
  const B d = u - B(1.0f);
  // log1p(e) = log(u) * e / (u - 1): exact correction for the rounding of 1 + e.
  const B l = xsimd::select(d == B(0.0f), e, vlog_ge1<A>(u) * (e / d));
  return xsimd::select(x > B(20.0f), x, l);
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
