// SPDX-License-Identifier: Apache-2.0
// tests/simd/test_gemm_lower.cpp: vec::gemm_lower (causal product, fused tile store) against a float64 loop:
// tails in M and N, strided A, padded B and C, alpha/beta cases; A's upper triangle and B's later rows
// never reach an earlier row (NaN there); the store functor sees every tile once; vec::gemm's after-tile
// hook runs once per register tile and leaves the result bit-identical. Error bound as test_gemm.cpp.
#include <cmath>
#include <cstdint>
#include <vector>

#include <seqmix/simd/gemm.hpp>

#include "simd_test.hpp"
#include "support/support.hpp"

using namespace seqmix;

namespace {

using archs = testing::simd_archs;
using testing::fnan;

constexpr float sentinel = -12345.0f;

/// C = alpha tril(A) B + beta C for A [m,m] stored with strides (ars, acs), B [m,n] and C [m,n] row-major
/// with leading dimensions ldb, ldc (padding holds the sentinel). A's strict upper triangle is NaN.
template <class Arch>
void check_lower(index_t m, index_t n, float alpha, float beta, bool a_col, index_t pad, testing::rng& g) {
  const index_t lda = m + pad, ldb = n + pad, ldc = n + pad;
  std::vector<float> a(static_cast<std::size_t>(m * lda), sentinel), b(static_cast<std::size_t>(m * ldb), sentinel);
  std::vector<float> c(static_cast<std::size_t>(m * ldc), sentinel);
  const index_t ars = a_col ? 1 : lda, acs = a_col ? lda : 1;
  auto A = [&](index_t i, index_t k) -> float& { return a[static_cast<std::size_t>(i * ars + k * acs)]; };
  for (index_t i = 0; i < m; ++i)
    for (index_t k = 0; k < m; ++k) A(i, k) = k <= i ? static_cast<float>(g.uniform(-1.0, 1.0)) : fnan;
  for (index_t k = 0; k < m; ++k)
    for (index_t j = 0; j < n; ++j) b[static_cast<std::size_t>(k * ldb + j)] = static_cast<float>(g.uniform(-1.0, 1.0));
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j)
      c[static_cast<std::size_t>(i * ldc + j)] = beta == 0.0f ? fnan : static_cast<float>(g.uniform(-1.0, 1.0));
  const std::vector<float> c0 = c;
  vec::gemm_lower<Arch>(m, n, alpha, {a.data(), ars, acs}, {b.data(), ldb, 1}, beta, {c.data(), ldc, 1});
  std::size_t fails = 0;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0, sa = 0;
      for (index_t k = 0; k <= i; ++k) {
        const double prod = static_cast<double>(A(i, k)) * static_cast<double>(b[static_cast<std::size_t>(k * ldb + j)]);
        s += prod;
        sa += std::fabs(prod);
      }
      const double c_in = beta == 0.0f ? 0.0 : static_cast<double>(c0[static_cast<std::size_t>(i * ldc + j)]);
      const double ref = alpha * s + beta * c_in;
      const double bound = static_cast<double>(i + 4) * 0x1p-24 * (std::fabs(alpha) * sa + std::fabs(beta * c_in));
      if (!(std::fabs(static_cast<double>(c[static_cast<std::size_t>(i * ldc + j)]) - ref) <= bound)) ++fails;
    }
  std::size_t outside = 0;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = n; j < ldc; ++j) outside += c[static_cast<std::size_t>(i * ldc + j)] != sentinel;
  INFO("m " << m << " n " << n << " alpha " << alpha << " beta " << beta << " a_col " << a_col << " pad " << pad);
  REQUIRE(fails == 0);
  REQUIRE(outside == 0);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("vec::gemm_lower: tails, strides, alpha/beta; A's upper triangle never read",
                        "[simd][gemm]", archs) {
  testing::rng g(31);
  for (index_t m : {1, 2, 5, 6, 7, 12, 13, 47, 48})
    for (index_t n : {1, 3, 8, 15, 16, 17, 33, 64}) check_lower<TestType>(m, n, 1.0f, 1.0f, false, 0, g);
  for (bool a_col : {false, true})
    for (index_t pad : {0, 3})
      for (float alpha : {1.0f, -0.5f})
        for (float beta : {0.0f, 1.0f, 0.3f}) check_lower<TestType>(29, 40, alpha, beta, a_col, pad, g);
  check_lower<TestType>(100, 24, 1.0f, 0.0f, false, 1, g);
}

TEMPLATE_LIST_TEST_CASE("vec::gemm_lower: a NaN in row k of B reaches rows >= k of its column only",
                        "[simd][gemm]", archs) {
  testing::rng g(32);
  const index_t m = 26, n = 37;
  for (index_t kn : {0, 5, 6, 11, 25}) {
    std::vector<float> a(static_cast<std::size_t>(m * m), 0.0f), b(static_cast<std::size_t>(m * n)), c(b.size());
    for (index_t i = 0; i < m; ++i)
      for (index_t k = 0; k <= i; ++k) a[static_cast<std::size_t>(i * m + k)] = static_cast<float>(g.uniform(0.1, 1.0));
    for (auto& x : b) x = static_cast<float>(g.uniform(-1.0, 1.0));
    b[static_cast<std::size_t>(kn * n + 20)] = fnan;
    vec::gemm_lower<TestType>(m, n, 1.0f, {a.data(), m, 1}, {b.data(), n, 1}, 0.0f, {c.data(), n, 1});
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) REQUIRE(std::isnan(c[static_cast<std::size_t>(i * n + j)]) == (j == 20 && i >= kn));
  }
}

TEMPLATE_LIST_TEST_CASE("vec::gemm_lower: the store functor gets every tile once, as the default store",
                        "[simd][gemm]", archs) {
  testing::rng g(33);
  const index_t m = 20, n = 41;
  std::vector<float> a(static_cast<std::size_t>(m * m)), b(static_cast<std::size_t>(m * n)), c(b.size(), 0.25f);
  for (auto& x : a) x = static_cast<float>(g.uniform(-1.0, 1.0));
  for (auto& x : b) x = static_cast<float>(g.uniform(-1.0, 1.0));
  std::vector<float> got(b.size(), fnan), want = c;
  std::vector<int> seen(b.size(), 0);
  constexpr index_t w = vec::width<TestType>;
  vec::gemm_lower<TestType>(m, n, 0.5f, {a.data(), m, 1}, {b.data(), n, 1}, 2.0f, {c.data(), n, 1},
                            [&](index_t i0, index_t j0, index_t nr, auto& v0, auto& v1) {
                              constexpr index_t mr = static_cast<index_t>(std::extent_v<std::remove_reference_t<decltype(v0)>>);
                              for (index_t i = 0; i < mr; ++i) {
                                alignas(64) float t[2 * w];
                                v0[i].store_aligned(t);
                                v1[i].store_aligned(t + w);
                                for (index_t j = 0; j < nr; ++j) {
                                  got[static_cast<std::size_t>((i0 + i) * n + j0 + j)] = t[j];
                                  ++seen[static_cast<std::size_t>((i0 + i) * n + j0 + j)];
                                }
                              }
                            });
  vec::gemm_lower<TestType>(m, n, 0.5f, {a.data(), m, 1}, {b.data(), n, 1}, 2.0f, {want.data(), n, 1});
  for (int s : seen) REQUIRE(s == 1);
  REQUIRE(got == want);
}

TEMPLATE_LIST_TEST_CASE("vec::gemm: the after-tile hook runs once per register tile, results unchanged",
                        "[simd][gemm]", archs) {
  testing::rng g(34);
  for (index_t m : {1, 6, 13, 48, 128})
    for (index_t n : {5, 16, 64})
      for (index_t k : {7, 48, 300}) {
        std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
        for (auto& x : a) x = static_cast<float>(g.uniform(-1.0, 1.0));
        for (auto& x : b) x = static_cast<float>(g.uniform(-1.0, 1.0));
        std::vector<float> c1(static_cast<std::size_t>(m * n), 0.5f), c2 = c1;
        index_t calls = 0;
        vec::gemm<TestType>(m, n, k, 1.0f, {a.data(), k, 1}, {b.data(), n, 1}, 0.9f, {c1.data(), n, 1},
                            [&] { ++calls; });
        vec::gemm<TestType>(m, n, k, 1.0f, {a.data(), k, 1}, {b.data(), n, 1}, 0.9f, {c2.data(), n, 1});
        const index_t nr = 2 * vec::width<TestType>, kblocks = (k + 255) / 256;
        REQUIRE(calls == kblocks * ((n + nr - 1) / nr) * ((m + 5) / 6));
        REQUIRE(c1 == c2);
      }
}
