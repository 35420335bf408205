// SPDX-License-Identifier: Apache-2.0
// tests/ops/linear_attention/test_index_types.cpp: cu_seqlens and state_indices given as int32 or int64
// (SPEC §2.12) give the same result; decode refuses two rows on one state slot, and N != B without slots.
#include <cstdint>
#include <string>
#include <vector>

#include <support/linear_attention_gated.hpp>
#include <support/support.hpp>

using namespace seqmix;
using namespace seqmix::testing;

TEST_CASE("linear ops: int32 cu_seqlens == int64 cu_seqlens == separate reference calls", "[linear_attention][varlen]") {
  rng r(41);
  const std::vector<std::int32_t> cu32 = {0, 1, 40, 41, 130};
  const std::vector<std::int64_t> cu64(cu32.begin(), cu32.end());
  const index_t N = 4, T = 130;
  const gated_shape s{1, T, 2, 12, 10};
  for (gated_op op : {gated_op::gla, gated_op::rwkv6, gated_op::simple_gla}) {
    gated_data<float> d(s, r);
    d.for_op(op, r);
    tensor<float, nhkv> h0({N, s.H, s.K, s.V});
    h0.uniform(r, -1, 1);
    tensor<float, bthv> o32({1, T, s.H, s.V}), o64({1, T, s.H, s.V}), oref({1, T, s.H, s.V});
    tensor<float, nhkv> ht32({N, s.H, s.K, s.V}), ht64({N, s.H, s.K, s.V}), htref({N, s.H, s.K, s.V});
    for (auto* t : {&o32, &o64, &oref}) t->poison();
    for (auto* t : {&ht32, &ht64, &htref}) t->poison();
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
      INFO(op_name(op) << (m == linear_mode::chunk ? " chunk" : " recurrent"));
      run_gated<simd<>>(op, d.inputs(), o32.view(), h0.cview(), ht32.view(), cu_seqlens_view(cu32.data(), {N + 1}), m);
      run_gated<simd<>>(op, d.inputs(), o64.view(), h0.cview(), ht64.view(), cu_seqlens_view(cu64.data(), {N + 1}), m);
      for (index_t n = 0; n < N; ++n) {
        const index_t t0 = cu32[static_cast<std::size_t>(n)], t1 = cu32[static_cast<std::size_t>(n + 1)];
        run_gated<reference>(op, d.inputs().slice_t(t0, t1), oref.view().slice<axis::T>(t0, t1),
                             h0.cview().slice<axis::N>(n, n + 1), htref.view().slice<axis::N>(n, n + 1), {}, m);
      }
      REQUIRE(o32.storage() == o64.storage());
      REQUIRE(ht32.storage() == ht64.storage());
      SEQMIX_REQUIRE_CLOSE(o32.cview(), oref.cview(), tolerance<float>(T));
      SEQMIX_REQUIRE_CLOSE(ht32.cview(), htref.cview(), tolerance<float>(T));
    }
  }
}

TEST_CASE("linear ops: int32 state_indices decode == reference step; a repeated slot throws",
          "[linear_attention][decode][errors]") {
  rng r(42);
  const gated_shape s{3, 1, 2, 8, 8};
  gated_data<float> d(s, r);
  d.for_op(gated_op::gla, r);
  tensor<float, nhkv> cache({4, s.H, s.K, s.V});
  cache.uniform(r, -1, 1);
  const std::vector<float> before = cache.storage();
  const std::vector<std::int32_t> idx = {3, -1, 0};
  tensor<float, bthv> o({s.B, 1, s.H, s.V});
  o.poison();
  run_gated_decode<simd<>>(gated_op::gla, d.inputs(), o.view(), cache.view(), state_indices_view(idx.data(), {3}));
  for (index_t b : {0, 2}) {
    const index_t slot = idx[static_cast<std::size_t>(b)];
    tensor<float, nhkv> ref({1, s.H, s.K, s.V});
    tensor<float, bthv> oref({1, 1, s.H, s.V});
    run_gated<reference>(gated_op::gla, d.inputs().slice_b(b, b + 1), oref.view(),
                         const_view<float, nhkv>(before.data(), {4, s.H, s.K, s.V}).slice<axis::N>(slot, slot + 1),
                         ref.view(), {}, linear_mode::recurrent);
    SEQMIX_REQUIRE_CLOSE(cache.cview().slice<axis::N>(slot, slot + 1), ref.cview(), tolerance<float>(1));
    SEQMIX_REQUIRE_CLOSE(o.cview().slice<axis::B>(b, b + 1), oref.cview(), tolerance<float>(1));
  }
  const std::vector<std::int64_t> dup = {1, -1, 1};
  REQUIRE_THROWS_MATCHES(
      run_gated_decode<simd<>>(gated_op::gla, d.inputs(), o.view(), cache.view(), state_indices_view(dup.data(), {3})),
      shape_error,
      message_contains("seqmix::gla_decode: state_indices[0] = state_indices[2] = 1, expected distinct slots (or -1)"));
}

TEST_CASE("linear family decode: without state_indices every entry point wants N = B, in one message format",
          "[linear_attention][decode][errors]") {
  // B = 2 rows, state with N = 3 slots and no state_indices: a shape_error naming op, tensor, axis, found and
  // expected (linear_detail::check_decode_slots); with state_indices the same state is fine.
  std::vector<float> in(64, 0.5f), out(64, 0.0f), st(3 * 16, 0.0f);
  const float* p = in.data();
  const auto qk = make_view<bthk>(p, {2, 1, 1, 4});  // [B,T,H,K]
  const auto v = make_view<bthv>(p, {2, 1, 1, 4});   // [B,T,H,V]
  const auto g = make_view<bth>(p, {2, 1, 1});       // [B,T,H]
  const auto u = make_view<hk>(p, {1, 4});           // [H,K]
  const auto x = make_view<btd>(p, {2, 1, 4});       // [B,T,D]
  const auto o = make_view<bthv>(out.data(), {2, 1, 1, 4});
  const auto ox = make_view<btd>(out.data(), {2, 1, 4});
  const auto state = make_view<nhkv>(st.data(), {3, 1, 4, 4});  // [N,H,K,V], N = 3 > B
  const auto hstate = make_view<nd>(st.data(), {3, 4});         // [N,D]
  const auto want = [](const std::string& op, const std::string& rows) {
    return message_is("seqmix::" + op + ": state.extent(N) = 3, expected 2 (from " + rows + " without state_indices)");
  };
  const std::string q = "q [B,T,H,K]";
  REQUIRE_THROWS_MATCHES((linear_attn_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .o = o}, state)), shape_error,
                         want("linear_attn_decode", q));
  REQUIRE_THROWS_MATCHES((simple_gla_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .g = g, .o = o}, state)),
                         shape_error, want("simple_gla_decode", q));
  REQUIRE_THROWS_MATCHES((retention_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .o = o}, state)), shape_error,
                         want("retention_decode", q));
  REQUIRE_THROWS_MATCHES((gla_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .gk = qk, .o = o}, state)),
                         shape_error, want("gla_decode", q));
  REQUIRE_THROWS_MATCHES((rwkv6_decode<simd<>, float>({.r = qk, .k = qk, .v = v, .w = qk, .u = u, .o = o}, state)),
                         shape_error, want("rwkv6_decode", "r [B,T,H,K]"));
  REQUIRE_THROWS_MATCHES((hgrn_decode<simd<>, float>({.x = x, .g = x, .o = ox}, hstate)), shape_error,
                         want("hgrn_decode", "x [B,T,D]"));
  REQUIRE_THROWS_MATCHES(
      (delta_rule_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .beta = g, .o = o, .state = state})), shape_error,
      want("delta_rule_decode", q));
  REQUIRE_THROWS_MATCHES((gated_delta_rule_decode<simd<>, float>(
                             {.q = qk, .k = qk, .v = v, .g = g, .beta = g, .o = o, .state = state})),
                         shape_error, want("gated_delta_rule_decode", q));
  REQUIRE_THROWS_MATCHES((rwkv7_decode<simd<>, float>(
                             {.r = qk, .w = qk, .k = qk, .v = v, .a = qk, .b = qk, .o = o, .state = state})),
                         shape_error, want("rwkv7_decode", "r [B,T,H,K]"));
  // with slots the extra slot is legal
  const std::vector<std::int64_t> idx = {2, 0};
  CHECK_NOTHROW((gla_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .gk = qk, .o = o}, state,
                                           state_indices_view(idx.data(), {2}))));
  CHECK_NOTHROW((delta_rule_decode<simd<>, float>({.q = qk, .k = qk, .v = v, .beta = g, .o = o, .state = state,
                                                   .state_indices = state_indices_view(idx.data(), {2})})));
}
