// SPDX-License-Identifier: Apache-2.0
// tests/simd/test_reduce.cpp: vec::hsum against a double sum, vec::hmax/hmin against a scalar scan with NaN
// in every lane position, vec::max_nan elementwise.
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include <seqmix/simd/load_store.hpp>
#include <seqmix/simd/reduce.hpp>

#include "simd_test.hpp"
#include "support/support.hpp"

using namespace seqmix;

namespace {
using archs = testing::simd_archs;
using testing::fnan;
using testing::finf;
}  // namespace

TEMPLATE_LIST_TEST_CASE("vec::hsum: sum of lanes within w ulp of the exact sum", "[simd][reduce]", archs) {
  using A = TestType;
  constexpr auto w = static_cast<std::size_t>(vec::width<A>);
  testing::rng r(11);
  std::vector<float> v(w);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = std::pow(10.0, r.uniform(-20, 20));
    double exact = 0, abs_sum = 0;
    for (auto& x : v) {
      x = static_cast<float>(r.normal() * scale);
      exact += x;
      abs_sum += std::fabs(x);
    }
    const float got = vec::hsum(vec::load<A>(v.data()));
    REQUIRE(std::fabs(got - exact) <= static_cast<double>(w) * 0x1p-24 * abs_sum);
  }
  v.assign(w, 1.0f);
  v[w - 1] = finf;
  REQUIRE(vec::hsum(vec::load<A>(v.data())) == finf);
  v[0] = fnan;
  REQUIRE(std::isnan(vec::hsum(vec::load<A>(v.data()))));
}

TEMPLATE_LIST_TEST_CASE("vec::hmax, hmin: exact, NaN in any lane gives NaN", "[simd][reduce]", archs) {
  using A = TestType;
  constexpr auto w = static_cast<std::size_t>(vec::width<A>);
  testing::rng r(12);
  std::vector<float> v(w);
  for (int trial = 0; trial < 2000; ++trial) {
    for (auto& x : v) x = static_cast<float>(r.normal(0.0, 100.0));
    if (trial % 7 == 0) v[static_cast<std::size_t>(trial) % w] = (trial % 2 ? finf : -finf);
    float mx = v[0], mn = v[0];
    for (float x : v) mx = std::max(mx, x), mn = std::min(mn, x);
    const auto b = vec::load<A>(v.data());
    REQUIRE(vec::hmax(b) == mx);
    REQUIRE(vec::hmin(b) == mn);
  }
  for (std::size_t lane = 0; lane < w; ++lane) {
    for (auto& x : v) x = static_cast<float>(r.uniform(-5, 5));
    v[lane] = fnan;
    INFO("NaN in lane " << lane);
    REQUIRE(std::isnan(vec::hmax(vec::load<A>(v.data()))));
    REQUIRE(std::isnan(vec::hmin(vec::load<A>(v.data()))));
    v[lane] = -fnan;
    REQUIRE(std::isnan(vec::hmax(vec::load<A>(v.data()))));
  }
  v.assign(w, -finf);
  REQUIRE(vec::hmax(vec::load<A>(v.data())) == -finf);
}

TEMPLATE_LIST_TEST_CASE("vec::max_nan: elementwise max, NaN from either side", "[simd][reduce]", archs) {
  using A = TestType;
  constexpr auto w = static_cast<std::size_t>(vec::width<A>);
  testing::rng r(13);
  std::vector<float> a(w), b(w);
  for (int trial = 0; trial < 500; ++trial) {
    for (std::size_t i = 0; i < w; ++i) {
      a[i] = static_cast<float>(r.normal());
      b[i] = static_cast<float>(r.normal());
    }
    a[static_cast<std::size_t>(trial) % w] = fnan;
    b[static_cast<std::size_t>(trial / 3) % w] = fnan;
    const auto m = vec::max_nan(vec::load<A>(a.data()), vec::load<A>(b.data()));
    for (std::size_t i = 0; i < w; ++i) {
      if (std::isnan(a[i]) || std::isnan(b[i]))
        REQUIRE(std::isnan(m.get(i)));
      else
        REQUIRE(m.get(i) == std::max(a[i], b[i]));
    }
  }
}
