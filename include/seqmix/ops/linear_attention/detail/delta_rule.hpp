// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/delta_rule.hpp: public entry points of DeltaNet (SPEC §3.1.5):
// delta_rule (prefill; chunk WY form, recurrent or auto; varlen) and delta_rule_decode. The kernels are
// those of gated_delta_rule with no gate and HV = H.
#pragma once

#include <optional>

#include "gated_delta_rule.hpp"

namespace seqmix {

/// Inputs and outputs of delta_rule. Give beta [B,T,H], or beta_v [B,T,H,V] (per-value, recurrent only).
template <class T>
struct delta_rule_args {
  const_view<T, bthk> q;             ///< [B,T,H,K]
  const_view<T, bthk> k;             ///< [B,T,H,K]
  const_view<T, bthv> v;             ///< [B,T,H,V]
  const_view<T, bth> beta;           ///< [B,T,H] (used as given)
  tensor_view<T, bthv> o;            ///< [B,T,H,V] output
  const_state_view initial_state{};  ///< [N,H,K,V] optional
  state_view final_state{};          ///< [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};      ///< [N+1] optional, B = 1
  const_view<T, bthv> beta_v{};      ///< [B,T,H,V] per-value beta instead of beta (recurrent form only)
};

/// Options of delta_rule and delta_rule_decode.
struct delta_rule_options {
  std::optional<float> scale{};           ///< default 1/sqrt(K)
  linear_mode mode = linear_mode::auto_;  ///< auto_ | chunk | recurrent
  index_t chunk_size = 0;                 ///< 0 = 64; allowed {16, 32, 64}
  bool use_qk_l2norm = false;             ///< q, k <- x / sqrt(sum x^2 + 1e-6) before scaling
  run_context run{};                      ///< executor + workspace
};

/// Inputs and outputs of delta_rule_decode: T new tokens (usually 1) per batch row on state slots.
template <class T>
struct delta_rule_decode_args {
  const_view<T, bthk> q;               ///< [B,T,H,K]
  const_view<T, bthk> k;               ///< [B,T,H,K]
  const_view<T, bthv> v;               ///< [B,T,H,V]
  const_view<T, bth> beta;             ///< [B,T,H]
  tensor_view<T, bthv> o;              ///< [B,T,H,V]
  state_view state;                    ///< [N,H,K,V] in/out
  state_indices_view state_indices{};  ///< [B] slot per row (-1 skips); absent: slot b, N = B
  const_view<T, bthv> beta_v{};        ///< [B,T,H,V] per-value beta instead of beta
};

namespace delta_detail {

/// DeltaNet's checks of delta_rule and delta_rule_decode (HV = H, no gate, beta or beta_v); the resolved problem.
template <class T, class Args>
gdr_problem<T> delta_rule_problem(const check& c, const Args& a, const delta_rule_options& o) {
  c.require(static_cast<bool>(a.q) && static_cast<bool>(a.v), "q and v are required");
  c.extent<axis::H>("v", a.v, a.q.template extent<axis::H>(), "q [B,T,H,K]");
  c.require(!(a.beta && a.beta_v), "beta and beta_v were both given, expected one");
  auto p = gdr_check_inputs<T>(c, a.q, a.k, a.v, {}, {}, a.beta, a.beta_v, {}, {}, {}, a.o, o.scale, o.use_qk_l2norm,
                               false, false);
  p.o = a.o;
  return p;
}

}  // namespace delta_detail

/// DeltaNet (SPEC §3.1.5): u_t = beta_t (v_t - S_{t-1}^T k_t); S_t = S_{t-1} + k_t u_t^T; o_t = S_t^T q~_t.
/// Shapes: q, k [B,T,H,K]; v, o [B,T,H,V]; beta [B,T,H] or beta_v [B,T,H,V]; initial_state, final_state
/// [N,H,K,V] (N = B, or the number of sequences with cu_seqlens [N+1] and B = 1).
/// Throws: seqmix::shape_error on mismatched extents, a missing beta, chunk mode with beta_v, a chunk_size
/// outside {16, 32, 64}, bad cu_seqlens or a non-finite scale.
template <class Backend = simd<>, class T>
void delta_rule(const delta_rule_args<T>& a, const delta_rule_options& o = {}, Backend = {}) {
  const check c("delta_rule");
  auto p = delta_detail::delta_rule_problem<T>(c, a, o);
  c.require(!(a.beta_v && o.mode == linear_mode::chunk), "per-value beta_v has no chunk form, use mode recurrent");
  linear_detail::check_options(c, o, {16, 32, 64});
  const auto plan = linear_detail::check_plan(c, a.q, a.cu_seqlens);
  linear_detail::check_state(c, "initial_state", a.initial_state, plan.count(), p.HV, p.K, p.V, "v [B,T,H,V]");
  linear_detail::check_state(c, "final_state", a.final_state, plan.count(), p.HV, p.K, p.V, "v [B,T,H,V]");
  delta_detail::gdr_run<Backend>(p, plan, a.initial_state, a.final_state, o.mode,
                                 linear_detail::resolve_chunk(o, delta_detail::gdr_default_chunk), o.run);
}

/// DeltaNet decode: runs the T (usually 1) new tokens of each batch row on its state slot, in place.
/// Shapes: q, k [B,T,H,K]; v, o [B,T,H,V]; beta [B,T,H] or beta_v [B,T,H,V]; state [N,H,K,V]; state_indices
/// [B] (-1 skips the row and zeroes its output; other slots must not repeat); without state_indices N = B.
/// Throws: seqmix::shape_error on mismatched extents or a state index outside [-1, N).
template <class Backend = simd<>, class T>
void delta_rule_decode(const delta_rule_decode_args<T>& a, const delta_rule_options& o = {}, Backend = {}) {
  const check c("delta_rule_decode");
  auto p = delta_detail::delta_rule_problem<T>(c, a, o);
  const index_t B = a.q.template extent<axis::B>();
  linear_detail::check_decode_slots(c, a.state, a.state_indices, B, "q [B,T,H,K]");
  linear_detail::check_state(c, "state", a.state, a.state.template extent<axis::N>(), p.HV, p.K, p.V, "v [B,T,H,V]");
  delta_detail::gdr_run_decode<Backend>(p, B, a.q.template extent<axis::T>(), a.state, a.state_indices, o.run);
}

}  // namespace seqmix
