// SPDX-License-Identifier: Apache-2.0
// tests/ops/linear_attention/test_delta_rule.cpp: delta_rule and gated_delta_rule (GVA, KDA per-key gate,
// in-kernel transforms): chunk vs recurrent vs the float64 reference, state carry, varlen, decode, strides.
#include <seqmix/ops/linear_attention/detail/delta_rule.hpp>
#include <seqmix/ops/linear_attention/detail/gated_delta_rule.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "support/support.hpp"

namespace {

using namespace seqmix;
using seqmix::testing::rng;
using seqmix::testing::tensor;

enum class gate { none, scalar, key };

struct gdn_case {
  index_t B = 1, T = 17, H = 2, HV = 2, K = 16, V = 24;
  gate gt = gate::scalar;
  bool h0 = true;
  bool l2 = false;
  bool transform = false;  // in-kernel gate (A_log, dt_bias) and beta (sigmoid) transforms
  double gmin = -0.2;      // per-step log decay range [gmin, 0)
};

/// Inputs of one Gated DeltaNet problem in storage type T.
template <class T>
struct gdn_inputs {
  gdn_case cs;
  tensor<T, bthk> q, k, gk;
  tensor<T, bthv> v;
  tensor<T, bth> g, beta;
  tensor<float, layout<axis::H>> A_log, dt_bias;
  tensor<float, hk> dt_bias_k;
  tensor<float, nhkv> h0;

  gdn_inputs() = default;
  gdn_inputs(const gdn_case& c, std::uint64_t seed) : cs(c) {
    rng r(seed);
    q = tensor<T, bthk>({c.B, c.T, c.H, c.K});
    k = tensor<T, bthk>({c.B, c.T, c.H, c.K});
    v = tensor<T, bthv>({c.B, c.T, c.HV, c.V});
    beta = tensor<T, bth>({c.B, c.T, c.HV});
    q.uniform(r, -1, 1);
    k.uniform(r, -1, 1);
    v.uniform(r, -1, 1);
    if (c.transform) {
      beta.uniform(r, -2, 2);
    } else if (c.l2) {
      beta.uniform(r, 0.05, 0.95);
    } else {
      // without l2norm keep beta |k|^2 moderate so the recurrence stays contractive
      beta.uniform(r, 0.05, 1.5 / static_cast<double>(c.K) * 3.0);
    }
    if (c.gt == gate::scalar) {
      g = tensor<T, bth>({c.B, c.T, c.HV});
      if (c.transform) g.uniform(r, -3, 1);
      else g.uniform(r, c.gmin, c.gmin * 1e-3);
    }
    if (c.gt == gate::key) {
      gk = tensor<T, bthk>({c.B, c.T, c.HV, c.K});
      if (c.transform) gk.uniform(r, -3, 1);
      else gk.uniform(r, c.gmin, c.gmin * 1e-3);
    }
    if (c.transform) {
      A_log = tensor<float, layout<axis::H>>(extents<layout<axis::H>>(c.HV));
      A_log.uniform(r, -2, 0.5);
      if (c.gt == gate::scalar) {
        dt_bias = tensor<float, layout<axis::H>>(extents<layout<axis::H>>(c.HV));
        dt_bias.uniform(r, -1, 1);
      } else {
        dt_bias_k = tensor<float, hk>({c.HV, c.K});
        dt_bias_k.uniform(r, -1, 1);
      }
    }
    if (c.h0) {
      h0 = tensor<float, nhkv>({c.B, c.HV, c.K, c.V});
      h0.uniform(r, -1, 1);
    }
  }
  template <class U>
  gdn_inputs<U> convert() const {
    gdn_inputs<U> x;
    x.cs = cs;
    x.q = q.template convert<U>();
    x.k = k.template convert<U>();
    x.v = v.template convert<U>();
    x.beta = beta.template convert<U>();
    if (g.size() && cs.gt == gate::scalar) x.g = g.template convert<U>();
    if (cs.gt == gate::key) x.gk = gk.template convert<U>();
    x.A_log = A_log.template convert<float>();
    x.dt_bias = dt_bias.template convert<float>();
    x.dt_bias_k = dt_bias_k.template convert<float>();
    x.h0 = h0.template convert<float>();
    return x;
  }
  gated_delta_rule_args<T> args(tensor_view<T, bthv> o, state_view ht) const {
    gated_delta_rule_args<T> a{.q = q.cview(), .k = k.cview(), .v = v.cview(), .g = {}, .beta = beta.cview(), .o = o};
    if (cs.gt == gate::scalar) a.g = g.cview();
    if (cs.gt == gate::key) a.gk = gk.cview();
    if (cs.h0) a.initial_state = h0.cview();
    a.final_state = ht;
    if (cs.transform) {
      a.A_log = A_log.cview();
      if (cs.gt == gate::scalar) a.dt_bias = dt_bias.cview();
      else a.dt_bias_k = dt_bias_k.cview();
    }
    return a;
  }
  gated_delta_rule_options opts(linear_mode m, index_t chunk = 0) const {
    return {.scale = 0.7f, .mode = m, .chunk_size = chunk, .use_qk_l2norm = cs.l2, .beta_sigmoid = cs.transform,
            .allow_neg_eigval = cs.transform, .run = {}};
  }
};

struct gdn_result {
  tensor<double, bthv> o_ref;
  tensor<float, nhkv> ht_ref;
};

template <class T>
gdn_result gdn_reference(const gdn_inputs<T>& in) {
  const auto d = in.template convert<double>();
  const auto& c = in.cs;
  gdn_result r{tensor<double, bthv>({c.B, c.T, c.HV, c.V}), tensor<float, nhkv>({c.B, c.HV, c.K, c.V})};
  r.o_ref.poison();
  r.ht_ref.poison();
  gated_delta_rule(d.args(r.o_ref.view(), r.ht_ref.view()), d.opts(linear_mode::recurrent), reference{});
  return r;
}

template <class T>
void gdn_check_fast(const gdn_inputs<T>& in, const gdn_result& ref, linear_mode m, index_t chunk,
                    delta_detail::gdr_tuning tuning = {}) {
  const auto& c = in.cs;
  tensor<T, bthv> o({c.B, c.T, c.HV, c.V});
  tensor<float, nhkv> ht({c.B, c.HV, c.K, c.V});
  o.poison();
  ht.poison();
  delta_detail::gated_delta_rule_tuned(in.args(o.view(), ht.view()), in.opts(m, chunk), tuning);
  const double tol = testing::tolerance<T>(c.T);
  SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o_ref.cview(), tol);
  SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht_ref.cview(), tol);
}

const char* mode_name(linear_mode m) { return m == linear_mode::chunk ? "chunk" : m == linear_mode::recurrent ? "recurrent" : "auto"; }

}  // namespace

TEST_CASE("gated_delta_rule: chunk and recurrent agree with the float64 reference", "[gated_delta_rule]") {
  std::uint64_t seed = 100;
  for (index_t T : {1, 2, 15, 16, 17, 63, 64, 65, 300}) {
    for (gate gt : {gate::none, gate::scalar, gate::key}) {
      gdn_case c{.B = 2, .T = T, .H = 2, .HV = 2, .K = 16, .V = 24, .gt = gt, .h0 = (T % 2) == 1, .l2 = true};
      gdn_inputs<float> in(c, ++seed);
      const auto ref = gdn_reference(in);
      for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent, linear_mode::auto_}) {
        INFO("T " << T << " gate " << int(gt) << " mode " << mode_name(m));
        gdn_check_fast(in, ref, m, 0);
      }
    }
  }
}

TEST_CASE("gated_delta_rule: every chunk size gives the reference", "[gated_delta_rule]") {
  std::uint64_t seed = 200;
  for (index_t chunk : {16, 32, 64}) {
    for (gate gt : {gate::none, gate::scalar, gate::key}) {
      gdn_case c{.B = 1, .T = 150, .H = 2, .HV = 4, .K = 32, .V = 40, .gt = gt, .h0 = true, .l2 = true};
      gdn_inputs<float> in(c, ++seed);
      const auto ref = gdn_reference(in);
      INFO("chunk " << chunk << " gate " << int(gt));
      gdn_check_fast(in, ref, linear_mode::chunk, chunk);
    }
  }
}

TEST_CASE("gated_delta_rule: GVA 2:1 and 4:1, K != V, no l2norm", "[gated_delta_rule][gva]") {
  std::uint64_t seed = 300;
  for (index_t ratio : {2, 4}) {
    gdn_case c{.B = 2, .T = 70, .H = 2, .HV = 2 * ratio, .K = 24, .V = 8, .gt = gate::scalar, .h0 = true, .l2 = false};
    gdn_inputs<float> in(c, ++seed);
    const auto ref = gdn_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 32);
  }
}

TEST_CASE("gated_delta_rule: in-kernel gate and beta transforms", "[gated_delta_rule][transform]") {
  std::uint64_t seed = 400;
  for (gate gt : {gate::scalar, gate::key}) {
    gdn_case c{.B = 1, .T = 90, .H = 2, .HV = 4, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true, .transform = true};
    gdn_inputs<float> in(c, ++seed);
    const auto ref = gdn_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 16);
  }
}

TEST_CASE("gated_delta_rule: strong decay and zero gates stay finite and exact", "[gated_delta_rule][stability]") {
  // -30: single steps below the lazy-decay floor; -5 and -1: the row scales cross the floor every few or
  // few dozen tokens (materialization between token pairs, after the next pair's projections were taken)
  std::uint64_t seed = 500;
  for (double gmin : {-30.0, -5.0, -1.0}) {
    for (gate gt : {gate::scalar, gate::key}) {
      gdn_case c{.B = 1, .T = 130, .H = 2, .HV = 2, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true, .gmin = gmin};
      gdn_inputs<float> in(c, ++seed);
      const auto ref = gdn_reference(in);
      INFO("gmin " << gmin << " gate " << int(gt));
      for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 64);
    }
  }
  // exact zeros: g = 0 (no decay) through the gated kernels, and isolated exact-zero decays (e^-200 = 0)
  for (gate gt : {gate::scalar, gate::key}) {
    gdn_case c{.B = 1, .T = 81, .H = 1, .HV = 1, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true};
    gdn_inputs<float> in(c, 77);
    if (gt == gate::scalar) {
      in.g.for_each([](float& x) { x = 0.0f; });
      for (index_t t = 3; t < c.T; t += 10) in.g.view()(0, t, 0) = -200.0f;
    } else {
      in.gk.for_each([](float& x) { x = 0.0f; });
      for (index_t t = 4; t < c.T; t += 9) in.gk.view()(0, t, 0, 5) = -200.0f;
    }
    const auto ref = gdn_reference(in);
    gdn_check_fast(in, ref, linear_mode::chunk, 32);
    gdn_check_fast(in, ref, linear_mode::recurrent, 0);
  }
  // gates beyond the factorisation range (-1e4, -inf): those chunks run the recurrence instead
  for (gate gt : {gate::scalar, gate::key}) {
    gdn_case c{.B = 1, .T = 81, .H = 1, .HV = 1, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true};
    gdn_inputs<float> in(c, 78);
    for (index_t t : {0, 17, 40, 80}) {
      const float g = t == 40 ? -std::numeric_limits<float>::infinity() : -1e4f;
      if (gt == gate::scalar) in.g.view()(0, t, 0) = g;
      else in.gk.view()(0, t, 0, 3) = g;
    }
    INFO("huge gates, gate " << int(gt));
    const auto ref = gdn_reference(in);
    gdn_check_fast(in, ref, linear_mode::chunk, 32);
    gdn_check_fast(in, ref, linear_mode::recurrent, 0);
  }
}

TEST_CASE("gated_delta_rule: bf16 and f16 inputs", "[gated_delta_rule][dtype]") {
  gdn_case c{.B = 1, .T = 100, .H = 2, .HV = 2, .K = 32, .V = 32, .gt = gate::scalar, .h0 = true, .l2 = true};
  gdn_inputs<float> base(c, 600);
  {
    const auto in = base.convert<bf16>();
    const auto ref = gdn_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 0);
  }
  {
    const auto in = base.convert<f16>();
    const auto ref = gdn_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 0);
  }
  {  // float64 storage through the float32 fast path
    const auto in = base.convert<double>();
    const auto ref = gdn_reference(in);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 0);
  }
}

TEST_CASE("gated_delta_rule: strided [B,H,T,D] inputs and padded outputs", "[gated_delta_rule][strides]") {
  gdn_case c{.B = 2, .T = 40, .H = 2, .HV = 2, .K = 16, .V = 24, .gt = gate::scalar, .h0 = true, .l2 = true};
  gdn_inputs<float> in(c, 700);
  const auto ref = gdn_reference(in);
  using bhtk = layout<axis::B, axis::H, axis::T, axis::K>;
  using bhtv = layout<axis::B, axis::H, axis::T, axis::V>;
  auto qs = tensor<float, bthk>::permuted<bhtk>({c.B, c.T, c.H, c.K});
  auto ks = tensor<float, bthk>::permuted<bhtk>({c.B, c.T, c.H, c.K});
  auto vs = tensor<float, bthv>::permuted<bhtv>({c.B, c.T, c.HV, c.V});
  auto copy = [](auto& dst, const auto& src) {
    auto s = src.cview();
    auto d = dst.view();
    for (index_t b = 0; b < s.template extent<axis::B>(); ++b)
      for (index_t t = 0; t < s.template extent<axis::T>(); ++t)
        for (index_t h = 0; h < s.template extent<axis::H>(); ++h)
          for (index_t x = 0; x < s.extent(3); ++x) d(b, t, h, x) = s(b, t, h, x);
  };
  copy(qs, in.q);
  copy(ks, in.k);
  copy(vs, in.v);
  auto o = tensor<float, bthv>::padded({c.B, c.T, c.HV, c.V}, 2);
  auto ht = tensor<float, nhkv>::padded({c.B, c.HV, c.K, c.V}, 1);
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
    auto a = in.args(o.view(), ht.view());
    a.q = qs.cview();
    a.k = ks.cview();
    a.v = vs.cview();
    gated_delta_rule(a, in.opts(m, 16));
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o_ref.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht_ref.cview(), testing::tolerance<float>(c.T));
  }
}

TEST_CASE("gated_delta_rule: two halves carrying state == one pass", "[gated_delta_rule][state]") {
  for (gate gt : {gate::scalar, gate::key}) {
    gdn_case c{.B = 2, .T = 100, .H = 2, .HV = 4, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true};
    gdn_inputs<float> in(c, 800);
    const auto ref = gdn_reference(in);
    tensor<float, bthv> o({c.B, c.T, c.HV, c.V});
    tensor<float, nhkv> mid({c.B, c.HV, c.K, c.V}), ht({c.B, c.HV, c.K, c.V});
    o.poison();
    for (index_t split : {37, 64}) {
      auto a1 = in.args(o.view().slice<axis::T>(0, split), mid.view());  // [B,split,HV,V]
      a1.q = a1.q.slice<axis::T>(0, split);
      a1.k = a1.k.slice<axis::T>(0, split);
      a1.v = a1.v.slice<axis::T>(0, split);
      a1.beta = a1.beta.slice<axis::T>(0, split);
      if (a1.g) a1.g = a1.g.slice<axis::T>(0, split);
      if (a1.gk) a1.gk = a1.gk.slice<axis::T>(0, split);
      gated_delta_rule(a1, in.opts(linear_mode::chunk, 32));
      auto a2 = in.args(o.view().slice<axis::T>(split, c.T), ht.view());  // [B,T-split,HV,V]
      a2.q = a2.q.slice<axis::T>(split, c.T);
      a2.k = a2.k.slice<axis::T>(split, c.T);
      a2.v = a2.v.slice<axis::T>(split, c.T);
      a2.beta = a2.beta.slice<axis::T>(split, c.T);
      if (a2.g) a2.g = a2.g.slice<axis::T>(split, c.T);
      if (a2.gk) a2.gk = a2.gk.slice<axis::T>(split, c.T);
      a2.initial_state = mid.cview();
      gated_delta_rule(a2, in.opts(linear_mode::chunk, 16));
      SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o_ref.cview(), testing::tolerance<float>(c.T));
      SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht_ref.cview(), testing::tolerance<float>(c.T));
    }
  }
}

TEST_CASE("gated_delta_rule: varlen == separate calls", "[gated_delta_rule][varlen]") {
  const std::vector<index_t> lens{1, 200, 37, 64, 5};
  index_t total = 0;
  for (auto l : lens) total += l;
  const index_t N = static_cast<index_t>(lens.size());
  gdn_case c{.B = 1, .T = total, .H = 2, .HV = 4, .K = 16, .V = 24, .gt = gate::scalar, .h0 = false, .l2 = true};
  gdn_inputs<float> in(c, 900);
  tensor<float, nhkv> h0({N, c.HV, c.K, c.V});
  rng r(901);
  h0.uniform(r, -1, 1);
  std::vector<std::int64_t> cu{0};
  for (auto l : lens) cu.push_back(cu.back() + l);
  const cu_seqlens_view cuv(cu.data(), {N + 1});
  tensor<double, bthv> o_sep({1, total, c.HV, c.V});
  tensor<float, nhkv> ht_sep({N, c.HV, c.K, c.V});
  const auto d = in.convert<double>();
  for (index_t n = 0; n < N; ++n) {
    const index_t t0 = cu[static_cast<std::size_t>(n)], t1 = cu[static_cast<std::size_t>(n) + 1];
    auto a = d.args(o_sep.view().slice<axis::T>(t0, t1), ht_sep.view().slice<axis::N>(n, n + 1));  // [1,len,HV,V]
    a.q = a.q.slice<axis::T>(t0, t1);
    a.k = a.k.slice<axis::T>(t0, t1);
    a.v = a.v.slice<axis::T>(t0, t1);
    a.beta = a.beta.slice<axis::T>(t0, t1);
    a.g = a.g.slice<axis::T>(t0, t1);
    a.initial_state = h0.cview().slice<axis::N>(n, n + 1);  // [1,HV,K,V]
    gated_delta_rule(a, d.opts(linear_mode::recurrent), reference{});
  }
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent, linear_mode::auto_}) {
    tensor<float, bthv> o({1, total, c.HV, c.V});
    tensor<float, nhkv> ht({N, c.HV, c.K, c.V});
    o.poison();
    auto a = in.args(o.view(), ht.view());
    a.cu_seqlens = cuv;
    a.initial_state = h0.cview();
    gated_delta_rule(a, in.opts(m, 32));
    SEQMIX_REQUIRE_CLOSE(o.cview(), o_sep.cview(), testing::tolerance<float>(200));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ht_sep.cview(), testing::tolerance<float>(200));
  }
}

TEST_CASE("gated_delta_rule: decode steps after a chunked prefill == one longer prefill", "[gated_delta_rule][decode]") {
  for (gate gt : {gate::scalar, gate::key}) {
    gdn_case c{.B = 3, .T = 70, .H = 2, .HV = 4, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true};
    gdn_inputs<float> in(c, 1000);
    const auto ref = gdn_reference(in);
    const index_t P = 64;
    tensor<float, bthv> o({c.B, c.T, c.HV, c.V});
    o.poison();
    // prefill into slots in reverse order through state_indices
    tensor<float, nhkv> pre({c.B, c.HV, c.K, c.V});
    auto a = in.args(o.view().slice<axis::T>(0, P), pre.view());  // [B,P,HV,V]
    a.q = a.q.slice<axis::T>(0, P);
    a.k = a.k.slice<axis::T>(0, P);
    a.v = a.v.slice<axis::T>(0, P);
    a.beta = a.beta.slice<axis::T>(0, P);
    if (a.g) a.g = a.g.slice<axis::T>(0, P);
    if (a.gk) a.gk = a.gk.slice<axis::T>(0, P);
    gated_delta_rule(a, in.opts(linear_mode::chunk));
    tensor<float, nhkv> slots({c.B + 1, c.HV, c.K, c.V});
    std::vector<std::int64_t> idx(static_cast<std::size_t>(c.B));
    for (index_t b = 0; b < c.B; ++b) {
      idx[static_cast<std::size_t>(b)] = c.B - b;
      for (index_t j = 0; j < c.HV; ++j)
        for (index_t x = 0; x < c.K; ++x)
          for (index_t y = 0; y < c.V; ++y) slots.view()(c.B - b, j, x, y) = pre.view()(b, j, x, y);
    }
    const state_indices_view iv(idx.data(), {c.B});
    for (index_t t = P; t < c.T; ++t) {
      gated_delta_rule_decode_args<float> d{.q = in.q.cview().slice<axis::T>(t, t + 1),  // [B,1,H,K]
                                            .k = in.k.cview().slice<axis::T>(t, t + 1),
                                            .v = in.v.cview().slice<axis::T>(t, t + 1),
                                            .g = {},
                                            .beta = in.beta.cview().slice<axis::T>(t, t + 1),
                                            .o = o.view().slice<axis::T>(t, t + 1),
                                            .state = slots.view(),
                                            .state_indices = iv};
      if (gt == gate::scalar) d.g = in.g.cview().slice<axis::T>(t, t + 1);
      else d.gk = in.gk.cview().slice<axis::T>(t, t + 1);
      gated_delta_rule_decode(d, in.opts(linear_mode::auto_));
    }
    tensor<float, nhkv> ht({c.B, c.HV, c.K, c.V});
    for (index_t b = 0; b < c.B; ++b)
      for (index_t j = 0; j < c.HV; ++j)
        for (index_t x = 0; x < c.K; ++x)
          for (index_t y = 0; y < c.V; ++y) ht.view()(b, j, x, y) = slots.view()(c.B - b, j, x, y);
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o_ref.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht_ref.cview(), testing::tolerance<float>(c.T));
  }
}

TEST_CASE("delta_rule: chunk, recurrent and per-value beta against the float64 reference", "[delta_rule]") {
  std::uint64_t seed = 1100;
  for (index_t T : {1, 2, 15, 16, 17, 63, 64, 65, 300}) {
    const index_t B = 2, H = 3, K = 16, V = 8;
    rng r(++seed);
    tensor<float, bthk> q({B, T, H, K}), k({B, T, H, K});
    tensor<float, bthv> v({B, T, H, V}), bv({B, T, H, V});
    tensor<float, bth> beta({B, T, H});
    tensor<float, nhkv> h0({B, H, K, V});
    q.uniform(r);
    k.uniform(r);
    v.uniform(r);
    beta.uniform(r, 0.05, 0.95);
    bv.uniform(r, 0.05, 0.95);
    h0.uniform(r);
    const auto qd = q.convert<double>();
    const auto kd = k.convert<double>();
    const auto vd = v.convert<double>();
    const auto bd = beta.convert<double>();
    const auto bvd = bv.convert<double>();
    for (bool per_value : {false, true}) {
      tensor<double, bthv> o_ref({B, T, H, V});
      tensor<float, nhkv> ht_ref({B, H, K, V});
      delta_rule_args<double> ad{.q = qd.cview(), .k = kd.cview(), .v = vd.cview(), .beta = bd.cview(), .o = o_ref.view(),
                                 .initial_state = h0.cview(), .final_state = ht_ref.view()};
      if (per_value) {
        ad.beta = {};
        ad.beta_v = bvd.cview();
      }
      delta_rule(ad, {.use_qk_l2norm = true}, reference{});
      for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
        if (per_value && m == linear_mode::chunk) continue;
        for (index_t chunk : {16, 32, 64}) {
          tensor<float, bthv> o({B, T, H, V});
          tensor<float, nhkv> ht({B, H, K, V});
          o.poison();
          delta_rule_args<float> a{.q = q.cview(), .k = k.cview(), .v = v.cview(), .beta = beta.cview(), .o = o.view(),
                                   .initial_state = h0.cview(), .final_state = ht.view()};
          if (per_value) {
            a.beta = {};
            a.beta_v = bv.cview();
          }
          delta_rule(a, {.mode = m, .chunk_size = chunk, .use_qk_l2norm = true});
          INFO("T " << T << " mode " << mode_name(m) << " chunk " << chunk << " per_value " << per_value);
          SEQMIX_REQUIRE_CLOSE(o.cview(), o_ref.cview(), testing::tolerance<float>(T));
          SEQMIX_REQUIRE_CLOSE(ht.cview(), ht_ref.cview(), testing::tolerance<float>(T));
        }
      }
    }
  }
}

TEST_CASE("delta_rule: decode steps == prefill; shape errors name the tensor", "[delta_rule][decode]") {
  const index_t B = 2, T = 20, H = 2, K = 8, V = 16;
  rng r(1200);
  tensor<float, bthk> q({B, T, H, K}), k({B, T, H, K});
  tensor<float, bthv> v({B, T, H, V});
  tensor<float, bth> beta({B, T, H});
  q.uniform(r);
  k.uniform(r);
  v.uniform(r);
  beta.uniform(r, 0.05, 0.95);
  tensor<float, bthv> o_ref({B, T, H, V}), o({B, T, H, V});
  tensor<float, nhkv> ht_ref({B, H, K, V});
  delta_rule<reference, float>({.q = q.cview(), .k = k.cview(), .v = v.cview(), .beta = beta.cview(), .o = o_ref.view(),
                         .final_state = ht_ref.view()},
                        {.use_qk_l2norm = true});
  tensor<float, nhkv> st({B, H, K, V});
  st.for_each([](float& x) { x = 0.0f; });
  for (index_t t = 0; t < T; ++t) {
    delta_rule_decode<simd<>, float>({.q = q.cview().slice<axis::T>(t, t + 1),  // [B,1,H,K]
                                      .k = k.cview().slice<axis::T>(t, t + 1),
                                      .v = v.cview().slice<axis::T>(t, t + 1),
                                      .beta = beta.cview().slice<axis::T>(t, t + 1),
                                      .o = o.view().slice<axis::T>(t, t + 1),
                                      .state = st.view()},
                                     {.use_qk_l2norm = true});
  }
  SEQMIX_REQUIRE_CLOSE(o.cview(), o_ref.cview(), testing::tolerance<float>(T));
  SEQMIX_REQUIRE_CLOSE(st.cview(), ht_ref.cview(), testing::tolerance<float>(T));

  tensor<float, bth> bad({B, T - 1, H});
  bad.uniform(r);
  auto run_bad = [&] {
    delta_rule<simd<>, float>({.q = q.cview(), .k = k.cview(), .v = v.cview(), .beta = bad.cview(), .o = o.view()});
  };
  REQUIRE_THROWS_AS(run_bad(), seqmix::shape_error);
  try {
    delta_rule<simd<>, float>({.q = q.cview(), .k = k.cview(), .v = v.cview(), .beta = bad.cview(), .o = o.view()});
  } catch (const seqmix::shape_error& e) {
    REQUIRE(std::string(e.what()).find("seqmix::delta_rule: beta.extent(T) = 19, expected 20") != std::string::npos);
  }
  auto run_chunk48 = [&] {
    delta_rule<simd<>, float>({.q = q.cview(), .k = k.cview(), .v = v.cview(), .beta = beta.cview(), .o = o.view()},
                              {.chunk_size = 48});
  };
  REQUIRE_THROWS_AS(run_chunk48(), seqmix::shape_error);
}

TEST_CASE("gated_delta_rule: T = 64k stays finite and matches the reference", "[gated_delta_rule][long]") {
  gdn_case c{.B = 1, .T = 65536, .H = 1, .HV = 1, .K = 16, .V = 16, .gt = gate::scalar, .h0 = true, .l2 = true,
             .gmin = -0.05};
  gdn_inputs<float> in(c, 1300);
  const auto ref = gdn_reference(in);
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 64);
}

TEST_CASE("gated_delta_rule: a NaN input reaches only the outputs the reference puts it in", "[gated_delta_rule][nan]") {
  for (gate gt : {gate::scalar, gate::key}) {
    gdn_case c{.B = 2, .T = 70, .H = 2, .HV = 2, .K = 16, .V = 16, .gt = gt, .h0 = true, .l2 = true};
    gdn_inputs<float> in(c, 1400);
    in.v.view()(0, 37, 1, 3) = std::numeric_limits<float>::quiet_NaN();  // one value: row 37, head 1, column 3
    const auto ref = gdn_reference(in);
    REQUIRE(std::isnan(ref.o_ref.cview()(0, 40, 1, 3)));
    REQUIRE(!std::isnan(ref.o_ref.cview()(0, 36, 1, 3)));
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) gdn_check_fast(in, ref, m, 64);
  }
}

TEST_CASE("delta_rule: varlen == separate calls, two halves == one pass", "[delta_rule][varlen]") {
  const std::vector<index_t> lens{2, 130, 1, 64};
  index_t total = 0;
  for (auto l : lens) total += l;
  const index_t N = static_cast<index_t>(lens.size()), H = 2, K = 16, V = 24;
  rng r(1500);
  tensor<float, bthk> q({1, total, H, K}), k({1, total, H, K});
  tensor<float, bthv> v({1, total, H, V});
  tensor<float, bth> beta({1, total, H});
  tensor<float, nhkv> h0({N, H, K, V});
  q.uniform(r);
  k.uniform(r);
  v.uniform(r);
  beta.uniform(r, 0.05, 0.95);
  h0.uniform(r);
  std::vector<std::int64_t> cu{0};
  for (auto l : lens) cu.push_back(cu.back() + l);
  const auto qd = q.convert<double>();
  const auto kd = k.convert<double>();
  const auto vd = v.convert<double>();
  const auto bd = beta.convert<double>();
  tensor<double, bthv> o_sep({1, total, H, V});
  tensor<float, nhkv> ht_sep({N, H, K, V});
  for (index_t n = 0; n < N; ++n) {
    const index_t t0 = cu[static_cast<std::size_t>(n)], t1 = cu[static_cast<std::size_t>(n) + 1];
    delta_rule<reference, double>({.q = qd.cview().slice<axis::T>(t0, t1),  // [1,len,H,K]
                                   .k = kd.cview().slice<axis::T>(t0, t1),
                                   .v = vd.cview().slice<axis::T>(t0, t1),
                                   .beta = bd.cview().slice<axis::T>(t0, t1),
                                   .o = o_sep.view().slice<axis::T>(t0, t1),
                                   .initial_state = h0.cview().slice<axis::N>(n, n + 1),  // [1,H,K,V]
                                   .final_state = ht_sep.view().slice<axis::N>(n, n + 1)},
                                  {.use_qk_l2norm = true});
  }
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
    tensor<float, bthv> o({1, total, H, V});
    tensor<float, nhkv> ht({N, H, K, V});
    o.poison();
    delta_rule<simd<>, float>({.q = q.cview(), .k = k.cview(), .v = v.cview(), .beta = beta.cview(), .o = o.view(),
                               .initial_state = h0.cview(), .final_state = ht.view(),
                               .cu_seqlens = cu_seqlens_view(cu.data(), {N + 1})},
                              {.mode = m, .chunk_size = 16, .use_qk_l2norm = true});
    SEQMIX_REQUIRE_CLOSE(o.cview(), o_sep.cview(), testing::tolerance<float>(130));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ht_sep.cview(), testing::tolerance<float>(130));
  }
  // sequence 1 (130 tokens) in two calls carrying the state
  const index_t t0 = cu[1], t1 = cu[2], mid = t0 + 50;
  tensor<float, bthv> o({1, total, H, V});
  tensor<float, nhkv> s1({1, H, K, V}), s2({1, H, K, V});
  o.poison();
  auto half = [&](index_t a, index_t b, const_state_view in, state_view out) {
    delta_rule<simd<>, float>({.q = q.cview().slice<axis::T>(a, b),  // [1,b-a,H,K]
                               .k = k.cview().slice<axis::T>(a, b),
                               .v = v.cview().slice<axis::T>(a, b),
                               .beta = beta.cview().slice<axis::T>(a, b),
                               .o = o.view().slice<axis::T>(a, b),
                               .initial_state = in,
                               .final_state = out},
                              {.mode = linear_mode::chunk, .use_qk_l2norm = true});
  };
  half(t0, mid, h0.cview().slice<axis::N>(1, 2), s1.view());
  half(mid, t1, s1.cview(), s2.view());
  SEQMIX_REQUIRE_CLOSE(o.cview().slice<axis::T>(t0, t1), o_sep.cview().slice<axis::T>(t0, t1), testing::tolerance<float>(130));
  SEQMIX_REQUIRE_CLOSE(s2.cview(), ht_sep.cview().slice<axis::N>(1, 2), testing::tolerance<float>(130));
}

TEST_CASE("gated_delta_rule: two workers over head groups == reference", "[gated_delta_rule][threads]") {
  gdn_case c{.B = 1, .T = 200, .H = 3, .HV = 6, .K = 64, .V = 64, .gt = gate::scalar, .h0 = true, .l2 = true};
  gdn_inputs<float> in(c, 1600);
  const auto ref = gdn_reference(in);
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
    tensor<float, bthv> o({c.B, c.T, c.HV, c.V});
    tensor<float, nhkv> ht({c.B, c.HV, c.K, c.V});
    o.poison();
    auto opt = in.opts(m, 32);
    opt.run.executor = par_t{2};
    gated_delta_rule(in.args(o.view(), ht.view()), opt);
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.o_ref.cview(), testing::tolerance<float>(c.T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), ref.ht_ref.cview(), testing::tolerance<float>(c.T));
  }
}

TEST_CASE("gated_delta_rule: scalar-gate recurrence == per-key path == reference (folds on either token of a pair)",
          "[gated_delta_rule][recurrent][scalar]") {
  // g = -13.9 twice in a row drops sigma below the 1e-12 floor inside a pair; at odd / even t the fold lands on
  // the first or the second token of a pair; -inf and 0 gates; K, V not multiples of 8; GVA 2:1; odd T.
  std::uint64_t seed = 900;
  for (index_t first : {5, 6}) {
    gdn_case c{.B = 2, .T = 71, .H = 1, .HV = 2, .K = 20, .V = 12, .gt = gate::scalar, .h0 = true, .l2 = true};
    gdn_inputs<float> in(c, ++seed);
    for (index_t t = first; t + 1 < c.T; t += 13) {
      in.g.view()(0, t, 0) = -13.9f;
      in.g.view()(0, t + 1, 0) = -13.9f;
      in.g.view()(1, t, 1) = 0.0f;
    }
    in.g.view()(1, first + 20, 0) = -std::numeric_limits<float>::infinity();
    const auto ref = gdn_reference(in);
    for (bool per_key : {false, true}) {
      INFO("first " << first << " per-key path " << per_key);
      gdn_check_fast(in, ref, linear_mode::recurrent, 0, {.per_key_recurrence = per_key});
    }
  }
}

TEST_CASE("gated_delta_rule: zero heads is an empty call or a shape_error, never a crash", "[gated_delta_rule]") {
  std::vector<float> buf(64, 0.5f);
  const float* p = buf.data();
  const auto qk = make_view<bthk>(p, {1, 4, 0, 8});  // [B,T,H,K] with H = 0
  const auto v = make_view<bthv>(p, {1, 4, 0, 8});
  const auto g = make_view<bth>(p, {1, 4, 0});
  const auto o = make_view<bthv>(buf.data(), {1, 4, 0, 8});
  for (const auto mode : {linear_mode::chunk, linear_mode::recurrent, linear_mode::auto_}) {
    bool ok = true;
    try {
      gated_delta_rule<simd<>, float>({.q = qk, .k = qk, .v = v, .g = g, .beta = g, .o = o}, {.mode = mode});
    } catch (const seqmix::shape_error&) {
    } catch (...) {
      ok = false;
    }
    CHECK(ok);
    CHECK(buf[0] == 0.5f);  // nothing written
  }
}
