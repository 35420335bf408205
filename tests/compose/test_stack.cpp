// SPDX-License-Identifier: Apache-2.0
// tests/compose/test_stack.cpp: a stack equals its layers called in order; prefill(T) then decode steps
// equals prefill(T + n); repeat<> flattens.
#include <vector>

#include <seqmix/compose/compose.hpp>

#include "support/support.hpp"

using namespace seqmix;
using seqmix::testing::rng;
using seqmix::testing::tensor;

namespace {
std::vector<float> decays(index_t d, rng& r) {
  std::vector<float> a(static_cast<std::size_t>(d));
  for (auto& x : a) x = static_cast<float>(r.uniform(0.05, 0.95));
  return a;
}
}  // namespace

TEST_CASE("stack: equals its layers in order", "[compose]") {
  rng r(7);
  const index_t B = 2, T = 9, D = 5;
  ema_layer l1(decays(D, r)), l2(decays(D, r)), l3(decays(D, r));
  stack<ema_layer, ema_layer, ema_layer> st(l1, l2, l3);
  STATIC_REQUIRE(layer<decltype(st)>);
  STATIC_REQUIRE(std::is_same_v<decltype(st)::state_type,
                                std::tuple<ema_layer::state_type, ema_layer::state_type, ema_layer::state_type>>);
  tensor<float, btd> x({B, T, D});
  x.uniform(r);
  auto y = x.convert<float>();
  workspace ws;
  auto s = st.make_state(B, T);
  st.forward(x.view(), s, ws);
  auto s1 = l1.make_state(B, T);
  auto s2 = l2.make_state(B, T);
  auto s3 = l3.make_state(B, T);
  l1.forward(y.view(), s1, ws);
  l2.forward(y.view(), s2, ws);
  l3.forward(y.view(), s3, ws);
  SEQMIX_REQUIRE_CLOSE(x.cview(), y.cview(), 0.0 + 1e-12);
}

TEST_CASE("stack: prefill(T) then n decode steps == prefill(T + n)", "[compose]") {
  rng r(11);
  const index_t B = 3, T = 7, n = 4, D = 6;
  using two = repeat<2, ema_layer, ema_layer>;
  STATIC_REQUIRE(two::size == 4);
  two st(ema_layer(decays(D, r)), ema_layer(decays(D, r)), ema_layer(decays(D, r)), ema_layer(decays(D, r)));
  tensor<float, btd> whole({B, T + n, D});
  whole.uniform(r);
  auto parts = whole.convert<float>();
  workspace ws;
  auto s_whole = st.make_state(B, T + n);
  st.forward(whole.view(), s_whole, ws);
  auto s = st.make_state(B, T + n);
  st.forward(parts.view().slice<axis::T>(0, T), s, ws);
  for (index_t t = T; t < T + n; ++t) st.forward(parts.view().slice<axis::T>(t, t + 1), s, ws);
  SEQMIX_REQUIRE_CLOSE(parts.cview(), whole.cview(), 1e-6);
}

TEST_CASE("stack: nested stacks are layers", "[compose]") {
  rng r(3);
  using inner = stack<ema_layer, ema_layer>;
  stack<inner, ema_layer> outer(inner(ema_layer(decays(4, r)), ema_layer(decays(4, r))), ema_layer(decays(4, r)));
  tensor<float, btd> x({1, 5, 4});
  x.uniform(r);
  workspace ws;
  auto s = outer.make_state(1, 5);
  outer.forward(x.view(), s, ws);
  REQUIRE(std::get<0>(std::get<0>(s)).h.size() == 4);
}

TEST_CASE("ema_layer: bad shapes throw shape_error with the layer's name", "[compose][errors]") {
  ema_layer l({0.5f, 0.5f});
  tensor<float, btd> x({1, 3, 5});
  x.poison();
  workspace ws;
  auto s = l.make_state(1, 3);
  REQUIRE_THROWS_MATCHES(l.forward(x.view(), s, ws), shape_error,
                         testing::message_is("seqmix::ema_layer: x.extent(D) = 5, expected 2 (from decay [D])"));
  REQUIRE_THROWS_AS(ema_layer({1.5f}), shape_error);
}
