// SPDX-License-Identifier: Apache-2.0
// tests/ops/linear_attention/test_rwkv7.cpp: rwkv7 chunk (generalized WY) and recurrent forms against the
// float64 reference; chunk sizes, state carry, varlen, decode, strides, dtypes, strong decays.
#include <seqmix/ops/linear_attention/detail/gated_delta_rule.hpp>
#include <seqmix/ops/linear_attention/detail/rwkv7.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "support/support.hpp"

namespace {

using namespace seqmix;
using seqmix::testing::rng;
using seqmix::testing::tensor;

struct rw_case {
  index_t B = 1, T = 17, H = 2, K = 16, V = 24;
  bool h0 = true;
  double wmin = -0.6065;  // per-step log decay in [wmin, wmin * 1e-2)
};

template <class T>
struct rw_inputs {
  rw_case cs;
  tensor<T, bthk> r, w, k, a, b;
  tensor<T, bthv> v;
  tensor<float, nhkv> h0;

  rw_inputs() = default;
  rw_inputs(const rw_case& c, std::uint64_t seed) : cs(c) {
    rng g(seed);
    const extents<bthk> ek{c.B, c.T, c.H, c.K};
    r = tensor<T, bthk>(ek);
    w = tensor<T, bthk>(ek);
    k = tensor<T, bthk>(ek);
    a = tensor<T, bthk>(ek);
    b = tensor<T, bthk>(ek);
    v = tensor<T, bthv>({c.B, c.T, c.H, c.V});
    r.uniform(g);
    w.uniform(g, c.wmin, c.wmin * 1e-2);
    k.uniform(g);
    v.uniform(g);
    // layer context (SPEC §3.1.9): a = -kk, b = kk * alpha, kk unit-norm
    std::vector<double> kk(static_cast<std::size_t>(c.K));
    for (index_t bi = 0; bi < c.B; ++bi)
      for (index_t t = 0; t < c.T; ++t)
        for (index_t h = 0; h < c.H; ++h) {
          double n = 0;
          for (auto& x : kk) {
            x = g.normal();
            n += x * x;
          }
          n = std::sqrt(n);
          for (index_t x = 0; x < c.K; ++x) {
            const double u = kk[static_cast<std::size_t>(x)] / n;
            a.view()(bi, t, h, x) = tensor<T, bthk>::from_double(-u);
            b.view()(bi, t, h, x) = tensor<T, bthk>::from_double(u * g.uniform(0.1, 1.0));
          }
        }
    if (c.h0) {
      h0 = tensor<float, nhkv>({c.B, c.H, c.K, c.V});
      h0.uniform(g);
    }
  }
  template <class U>
  rw_inputs<U> convert() const {
    rw_inputs<U> x;
    x.cs = cs;
    x.r = r.template convert<U>();
    x.w = w.template convert<U>();
    x.k = k.template convert<U>();
    x.a = a.template convert<U>();
    x.b = b.template convert<U>();
    x.v = v.template convert<U>();
    x.h0 = h0.template convert<float>();
    return x;
  }
  rwkv7_args<T> args(tensor_view<T, bthv> o, state_view ht) const {
    rwkv7_args<T> x{.r = r.cview(), .w = w.cview(), .k = k.cview(), .v = v.cview(), .a = a.cview(), .b = b.cview(), .o = o};
    if (cs.h0) x.initial_state = h0.cview();
    x.final_state = ht;
    return x;
  }
  /// Decode args of token t on `state` in place, writing o[:, t].
  rwkv7_decode_args<T> decode_args(tensor_view<T, bthv> o, state_view state, index_t t) const {
    return {.r = r.cview().template slice<axis::T>(t, t + 1),  // [B,1,H,K]
            .w = w.cview().template slice<axis::T>(t, t + 1),
            .k = k.cview().template slice<axis::T>(t, t + 1),
            .v = v.cview().template slice<axis::T>(t, t + 1),  // [B,1,H,V]
            .a = a.cview().template slice<axis::T>(t, t + 1),
            .b = b.cview().template slice<axis::T>(t, t + 1),
            .o = o.template slice<axis::T>(t, t + 1),
            .state = state};
  }
  static rwkv7_args<T> slice(rwkv7_args<T> x, index_t t0, index_t t1) {
    x.r = x.r.template slice<axis::T>(t0, t1);  // [B,t1-t0,H,K]
    x.w = x.w.template slice<axis::T>(t0, t1);
    x.k = x.k.template slice<axis::T>(t0, t1);
    x.a = x.a.template slice<axis::T>(t0, t1);
    x.b = x.b.template slice<axis::T>(t0, t1);
    x.v = x.v.template slice<axis::T>(t0, t1);  // [B,t1-t0,H,V]
    return x;
  }
};

struct rw_result {
  tensor<double, bthv> o;
  tensor<float, nhkv> ht;
};

template <class T>
rw_result rw_reference(const rw_inputs<T>& in, float scale = 0.9f) {
  const auto d = in.template convert<double>();
  const auto& c = in.cs;
  rw_result r{tensor<double, bthv>({c.B, c.T, c.H, c.V}), tensor<float, nhkv>({c.B, c.H, c.K, c.V})};
  r.o.poison();
  r.ht.poison();
  rwkv7(d.args(r.o.view(), r.ht.view()), {.scale = scale}, reference{});
  return r;
}

template <class T>
void rw_check(const rw_inputs<T>& in, const rw_result& ref, linear_mode m, index_t chunk, float scale = 0.9f) {
  const auto& c = in.cs;
  tensor<T, bthv> o({c.B, c.T, c.H, c.V});
  tensor<float, nhkv> ht({c.B, c.H, c.K, c.V});
  o.poison();
  ht.poison();
  rwkv7(in.args(o.view(), ht.view()), {.scale = scale, .mode = m, .chunk_size = chunk});
  const double tol = testing::tolerance<T>(c.T);
  SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), tol);
  SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht.cview(), tol);
}

}  // namespace

TEST_CASE("rwkv7: chunk and recurrent agree with the float64 reference", "[rwkv7]") {
  std::uint64_t seed = 10;
  for (index_t T : {1, 2, 15, 16, 17, 63, 64, 65, 300}) {
    rw_case c{.B = 2, .T = T, .H = 2, .K = 16, .V = 24, .h0 = (T % 2) == 0};
    rw_inputs<float> in(c, ++seed);
    const auto ref = rw_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent, linear_mode::auto_}) {
      INFO("T " << T << " mode " << int(m));
      rw_check(in, ref, m, 0);
    }
  }
}

TEST_CASE("rwkv7: scale 1 (the recurrence's set-up skips the multiply) and 0.5", "[rwkv7]") {
  std::uint64_t seed = 90;
  for (float scale : {1.0f, 0.5f}) {
    for (auto kv : {std::pair<index_t, index_t>{16, 24}, std::pair<index_t, index_t>{64, 64}}) {
      rw_case c{.B = 2, .T = 100, .H = 3, .K = kv.first, .V = kv.second, .h0 = true};
      rw_inputs<float> in(c, ++seed);
      const auto ref = rw_reference(in, scale);
      for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
        INFO("scale " << scale << " K " << kv.first << " mode " << int(m));
        rw_check(in, ref, m, 0, scale);
      }
    }
  }
}

TEST_CASE("rwkv7: every chunk size; K != V; head 64", "[rwkv7]") {
  std::uint64_t seed = 20;
  for (index_t chunk : {16, 32, 64}) {
    for (auto kv : {std::pair<index_t, index_t>{24, 40}, std::pair<index_t, index_t>{64, 64}}) {
      rw_case c{.B = 1, .T = 150, .H = 2, .K = kv.first, .V = kv.second};
      rw_inputs<float> in(c, ++seed);
      const auto ref = rw_reference(in);
      INFO("chunk " << chunk << " K " << kv.first);
      rw_check(in, ref, linear_mode::chunk, chunk);
    }
  }
}

TEST_CASE("rwkv7: strong decays and zero decays stay finite and exact", "[rwkv7][stability]") {
  // -30: every step below the lazy-decay floor (explicit multiply); -3 and -0.6: the row scales cross the
  // floor every few or few dozen tokens (materialization between fused passes); K = 64: whole batches
  std::uint64_t seed = 30;
  for (double wmin : {-30.0, -3.0, -0.6065}) {
    for (index_t K : {16, 64}) {
      rw_case c{.B = 1, .T = 100, .H = 2, .K = K, .V = 16, .wmin = wmin};
      rw_inputs<float> in(c, ++seed);
      const auto ref = rw_reference(in);
      INFO("wmin " << wmin << " K " << K);
      for (index_t chunk : {16, 64}) rw_check(in, ref, linear_mode::chunk, chunk);
      rw_check(in, ref, linear_mode::recurrent, 0);
    }
  }
  {
    // decays inside vec::exp_narrow's domain whose row scale still crosses the floor within a 32-token visit
    // (head 1: e^{-0.07 x 32} = 0.11 on every row, no refold; then e^{-0.74 x 32} = 5e-11 on row 5): the fast
    // set-up declines the visit
    rw_case c{.B = 1, .T = 130, .H = 2, .K = 64, .V = 16};
    rw_inputs<float> in(c, 38);
    for (index_t t = 0; t < 64; ++t)
      for (index_t k = 0; k < c.K; ++k) in.w.view()(0, t, 1, k) = t >= 32 && k == 5 ? -0.74f : -0.07f;
    const auto ref = rw_reference(in);
    rw_check(in, ref, linear_mode::recurrent, 0);
  }
  rw_case c{.B = 1, .T = 70, .H = 1, .K = 16, .V = 16};
  rw_inputs<float> in(c, 39);
  in.w.for_each([](float& x) { x = 0.0f; });
  // one channel with an exact zero decay (e^w underflows to 0) among gentle ones
  for (index_t t = 0; t < c.T; t += 7) in.w.view()(0, t, 0, 3) = -200.0f;
  const auto ref = rw_reference(in);
  rw_check(in, ref, linear_mode::chunk, 32);
  rw_check(in, ref, linear_mode::recurrent, 0);
}

TEST_CASE("rwkv7: bf16 and f16 inputs", "[rwkv7][dtype]") {
  rw_case c{.B = 1, .T = 100, .H = 2, .K = 32, .V = 32};
  rw_inputs<float> base(c, 40);
  {
    const auto in = base.convert<bf16>();
    const auto ref = rw_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) rw_check(in, ref, m, 0);
  }
  {
    const auto in = base.convert<f16>();
    const auto ref = rw_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) rw_check(in, ref, m, 0);
  }
}

TEST_CASE("rwkv7: strided [B,H,T,D] inputs, two halves with state, varlen, decode", "[rwkv7][state]") {
  rw_case c{.B = 2, .T = 90, .H = 2, .K = 16, .V = 24};
  rw_inputs<float> in(c, 50);
  const auto ref = rw_reference(in);
  {  // strided: r and v stored head-first
    using bhtk = layout<axis::B, axis::H, axis::T, axis::K>;
    using bhtv = layout<axis::B, axis::H, axis::T, axis::V>;
    auto rs = tensor<float, bthk>::permuted<bhtk>({c.B, c.T, c.H, c.K});
    auto vs = tensor<float, bthv>::permuted<bhtv>({c.B, c.T, c.H, c.V});
    for (index_t b = 0; b < c.B; ++b)
      for (index_t t = 0; t < c.T; ++t)
        for (index_t h = 0; h < c.H; ++h) {
          for (index_t x = 0; x < c.K; ++x) rs.view()(b, t, h, x) = in.r.cview()(b, t, h, x);
          for (index_t x = 0; x < c.V; ++x) vs.view()(b, t, h, x) = in.v.cview()(b, t, h, x);
        }
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
      auto o = tensor<float, bthv>::padded({c.B, c.T, c.H, c.V}, 1);
      auto ht = tensor<float, nhkv>::padded({c.B, c.H, c.K, c.V}, 1);
      auto a = in.args(o.view(), ht.view());
      a.r = rs.cview();
      a.v = vs.cview();
      rwkv7(a, {.scale = 0.9f, .mode = m});
      SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), testing::tolerance<float>(c.T));
      SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht.cview(), testing::tolerance<float>(c.T));
    }
  }
  {  // two halves
    tensor<float, bthv> o({c.B, c.T, c.H, c.V});
    tensor<float, nhkv> mid({c.B, c.H, c.K, c.V}), ht({c.B, c.H, c.K, c.V});
    o.poison();
    const index_t split = 41;
    auto a1 = rw_inputs<float>::slice(in.args(o.view().slice<axis::T>(0, split), mid.view()), 0, split);  // [B,41,H,V]
    rwkv7(a1, {.scale = 0.9f, .mode = linear_mode::chunk});
    auto a2 = rw_inputs<float>::slice(in.args(o.view().slice<axis::T>(split, c.T), ht.view()), split, c.T);
    a2.initial_state = mid.cview();
    rwkv7(a2, {.scale = 0.9f, .mode = linear_mode::chunk, .chunk_size = 32});
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht.cview(), testing::tolerance<float>(c.T));
  }
  {  // decode after a chunked prefill, through state slots
    const index_t P = 80;
    tensor<float, bthv> o({c.B, c.T, c.H, c.V});
    tensor<float, nhkv> slots({c.B + 1, c.H, c.K, c.V});
    o.poison();
    slots.poison();
    std::vector<std::int64_t> idx{2, 0};
    auto a = rw_inputs<float>::slice(in.args(o.view().slice<axis::T>(0, P), {}), 0, P);  // [B,P,H,V]
    tensor<float, nhkv> pre({c.B, c.H, c.K, c.V});
    a.final_state = pre.view();
    rwkv7(a, {.scale = 0.9f, .mode = linear_mode::chunk});
    for (index_t b = 0; b < c.B; ++b)
      for (index_t h = 0; h < c.H; ++h)
        for (index_t x = 0; x < c.K; ++x)
          for (index_t y = 0; y < c.V; ++y) slots.view()(idx[static_cast<std::size_t>(b)], h, x, y) = pre.view()(b, h, x, y);
    const state_indices_view iv(idx.data(), {c.B});
    for (index_t t = P; t < c.T; ++t) {
      rwkv7_decode_args<float> d{.r = in.r.cview().slice<axis::T>(t, t + 1),  // [B,1,H,K]
                                 .w = in.w.cview().slice<axis::T>(t, t + 1),
                                 .k = in.k.cview().slice<axis::T>(t, t + 1),
                                 .v = in.v.cview().slice<axis::T>(t, t + 1),
                                 .a = in.a.cview().slice<axis::T>(t, t + 1),
                                 .b = in.b.cview().slice<axis::T>(t, t + 1),
                                 .o = o.view().slice<axis::T>(t, t + 1),
                                 .state = slots.view(),
                                 .state_indices = iv};
      rwkv7_decode(d, {.scale = 0.9f});
    }
    tensor<float, nhkv> ht({c.B, c.H, c.K, c.V});
    for (index_t b = 0; b < c.B; ++b)
      for (index_t h = 0; h < c.H; ++h)
        for (index_t x = 0; x < c.K; ++x)
          for (index_t y = 0; y < c.V; ++y) ht.view()(b, h, x, y) = slots.view()(idx[static_cast<std::size_t>(b)], h, x, y);
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht.cview(), testing::tolerance<float>(c.T));
  }
}

TEST_CASE("rwkv7: varlen == separate calls; errors name the tensor", "[rwkv7][varlen]") {
  const std::vector<index_t> lens{3, 200, 1, 50};
  index_t total = 0;
  for (auto l : lens) total += l;
  const index_t N = static_cast<index_t>(lens.size());
  rw_case c{.B = 1, .T = total, .H = 2, .K = 16, .V = 16, .h0 = false};
  rw_inputs<float> in(c, 60);
  tensor<float, nhkv> h0({N, c.H, c.K, c.V});
  rng g(61);
  h0.uniform(g);
  std::vector<std::int64_t> cu{0};
  for (auto l : lens) cu.push_back(cu.back() + l);
  const auto d = in.convert<double>();
  tensor<double, bthv> o_sep({1, total, c.H, c.V});
  tensor<float, nhkv> ht_sep({N, c.H, c.K, c.V});
  for (index_t n = 0; n < N; ++n) {
    const index_t t0 = cu[static_cast<std::size_t>(n)], t1 = cu[static_cast<std::size_t>(n) + 1];
    auto a = rw_inputs<double>::slice(d.args(o_sep.view().slice<axis::T>(t0, t1), ht_sep.view().slice<axis::N>(n, n + 1)), t0, t1);
    a.initial_state = h0.cview().slice<axis::N>(n, n + 1);  // [1,H,K,V]
    rwkv7(a, {.scale = 0.9f}, reference{});
  }
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent, linear_mode::auto_}) {
    tensor<float, bthv> o({1, total, c.H, c.V});
    tensor<float, nhkv> ht({N, c.H, c.K, c.V});
    o.poison();
    auto a = in.args(o.view(), ht.view());
    a.cu_seqlens = cu_seqlens_view(cu.data(), {N + 1});
    a.initial_state = h0.cview();
    rwkv7(a, {.scale = 0.9f, .mode = m});
    SEQMIX_REQUIRE_CLOSE(o.cview(), o_sep.cview(), testing::tolerance<float>(200));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ht_sep.cview(), testing::tolerance<float>(200));
  }
  tensor<float, bthk> bad({1, total, c.H, c.K + 1});
  bad.uniform(g);
  auto a = in.args({}, {});
  tensor<float, bthv> o({1, total, c.H, c.V});
  a.o = o.view();
  a.b = bad.cview();
  auto call = [&] { rwkv7(a); };
  REQUIRE_THROWS_AS(call(), seqmix::shape_error);
  try {
    call();
  } catch (const seqmix::shape_error& e) {
    REQUIRE(std::string(e.what()).find("seqmix::rwkv7: b.extent(K) = 17, expected 16") != std::string::npos);
  }
}

TEST_CASE("rwkv7: T = 64k stays finite and matches the reference", "[rwkv7][long]") {
  rw_case c{.B = 1, .T = 65536, .H = 1, .K = 16, .V = 16};
  rw_inputs<float> in(c, 70);
  const auto ref = rw_reference(in);
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) rw_check(in, ref, m, 16);
}

TEST_CASE("rwkv7: a NaN input reaches only the outputs the reference puts it in", "[rwkv7][nan]") {
  rw_case c{.B = 2, .T = 70, .H = 2, .K = 16, .V = 16};
  rw_inputs<float> in(c, 80);
  in.v.view()(1, 21, 0, 5) = std::numeric_limits<float>::quiet_NaN();
  const auto ref = rw_reference(in);
  REQUIRE(std::isnan(ref.o.cview()(1, 30, 0, 5)));
  REQUIRE(!std::isnan(ref.o.cview()(1, 20, 0, 5)));
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) rw_check(in, ref, m, 16);
}

TEST_CASE("rwkv7 and gated_delta_rule: reference decode == reference prefill", "[rwkv7][decode]") {
  rw_case c{.B = 2, .T = 12, .H = 2, .K = 8, .V = 8, .h0 = false};
  rw_inputs<float> in(c, 90);
  const auto ref = rw_reference(in);
  tensor<float, bthv> o({c.B, c.T, c.H, c.V});
  tensor<float, nhkv> st({c.B, c.H, c.K, c.V});
  st.for_each([](float& x) { x = 0.0f; });
  for (index_t t = 0; t < c.T; ++t)
    rwkv7_decode<reference, float>(in.decode_args(o.view(), st.view(), t), {.scale = 0.9f});
  SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), testing::tolerance<float>(c.T));
  SEQMIX_REQUIRE_CLOSE(st.cview(), ref.ht.cview(), testing::tolerance<float>(c.T));

  // gated_delta_rule_decode on the reference backend, one row skipped through state_indices = -1
  const index_t B = 2, T = 6, H = 1, K = 8, V = 8;
  rng g(91);
  tensor<float, bthk> q({B, T, H, K}), k({B, T, H, K});
  tensor<float, bthv> v({B, T, H, V});
  tensor<float, bth> gg({B, T, H}), beta({B, T, H});
  q.uniform(g);
  k.uniform(g);
  v.uniform(g);
  gg.uniform(g, -0.5, -0.01);
  beta.uniform(g, 0.1, 0.9);
  tensor<float, bthv> o_ref({B, T, H, V}), o2({B, T, H, V});
  tensor<float, nhkv> ht_ref({B, H, K, V}), s2({B, H, K, V});
  gated_delta_rule<reference, float>({.q = q.cview(), .k = k.cview(), .v = v.cview(), .g = gg.cview(), .beta = beta.cview(),
                                      .o = o_ref.view(), .final_state = ht_ref.view()},
                                     {.use_qk_l2norm = true});
  s2.for_each([](float& x) { x = 0.0f; });
  std::vector<std::int64_t> idx{0, -1};
  for (index_t t = 0; t < T; ++t) {
    gated_delta_rule_decode<reference, float>({.q = q.cview().slice<axis::T>(t, t + 1),  // [B,1,H,K]
                                               .k = k.cview().slice<axis::T>(t, t + 1),
                                               .v = v.cview().slice<axis::T>(t, t + 1),
                                               .g = gg.cview().slice<axis::T>(t, t + 1),
                                               .beta = beta.cview().slice<axis::T>(t, t + 1),
                                               .o = o2.view().slice<axis::T>(t, t + 1),
                                               .state = s2.view(),
                                               .state_indices = state_indices_view(idx.data(), {B})},
                                              {.use_qk_l2norm = true});
  }
  SEQMIX_REQUIRE_CLOSE(o2.cview().slice<axis::B>(0, 1), o_ref.cview().slice<axis::B>(0, 1), testing::tolerance<float>(T));
  SEQMIX_REQUIRE_CLOSE(s2.cview().slice<axis::N>(0, 1), ht_ref.cview().slice<axis::N>(0, 1), testing::tolerance<float>(T));
  for (index_t t = 0; t < T; ++t) REQUIRE(o2.cview()(1, t, 0, 3) == 0.0f);  // skipped row: zero output
}

TEST_CASE("rwkv7: two workers over head groups == reference", "[rwkv7][threads]") {
  rw_case c{.B = 1, .T = 200, .H = 5, .K = 64, .V = 64};
  rw_inputs<float> in(c, 95);
  const auto ref = rw_reference(in);
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
    tensor<float, bthv> o({c.B, c.T, c.H, c.V});
    tensor<float, nhkv> ht({c.B, c.H, c.K, c.V});
    o.poison();
    rwkv7(in.args(o.view(), ht.view()), {.scale = 0.9f, .mode = m, .run = {.executor = par_t{2}}});
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht.cview(), testing::tolerance<float>(c.T));
  }
}

TEST_CASE("rwkv7 recurrence: folds and explicit steps anywhere in a visit, in-place and staged rows, decode",
          "[rwkv7][recurrent]") {
  // visits of 32 tokens: T = 1, 32, 33 and 70 give visits of 1, 32, 32 + 1, 2 x 32 + 6 tokens; the decay laws
  // put row-scale folds at varying positions (before a visit, inside one, on its last token); -30 makes every
  // step explicit; a -40 channel every 5 tokens sends the fast set-up back to the careful one mid-sequence;
  // -1.7 and -2.9 take the fast set-up with vec::exp, -0.6065 the one with vec::exp_narrow.
  // K = 64 with V = 64 reads and writes rows in place, V = 40 stages v and o, K = 20 stages all (tails).
  std::uint64_t seed = 200;
  for (auto kv : {std::pair<index_t, index_t>{64, 64}, std::pair<index_t, index_t>{64, 40},
                  std::pair<index_t, index_t>{20, 24}}) {
    for (double wmin : {-0.6065, -1.7, -2.9, -30.0}) {
      for (index_t T : {1, 32, 33, 70}) {
        rw_case c{.B = 1, .T = T, .H = 2, .K = kv.first, .V = kv.second, .h0 = (T % 2) == 1, .wmin = wmin};
        rw_inputs<float> in(c, ++seed);
        if (wmin == -0.6065) {
          for (index_t t = 2; t < T; t += 5) in.w.view()(0, t, 1, 3) = -40.0f;
          // head 0: one decay outside vec::exp_narrow's domain (that visit's set-up takes vec::exp), one growth
          // step inside it
          if (T > 40) in.w.view()(0, 40, 0, 5) = -0.8f;
          if (T > 20) in.w.view()(0, 20, 0, 6) = 0.05f;
        }
        const auto ref = rw_reference(in);
        INFO("K " << c.K << " V " << c.V << " wmin " << wmin << " T " << T);
        rw_check(in, ref, linear_mode::recurrent, 0);
      }
    }
  }
  for (index_t H : {1, 3}) {
    // decays outside vec::exp_narrow's domain (-2, +0.5) in later visits of a sequence that is otherwise on the
    // narrow fast set-up (H = 1: visits of one head in turn; H = 3: the heads in turn): those visits take vec::exp
    rw_case c{.B = 1, .T = 130, .H = H, .K = 64, .V = 64};
    rw_inputs<float> in(c, ++seed);
    in.w.view()(0, 40, H - 1, 9) = -2.0f;
    in.w.view()(0, 100, H - 1, 11) = 0.5f;
    const auto ref = rw_reference(in);
    INFO("spikes H " << H);
    rw_check(in, ref, linear_mode::recurrent, 0);
  }
  for (auto kv : {std::pair<index_t, index_t>{64, 64}, std::pair<index_t, index_t>{20, 24}}) {
    // decode after a recurrent prefill of P tokens, in place on the state (dense [K,V] rows when V = 64)
    rw_case c{.B = 1, .T = 40, .H = 2, .K = kv.first, .V = kv.second, .wmin = -1.7};
    rw_inputs<float> in(c, ++seed);
    const auto ref = rw_reference(in);
    const index_t P = 33;
    tensor<float, bthv> o({c.B, c.T, c.H, c.V});
    tensor<float, nhkv> st({c.B, c.H, c.K, c.V});
    o.poison();
    rwkv7(rw_inputs<float>::slice(in.args(o.view().slice<axis::T>(0, P), st.view()), 0, P),  // [1,P,H,V]
          {.scale = 0.9f, .mode = linear_mode::recurrent});
    for (index_t t = P; t < c.T; ++t)
      rwkv7_decode<simd<>, float>(in.decode_args(o.view(), st.view(), t), {.scale = 0.9f});
    INFO("decode K " << c.K << " V " << c.V);
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(st.cview(), ref.ht.cview(), testing::tolerance<float>(c.T));
  }
}
