// SPDX-License-Identifier: Apache-2.0
// tests/core/test_index_view.cpp: index_view reads int32 and int64 index tensors alike (SPEC §2.12).
#include <cstdint>
#include <vector>

#include <seqmix/core/index_view.hpp>
#include <support/support.hpp>

using namespace seqmix;

TEST_CASE("index_view: int32 and int64 storage read the same values", "[core][index_view]") {
  const std::vector<std::int32_t> a32 = {0, 3, 3, 70000, 2147483647};
  const std::vector<std::int64_t> a64 = {0, 3, 3, 70000, 2147483647};
  const index_view<layout<axis::I>> x = const_view<std::int32_t, layout<axis::I>>(a32.data(), {5});
  const index_view<layout<axis::I>> y(a64.data(), {5});
  REQUIRE(x);
  REQUIRE(y);
  REQUIRE_FALSE(x.is_int64());
  REQUIRE(y.is_int64());
  REQUIRE(x.extent<axis::I>() == 5);
  REQUIRE(y.size() == 5);
  for (index_t i = 0; i < 5; ++i) REQUIRE(x(i) == y(i));
  REQUIRE(x(4) == 2147483647);
}

TEST_CASE("index_view: strides, rank 2, mutable views and the empty view", "[core][index_view]") {
  std::vector<std::int32_t> t = {7, -1, 9, -1, 11, -1, 13, -1, 15, -1, 17, -1};  // [2,3] at column stride 2
  const index_view<layout<axis::B, axis::P>> v(t.data(), {2, 3}, {6, 2});
  REQUIRE(v.extent<axis::B>() == 2);
  REQUIRE(v.extent<axis::P>() == 3);
  REQUIRE(v.stride<axis::P>() == 2);
  REQUIRE(v(0, 0) == 7);
  REQUIRE(v(0, 2) == 11);
  REQUIRE(v(1, 1) == 15);
  std::vector<std::int64_t> m = {-1, 5};
  const index_view<layout<axis::B>> w = tensor_view<std::int64_t, layout<axis::B>>(m.data(), {2});
  REQUIRE(w(0) == -1);
  REQUIRE(w(1) == 5);
  const index_view<layout<axis::B>> none{};
  REQUIRE_FALSE(none);
  REQUIRE(none.empty_view());
}
