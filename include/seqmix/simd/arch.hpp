// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/arch.hpp: batch aliases and width helpers for seqmix::vec (xsimd 8.1 underneath).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../config.hpp"

#if defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#endif

// xsimd 8.1 has no fma / fms / fnma / fnms kernels for AVX-512: they fall back to the generic x * y + z,
// two roundings unless the compiler contracts it (clang 14 does not; g++ only with -ffp-contract=fast), which
// broke the exact-product FMAs of the SSD / scan exp2 (2.7e-6 instead of 1e-7) and doubled the FP ops.
// These explicit specializations of the generic kernels emit vfmadd / vfmsub / vfnmadd / vfnmsub. They must
// precede any use of xsimd::fma on an AVX-512 batch in the translation unit: include seqmix first.
#if XSIMD_VERSION_MAJOR == 8 && defined(__AVX512F__)
namespace xsimd::kernel {
#define SEQMIX_XSIMD_FMA(ARCH, T, OP, INTR)                                                                      \
  template <>                                                                                                    \
  inline batch<T, ARCH> OP<ARCH, T>(batch<T, ARCH> const& x, batch<T, ARCH> const& y, batch<T, ARCH> const& z, \
                                    requires_arch<generic>) noexcept {                                           \
    return INTR(x, y, z);                                                                                        \
  }
#define SEQMIX_XSIMD_FMAS(ARCH)                          \
  SEQMIX_XSIMD_FMA(ARCH, float, fma, _mm512_fmadd_ps)    \
  SEQMIX_XSIMD_FMA(ARCH, float, fms, _mm512_fmsub_ps)    \
  SEQMIX_XSIMD_FMA(ARCH, float, fnma, _mm512_fnmadd_ps)  \
  SEQMIX_XSIMD_FMA(ARCH, float, fnms, _mm512_fnmsub_ps)  \
  SEQMIX_XSIMD_FMA(ARCH, double, fma, _mm512_fmadd_pd)   \
  SEQMIX_XSIMD_FMA(ARCH, double, fms, _mm512_fmsub_pd)   \
  SEQMIX_XSIMD_FMA(ARCH, double, fnma, _mm512_fnmadd_pd) \
  SEQMIX_XSIMD_FMA(ARCH, double, fnms, _mm512_fnmsub_pd)
SEQMIX_XSIMD_FMAS(avx512f)
SEQMIX_XSIMD_FMAS(avx512cd)
SEQMIX_XSIMD_FMAS(avx512dq)
SEQMIX_XSIMD_FMAS(avx512bw)
#undef SEQMIX_XSIMD_FMAS
#undef SEQMIX_XSIMD_FMA
}  // namespace xsimd::kernel
#endif

SEQMIX_DIAG_PUSH
namespace seqmix::vec {

/// Float batch of architecture A (default: the best the compiler flags enable; fma3<avx2> with -mavx2 -mfma).
/// Shapes: A::size lanes (8 for AVX2). Throws: nothing.
template <class A = xsimd::default_arch>
using fbatch = xsimd::batch<float, A>;

/// Int32 batch with as many lanes as fbatch<A>.
template <class A = xsimd::default_arch>
using ibatch = xsimd::batch<std::int32_t, A>;

/// Number of float lanes of A, as index_t (8 for AVX2, 4 for SSE).
template <class A = xsimd::default_arch>
inline constexpr index_t width = static_cast<index_t>(fbatch<A>::size);

/// n rounded down to a multiple of width<A>: the end of the full-batch part of a loop over n elements.
template <class A = xsimd::default_arch>
constexpr index_t round_down(index_t n) noexcept {
  return n - n % width<A>;
}

/// n rounded up to a multiple of width<A> (padding for scratch buffers).
template <class A = xsimd::default_arch>
constexpr index_t round_up(index_t n) noexcept {
  return (n + width<A> - 1) / width<A> * width<A>;
}

namespace detail {
template <class A, bool Wide = (fbatch<A>::size > 8)>
struct narrow_arch_impl {
  using type = A;
};
#if XSIMD_WITH_FMA3_AVX2
template <class A>
struct narrow_arch_impl<A, true> {
  using type = xsimd::fma3<xsimd::avx2>;
};
#endif
}  // namespace detail

/// A, or the 8-lane AVX2 + FMA arch (a subset of AVX-512) when A has more than 8 float lanes: for kernels
/// whose packed layouts are built for batches of at most 8 floats. Throws: nothing.
template <class A = xsimd::default_arch>
using narrow_arch = typename detail::narrow_arch_impl<A>::type;

namespace detail {
#if defined(__AVX2__)
inline constexpr bool compiled_avx2 = true;
#else
inline constexpr bool compiled_avx2 = false;
#endif
#if defined(__AVX__) && defined(__F16C__)
inline constexpr bool compiled_f16c = true;
#else
inline constexpr bool compiled_f16c = false;
#endif
#if defined(__AVX512F__)
inline constexpr bool compiled_avx512f = true;
#else
inline constexpr bool compiled_avx512f = false;
#endif

/// True when A is a 256-bit AVX2 arch and the compiler enables AVX2: the intrinsics fast paths apply.
template <class A>
inline constexpr bool is_avx2 = (compiled_avx2 && std::is_base_of_v<xsimd::avx2, A> && fbatch<A>::size == 8);

/// True when A is a 256-bit AVX arch and F16C is enabled: vcvtph2ps / vcvtps2ph apply.
template <class A>
inline constexpr bool is_avx_f16c = (compiled_f16c && std::is_base_of_v<xsimd::avx, A> && fbatch<A>::size == 8);

/// True when A is a 512-bit AVX-512 arch and the compiler enables AVX-512F: the zmm intrinsics paths apply.
template <class A>
inline constexpr bool is_avx512 = (compiled_avx512f && std::is_base_of_v<xsimd::avx512f, A> && fbatch<A>::size == 16);

/// Lane 0 of a batch as a scalar (one register move on x86).
template <class A>
SEQMIX_ALWAYS_INLINE float first(const fbatch<A>& x) noexcept {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_cvtss_f32(x);
#endif
#if defined(__AVX__)
  if constexpr (std::is_base_of_v<xsimd::avx, A> && fbatch<A>::size == 8) return _mm256_cvtss_f32(x);
#endif
#if defined(__SSE2__)
  if constexpr (std::is_base_of_v<xsimd::sse2, A> && fbatch<A>::size == 4) return _mm_cvtss_f32(x);
#endif
  return x.get(0);
}
}  // namespace detail

}  // namespace seqmix::vec
SEQMIX_DIAG_POP
