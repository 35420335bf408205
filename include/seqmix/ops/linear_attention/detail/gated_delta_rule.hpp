// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_delta_rule.hpp: public entry points of Gated DeltaNet
// (SPEC §3.1.6): gated_delta_rule (prefill; chunk, recurrent or auto; varlen; GVA; KDA per-key gate;
// in-kernel gate and beta transforms) and gated_delta_rule_decode (state slots, in place).
#pragma once

#include <optional>
#include <string>

#include "gated_delta_rule_run.hpp"

namespace seqmix {

/// Inputs and outputs of gated_delta_rule. Optional tensors are empty views.
template <class T>
struct gated_delta_rule_args {
  const_view<T, bthk> q;                               ///< [B,T,H,K]
  const_view<T, bthk> k;                               ///< [B,T,H,K]
  const_view<T, bthv> v;                               ///< [B,T,HV,V], HV % H == 0 (GVA)
  const_view<T, bth> g;                                ///< [B,T,HV] log decay (raw gate when A_log is given)
  const_view<T, bth> beta;                             ///< [B,T,HV] (raw when beta_sigmoid)
  tensor_view<T, bthv> o;                              ///< [B,T,HV,V] output
  const_state_view initial_state{};                    ///< [N,HV,K,V] optional
  state_view final_state{};                            ///< [N,HV,K,V] optional
  cu_seqlens_view cu_seqlens{};                        ///< [N+1] optional, B = 1
  const_view<T, bthk> gk{};                            ///< [B,T,HV,K] per-key log decay (KDA); excludes g
  const_view<float, layout<axis::H>> A_log{};          ///< [HV]: g = -exp(A_log) softplus(g_raw + dt_bias)
  const_view<float, layout<axis::H>> dt_bias{};        ///< [HV] (scalar gate g)
  const_view<float, hk> dt_bias_k{};                   ///< [HV,K] (per-key gate gk)
};

/// Options of gated_delta_rule and gated_delta_rule_decode.
struct gated_delta_rule_options {
  std::optional<float> scale{};           ///< default 1/sqrt(K)
  linear_mode mode = linear_mode::auto_;  ///< auto_ | chunk | recurrent (decode always recurs)
  index_t chunk_size = 0;                 ///< 0 = 64; allowed {16, 32, 64}
  bool use_qk_l2norm = false;             ///< q, k <- x / sqrt(sum x^2 + 1e-6) before scaling
  bool beta_sigmoid = false;              ///< beta <- sigmoid(beta) in the kernel
  bool allow_neg_eigval = false;          ///< with beta_sigmoid: beta <- 2 sigmoid(beta)
  run_context run{};                      ///< executor + workspace
};

/// Inputs and outputs of gated_delta_rule_decode: T new tokens (usually 1) per batch row on state slots.
template <class T>
struct gated_delta_rule_decode_args {
  const_view<T, bthk> q;                         ///< [B,T,H,K]
  const_view<T, bthk> k;                         ///< [B,T,H,K]
  const_view<T, bthv> v;                         ///< [B,T,HV,V]
  const_view<T, bth> g;                          ///< [B,T,HV]
  const_view<T, bth> beta;                       ///< [B,T,HV]
  tensor_view<T, bthv> o;                        ///< [B,T,HV,V]
  state_view state;                              ///< [N,HV,K,V] in/out
  state_indices_view state_indices{};            ///< [B] slot per row (-1 skips); absent: slot b, N = B
  const_view<T, bthk> gk{};                      ///< [B,T,HV,K]
  const_view<float, layout<axis::H>> A_log{};    ///< [HV]
  const_view<float, layout<axis::H>> dt_bias{};  ///< [HV]
  const_view<float, hk> dt_bias_k{};             ///< [HV,K]
};

namespace delta_detail {

inline constexpr index_t gdr_default_chunk = 64;

/// Shared checks of the delta-rule inputs; returns the resolved problem (o, states and plan aside).
template <class T, class O>
gdr_problem<T> gdr_check_inputs(const check& c, const_view<T, bthk> q, const_view<T, bthk> k, const_view<T, bthv> v,
                                const_view<T, bth> g, const_view<T, bthk> gk, const_view<T, bth> beta,
                                const_view<T, bthv> beta_v, const_view<float, layout<axis::H>> A_log,
                                const_view<float, layout<axis::H>> dt_bias, const_view<float, hk> dt_bias_k,
                                const O& o, const std::optional<float>& scale, bool l2norm, bool beta_sigmoid,
                                bool neg_eigval) {
  c.require(static_cast<bool>(q), "q is required but was not given");
  c.require(static_cast<bool>(k), "k is required but was not given");
  c.require(static_cast<bool>(v), "v is required but was not given");
  c.require(static_cast<bool>(o), "o is required but was not given");
  const index_t B = q.template extent<axis::B>(), T_ = q.template extent<axis::T>(), H = q.template extent<axis::H>(), K = q.template extent<axis::K>();
  c.same_extent<axis::B>("k", k, "q", q);
  c.same_extent<axis::T>("k", k, "q", q);
  c.same_extent<axis::H>("k", k, "q", q);
  c.same_extent<axis::K>("k", k, "q", q);
  c.same_extent<axis::B>("v", v, "q", q);
  c.same_extent<axis::T>("v", v, "q", q);
  c.require(H > 0 && K > 0 && v.template extent<axis::V>() > 0, "q.extent(H), q.extent(K) and v.extent(V) must be > 0");
  c.multiple_of<axis::H>("v", v, "q", q);
  const index_t HV = v.template extent<axis::H>(), V = v.template extent<axis::V>();
  c.same_extent<axis::B>("o", o, "v", v);
  c.same_extent<axis::T>("o", o, "v", v);
  c.same_extent<axis::H>("o", o, "v", v);
  c.same_extent<axis::V>("o", o, "v", v);
  if (beta) {
    c.same_extent<axis::B>("beta", beta, "v", v);
    c.same_extent<axis::T>("beta", beta, "v", v);
    c.same_extent<axis::H>("beta", beta, "v", v);
  } else if (beta_v) {
    c.same_extent<axis::B>("beta", beta_v, "v", v);
    c.same_extent<axis::T>("beta", beta_v, "v", v);
    c.same_extent<axis::H>("beta", beta_v, "v", v);
    c.same_extent<axis::V>("beta", beta_v, "v", v);
  } else {
    c.fail("beta is required but was not given");
  }
  c.require(!(g && gk), "g and gk were both given, expected at most one gate");
  if (g) {
    c.same_extent<axis::B>("g", g, "v", v);
    c.same_extent<axis::T>("g", g, "v", v);
    c.same_extent<axis::H>("g", g, "v", v);
  }
  if (gk) {
    c.same_extent<axis::B>("gk", gk, "v", v);
    c.same_extent<axis::T>("gk", gk, "v", v);
    c.same_extent<axis::H>("gk", gk, "v", v);
    c.same_extent<axis::K>("gk", gk, "q", q);
  }
  if (A_log) {
    c.require(g || gk, "A_log given without a gate g or gk");
    c.extent<axis::H>("A_log", A_log, HV, "v [B,T,H,V]");
  }
  c.require(!dt_bias || A_log, "dt_bias given without A_log");
  c.require(!dt_bias_k || A_log, "dt_bias_k given without A_log");
  if (dt_bias) {
    c.require(static_cast<bool>(g), "dt_bias [HV] needs the scalar gate g (use dt_bias_k with gk)");
    c.extent<axis::H>("dt_bias", dt_bias, HV, "v [B,T,H,V]");
  }
  if (dt_bias_k) {
    c.require(static_cast<bool>(gk), "dt_bias_k [HV,K] needs the per-key gate gk");
    c.extent<axis::H>("dt_bias_k", dt_bias_k, HV, "v [B,T,H,V]");
    c.extent<axis::K>("dt_bias_k", dt_bias_k, K, "q [B,T,H,K]");
  }
  if (scale) c.finite("scale", static_cast<double>(*scale));
  (void)B;
  (void)T_;
  gdr_problem<T> p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.g = g;
  p.gk = gk;
  p.beta = beta;
  p.beta_v = beta_v;
  p.A_log = A_log;
  p.dt_bias = dt_bias;
  p.dt_bias_k = dt_bias_k;
  p.H = H;
  p.HV = HV;
  p.K = K;
  p.V = V;
  p.scale = scale ? static_cast<double>(*scale) : 1.0 / std::sqrt(static_cast<double>(K));
  p.l2norm = l2norm;
  p.beta_sigmoid = beta_sigmoid;
  p.beta_mul = beta_sigmoid && neg_eigval ? 2.0 : 1.0;
  return p;
}

/// gated_delta_rule with kernel choices that are not API (tests, A/B benchmarks): per call, so calls on other
/// threads never see them.
template <class Backend = simd<>, class T>
void gated_delta_rule_tuned(const gated_delta_rule_args<T>& a, const gated_delta_rule_options& o, gdr_tuning tuning,
                            Backend = {}) {
  const check c("gated_delta_rule");
  auto p = gdr_check_inputs<T>(c, a.q, a.k, a.v, a.g, a.gk, a.beta, {}, a.A_log, a.dt_bias, a.dt_bias_k, a.o,
                               o.scale, o.use_qk_l2norm, o.beta_sigmoid, o.allow_neg_eigval);
  p.o = a.o;
  p.tuning = tuning;
  linear_detail::check_options(c, o, {16, 32, 64});
  const auto plan = linear_detail::check_plan(c, a.q, a.cu_seqlens);
  linear_detail::check_state(c, "initial_state", a.initial_state, plan.count(), p.HV, p.K, p.V, "v [B,T,H,V]");
  linear_detail::check_state(c, "final_state", a.final_state, plan.count(), p.HV, p.K, p.V, "v [B,T,H,V]");
  gdr_run<Backend>(p, plan, a.initial_state, a.final_state, o.mode, linear_detail::resolve_chunk(o, gdr_default_chunk),
                   o.run);
}

}  // namespace delta_detail

/// Gated DeltaNet (SPEC §3.1.6): S' = e^{g_t} S_{t-1} (or diag(e^{gk_t}) S_{t-1}); u_t = beta_t (v_t - S'^T k_t);
/// S_t = S' + k_t u_t^T; o_t = S_t^T q~_t, value head j reading q/k head j / (HV/H).
/// Shapes: q, k [B,T,H,K]; v, o [B,T,HV,V]; g, beta [B,T,HV]; gk [B,T,HV,K]; initial_state, final_state
/// [N,HV,K,V] (N = B, or the number of sequences with cu_seqlens [N+1] and B = 1); A_log, dt_bias [HV];
/// dt_bias_k [HV,K].
/// Throws: seqmix::shape_error naming the tensor and axis on mismatched extents, a missing beta, both g and
/// gk, a chunk_size outside {16, 32, 64}, bad cu_seqlens or a non-finite scale.
template <class Backend = simd<>, class T>
void gated_delta_rule(const gated_delta_rule_args<T>& a, const gated_delta_rule_options& o = {}, Backend = {}) {
  delta_detail::gated_delta_rule_tuned<Backend>(a, o, {});
}

/// Gated DeltaNet decode: runs the T (usually 1) new tokens of each batch row on its state slot, in place.
/// Shapes: q, k [B,T,H,K]; v, o [B,T,HV,V]; g, beta [B,T,HV]; gk [B,T,HV,K]; state [N,HV,K,V];
/// state_indices [B] (-1 skips the row and zeroes its output; other slots must not repeat); without
/// state_indices N = B.
/// Throws: seqmix::shape_error on mismatched extents or a state index outside [-1, N).
template <class Backend = simd<>, class T>
void gated_delta_rule_decode(const gated_delta_rule_decode_args<T>& a, const gated_delta_rule_options& o = {},
                             Backend = {}) {
  const check c("gated_delta_rule_decode");
  auto p = delta_detail::gdr_check_inputs<T>(c, a.q, a.k, a.v, a.g, a.gk, a.beta, {}, a.A_log, a.dt_bias,
                                             a.dt_bias_k, a.o, o.scale, o.use_qk_l2norm, o.beta_sigmoid,
                                             o.allow_neg_eigval);
  p.o = a.o;
  const index_t B = a.q.template extent<axis::B>();
  linear_detail::check_decode_slots(c, a.state, a.state_indices, B, "q [B,T,H,K]");
  linear_detail::check_state(c, "state", a.state, a.state.template extent<axis::N>(), p.HV, p.K, p.V, "v [B,T,H,V]");
  delta_detail::gdr_run_decode<Backend>(p, B, a.q.template extent<axis::T>(), a.state, a.state_indices, o.run);
}

}  // namespace seqmix
