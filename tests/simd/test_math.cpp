// SPDX-License-Identifier: Apache-2.0
// tests/simd/test_math.cpp: accuracy of vec::exp, exp_narrow, log, sigmoid, softplus, silu, tanh over dense
// sweeps (float bit-pattern sweeps across the whole range plus linear grids) and edge values, against std:: in
// double; batch and scalar forms must agree bit for bit. SEQMIX_PRINT_ACCURACY=1 prints the measured errors.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <seqmix/simd/load_store.hpp>
#include <seqmix/simd/math.hpp>

#include "simd_test.hpp"
#include "support/support.hpp"

using namespace seqmix;

namespace {

using archs = testing::simd_archs;

/// The default arch gets the dense sweeps; the second arch (same algorithm, other width) a 4x thinner one,
/// which keeps the sanitizer builds fast.
template <class A>
constexpr std::uint32_t bit_step = std::is_same_v<A, xsimd::default_arch> ? 1021u : 4093u;
template <class A>
constexpr std::size_t grid_n(std::size_t n) {
  return std::is_same_v<A, xsimd::default_arch> ? n : n / 4;
}

constexpr double flt_min = std::numeric_limits<float>::min();
constexpr double flt_max = std::numeric_limits<float>::max();
constexpr double denorm = std::numeric_limits<float>::denorm_min();  // 2^-149
using testing::finf;
using testing::fnan;

/// What a function promises: relative error <= rel where the result is a normal float and x >= rel_from;
/// elsewhere (subnormal results) absolute error <= abs_allow(x, ref).
struct accuracy {
  const char* name;
  double rel;
  double rel_from;
  double (*abs_allow)(double x, double ref);
  double (*ref)(double x);
};

double ref_sigmoid(double x) {
  return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
}
double ref_softplus(double x) {
  return x > 20.0 ? x : std::log1p(std::exp(x));
}
double ref_silu(double x) {
  return x * ref_sigmoid(x);
}  // the definition: -inf * 0 = NaN at -inf (SPEC §2.15, torch)

const accuracy acc_exp{"exp", 2.0e-7, -1e30, [](double, double) { return denorm; },
                       [](double x) { return std::exp(x); }};
const accuracy acc_log{"log", 2.0e-7, -1e30, [](double, double) { return 0.0; }, [](double x) { return std::log(x); }};
const accuracy acc_sigmoid{"sigmoid", 4.0e-7, -1e30, [](double, double) { return 2 * denorm; }, ref_sigmoid};
const accuracy acc_softplus{"softplus", 4.0e-7, -1e30, [](double, double) { return 2 * denorm; }, ref_softplus};
// silu: below x = -87 the sigmoid factor is subnormal, so x * sigmoid keeps only an absolute bound.
const accuracy acc_silu{"silu", 5.0e-7, -87.0,
                        [](double x, double r) { return std::fabs(x) * 4 * denorm + std::fabs(r) * 6e-8 + denorm; },
                        ref_silu};
const accuracy acc_tanh{"tanh", 3.0e-7, -1e30, [](double, double) { return 0.0; },
                        [](double x) { return std::tanh(x); }};

/// Float bit patterns from lo to hi (same sign, |lo| < |hi| or both positive) stepping `step` patterns:
/// covers every binade evenly, from subnormals to the top of the range.
void add_bits(std::vector<float>& xs, float lo, float hi, std::uint32_t step) {
  const std::uint32_t a = std::bit_cast<std::uint32_t>(lo), b = std::bit_cast<std::uint32_t>(hi);
  for (std::uint64_t u = a; u <= b; u += step) xs.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(u)));
}
/// n points of a uniform grid on [lo, hi].
void add_grid(std::vector<float>& xs, double lo, double hi, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    xs.push_back(static_cast<float>(lo + (hi - lo) * (static_cast<double>(i) + 0.5) / static_cast<double>(n)));
}
/// Both signs of every float bit pattern with magnitude <= hi (step `step`), plus a grid on [lo, hi].
std::vector<float> sweep(double lo, double hi, std::uint32_t step, std::size_t grid) {
  std::vector<float> xs;
  add_bits(xs, 0.0f, static_cast<float>(hi), step);
  add_bits(xs, -0.0f, static_cast<float>(-lo), step);
  add_grid(xs, lo, hi, grid);
  return xs;
}

/// Edge values every function is checked at.
std::vector<float> edges() {
  return {0.0f,
          -0.0f,
          std::numeric_limits<float>::denorm_min(),
          -std::numeric_limits<float>::denorm_min(),
          1e-40f,
          -1e-40f,
          std::numeric_limits<float>::min(),
          -std::numeric_limits<float>::min(),
          1e-30f,
          -1e-30f,
          1e-7f,
          -1e-7f,
          0.5f,
          -0.5f,
          0.625f,
          -0.625f,
          1.0f,
          -1.0f,
          19.999998f,
          20.0f,
          20.000002f,
          -20.0f,
          88.7228f,
          88.72284f,
          88.7229f,
          89.0f,
          100.0f,
          -87.33654f,
          -87.3366f,
          -100.0f,
          -103.9720f,
          -103.9721f,
          -103.9722f,
          -104.0f,
          -150.0f,
          -1000.0f,
          1000.0f,
          std::numeric_limits<float>::max(),
          -std::numeric_limits<float>::max(),
          finf,
          -finf,
          fnan,
          -fnan,
          std::bit_cast<float>(0x7f800001u)};
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

bool same_bits(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

/// Evaluates the batch form over xs (full batches, then the tail through load_tail/store_tail), checks it
/// against the scalar form bit for bit and against the double reference within the function's promise.
template <class A, class BF, class SF>
void check_accuracy(const accuracy& acc, const std::vector<float>& xs, BF bf, SF sf) {
  const auto n = static_cast<index_t>(xs.size());
  std::vector<float> ys(xs.size());
  index_t i = 0;
  for (; i + vec::width<A> <= n; i += vec::width<A>) vec::store(ys.data() + i, bf(vec::load<A>(xs.data() + i)));
  vec::store_tail(ys.data() + i, bf(vec::load_tail<A>(xs.data() + i, n - i)), n - i);

  double max_rel = 0, max_abs_ratio = 0;
  float worst = 0;
  std::size_t fails = 0, scalar_fails = 0;
  std::string first;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const float x = xs[k], y = ys[k];
    if (!same_bits(sf(x), y) && scalar_fails++ == 0) first = "scalar != batch at x = " + fmt(x);
    const double r = acc.ref(static_cast<double>(x));
    bool ok;
    if (std::isnan(r)) {
      ok = std::isnan(y);
    } else if (std::fabs(r) > flt_max) {
      ok = y == static_cast<float>(r) || (std::fabs(r) <= flt_max * (1 + 0x1p-24) && std::fabs(y) == flt_max);
    } else if (std::fabs(r) >= flt_min && x >= acc.rel_from) {
      const double rel = std::fabs(y - r) / std::fabs(r);
      if (!(rel <= max_rel)) max_rel = rel, worst = x;
      ok = rel <= acc.rel;
    } else {
      const double allow = acc.abs_allow(x, r);
      const double err = std::fabs(y - r);
      ok = err <= allow;
      if (allow > 0) max_abs_ratio = std::max(max_abs_ratio, err / allow);
    }
    if (!ok && fails++ == 0) first = std::string(acc.name) + "(" + fmt(x) + ") = " + fmt(y) + ", reference " + fmt(r);
  }
  if (std::getenv("SEQMIX_PRINT_ACCURACY"))
    std::printf("%-9s width %d: %zu points, max rel err %.3g (at %.9g), subnormal/abs err <= %.2f of bound\n", acc.name,
                static_cast<int>(vec::width<A>), xs.size(), max_rel, static_cast<double>(worst), max_abs_ratio);
  INFO(first);
  REQUIRE(scalar_fails == 0);
  REQUIRE(fails == 0);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("vec::exp: relative error <= 2e-7, overflow, underflow, subnormals", "[simd][math]", archs) {
  using A = TestType;
  auto xs = sweep(-104.5, 89.5, bit_step<A>, grid_n<A>(1 << 21));
  for (float e : edges()) xs.push_back(e);
  check_accuracy<A>(
      acc_exp, xs, [](auto b) { return vec::exp(b); }, [](float x) { return vec::exp<A>(x); });
  // thresholds, as correctly rounded exp gives them
  REQUIRE(vec::exp<A>(88.72283f) < finf);
  REQUIRE(vec::exp<A>(88.72284f) == finf);
  // -103.97207f is -103.9720688 and -103.97208f is -103.9720764 (e^x = 1.0000007 2^-150: rounds up);
  // -103.9721f is -103.9720993 (below 2^-150: rounds to 0). The exact threshold is -150 ln2 = -103.9720771.
  REQUIRE(vec::exp<A>(-103.97207f) == std::numeric_limits<float>::denorm_min());
  REQUIRE(vec::exp<A>(-103.97208f) == std::numeric_limits<float>::denorm_min());
  REQUIRE(vec::exp<A>(-103.9721f) == 0.0f);
  REQUIRE(vec::exp<A>(-finf) == 0.0f);
  REQUIRE(vec::exp<A>(finf) == finf);
  REQUIRE(vec::exp<A>(0.0f) == 1.0f);
  REQUIRE(vec::exp<A>(-0.0f) == 1.0f);
  REQUIRE(std::isnan(vec::exp<A>(fnan)));
}

TEMPLATE_LIST_TEST_CASE("vec::exp_narrow: relative error <= 1.5e-7 on its domain, NaN propagates", "[simd][math]",
                        archs) {
  using A = TestType;
  const accuracy acc{"exp_narrow", 1.5e-7, -1e30, [](double, double) { return 0.0; },
                     [](double x) { return std::exp(x); }};
  std::vector<float> xs;
  add_bits(xs, 0.0f, vec::exp_narrow_hi, bit_step<A>);  // every binade down to subnormals, both signs
  add_bits(xs, -0.0f, vec::exp_narrow_lo, bit_step<A>);
  add_grid(xs, vec::exp_narrow_lo, vec::exp_narrow_hi, grid_n<A>(1 << 21));
  for (float e : {vec::exp_narrow_lo, vec::exp_narrow_hi, -0.6065307f, -0.5f, -1e-7f, 1e-7f, -0.0f}) xs.push_back(e);
  check_accuracy<A>(
      acc, xs, [](auto b) { return vec::exp_narrow(b); }, [](float x) { return vec::exp_narrow<A>(x); });
  REQUIRE(vec::exp_narrow<A>(0.0f) == 1.0f);
  REQUIRE(std::isnan(vec::exp_narrow<A>(fnan)));
}

TEMPLATE_LIST_TEST_CASE("vec::log: relative error <= 2e-7 over normal and subnormal inputs", "[simd][math]", archs) {
  using A = TestType;
  std::vector<float> xs;
  add_bits(xs, 0.0f, finf, bit_step<A>);
  add_bits(xs, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(), 37);
  add_grid(xs, 0.5, 2.0, grid_n<A>(1 << 20));
  add_bits(xs, 0.999f, 1.001f, 1);  // every float near 1, where log crosses 0
  add_bits(xs, -0.0f, -finf, 1 << 16);
  for (float e : edges()) xs.push_back(e);
  check_accuracy<A>(
      acc_log, xs, [](auto b) { return vec::log(b); }, [](float x) { return vec::log<A>(x); });
  REQUIRE(vec::log<A>(1.0f) == 0.0f);
  REQUIRE(vec::log<A>(0.0f) == -finf);
  REQUIRE(vec::log<A>(-0.0f) == -finf);
  REQUIRE(vec::log<A>(finf) == finf);
  REQUIRE(std::isnan(vec::log<A>(-1.0f)));
  REQUIRE(std::isnan(vec::log<A>(-finf)));
  REQUIRE(std::isnan(vec::log<A>(fnan)));
}

TEMPLATE_LIST_TEST_CASE("vec::sigmoid: no overflow, relative accuracy for large negative x", "[simd][math]", archs) {
  using A = TestType;
  auto xs = sweep(-120.0, 120.0, bit_step<A>, grid_n<A>(1 << 21));
  add_grid(xs, -10.0, 10.0, grid_n<A>(1 << 20));
  for (float e : edges()) xs.push_back(e);
  check_accuracy<A>(
      acc_sigmoid, xs, [](auto b) { return vec::sigmoid(b); }, [](float x) { return vec::sigmoid<A>(x); });
  REQUIRE(vec::sigmoid<A>(finf) == 1.0f);
  REQUIRE(vec::sigmoid<A>(-finf) == 0.0f);
  REQUIRE(vec::sigmoid<A>(-1000.0f) == 0.0f);
  REQUIRE(vec::sigmoid<A>(0.0f) == 0.5f);
  REQUIRE(std::isnan(vec::sigmoid<A>(fnan)));
}

TEMPLATE_LIST_TEST_CASE("vec::softplus: threshold 20, accurate for large negative x", "[simd][math]", archs) {
  using A = TestType;
  auto xs = sweep(-120.0, 120.0, bit_step<A>, grid_n<A>(1 << 21));
  add_grid(xs, -25.0, 25.0, grid_n<A>(1 << 20));
  for (float e : edges()) xs.push_back(e);
  check_accuracy<A>(
      acc_softplus, xs, [](auto b) { return vec::softplus(b); }, [](float x) { return vec::softplus<A>(x); });
  REQUIRE(vec::softplus<A>(20.000002f) == 20.000002f);  // x > 20: x itself (SPEC §2.13)
  REQUIRE(vec::softplus<A>(1e30f) == 1e30f);
  REQUIRE(vec::softplus<A>(finf) == finf);
  REQUIRE(vec::softplus<A>(-finf) == 0.0f);
  REQUIRE(std::isnan(vec::softplus<A>(fnan)));
}

TEMPLATE_LIST_TEST_CASE("vec::silu: x sigmoid(x), NaN at -inf as the definition", "[simd][math]", archs) {
  using A = TestType;
  auto xs = sweep(-160.0, 120.0, bit_step<A>, grid_n<A>(1 << 21));
  add_grid(xs, -20.0, 20.0, grid_n<A>(1 << 20));
  for (float e : edges()) xs.push_back(e);
  check_accuracy<A>(
      acc_silu, xs, [](auto b) { return vec::silu(b); }, [](float x) { return vec::silu<A>(x); });
  REQUIRE(std::isnan(vec::silu<A>(-finf)));  // -inf * sigmoid(-inf) = -inf * 0 (SPEC §2.15, torch)
  REQUIRE(vec::silu<A>(-1e30f) == 0.0f);
  REQUIRE(vec::silu<A>(finf) == finf);
  REQUIRE(std::signbit(vec::silu<A>(-0.0f)));
  REQUIRE(std::isnan(vec::silu<A>(fnan)));
}

TEMPLATE_LIST_TEST_CASE("vec::tanh: accurate near 0, saturating", "[simd][math]", archs) {
  using A = TestType;
  auto xs = sweep(-30.0, 30.0, bit_step<A>, grid_n<A>(1 << 21));
  add_grid(xs, -1.0, 1.0, grid_n<A>(1 << 20));
  for (float e : edges()) xs.push_back(e);
  check_accuracy<A>(
      acc_tanh, xs, [](auto b) { return vec::tanh(b); }, [](float x) { return vec::tanh<A>(x); });
  REQUIRE(vec::tanh<A>(1e-5f) == 1e-5f);  // tanh(x) = x in float below 2^-12
  REQUIRE(std::signbit(vec::tanh<A>(-0.0f)));
  REQUIRE(vec::tanh<A>(finf) == 1.0f);
  REQUIRE(vec::tanh<A>(-finf) == -1.0f);
  REQUIRE(vec::tanh<A>(1000.0f) == 1.0f);
  REQUIRE(std::isnan(vec::tanh<A>(fnan)));
}

TEST_CASE("vec math: results do not depend on the lane a value sits in", "[simd][math]") {
  using A = xsimd::default_arch;
  testing::rng r(7);
  std::vector<float> xs(static_cast<std::size_t>(vec::width<A>) * 64);
  for (auto& x : xs) x = static_cast<float>(r.uniform(-30.0, 30.0));
  for (std::size_t shift = 1; shift < static_cast<std::size_t>(vec::width<A>); ++shift) {
    for (std::size_t i = 0; i + shift + vec::width<A> <= xs.size(); i += vec::width<A>) {
      const auto a = vec::exp(vec::load<A>(xs.data() + i));
      const auto b = vec::tanh(vec::load<A>(xs.data() + i + shift));
      for (std::size_t l = 0; l < static_cast<std::size_t>(vec::width<A>); ++l) {
        REQUIRE(same_bits(a.get(l), vec::exp<A>(xs[i + l])));
        REQUIRE(same_bits(b.get(l), vec::tanh<A>(xs[i + shift + l])));
      }
    }
  }
}
