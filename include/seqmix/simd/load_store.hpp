// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/load_store.hpp: converting loads and stores between storage types (float, double, bf16, f16)
// and float batches: full, tail (n < width, never touching memory past p + n) and strided (gather).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/dtype.hpp"
#include "arch.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::vec {

namespace detail {
template <class A, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_scalar(const T* p, index_t n, index_t stride) noexcept {
  alignas(64) float buf[fbatch<A>::size] = {};
  for (index_t i = 0; i < n; ++i) buf[i] = seqmix::to_float(p[i * stride]);
  return fbatch<A>::load_aligned(buf);
}

#if defined(__AVX2__)
/// Lanes [0, n) all-ones, the rest zero (AVX2 int32 mask for maskload/maskstore).
SEQMIX_ALWAYS_INLINE __m256i lane_mask(index_t n) noexcept {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/// float -> bf16 bits, RNE, NaN quieted: the vector form of seqmix::detail::float_to_bf16_bits.
SEQMIX_ALWAYS_INLINE __m128i to_bf16_avx2(__m256 x) noexcept {
  const __m256i xi = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(xi, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(xi, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(xi, 16), _mm256_set1_epi32(0x40));
  const __m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  const __m256i r = _mm256_blendv_epi8(rounded, nan, isnan);
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
#endif
#if defined(__AVX512F__)
/// Lanes [0, n) set (n in [0, 16]).
SEQMIX_ALWAYS_INLINE __mmask16 lane_mask16(index_t n) noexcept {
  return static_cast<__mmask16>((1u << static_cast<unsigned>(n)) - 1u);
}
/// float -> bf16 bits as to_bf16_avx2, 16 lanes.
SEQMIX_ALWAYS_INLINE __m256i to_bf16_avx512(__m512 x) noexcept {
  const __m512i xi = _mm512_castps_si512(x);
  const __m512i hi = _mm512_srli_epi32(xi, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(xi, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __m512i nan = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));
  const __m512i r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), rounded, nan);
  return _mm512_cvtepi32_epi16(r);  // every lane < 2^16: truncation is exact
}
#endif
}  // namespace detail

/// Loads width<A> elements p[0..w) of storage type T (float, double, bf16, f16) widened to float (exact for
/// bf16 and f16; double rounds to nearest). AVX2 paths: vcvtpd2ps, zero-extend + shift for bf16, vcvtph2ps
/// for f16 (with F16C); other archs convert lane by lane with the exact scalar conversions of core/dtype.hpp.
/// Shapes: p[0 .. width<A>). Throws: nothing.
template <class A = xsimd::default_arch, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load(const T* p) noexcept {
  static_assert(storage_type<T>, "vec::load: T must be float, double, bf16 or f16");
  if constexpr (std::is_same_v<T, float>) {
    return fbatch<A>::load_unaligned(p);
  }
#if defined(__AVX2__)
  else if constexpr (detail::is_avx2<A> && std::is_same_v<T, double>) {
    const __m128 lo = _mm256_cvtpd_ps(_mm256_loadu_pd(p));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_loadu_pd(p + 4));
    return fbatch<A>(_mm256_set_m128(hi, lo));
  } else if constexpr (detail::is_avx2<A> && std::is_same_v<T, bf16>) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return fbatch<A>(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
#endif
#if defined(__AVX__) && defined(__F16C__)
  else if constexpr (detail::is_avx_f16c<A> && std::is_same_v<T, f16>) {
    return fbatch<A>(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
#endif
#if defined(__AVX512F__)
  else if constexpr (detail::is_avx512<A> && std::is_same_v<T, double>) {
    const __m256d lo = _mm256_castps_pd(_mm512_cvtpd_ps(_mm512_loadu_pd(p)));
    const __m256d hi = _mm256_castps_pd(_mm512_cvtpd_ps(_mm512_loadu_pd(p + 8)));
    return fbatch<A>(_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1)));
  } else if constexpr (detail::is_avx512<A> && std::is_same_v<T, bf16>) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return fbatch<A>(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  } else if constexpr (detail::is_avx512<A> && std::is_same_v<T, f16>) {
    return fbatch<A>(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
  }
#endif
  else {
    return detail::load_scalar<A>(p, width<A>, 1);
  }
}

/// Loads p[0..n) widened to float, lanes [n, width) = 0; reads nothing at or past p + n (masked load for
/// float on AVX2, element copies otherwise). n in [0, width<A>] (n = width is a full load).
/// Shapes: p[0 .. n). Throws: nothing.
template <class A = xsimd::default_arch, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_tail(const T* p, index_t n) noexcept {
  static_assert(storage_type<T>, "vec::load_tail: T must be float, double, bf16 or f16");
  SEQMIX_ASSERT(n >= 0 && n <= width<A>);
#if defined(__AVX2__)
  if constexpr (detail::is_avx2<A> && std::is_same_v<T, float>) {
    return fbatch<A>(_mm256_maskload_ps(p, detail::lane_mask(n)));
  } else
#endif
#if defined(__AVX512F__)
  if constexpr (detail::is_avx512<A> && std::is_same_v<T, float>) {
    return fbatch<A>(_mm512_maskz_loadu_ps(detail::lane_mask16(n), p));  // masked lanes never fault
  } else
#endif
  {
    return detail::load_scalar<A>(p, n, 1);
  }
}

/// Gathers p[0], p[stride], ..., p[(w-1) stride] widened to float (vgatherdps for float on AVX2 when the
/// offsets fit in int32). stride may be any value, negative or zero. Shapes: w elements stride apart.
/// Throws: nothing.
template <class A = xsimd::default_arch, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_strided(const T* p, index_t stride) noexcept {
  static_assert(storage_type<T>, "vec::load_strided: T must be float, double, bf16 or f16");
  if (stride == 1) return vec::load<A>(p);
#if defined(__AVX2__)
  if constexpr (detail::is_avx2<A> && std::is_same_v<T, float>) {
    if (stride <= 0x7fffffff / 8 && stride >= -0x7fffffff / 8) {
      const __m256i s = _mm256_set1_epi32(static_cast<int>(stride));
      const __m256i idx = _mm256_mullo_epi32(s, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      return fbatch<A>(_mm256_i32gather_ps(p, idx, 4));
    }
  }
#endif
#if defined(__AVX512F__)
  if constexpr (detail::is_avx512<A> && std::is_same_v<T, float>) {
    if (stride <= 0x7fffffff / 16 && stride >= -0x7fffffff / 16) {
      const __m512i idx = _mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int>(stride)),
                                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
      return fbatch<A>(_mm512_i32gather_ps(idx, p, 4));
    }
  }
#endif
  return detail::load_scalar<A>(p, width<A>, stride);
}

/// Gathers the first n of p[0], p[stride], ... (n in [0, width<A>]), lanes [n, width) = 0; reads nothing else.
/// Shapes: n elements stride apart. Throws: nothing.
template <class A = xsimd::default_arch, class T>
SEQMIX_ALWAYS_INLINE fbatch<A> load_strided_tail(const T* p, index_t stride, index_t n) noexcept {
  static_assert(storage_type<T>, "vec::load_strided_tail: T must be float, double, bf16 or f16");
  SEQMIX_ASSERT(n >= 0 && n <= width<A>);
  return detail::load_scalar<A>(p, n, stride);
}

/// Stores the lanes of x to p[0..w) as storage type T, rounding to nearest even (double: exact; bf16 and f16:
/// RNE, overflow -> inf, NaN stays a quiet NaN; bit-identical to seqmix::from_float<T>).
/// Shapes: p[0 .. width<A>). Throws: nothing.
template <class A, class T>
SEQMIX_ALWAYS_INLINE void store(T* p, const xsimd::batch<float, A>& x) noexcept {
  static_assert(storage_type<T>, "vec::store: T must be float, double, bf16 or f16");
  if constexpr (std::is_same_v<T, float>) {
    x.store_unaligned(p);
  }
#if defined(__AVX2__)
  else if constexpr (detail::is_avx2<A> && std::is_same_v<T, double>) {
    _mm256_storeu_pd(p, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    _mm256_storeu_pd(p + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
  } else if constexpr (detail::is_avx2<A> && std::is_same_v<T, bf16>) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), detail::to_bf16_avx2(x));
  }
#endif
#if defined(__AVX__) && defined(__F16C__)
  else if constexpr (detail::is_avx_f16c<A> && std::is_same_v<T, f16>) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
#endif
#if defined(__AVX512F__)
  else if constexpr (detail::is_avx512<A> && std::is_same_v<T, double>) {
    _mm512_storeu_pd(p, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    _mm512_storeu_pd(p + 8, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
  } else if constexpr (detail::is_avx512<A> && std::is_same_v<T, bf16>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), detail::to_bf16_avx512(x));
  } else if constexpr (detail::is_avx512<A> && std::is_same_v<T, f16>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  else {
    alignas(64) float buf[fbatch<A>::size];
    x.store_aligned(buf);
    for (std::size_t i = 0; i < fbatch<A>::size; ++i) p[i] = seqmix::from_float<T>(buf[i]);
  }
}

/// Stores lanes [0, n) of x to p[0..n) as storage type T (rounding as vec::store); writes nothing at or past
/// p + n. n in [0, width<A>]. Shapes: p[0 .. n). Throws: nothing.
template <class A, class T>
SEQMIX_ALWAYS_INLINE void store_tail(T* p, const xsimd::batch<float, A>& x, index_t n) noexcept {
  static_assert(storage_type<T>, "vec::store_tail: T must be float, double, bf16 or f16");
  SEQMIX_ASSERT(n >= 0 && n <= width<A>);
#if defined(__AVX2__)
  if constexpr (detail::is_avx2<A> && std::is_same_v<T, float>) {
    _mm256_maskstore_ps(p, detail::lane_mask(n), x);
    return;
  } else if constexpr (detail::is_avx2<A> && (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)) {
    alignas(16) T buf[8];
    vec::store(buf, x);
    std::memcpy(static_cast<void*>(p), buf, static_cast<std::size_t>(n) * sizeof(T));
    return;
  }
#endif
#if defined(__AVX512F__)
  if constexpr (detail::is_avx512<A> && std::is_same_v<T, float>) {
    _mm512_mask_storeu_ps(p, detail::lane_mask16(n), x);
    return;
  } else if constexpr (detail::is_avx512<A> && (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)) {
    alignas(32) T buf[16];
    vec::store(buf, x);
    std::memcpy(static_cast<void*>(p), buf, static_cast<std::size_t>(n) * sizeof(T));
    return;
  }
#endif
  alignas(64) float buf[fbatch<A>::size];
  x.store_aligned(buf);
  for (index_t i = 0; i < n; ++i) p[i] = seqmix::from_float<T>(buf[i]);
}

/// Scatters lanes [0, n) of x to p[0], p[stride], ... as storage type T (rounding as vec::store).
/// n in [0, width<A>]. Shapes: n elements stride apart. Throws: nothing.
template <class A, class T>
SEQMIX_ALWAYS_INLINE void store_strided(T* p, index_t stride, const xsimd::batch<float, A>& x,
                                        index_t n = width<A>) noexcept {
  static_assert(storage_type<T>, "vec::store_strided: T must be float, double, bf16 or f16");
  SEQMIX_ASSERT(n >= 0 && n <= width<A>);
  alignas(64) float buf[fbatch<A>::size];
  x.store_aligned(buf);
  for (index_t i = 0; i < n; ++i) p[i * stride] = seqmix::from_float<T>(buf[i]);
}

}  // namespace seqmix::vec
SEQMIX_DIAG_POP
