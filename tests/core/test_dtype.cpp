// SPDX-License-Identifier: Apache-2.0
// tests/core/test_dtype.cpp: bf16 and f16 conversions, exhaustive over all 65,536 bit patterns and dense
// float sweeps (ties, subnormals, overflow, NaN), against an independent conversion built from exact
// long double arithmetic (ldexp of sign, exponent and significand; nearest value by search, ties to even).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <seqmix/core/dtype.hpp>

#include "support/support.hpp"

using namespace seqmix;

namespace {

/// A binary16-like format described by its field widths (no bit tricks: values come from ldexp).
struct format16 {
  int mant_bits;
  int exp_bits;
  int bias;
  const char* name;
};
constexpr format16 half_fmt{10, 5, 15, "f16"};
constexpr format16 bf16_fmt{7, 8, 127, "bf16"};

/// Exact value of a 16-bit pattern: (-1)^s 2^(e - bias) (1 + m / 2^mant), subnormal 2^(1 - bias) m / 2^mant.
long double decode(std::uint16_t h, const format16& f) {
  const unsigned sign = h >> 15;
  const unsigned e = (h >> f.mant_bits) & ((1u << f.exp_bits) - 1u);
  const unsigned m = h & ((1u << f.mant_bits) - 1u);
  long double v;
  if (e == (1u << f.exp_bits) - 1u) {
    v = m != 0 ? std::numeric_limits<long double>::quiet_NaN() : std::numeric_limits<long double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(static_cast<long double>(m), 1 - f.bias - f.mant_bits);
  } else {
    v = std::ldexp(static_cast<long double>((1u << f.mant_bits) + m), static_cast<int>(e) - f.bias - f.mant_bits);
  }
  return sign ? -v : v;
}

/// Non-negative values of the format in pattern order: finite ones, then the value where rounding reaches
/// infinity (2^(emax + 1), the pattern of +inf). Checked to be strictly increasing below.
struct table16 {
  format16 f;
  std::vector<long double> values;  // index = pattern (0 .. +inf pattern)
  explicit table16(const format16& fmt) : f(fmt) {
    const unsigned inf_pattern = ((1u << f.exp_bits) - 1u) << f.mant_bits;
    for (unsigned k = 0; k < inf_pattern; ++k) values.push_back(decode(static_cast<std::uint16_t>(k), f));
    values.push_back(std::ldexp(1.0L, (1 << (f.exp_bits - 1))));  // 2^(emax + 1): rounds to inf
  }
  /// Round-to-nearest-even encoding of a float, by search over the exact values.
  std::uint16_t encode(float x) const {
    const std::uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
    const long double a = std::fabs(static_cast<long double>(x));
    const auto inf_pattern = static_cast<std::uint16_t>(values.size() - 1);
    if (std::isinf(a) || a >= values.back()) return sign | inf_pattern;
    const auto it = std::upper_bound(values.begin(), values.end(), a);
    const auto hi = static_cast<std::size_t>(it - values.begin());  // values[hi - 1] <= a < values[hi]
    const std::size_t lo = hi - 1;
    const long double dlo = a - values[lo], dhi = values[hi] - a;               // both exact
    std::size_t k = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);  // ties: even significand
    return static_cast<std::uint16_t>(sign | k);
  }
};

std::string hex(std::uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

template <class T>
std::uint16_t bits_of(float x) {
  return from_float<T>(x).bits;
}

/// Checks float -> 16-bit rounding of x against the table; returns an empty string or a failure note.
template <class T>
std::string check_round(const table16& t, float x) {
  const std::uint16_t got = bits_of<T>(x);
  if (std::isnan(x)) {
    const long double v = decode(got, t.f);
    const std::uint16_t quiet = static_cast<std::uint16_t>(1u << (t.f.mant_bits - 1));
    if (!std::isnan(v) || (got & quiet) == 0 || (got >> 15) != (std::bit_cast<std::uint32_t>(x) >> 31))
      return std::string(t.f.name) + ": NaN " + hex(std::bit_cast<std::uint32_t>(x)) + " -> " + hex(got);
    return {};
  }
  const std::uint16_t want = t.encode(x);
  if (got != want)
    return std::string(t.f.name) + ": " + hex(std::bit_cast<std::uint32_t>(x)) + " -> " + hex(got) + ", expected " +
           hex(want);
  return {};
}

/// Runs check_round over xs; reports the first failure and the failure count.
template <class T>
void check_all(const table16& t, const std::vector<float>& xs) {
  std::size_t fails = 0;
  std::string first;
  for (float x : xs) {
    auto r = check_round<T>(t, x);
    if (!r.empty() && fails++ == 0) first = r;
  }
  INFO(first);
  REQUIRE(fails == 0);
}

/// Dense float inputs: a bit-pattern sweep over all 2^32 floats (stride 977, both signs, NaNs included),
/// every exact midpoint between neighbouring 16-bit values (and the floats either side), every float
/// around the overflow threshold, and a dense sweep of float subnormals.
std::vector<float> sweep_inputs(const table16& t) {
  std::vector<float> xs;
  std::size_t inexact_midpoints = 0;
  for (std::uint64_t b = 0; b < (1ull << 32); b += 977)
    xs.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(b)));
  for (std::size_t k = 0; k + 1 < t.values.size(); ++k) {
    const long double mid = (t.values[k] + t.values[k + 1]) / 2;
    const auto m = static_cast<float>(mid);
    inexact_midpoints += static_cast<long double>(m) != mid;  // every midpoint is a float: ties really tested
    for (float x : {m, std::nextafter(m, 0.0f), std::nextafter(m, std::numeric_limits<float>::infinity())}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
    xs.push_back(static_cast<float>(t.values[k]));
  }
  for (std::uint32_t b = 0; b < (1u << 23); b += 61) {
    xs.push_back(std::bit_cast<float>(b));
    xs.push_back(std::bit_cast<float>(b | 0x80000000u));
  }
  const float big = static_cast<float>(t.values.back());
  float x = static_cast<float>(t.values[t.values.size() - 2]);
  for (int i = 0; i < 4096 && x < big; ++i, x = std::nextafter(x, big)) xs.push_back(x);
  for (float s :
       {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
        std::numeric_limits<float>::min(), big, -big, std::numeric_limits<float>::quiet_NaN(),
        -std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::signaling_NaN(),
        std::bit_cast<float>(0x7f800001u), std::bit_cast<float>(0xffbfffffu), std::bit_cast<float>(0x7fc00001u)})
    xs.push_back(s);
  REQUIRE(inexact_midpoints == 0);
  return xs;
}

}  // namespace

TEST_CASE("dtype: independent tables are strictly increasing", "[core][dtype]") {
  for (const auto& f : {half_fmt, bf16_fmt}) {
    table16 t(f);
    REQUIRE(std::is_sorted(t.values.begin(), t.values.end()));
    REQUIRE(std::adjacent_find(t.values.begin(), t.values.end()) == t.values.end());
  }
  REQUIRE(table16(half_fmt).values[0x7bff] == 65504.0L);
  REQUIRE(table16(half_fmt).values[1] == std::ldexp(1.0L, -24));
  REQUIRE(table16(bf16_fmt).values[0x7f7f] == static_cast<long double>(std::ldexp(255.0L, 120)));
}

TEMPLATE_TEST_CASE("dtype: 16-bit -> float is exact for all 65,536 patterns", "[core][dtype]", bf16, f16) {
  const format16 f = std::is_same_v<TestType, bf16> ? bf16_fmt : half_fmt;
  std::size_t fails = 0;
  std::string first;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const float got = to_float(TestType::from_bits(b));
    const long double want = decode(b, f);
    const bool ok = std::isnan(want) ? std::isnan(got) && std::signbit(got) == std::signbit(want)
                                     : static_cast<long double>(got) == want && std::signbit(got) == std::signbit(want);
    if (!ok && fails++ == 0) first = hex(h);
    const double d = to_double(TestType::from_bits(b));  // to_double agrees with to_float
    if (!(std::isnan(want) ? std::isnan(d) : d == static_cast<double>(want)) && fails++ == 0)
      first = "to_double " + hex(h);
  }
  INFO(first);
  REQUIRE(fails == 0);
}

TEMPLATE_TEST_CASE("dtype: float -> 16-bit -> float round trip is the identity for all patterns", "[core][dtype]", bf16,
                   f16) {
  const unsigned mant = std::is_same_v<TestType, bf16> ? 7 : 10;
  const std::uint16_t quiet = static_cast<std::uint16_t>(1u << (mant - 1));
  const std::uint16_t exp_mask = std::is_same_v<TestType, bf16> ? 0x7f80u : 0x7c00u;
  std::size_t fails = 0;
  std::string first;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const std::uint16_t back = from_float<TestType>(to_float(TestType::from_bits(b))).bits;
    const bool is_nan = (b & exp_mask) == exp_mask && (b & ~exp_mask & 0x7fffu) != 0;
    // NaN: stays NaN, same sign, payload kept, made quiet.
    const bool ok = is_nan ? (back | quiet) == (b | quiet) && (back & quiet) != 0 : back == b;
    if (!ok && fails++ == 0) first = hex(h) + " -> " + hex(back);
    // The explicit constructors round the same way as from_float.
    if (!is_nan && TestType(to_float(TestType::from_bits(b))).bits != b && fails++ == 0) first = "ctor " + hex(h);
  }
  INFO(first);
  REQUIRE(fails == 0);
}

TEST_CASE("dtype: float -> f16 rounds to nearest even on dense sweeps", "[core][dtype]") {
  const table16 t(half_fmt);
  check_all<f16>(t, sweep_inputs(t));
}

TEST_CASE("dtype: float -> bf16 rounds to nearest even on dense sweeps", "[core][dtype]") {
  const table16 t(bf16_fmt);
  check_all<bf16>(t, sweep_inputs(t));
}

TEST_CASE("dtype: edge values", "[core][dtype]") {
  const float inf = std::numeric_limits<float>::infinity();
  REQUIRE(f16(65504.0f).bits == 0x7bffu);
  REQUIRE(f16(65519.996f).bits == 0x7bffu);  // just below the tie: stays finite
  REQUIRE(f16(65520.0f).bits == 0x7c00u);    // the tie rounds to even: inf
  REQUIRE(f16(-inf).bits == 0xfc00u);
  REQUIRE(f16(std::ldexp(1.0f, -25)).bits == 0x0000u);                        // tie between 0 and 2^-24: 0
  REQUIRE(f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)).bits == 0x0001u);  // just above: 2^-24
  REQUIRE(f16(std::ldexp(3.0f, -25)).bits == 0x0002u);                        // tie 1.5 ulp: even (2)
  REQUIRE(f16(-0.0f).bits == 0x8000u);
  REQUIRE(bf16(std::numeric_limits<float>::max()).bits == 0x7f80u);  // rounds up past the largest bf16
  REQUIRE(bf16(1.00390625f).bits == 0x3f80u);                        // 1 + 2^-8: tie, to even (1.0)
  REQUIRE(bf16(1.01171875f).bits == 0x3f82u);                        // 1 + 3 2^-8: tie, to even (1 + 2^-6)
  REQUIRE(bf16(std::numeric_limits<float>::denorm_min()).bits == 0x0000u);
  REQUIRE(std::isnan(static_cast<float>(bf16(std::numeric_limits<float>::quiet_NaN()))));
  REQUIRE(std::isnan(static_cast<float>(f16(std::numeric_limits<float>::signaling_NaN()))));
  REQUIRE(to_double(f16(0.1f)) == static_cast<double>(static_cast<float>(f16(0.1f))));
  REQUIRE(dtype_name<bf16>() == "bfloat16");
  REQUIRE(dtype_name<f16>() == "float16");
}
