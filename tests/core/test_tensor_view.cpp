// SPDX-License-Identifier: Apache-2.0
// tests/core/test_tensor_view.cpp: view indexing, strides, slices, permutations, Eigen interop.
#include <numeric>
#include <vector>

#include <seqmix/core/eigen_interop.hpp>
#include <seqmix/core/tensor_view.hpp>

#include "support/support.hpp"

using namespace seqmix;
using bhtd = layout<axis::B, axis::H, axis::T, axis::D>;

TEST_CASE("tensor_view: row-major indexing and extents", "[core][view]") {
  std::vector<float> buf(2 * 3 * 4 * 5);
  std::iota(buf.begin(), buf.end(), 0.0f);
  tensor_view<float, bthd> v(buf.data(), {2, 3, 4, 5});  // [B,T,H,D]
  REQUIRE(v.extent<axis::B>() == 2);
  REQUIRE(v.extent<axis::D>() == 5);
  REQUIRE(v.stride<axis::B>() == 60);
  REQUIRE(v.stride<axis::T>() == 20);
  REQUIRE(v.stride<axis::H>() == 5);
  REQUIRE(v.stride<axis::D>() == 1);
  REQUIRE(v.size() == 120);
  REQUIRE(v.is_contiguous());
  for (index_t b = 0; b < 2; ++b)
    for (index_t t = 0; t < 3; ++t)
      for (index_t h = 0; h < 4; ++h)
        for (index_t d = 0; d < 5; ++d) REQUIRE(v(b, t, h, d) == static_cast<float>(((b * 3 + t) * 4 + h) * 5 + d));
  tensor_view<const float, bthd> c = v;  // mutable -> const
  REQUIRE(c(1, 2, 3, 4) == 119.0f);
  STATIC_REQUIRE(!std::is_convertible_v<tensor_view<const float, bthd>, tensor_view<float, bthd>>);
}

TEST_CASE("tensor_view: torch [B,H,T,D] buffer read as [B,T,H,D] without a copy", "[core][view]") {
  const index_t B = 2, H = 3, T = 5, D = 4;
  std::vector<double> buf(static_cast<std::size_t>(B * H * T * D));
  std::iota(buf.begin(), buf.end(), 0.0);
  tensor_view<const double, bthd> q(buf.data(), {B, T, H, D}, {H * T * D, D, T * D, 1});
  REQUIRE_FALSE(q.is_contiguous());
  for (index_t b = 0; b < B; ++b)
    for (index_t t = 0; t < T; ++t)
      for (index_t h = 0; h < H; ++h)
        for (index_t d = 0; d < D; ++d) REQUIRE(q(b, t, h, d) == buf[static_cast<std::size_t>(((b * H + h) * T + t) * D + d)]);
  // as<>() permutes the axes back: the permuted view of this buffer is contiguous again.
  auto p = q.as<bhtd>();
  REQUIRE(p.is_contiguous());
  REQUIRE(p.extent<axis::T>() == T);
  REQUIRE(p(1, 2, 4, 3) == q(1, 4, 2, 3));
}

TEST_CASE("tensor_view: slice and at", "[core][view]") {
  std::vector<int> buf(4 * 6 * 3);
  std::iota(buf.begin(), buf.end(), 0);
  tensor_view<int, btd> x(buf.data(), {4, 6, 3});  // [B,T,D]
  auto s = x.slice<axis::T>(2, 5);                 // [B,3,D]
  REQUIRE(s.extent<axis::T>() == 3);
  REQUIRE(s.stride<axis::T>() == 3);
  REQUIRE(s(3, 0, 1) == x(3, 2, 1));
  REQUIRE(s(1, 2, 2) == x(1, 4, 2));
  REQUIRE_FALSE(s.is_contiguous());
  auto e = x.slice<axis::T>(6, 6);
  REQUIRE(e.size() == 0);
  auto r = x.at<axis::T>(4);  // [B,D]
  STATIC_REQUIRE(std::is_same_v<decltype(r)::layout_type, layout<axis::B, axis::D>>);
  REQUIRE(r(2, 1) == x(2, 4, 1));
  auto one = x.at<axis::B>(3).at<axis::T>(5);  // [D]
  REQUIRE(one(2) == x(3, 5, 2));
}

TEST_CASE("tensor_view: zero strides broadcast an input", "[core][view]") {
  const float g = 0.25f;
  tensor_view<const float, bth> bcast(&g, {3, 7, 2}, {0, 0, 0});
  REQUIRE(bcast(2, 6, 1) == 0.25f);
  REQUIRE(bcast.size() == 42);
}

TEST_CASE("tensor_view: layout names and axis lookup", "[core][layout]") {
  REQUIRE(layout_name(bthd{}) == "[B,T,H,D]");
  REQUIRE(layout_name(bdl{}) == "[B,D,L]");
  STATIC_REQUIRE(has_axis<axis::T, bthd>);
  STATIC_REQUIRE(!has_axis<axis::L, bthd>);
  STATIC_REQUIRE(axis_position<axis::H, bthd>::value == 2);
  STATIC_REQUIRE(std::is_same_v<remove_axis_t<axis::H, bthd>, layout<axis::B, axis::T, axis::D>>);
}

TEST_CASE("eigen interop: 2-D slices map without copies, both ways", "[core][eigen]") {
  std::vector<float> buf(3 * 4 * 5);
  std::iota(buf.begin(), buf.end(), 1.0f);
  tensor_view<float, btd> x(buf.data(), {3, 4, 5});
  auto m = as_eigen(x.at<axis::B>(1));  // rows T, cols D
  REQUIRE(m.rows() == 4);
  REQUIRE(m.cols() == 5);
  REQUIRE(m(2, 3) == x(1, 2, 3));
  m(2, 3) = -1.0f;  // same memory
  REQUIRE(x(1, 2, 3) == -1.0f);
  auto col = as_eigen(x.at<axis::T>(0));  // [B,D] with row stride 20
  REQUIRE(col(2, 4) == x(2, 0, 4));
  Eigen::MatrixXf e = Eigen::MatrixXf::Random(3, 2);  // column-major
  auto ev = as_view<layout<axis::I, axis::J>>(e);
  REQUIRE(ev.extent<axis::I>() == 3);
  REQUIRE(ev(2, 1) == e(2, 1));
  REQUIRE(ev.stride<axis::I>() == 1);
}
