// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/math.hpp: vec::exp (and exp_narrow), log, sigmoid, softplus, silu, tanh on xsimd batches and float
// (the float overloads run the batch algorithm on a broadcast, so scalar tails give identical results).
#pragma once

#include <cstdint>
#include <limits>

#include "arch.hpp"

// Accuracy figures below are measured by tests/simd/test_math.cpp (dense sweeps, float64 reference) and
// tabulated in docs/02-simd.md. "Relative error" is |y - ref| / |ref| with ref = the exact value in double.

SEQMIX_DIAG_PUSH
namespace seqmix::vec {

/// e^x, branch-free: Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2), degree-7 polynomial for e^r,
/// result scaled by 2^n as two factors 2^(n/2) 2^(n - n/2) so that subnormal results round once.
/// Accuracy: relative error <= 2.0e-7 (measured 8.3e-8) for normal results, x in [-87.33, 88.72];
/// subnormal results (x in [-103.97, -87.34]) are within 1 subnormal ulp (one final rounding, so
/// relative error grows to ~2^-24/|result| * 2^-126). x > 88.7228 -> +inf; x < -103.9721 -> +0
/// (exactly as correctly rounded exp); exp(-inf) = 0, exp(+inf) = +inf, NaN -> NaN.
/// Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> exp(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  // Clamp so that n stays in [-150, 129]; both scale factors are then normal floats, and the clamped ends
  // still overflow (89 -> inf) or underflow (-104 -> 0) as the exact results do.
  const F xc = xsimd::min(xsimd::max(x, F(-104.0f)), F(89.0f));
  const F n = xsimd::nearbyint(xc * F(1.44269504088896341f));
  F r = xsimd::fnma(n, F(0.693359375f), xc);  // ln2 = 0.693359375 - 2.12194440e-4 (Cody-Waite)
  r = xsimd::fnma(n, F(-2.12194440e-4f), r);
  // e^r = 1 + r + r^2 p(r), Cephes expf coefficients (minimax on [-ln2/2, ln2/2]).
  F p = F(1.9875691500e-4f);
  p = xsimd::fma(p, r, F(1.3981999507e-3f));
  p = xsimd::fma(p, r, F(8.3334519073e-3f));
  p = xsimd::fma(p, r, F(4.1665795894e-2f));
  p = xsimd::fma(p, r, F(1.6666665459e-1f));
  p = xsimd::fma(p, r, F(5.0000001201e-1f));
  const F r2 = r * r;
  const F y = xsimd::fma(p, r2, r) + F(1.0f);
  const I ni = xsimd::to_int(n);
  const I n1 = ni >> 1;
  const I n2 = ni - n1;
  const F s1 = xsimd::bitwise_cast<F>((n1 + I(127)) << 23);
  const F s2 = xsimd::bitwise_cast<F>((n2 + I(127)) << 23);
  const F res = (y * s1) * s2;
  return xsimd::select(xsimd::isnan(x), x, res);  // (x != x is an ordered compare in xsimd)
}

/// Domain of vec::exp_narrow: the per-step log decays of RWKV-7 (w >= -e^{-1/2}) and similar gates.
inline constexpr float exp_narrow_lo = -0.75f;
inline constexpr float exp_narrow_hi = 0.0625f;

/// e^x for x in [exp_narrow_lo, exp_narrow_hi] only: 1 + x + x^2 q(x) with q of degree 4 (fitted for relative
/// error on that interval), no range reduction: 7 vector ops and a quarter of vec::exp's latency, for set-up
/// loops that run beside FMA-bound sweeps. Accuracy: relative error <= 1.5e-7 (measured 1.3e-7) on the domain.
/// Outside it the result is unspecified (callers check the range and fall back to vec::exp); NaN -> NaN.
/// Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> exp_narrow(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  F q = F(1.0031801648437977e-3f);
  q = xsimd::fma(q, x, F(8.020061068236828e-3f));
  q = xsimd::fma(q, x, F(4.1548196226358414e-2f));
  q = xsimd::fma(q, x, F(1.666475087404251e-1f));
  q = xsimd::fma(q, x, F(4.9999913573265076e-1f));
  return xsimd::fma(q, x * x, x) + F(1.0f);
}

namespace detail {
/// log(x) for positive, normal, finite x (no special cases): x = m 2^e with m in [sqrt(1/2), sqrt(2)),
/// log(m) = f - f^2/2 + f^3 P(f) with f = m - 1 exact (Cephes logf coefficients), plus e ln2 in two parts;
/// ef is an extra exponent added to e (used for pre-scaled subnormals).
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> log_core(const xsimd::batch<float, A>& x,
                                                     xsimd::batch<float, A> ef) noexcept {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  const I xi = xsimd::bitwise_cast<I>(x);
  ef += xsimd::to_float(((xi >> 23) & I(0xff)) - I(126));                    // x = m 2^e, m in [0.5, 1)
  const F m = xsimd::bitwise_cast<F>((xi & I(0x007fffff)) | I(0x3f000000));  // [0.5, 1)
  const auto lo = m < F(0.707106781186547524f);
  const F f = xsimd::select(lo, m + m, m) - F(1.0f);  // exact (Sterbenz)
  ef = xsimd::select(lo, ef - F(1.0f), ef);
  const F z = f * f;
  F p = F(7.0376836292e-2f);
  p = xsimd::fma(p, f, F(-1.1514610310e-1f));
  p = xsimd::fma(p, f, F(1.1676998740e-1f));
  p = xsimd::fma(p, f, F(-1.2420140846e-1f));
  p = xsimd::fma(p, f, F(1.4249322787e-1f));
  p = xsimd::fma(p, f, F(-1.6668057665e-1f));
  p = xsimd::fma(p, f, F(2.0000714765e-1f));
  p = xsimd::fma(p, f, F(-2.4999993993e-1f));
  p = xsimd::fma(p, f, F(3.3333331174e-1f));
  F y = f * z * p;
  y = xsimd::fma(ef, F(-2.12194440e-4f), y);
  y = xsimd::fnma(F(0.5f), z, y);
  const F res = f + y;
  return xsimd::fma(ef, F(0.693359375f), res);
}
}  // namespace detail

/// Natural logarithm: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = f - f^2/2 + f^3 P(f) (f = m - 1,
/// Cephes logf coefficients), plus e ln2 in two parts. Subnormal inputs are scaled by 2^23 first.
/// Accuracy: relative error <= 2.0e-7 (measured 8.0e-8) for positive normal and subnormal x, also near
/// x = 1 where log crosses 0. log(0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, NaN -> NaN.
/// Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> log(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  const auto sub = x < F(std::numeric_limits<float>::min());
  const F xs = xsimd::select(sub, x * F(8388608.0f), x);  // 2^23
  F res = detail::log_core(xs, xsimd::select(sub, F(-23.0f), F(0.0f)));
  const F inf = F(std::numeric_limits<float>::infinity());
  res = xsimd::select(x == inf, inf, res);
  res = xsimd::select(x == F(0.0f), -inf, res);
  res = xsimd::select(x < F(0.0f), F(std::numeric_limits<float>::quiet_NaN()), res);
  return xsimd::select(xsimd::isnan(x), x, res);  // (x != x is an ordered compare in xsimd)
}

/// Logistic sigmoid 1 / (1 + e^-x), computed from e = e^-|x| as 1/(1+e) (x >= 0) or e/(1+e) (x < 0), so it
/// never overflows and keeps full relative accuracy for large negative x (down to subnormal results).
/// Accuracy: relative error <= 4e-7 (measured 2.0e-7) for normal results; subnormal results (x < -87.3)
/// within 2 subnormal ulp. sigmoid(+inf) = 1, sigmoid(-inf) = 0, NaN -> NaN.
/// Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> sigmoid(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  const F e = vec::exp(-xsimd::abs(x));
  const F s = F(1.0f) / (F(1.0f) + e);
  return xsimd::select(x >= F(0.0f), s, e * s);
}

/// softplus(x) = log1p(e^x), and = x for x > 20 (SPEC §2.13). Computed as max(x, 0) + log1p(e^-|x|) with
/// log1p(u) = log(w) + (u - (w - 1)) (2 - w), w = 1 + u (rounding-error correction, no division), so large
/// negative x gives e^x to full relative accuracy. Accuracy: relative error <= 4e-7 (measured 1.7e-7) for
/// normal results (x >= -87.3); below, results are subnormal, within 1 subnormal ulp. softplus(-inf) = 0,
/// softplus(+inf) = +inf, NaN -> NaN. Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> softplus(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  const F u = vec::exp(-xsimd::abs(x));  // (0, 1]
  const F w = F(1.0f) + u;               // [1, 2], rounded
  // log1p(u) = log(w) + (u - (w - 1)) / w: the second term corrects the rounding of w (|.| <= 2^-24);
  // 1/w is replaced by 2 - w, whose error (w-1)^2/w costs at most 2^-24 u relative: no division.
  const F l = xsimd::fma(u - (w - F(1.0f)), F(2.0f) - w, detail::log_core(w, F(0.0f)));
  const F res = xsimd::max(x, F(0.0f)) + l;
  return xsimd::select(x > F(20.0f), x, res);
}

/// silu(x) = x sigmoid(x) (SPEC §2.15), with sigmoid as vec::sigmoid; finite x < -150 is clamped (the result
/// underflows to -0 there). silu(-inf) = -inf * 0 = NaN, as the definition, the float64 references and
/// torch give. Accuracy: relative error <= 5e-7 (measured 2.4e-7) for x >= -87; below, the sigmoid factor is
/// subnormal and the error is absolute, <= 4 |x| 2^-149 (results there are below 1.1e-36). silu(+inf) =
/// +inf, NaN -> NaN. Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> silu(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  const F xc = xsimd::select(x < F(-150.0f), F(-150.0f), x);
  return xsimd::select(x == F(-std::numeric_limits<float>::infinity()), F(std::numeric_limits<float>::quiet_NaN()),
                       xc * vec::sigmoid(xc));
}

/// Hyperbolic tangent: odd polynomial x + x^3 P(x^2) for |x| < 0.625 (Cephes tanhf coefficients, accurate
/// near 0: tanh(x) = x for |x| < 2^-12 in float), else sign(x) (1 - 2 / (e^{2|x|} + 1)), which saturates
/// to +-1 without overflow. Accuracy: relative error <= 3e-7 (measured 1.4e-7) over the whole range;
/// tanh(+-inf) = +-1, tanh(-0) = -0, NaN -> NaN. Shapes: elementwise on one batch. Throws: nothing.
template <class A>
SEQMIX_ALWAYS_INLINE xsimd::batch<float, A> tanh(const xsimd::batch<float, A>& x) noexcept {
  using F = xsimd::batch<float, A>;
  const F ax = xsimd::abs(x);
  const F z = x * x;
  F p = F(-5.70498872745e-3f);
  p = xsimd::fma(p, z, F(2.06390887954e-2f));
  p = xsimd::fma(p, z, F(-5.37397155531e-2f));
  p = xsimd::fma(p, z, F(1.33314422036e-1f));
  p = xsimd::fma(p, z, F(-3.33332819422e-1f));
  const F small = xsimd::fma(ax * z, p, ax);
  const F e = vec::exp(ax + ax);
  const F big = F(1.0f) - F(2.0f) / (e + F(1.0f));
  return xsimd::bitwise_or(xsimd::select(ax < F(0.625f), small, big), xsimd::bitofsign(x));
}

// Scalar overloads: the batch algorithm on a broadcast, lane 0 returned. Identical results to the batch
// form by construction (the tails of vector loops must match their bodies bit for bit).

/// Scalar e^x: same algorithm and accuracy as the batch form. Shapes: scalar. Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float exp(float x) noexcept {
  return detail::first<A>(vec::exp(fbatch<A>(x)));
}
/// Scalar e^x on exp_narrow's domain: same algorithm and accuracy as the batch form. Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float exp_narrow(float x) noexcept {
  return detail::first<A>(vec::exp_narrow(fbatch<A>(x)));
}
/// Scalar natural log: same algorithm and accuracy as the batch form. Shapes: scalar. Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float log(float x) noexcept {
  return detail::first<A>(vec::log(fbatch<A>(x)));
}
/// Scalar sigmoid: same algorithm and accuracy as the batch form. Shapes: scalar. Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float sigmoid(float x) noexcept {
  return detail::first<A>(vec::sigmoid(fbatch<A>(x)));
}
/// Scalar softplus (= x for x > 20): same algorithm and accuracy as the batch form. Shapes: scalar.
/// Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float softplus(float x) noexcept {
  return detail::first<A>(vec::softplus(fbatch<A>(x)));
}
/// Scalar silu: same algorithm and accuracy as the batch form. Shapes: scalar. Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float silu(float x) noexcept {
  return detail::first<A>(vec::silu(fbatch<A>(x)));
}
/// Scalar tanh: same algorithm and accuracy as the batch form. Shapes: scalar. Throws: nothing.
template <class A = xsimd::default_arch>
SEQMIX_ALWAYS_INLINE float tanh(float x) noexcept {
  return detail::first<A>(vec::tanh(fbatch<A>(x)));
}

}  // namespace seqmix::vec
SEQMIX_DIAG_POP
