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

/// 2^x for finite x in [-125, 125] only (no clamp, no NaN care: callers check the range first). Rounds by
/// adding 1.5*2^23 (the integer lands in the low mantissa bits, which shifted left by 23 are the exponent
/// increment), then a degree-6 minimax polynomial on [-1/2, 1/2] with p(0) = 1 (rel. error 2.6e-9 before
/// rounding). 12 vector ops; see docs/06-ssm-scans.md.
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vexp2_unchecked(fbatch<A> x) noexcept {
  using B = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  const B magic(12582912.0f);  // 1.5 * 2^23
  const B r = x + magic;
  const B f = x - (r - magic);
  B p = B(1.5594677549532598e-4f);
  p = xsimd::fma(p, f, B(1.3406643905055340e-3f));
  p = xsimd::fma(p, f, B(9.6176929748904970e-3f));
  p = xsimd::fma(p, f, B(5.5503105509957955e-2f));
  p = xsimd::fma(p, f, B(2.4022652782876092e-1f));
  p = xsimd::fma(p, f, B(6.9314721496803940e-1f));
  p = xsimd::fma(p, f, B(1.0f));
  const I e = xsimd::bitwise_cast<I>(r) << 23;
  return xsimd::bitwise_cast<B>(xsimd::bitwise_cast<I>(p) + e);
}

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

/// K independent batches of vec::softplus / vec::silu (simd/math.hpp), computed statement by statement in
/// lockstep: the same operations in the same order per batch (results are bit-identical to the one-batch
/// forms), but the K dependency chains interleave in the instruction stream. One softplus is a ~100-cycle
/// latency chain of ~60 ops; called once per token, the out-of-order window overlaps only ~2 of them, so
/// the one-batch loop is latency-bound (measured ~60 cycles per batch); K = 4 makes it throughput-bound.
namespace lockstep {

template <class A, int K>
SEQMIX_ALWAYS_INLINE void exp(const fbatch<A> (&x)[K], fbatch<A> (&out)[K]) noexcept {  // vec::exp
  using F = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  F xc[K], n[K], r[K], p[K];
  for (int k = 0; k < K; ++k) xc[k] = xsimd::min(xsimd::max(x[k], F(-104.0f)), F(89.0f));
  for (int k = 0; k < K; ++k) n[k] = xsimd::nearbyint(xc[k] * F(1.44269504088896341f));
  for (int k = 0; k < K; ++k) r[k] = xsimd::fnma(n[k], F(0.693359375f), xc[k]);
  for (int k = 0; k < K; ++k) r[k] = xsimd::fnma(n[k], F(-2.12194440e-4f), r[k]);
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(F(1.9875691500e-4f), r[k], F(1.3981999507e-3f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], F(8.3334519073e-3f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], F(4.1665795894e-2f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], F(1.6666665459e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], F(5.0000001201e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k] * r[k], r[k]) + F(1.0f);
  for (int k = 0; k < K; ++k) {
    const I ni = xsimd::to_int(n[k]);
    const I n1 = ni >> 1;
    const I n2 = ni - n1;
    const F s1 = xsimd::bitwise_cast<F>((n1 + I(127)) << 23);
    const F s2 = xsimd::bitwise_cast<F>((n2 + I(127)) << 23);
    out[k] = xsimd::select(xsimd::isnan(x[k]), x[k], (p[k] * s1) * s2);
  }
}

/// vec::softplus on K batches, in place.
template <class A, int K>
SEQMIX_ALWAYS_INLINE void softplus(fbatch<A> (&x)[K]) noexcept {
  using F = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  F u[K], w[K], f[K], ef[K], z[K], p[K];
  for (int k = 0; k < K; ++k) w[k] = -xsimd::abs(x[k]);
  lockstep::exp<A, K>(w, u);
  for (int k = 0; k < K; ++k) w[k] = F(1.0f) + u[k];
  // detail::log_core(w, 0)
  for (int k = 0; k < K; ++k) {
    const I xi = xsimd::bitwise_cast<I>(w[k]);
    ef[k] = F(0.0f) + xsimd::to_float(((xi >> 23) & I(0xff)) - I(126));
    const F m = xsimd::bitwise_cast<F>((xi & I(0x007fffff)) | I(0x3f000000));
    const auto lo = m < F(0.707106781186547524f);
    f[k] = xsimd::select(lo, m + m, m) - F(1.0f);
    ef[k] = xsimd::select(lo, ef[k] - F(1.0f), ef[k]);
    z[k] = f[k] * f[k];
  }
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(F(7.0376836292e-2f), f[k], F(-1.1514610310e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(1.1676998740e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(-1.2420140846e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(1.4249322787e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(-1.6668057665e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(2.0000714765e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(-2.4999993993e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], f[k], F(3.3333331174e-1f));
  for (int k = 0; k < K; ++k) {
    F y = f[k] * z[k] * p[k];
    y = xsimd::fma(ef[k], F(-2.12194440e-4f), y);
    y = xsimd::fnma(F(0.5f), z[k], y);
    const F lg = xsimd::fma(ef[k], F(0.693359375f), f[k] + y);
    const F l = xsimd::fma(u[k] - (w[k] - F(1.0f)), F(2.0f) - w[k], lg);
    x[k] = xsimd::select(x[k] > F(20.0f), x[k], xsimd::max(x[k], F(0.0f)) + l);
  }
}

/// vec::silu on K batches, in place.
template <class A, int K>
SEQMIX_ALWAYS_INLINE void silu(fbatch<A> (&x)[K]) noexcept {
  using F = fbatch<A>;
  F e[K], na[K];
  for (int k = 0; k < K; ++k) x[k] = xsimd::select(x[k] < F(-150.0f), F(-150.0f), x[k]);
  for (int k = 0; k < K; ++k) na[k] = -xsimd::abs(x[k]);
  lockstep::exp<A, K>(na, e);
  for (int k = 0; k < K; ++k) {
    const F s = F(1.0f) / (F(1.0f) + e[k]);
    x[k] = x[k] * xsimd::select(x[k] >= F(0.0f), s, e[k] * s);
  }
}

}  // namespace lockstep

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
