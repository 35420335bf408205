// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/vmath.hpp: float32 SIMD math the SSM kernels need (exp, log1p-based
// softplus, silu: thin forwards to simd/math.hpp, plus exp2 for the scan's inner loop) and loads/stores that
// widen any storage type to float.
#pragma once

#include <cmath>
#include <limits>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"
#include "../../../simd/load_store.hpp"
#include "../../../simd/math.hpp"

SEQMIX_DIAG_PUSH
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

/// 2^(a b) for a b finite and in [-125, 125] only (no clamp, no NaN care: callers check the range
/// first). r = a b + 1.5*2^23 (one FMA) puts round(a b) in r's low mantissa bits, which shifted left by 23
/// are the exponent increment; f = a b - (r - 1.5*2^23) by an FMA, exact product, in [-1/2, 1/2]; 2^f by a
/// degree-5 minimax polynomial with p(0) = 1 (rel. error 9.1e-8 before rounding, <= 1.8e-7 evaluated in
/// float32: the class of the CUDA kernel's exp2f; degree 6 cost 6% more scan time). 10 vector ops, written
/// with explicit FMAs so that every compiler emits the same (g++ would contract a separate a*b; clang
/// would not). See docs/06-ssm-scans.md.
template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> vexp2_unchecked(fbatch<A> a, fbatch<A> b) noexcept {
  using B = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  const B magic(12582912.0f);  // 1.5 * 2^23
  const B r = xsimd::fma(a, b, magic);
  const B f = xsimd::fms(a, b, r - magic);
  B p = B(1.3264723820611835e-3f);
  p = xsimd::fma(p, f, B(9.6715129911899567e-3f));
  p = xsimd::fma(p, f, B(5.5507335811853409e-2f));
  p = xsimd::fma(p, f, B(2.4022242426872253e-1f));
  p = xsimd::fma(p, f, B(6.9314700365066528e-1f));
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

/// Elementwise math on K independent batches, written statement by statement in lockstep so that the K
/// dependency chains interleave in the instruction stream (a softplus is a ~100-cycle chain; one per token
/// leaves the out-of-order window mostly idle). Lean forms for the scan's per-token work; see
/// docs/06-ssm-scans.md for the derivations and measured accuracy.
namespace lockstep {

/// e^-|x| for K batches: n = round(-|x| log2 e), r = -|x| - n ln2 in two parts (Cody-Waite, so the error
/// does not grow with |x|), e^r by vec::exp's polynomial, 2^n added to the exponent field. -|x| is floored
/// at -86.6 (e^-86.6 ~ 2.4e-38: the callers only add or multiply this into results exact far below float
/// resolution there). NaN comes out finite: callers keep x's NaN through their last operation.
template <class A, int K>
SEQMIX_ALWAYS_INLINE void exp_neg_abs(const fbatch<A> (&x)[K], fbatch<A> (&e)[K]) noexcept {
  using B = fbatch<A>;
  using I = xsimd::batch<std::int32_t, A>;
  const B magic(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
  B a[K], t[K], r[K], p[K];
  for (int k = 0; k < K; ++k) a[k] = xsimd::max(-xsimd::abs(x[k]), B(-86.6f));
  for (int k = 0; k < K; ++k) t[k] = xsimd::fma(a[k], B(log2e_f), magic);
  for (int k = 0; k < K; ++k) r[k] = xsimd::fnma(t[k] - magic, B(0.693359375f), a[k]);
  for (int k = 0; k < K; ++k) r[k] = xsimd::fnma(t[k] - magic, B(-2.12194440e-4f), r[k]);
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(B(1.9875691500e-4f), r[k], B(1.3981999507e-3f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], B(8.3334519073e-3f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], B(4.1665795894e-2f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], B(1.6666665459e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k], B(5.0000001201e-1f));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], r[k] * r[k], r[k]) + B(1.0f);
  for (int k = 0; k < K; ++k)
    e[k] = xsimd::bitwise_cast<B>(xsimd::bitwise_cast<I>(p[k]) + (xsimd::bitwise_cast<I>(t[k]) << 23));
}

/// softplus(x) = log1p(e^x) = max(x, 0) + log1p(u), u = e^-|x|; log1p(u) = 2 atanh(s), s = u / (2 + u) in
/// (0, 1/3], by its series to s^13 (truncation < 1.5e-8 relative); = x for x > 20 (SPEC §2.13). Measured
/// relative error <= 3e-7 for x >= -86 (below, |error| < 2.4e-38). NaN -> NaN, +inf -> +inf. In place.
template <class A, int K>
SEQMIX_ALWAYS_INLINE void softplus(fbatch<A> (&x)[K]) noexcept {
  using B = fbatch<A>;
  B u[K], s[K], z[K], p[K];
  exp_neg_abs<A, K>(x, u);
  for (int k = 0; k < K; ++k) s[k] = u[k] / (B(2.0f) + u[k]);
  for (int k = 0; k < K; ++k) z[k] = s[k] * s[k];
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(B(1.0f / 13), z[k], B(1.0f / 11));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], z[k], B(1.0f / 9));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], z[k], B(1.0f / 7));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], z[k], B(1.0f / 5));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k], z[k], B(1.0f / 3));
  for (int k = 0; k < K; ++k) p[k] = xsimd::fma(p[k] * z[k], s[k] + s[k], s[k] + s[k]);  // 2 atanh(s)
  // max(0, x): x second, so NaN propagates (maxps returns its second operand on NaN)
  for (int k = 0; k < K; ++k) x[k] = xsimd::select(x[k] > B(20.0f), x[k], xsimd::max(B(0.0f), x[k]) + p[k]);
}

/// silu(x) = x sigmoid(x), sigmoid from e = e^-|x| as 1/(1+e) (x >= 0) or e/(1+e); finite x clamped at
/// -150 as vec::silu, and silu(-inf) = NaN as the definition gives. Measured relative error <= 3e-7 for
/// x >= -86. In place.
template <class A, int K>
SEQMIX_ALWAYS_INLINE void silu(fbatch<A> (&x)[K]) noexcept {
  using B = fbatch<A>;
  B e[K];
  // clamp at -150, plus min(0, x) * 0 in one FMA: NaN only for x = -inf (and NaN), else +-0, so -inf becomes
  // NaN at the cost of two ops (a select on the saved input cost conv1d 20%, this 2-4%)
  for (int k = 0; k < K; ++k) x[k] = xsimd::fma(xsimd::min(B(0.0f), x[k]), B(0.0f), xsimd::max(B(-150.0f), x[k]));
  exp_neg_abs<A, K>(x, e);
  for (int k = 0; k < K; ++k) {
    const B s = B(1.0f) / (B(1.0f) + e[k]);
    x[k] = x[k] * xsimd::select(x[k] >= B(0.0f), s, e[k] * s);
  }
}

}  // namespace lockstep

inline float softplus_scalar(float x) noexcept { return x > 20.0f ? x : std::log1p(std::exp(x)); }
inline double softplus_scalar(double x) noexcept { return x > 20.0 ? x : std::log1p(std::exp(x)); }
inline float silu_scalar(float x) noexcept { return x / (1.0f + std::exp(-x)); }
inline double silu_scalar(double x) noexcept { return x / (1.0 + std::exp(-x)); }

/// Loads n (<= width) contiguous values of any storage type as floats, lanes >= n zero (vec::load_tail;
/// bf16 and f16 widen in registers).
template <class A, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_n(const T* p, index_t n) noexcept {
  if (n == static_cast<index_t>(fbatch<A>::size)) return vec::load<A>(p);
  return vec::load_tail<A>(p, n);
}
/// Full-width contiguous load of any storage type (vec::load).
template <class A, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_w(const T* p) noexcept {
  return vec::load<A>(p);
}
/// Stores the first n lanes (n <= width) to contiguous storage of any type (vec::store / vec::store_tail).
template <class A, class T>
SEQMIX_ALWAYS_INLINE void store_n(T* p, fbatch<A> v, index_t n) noexcept {
  if (n == static_cast<index_t>(fbatch<A>::size)) return vec::store<A>(p, v);
  vec::store_tail<A>(p, v, n);
}

}  // namespace seqmix::detail::ssm
SEQMIX_DIAG_POP
