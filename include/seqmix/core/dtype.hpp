// SPDX-License-Identifier: Apache-2.0
// seqmix/core/dtype.hpp: 16-bit storage types bf16 and f16 with exact round-to-nearest-even conversion
// (F16C instructions where the compiler enables them), and dtype traits.
#pragma once

#include <bit>
#include <cstdint>
#include <string_view>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace seqmix {

namespace detail {
/// float -> IEEE binary16 bits, round to nearest even; NaN stays NaN (quiet), overflow -> inf.
inline std::uint16_t float_to_half_bits(float f) noexcept {
#if defined(__F16C__)
  return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN (NaN keeps its top payload bits and is made quiet)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  }
  if (ax >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {  // |f| < 2^-14: subnormal half (or zero); 0.5f has ulp 2^-24, the half quantum
    const float t = std::bit_cast<float>(ax) + 0.5f;
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(t) - 0x3f000000u));
  }
  const std::uint32_t odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + odd;  // rebias exponent 127 -> 15 and round to nearest even
  return static_cast<std::uint16_t>(sign | (ax >> 13));
#endif
}

/// IEEE binary16 bits -> float (exact).
inline float half_bits_to_float(std::uint16_t h) noexcept {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact in float
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) | sign);
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
#endif
}

/// float -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet).
inline std::uint16_t float_to_bf16_bits(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/// bfloat16 bits -> float (exact).
inline float bf16_bits_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}
}  // namespace detail

/// bfloat16 storage type: 1 sign, 8 exponent, 7 mantissa bits. Arithmetic happens in float.
struct bf16 {
  std::uint16_t bits = 0;
  constexpr bf16() = default;
  explicit bf16(float f) noexcept : bits(detail::float_to_bf16_bits(f)) {}
  explicit bf16(double d) noexcept : bf16(static_cast<float>(d)) {}
  static constexpr bf16 from_bits(std::uint16_t b) noexcept {
    bf16 r;
    r.bits = b;
    return r;
  }
  operator float() const noexcept { return detail::bf16_bits_to_float(bits); }
};

/// IEEE binary16 storage type: 1 sign, 5 exponent, 10 mantissa bits. Arithmetic happens in float.
struct f16 {
  std::uint16_t bits = 0;
  constexpr f16() = default;
  explicit f16(float f) noexcept : bits(detail::float_to_half_bits(f)) {}
  explicit f16(double d) noexcept : f16(static_cast<float>(d)) {}
  static constexpr f16 from_bits(std::uint16_t b) noexcept {
    f16 r;
    r.bits = b;
    return r;
  }
  operator float() const noexcept { return detail::half_bits_to_float(bits); }
};

static_assert(sizeof(bf16) == 2 && sizeof(f16) == 2, "bf16/f16 must be 2 bytes");

/// Element types an op accepts as input storage.
template <class T>
concept storage_type = std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, bf16> ||
                       std::is_same_v<T, f16>;

/// Widen any storage value to float (the fast paths' compute type).
template <class T>
inline float to_float(T x) noexcept {
  return static_cast<float>(x);
}
/// Widen any storage value to double (the reference path's compute type).
template <class T>
inline double to_double(T x) noexcept {
  return static_cast<double>(static_cast<float>(x));
}
inline double to_double(double x) noexcept { return x; }

/// Narrow a float or double to storage type T, rounding to nearest even.
template <class T>
inline T from_float(float x) noexcept {
  return static_cast<T>(x);
}
template <>
inline bf16 from_float<bf16>(float x) noexcept {
  return bf16(x);
}
template <>
inline f16 from_float<f16>(float x) noexcept {
  return f16(x);
}

/// Name of a storage type as the parity tool spells it.
template <class T>
constexpr std::string_view dtype_name() noexcept {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else if constexpr (std::is_same_v<T, bf16>) return "bfloat16";
  else if constexpr (std::is_same_v<T, f16>) return "float16";
  else return "unknown";
}

}  // namespace seqmix
