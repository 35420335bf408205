// SPDX-License-Identifier: Apache-2.0
// tests/core/test_errors.cpp: the exact text of the check helpers' messages.
#include <vector>

#include <seqmix/core/check.hpp>

#include "support/support.hpp"

using namespace seqmix;
using seqmix::testing::message_is;

TEST_CASE("check: messages name op, tensor, axis, found and expected", "[core][errors]") {
  std::vector<float> buf(2 * 8 * 3 * 4);
  tensor_view<const float, bthk> q(buf.data(), {2, 8, 3, 4});
  tensor_view<const float, bth> g(buf.data(), {2, 7, 3});
  const check c("gla");
  REQUIRE_THROWS_MATCHES(c.same_extent<axis::T>("g", g, "q", q), shape_error,
                         message_is("seqmix::gla: g.extent(T) = 7, expected 8 (from q [B,T,H,K])"));
  REQUIRE_NOTHROW(c.same_extent<axis::H>("g", g, "q", q));
  REQUIRE_THROWS_MATCHES(c.extent<axis::K>("q", q, 64, "option chunk_size"), shape_error,
                         message_is("seqmix::gla: q.extent(K) = 4, expected 64 (from option chunk_size)"));
  tensor_view<const float, bth> v(buf.data(), {2, 8, 5});
  REQUIRE_THROWS_MATCHES((c.multiple_of<axis::H>("v", v, "q", q)), shape_error,
                         message_is("seqmix::gla: v.extent(H) = 5, expected a multiple of q.extent(H) = 3"));
  REQUIRE_THROWS_MATCHES(c.extent_at_least<axis::T>("g", g, 8), shape_error,
                         message_is("seqmix::gla: g.extent(T) = 7, expected >= 8"));
  REQUIRE_THROWS_MATCHES(c.finite("scale", INFINITY), shape_error,
                         message_is("seqmix::gla: option scale = inf, expected a finite value"));
  REQUIRE_THROWS_MATCHES(c.in_range("decay", 1.5, 0.0, 1.0), shape_error,
                         message_is("seqmix::gla: option decay = 1.500000, expected a value in [0, 1]"));
  tensor_view<const float, bth> missing(nullptr, {2, 8, 3});
  REQUIRE_THROWS_MATCHES(c.present("g", missing), shape_error,
                         message_is("seqmix::gla: g is required but was not given"));
  // shape_error is an std::invalid_argument
  REQUIRE_THROWS_AS(c.fail("x"), std::invalid_argument);
}
