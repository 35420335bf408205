// SPDX-License-Identifier: Apache-2.0
// tests/simd/test_gemm.cpp: vec::gemm against a float64 loop: awkward sizes (tails in M, N and K, K > the
// 256 block), all transposes, general and negative strides, strided C, alpha/beta cases, beta == 0 with a NaN
// C, NaN confinement to its row or column, no writes outside C. Error bound: the standard one for a
// length-K dot product with FMA, (K + 3) 2^-24 (|alpha| sum|a||b| + |beta c|).
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <vector>

#include <seqmix/simd/gemm.hpp>

#include "simd_test.hpp"
#include "support/support.hpp"

using namespace seqmix;

namespace {

using archs = testing::simd_archs;
using testing::fnan;

/// A matrix in a bigger buffer: rows*cols logical elements with the given storage order and padding, so
/// that strides are never the contiguous ones unless asked; the rest of the buffer holds a sentinel.
struct stored {
  std::vector<float> buf;
  index_t rows, cols, rs, cs, offset;
  static constexpr float sentinel = -12345.0f;
  stored(index_t r, index_t c, bool col_major, index_t pad, bool reversed_rows = false) : rows(r), cols(c) {
    const index_t ld = (col_major ? r : c) + pad;
    const index_t outer = col_major ? c : r;
    buf.assign(static_cast<std::size_t>(ld * (outer + 1) + pad), sentinel);
    rs = col_major ? 1 : ld;
    cs = col_major ? ld : 1;
    offset = pad;
    if (reversed_rows) {  // row i stored where row r-1-i would be: negative row stride
      offset += (r - 1) * rs;
      rs = -rs;
    }
  }
  float& at(index_t i, index_t j) { return buf[static_cast<std::size_t>(offset + i * rs + j * cs)]; }
  float* p() { return buf.data() + offset; }
  void fill(testing::rng& g) {
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) at(i, j) = static_cast<float>(g.uniform(-1.0, 1.0));
  }
  std::size_t sentinels() const {
    std::size_t s = 0;
    for (float x : buf) s += x == sentinel;
    return s;
  }
};

struct layout_case {
  bool a_col, b_col, c_col, neg;
  index_t pad;
};

template <class Arch>
void check_gemm(index_t m, index_t n, index_t k, float alpha, float beta, const layout_case& lc, testing::rng& g) {
  stored a(m, k, lc.a_col, lc.pad, lc.neg), b(k, n, lc.b_col, lc.pad), c(m, n, lc.c_col, lc.pad, lc.neg);
  a.fill(g);
  b.fill(g);
  c.fill(g);
  if (beta == 0.0f)
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) c.at(i, j) = fnan;  // beta == 0: C is not read
  stored c0 = c;
  const std::size_t outside = c.sentinels();
  vec::gemm<Arch>(m, n, k, alpha, {a.p(), a.rs, a.cs}, {b.p(), b.rs, b.cs}, beta, {c.p(), c.rs, c.cs});
  std::size_t fails = 0;
  double worst = 0;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0, sa = 0;
      for (index_t q = 0; q < k; ++q) {
        const double prod = static_cast<double>(a.at(i, q)) * static_cast<double>(b.at(q, j));
        s += prod;
        sa += std::fabs(prod);
      }
      const double c_in = beta == 0.0f ? 0.0 : static_cast<double>(c0.at(i, j));
      const double ref = alpha * s + beta * c_in;
      const double bound = static_cast<double>(k + 3) * 0x1p-24 * (std::fabs(alpha) * sa + std::fabs(beta * c_in));
      const double err = std::fabs(static_cast<double>(c.at(i, j)) - ref);
      if (!(err <= bound)) ++fails;
      if (bound > 0) worst = std::max(worst, err / bound);
    }
  INFO("m " << m << " n " << n << " k " << k << " alpha " << alpha << " beta " << beta << " a_col " << lc.a_col
            << " b_col " << lc.b_col << " c_col " << lc.c_col << " neg " << lc.neg << " pad " << lc.pad
            << " worst err/bound " << worst);
  REQUIRE(fails == 0);
  REQUIRE(c.sentinels() == outside);  // nothing written outside C
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("vec::gemm: awkward sizes, contiguous row-major", "[simd][gemm]", archs) {
  testing::rng g(21);
  const layout_case rm{false, false, false, false, 0};
  for (index_t m : {1, 2, 5, 6, 7, 12, 13, 31})
    for (index_t n : {1, 3, 8, 15, 16, 17, 33})
      for (index_t k : {1, 2, 9, 64}) check_gemm<TestType>(m, n, k, 1.0f, 0.0f, rm, g);
  check_gemm<TestType>(64, 64, 64, 1.0f, 0.0f, rm, g);
  check_gemm<TestType>(19, 40, 300, 0.5f, 1.0f, rm, g);  // K > 256: two K blocks, beta applied once
  check_gemm<TestType>(7, 24, 513, -1.0f, 0.25f, rm, g);
}

TEMPLATE_LIST_TEST_CASE("vec::gemm: transposes, padding, negative strides, strided C", "[simd][gemm]", archs) {
  testing::rng g(22);
  for (bool a_col : {false, true})
    for (bool b_col : {false, true})
      for (bool c_col : {false, true})
        for (bool neg : {false, true})
          for (index_t pad : {0, 3}) {
            const layout_case lc{a_col, b_col, c_col, neg, pad};
            check_gemm<TestType>(13, 37, 29, 0.75f, -0.5f, lc, g);
            check_gemm<TestType>(6, 16, 8, 1.0f, 0.0f, lc, g);
            check_gemm<TestType>(1, 9, 17, 2.0f, 1.0f, lc, g);
          }
  // Q K^T shapes with K stored [N,K] (b_col) and a 128-wide head
  check_gemm<TestType>(64, 64, 128, 0.088f, 0.0f, {false, true, false, false, 0}, g);
  check_gemm<TestType>(50, 70, 64, 1.0f, 1.0f, {true, false, false, false, 1}, g);
}

TEMPLATE_LIST_TEST_CASE("vec::gemm: alpha, beta and K = 0", "[simd][gemm]", archs) {
  testing::rng g(23);
  const layout_case rm{false, false, false, false, 2};
  for (float alpha : {1.0f, -0.3f, 0.0f})
    for (float beta : {0.0f, 1.0f, 0.7f}) check_gemm<TestType>(11, 21, 35, alpha, beta, rm, g);
  // K = 0: C = beta C (beta = 0 clears, even a NaN C)
  std::vector<float> c = {1.0f, 2.0f, fnan, 4.0f};
  vec::gemm<TestType>(2, 2, 0, 1.0f, {nullptr, 0, 1}, {nullptr, 2, 1}, 0.5f, {c.data(), 2, 1});
  REQUIRE(c[0] == 0.5f);
  REQUIRE(c[3] == 2.0f);
  REQUIRE(std::isnan(c[2]));
  vec::gemm<TestType>(2, 2, 0, 1.0f, {nullptr, 0, 1}, {nullptr, 2, 1}, 0.0f, {c.data(), 2, 1});
  for (float x : c) REQUIRE(x == 0.0f);
}

TEMPLATE_LIST_TEST_CASE("vec::gemm: NaN stays in its row (A) or column (B)", "[simd][gemm]", archs) {
  testing::rng g(24);
  const index_t m = 14, n = 35, k = 40;
  for (bool b_col : {false, true}) {
    stored a(m, k, false, 0), b(k, n, b_col, 0), c(m, n, false, 0);
    a.fill(g);
    b.fill(g);
    a.at(9, 17) = fnan;  // row 9 of C
    b.at(3, 20) = fnan;  // column 20 of C
    vec::gemm_rm<TestType>(false, b_col, m, n, k, 1.0f, a.p(), k, b.p(), b_col ? k : n, 0.0f, c.p(), n);
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) REQUIRE(std::isnan(c.at(i, j)) == (i == 9 || j == 20));
  }
}

TEST_CASE("vec::gemm_rm: row-major convenience form matches gemm", "[simd][gemm]") {
  testing::rng g(25);
  const index_t m = 23, n = 41, k = 19;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
      for (auto& x : a) x = static_cast<float>(g.uniform(-1, 1));
      for (auto& x : b) x = static_cast<float>(g.uniform(-1, 1));
      std::vector<float> c1(static_cast<std::size_t>(m * n), 0.5f), c2 = c1;
      vec::gemm_rm(ta, tb, m, n, k, 0.9f, a.data(), ta ? m : k, b.data(), tb ? k : n, 0.1f, c1.data(), n);
      const vec::const_matrix_ref ar =
          ta ? vec::const_matrix_ref{a.data(), 1, m} : vec::const_matrix_ref{a.data(), k, 1};
      const vec::const_matrix_ref br =
          tb ? vec::const_matrix_ref{b.data(), 1, k} : vec::const_matrix_ref{b.data(), n, 1};
      vec::gemm(m, n, k, 0.9f, ar, br, 0.1f, {c2.data(), n, 1});
      REQUIRE(c1 == c2);
    }
}
