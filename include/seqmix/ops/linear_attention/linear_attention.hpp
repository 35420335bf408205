// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/linear_attention.hpp: the linear-attention family (SPEC §3.1): args and
// options structs, shape checks and public entry points (prefill and decode) of linear_attn, simple_gla,
// retention, gla, rwkv6 and hgrn. Derivations: docs/04-linear-attention.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/check.hpp"
#include "../../core/tensor_view.hpp"
#include "detail/common.hpp"
#include "detail/gated_problem.hpp"
#include "policies.hpp"
#include "reference.hpp"
#include "simd.hpp"

namespace seqmix {

// ==================================================================== options

/// Options of linear_attn: the shared linear_options fields plus `normalize` (SPEC §3.1.1).
struct linear_attn_options {
  std::optional<float> scale{};           ///< default 1/sqrt(K)
  linear_mode mode = linear_mode::auto_;  ///< auto_ | chunk | recurrent
  index_t chunk_size = 0;                 ///< 0 = 64; 16, 32, 64 or 128
  bool normalize = false;                 ///< o_t /= (q~_t . z_t + 1e-10), z_t = z_0 + sum k
  run_context run{};
};
using simple_gla_options = linear_options;
using retention_options = linear_options;
using gla_options = linear_options;
using rwkv6_options = linear_options;
/// Options of hgrn (no scale): mode chunk runs the three-phase blocked scan.
struct hgrn_options {
  linear_mode mode = linear_mode::auto_;
  index_t chunk_size = 0;  ///< 0 = 64
  run_context run{};
};

// ==================================================================== args

/// linear_attn: S_t = S_{t-1} + k_t v_t^T; o_t = S_t^T q~_t (optionally normalized).
template <class T>
struct linear_attn_args {
  const_view<T, bthk> q, k;             // [B,T,H,K]
  const_view<T, bthv> v;                // [B,T,H,V]
  const_state_view initial_state{};     // [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};         // [N+1] optional (B = 1)
  const_view<float, nhk> initial_z{};   // [N,H,K] optional (normalize)
  tensor_view<T, bthv> o{};             // [B,T,H,V]
  state_view final_state{};             // [N,H,K,V] optional
  tensor_view<float, nhk> final_z{};    // [N,H,K] optional (normalize)
};

/// simple_gla: S_t = e^{g_t} S_{t-1} + k_t v_t^T; g [B,T,H] or a constant g_gamma [H].
template <class T>
struct simple_gla_args {
  const_view<T, bthk> q, k;                  // [B,T,H,K]
  const_view<T, bthv> v;                     // [B,T,H,V]
  const_view<T, bth> g{};                    // [B,T,H] log decay (or g_gamma)
  const_view<float, layout<axis::H>> g_gamma{};  // [H] constant log decay (or g)
  const_state_view initial_state{};          // [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};              // [N+1] optional
  tensor_view<T, bthv> o{};                  // [B,T,H,V]
  state_view final_state{};                  // [N,H,K,V] optional
};

/// retention: simple GLA with g_h = ln(1 - 2^(-5-h)).
template <class T>
struct retention_args {
  const_view<T, bthk> q, k;          // [B,T,H,K]
  const_view<T, bthv> v;             // [B,T,H,V]
  const_state_view initial_state{};  // [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};      // [N+1] optional
  tensor_view<T, bthv> o{};          // [B,T,H,V]
  state_view final_state{};          // [N,H,K,V] optional
};

/// gla: S_t = diag(e^{gk_t}) S_{t-1} diag(e^{gv_t}) + k_t v_t^T.
template <class T>
struct gla_args {
  const_view<T, bthk> q, k;          // [B,T,H,K]
  const_view<T, bthv> v;             // [B,T,H,V]
  const_view<T, bthk> gk;            // [B,T,H,K] log decay
  const_view<T, bthv> gv{};          // [B,T,H,V] optional per-value log decay (recurrent form)
  const_state_view initial_state{};  // [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};      // [N+1] optional
  tensor_view<T, bthv> o{};          // [B,T,H,V]
  state_view final_state{};          // [N,H,K,V] optional
};

/// rwkv6: o_t = S_{t-1}^T r~_t + (r~_t . (u * k_t)) v_t; S_t = diag(e^{w_t}) S_{t-1} + k_t v_t^T.
template <class T>
struct rwkv6_args {
  const_view<T, bthk> r, k;          // [B,T,H,K]
  const_view<T, bthv> v;             // [B,T,H,V]
  const_view<T, bthk> w;             // [B,T,H,K] log decay
  const_view<T, hk> u;               // [H,K] bonus
  const_state_view initial_state{};  // [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};      // [N+1] optional
  tensor_view<T, bthv> o{};          // [B,T,H,V]
  state_view final_state{};          // [N,H,K,V] optional
};

/// hgrn: h_t = e^{g_t} h_{t-1} + x_t; o_t = h_t.
template <class T>
struct hgrn_args {
  const_view<T, btd> x, g;                 // [B,T,D]
  const_view<float, nd> initial_state{};   // [N,D] optional
  cu_seqlens_view cu_seqlens{};            // [N+1] optional
  tensor_view<T, btd> o{};                 // [B,T,D]
  tensor_view<float, nd> final_state{};    // [N,D] optional
};

// ==================================================================== checks

namespace linear_detail {

/// q/k [B,T,H,K], v/o [B,T,H,V], cu_seqlens; returns the plan.
template <class Q, class KV, class VV, class O>
seq_plan check_qkvo(const check& c, std::string_view qn, const Q& q, const KV& k, const VV& v, const O& o,
                    cu_seqlens_view cu) {
  c.present(qn, q);
  c.present("k", k);
  c.present("v", v);
  c.present("o", o);
  const std::string from = check::describe(qn, q);
  c.extent<axis::B>("k", k, q.template extent<axis::B>(), from);
  c.extent<axis::T>("k", k, q.template extent<axis::T>(), from);
  c.extent<axis::H>("k", k, q.template extent<axis::H>(), from);
  c.extent<axis::K>("k", k, q.template extent<axis::K>(), from);
  c.extent<axis::B>("v", v, q.template extent<axis::B>(), from);
  c.extent<axis::T>("v", v, q.template extent<axis::T>(), from);
  c.extent<axis::H>("v", v, q.template extent<axis::H>(), from);
  c.same_extent<axis::B>("o", o, "v", v);
  c.same_extent<axis::T>("o", o, "v", v);
  c.same_extent<axis::H>("o", o, "v", v);
  c.same_extent<axis::V>("o", o, "v", v);
  return check_plan(c, q, cu);
}
template <class G, class Q>
void check_same_bthk(const check& c, std::string_view name, const G& g, std::string_view qn, const Q& q) {
  c.present(name, g);
  c.same_extent<axis::B>(name, g, qn, q);
  c.same_extent<axis::T>(name, g, qn, q);
  c.same_extent<axis::H>(name, g, qn, q);
  c.same_extent<axis::K>(name, g, qn, q);
}
/// Prefill states and the decode state / indices.
template <class Q, class VV>
void check_states(const check& c, const_state_view in, state_view out, index_t N, const Q& q, const VV& v) {
  const index_t H = q.template extent<axis::H>(), K = q.template extent<axis::K>(), V = v.template extent<axis::V>();
  check_state(c, "initial_state", in, N, H, K, V, "q [B,T,H,K], v [B,T,H,V]");
  check_state(c, "final_state", out, N, H, K, V, "q [B,T,H,K], v [B,T,H,V]");
}
/// Decode: state [N,H,K,V] in place, slots from state_indices (or b, then N = B).
template <class Q, class VV>
state_io check_decode(const check& c, state_view state, state_indices_view idx, const_state_view init,
                      state_view fin, cu_seqlens_view cu, const Q& q, const VV& v, std::string_view qn = "q") {
  c.require(!init && !fin && !cu, "decode takes `state` (in place) and state_indices; initial_state, "
                                  "final_state and cu_seqlens must be empty");
  const std::string rows = check::describe(qn, q);
  check_decode_slots(c, state, idx, q.template extent<axis::B>(), rows);
  c.extent<axis::H>("state", state, q.template extent<axis::H>(), rows);
  c.extent<axis::K>("state", state, q.template extent<axis::K>(), rows);
  c.extent<axis::V>("state", state, v.template extent<axis::V>(), "v [B,T,H,V]");
  return state_io{state, state, idx};
}

template <class T, class Backend>
void run_gated(const gated_problem<T>& p, linear_mode mode, index_t C, const run_context& run, Backend be) {
  gated_impl(p, mode, C, run, be);
}

}  // namespace linear_detail

// ==================================================================== entry points
//
// Every op has a prefill entry point (`op(args, options, backend)`: initial_state -> final_state, varlen
// through cu_seqlens) and a decode entry point (`op_decode(args, state, state_indices, options, backend)`:
// the recurrent step over the T tokens of each batch row, state [N,H,K,V] updated in place, row b in slot
// state_indices[b] (-1 skips the row and zeroes its o) or slot b with N = B; slots must be distinct).

#define SEQMIX_LINEAR_CHUNKS {16, 32, 64, 128}

namespace linear_detail {
template <class T>
gated_problem<T> linear_attn_problem(const check& c, const linear_attn_args<T>& a, const linear_attn_options& o) {
  gated_problem<T> p;
  p.plan = check_qkvo(c, "q", a.q, a.k, a.v, a.o, a.cu_seqlens);
  check_options(c, o, SEQMIX_LINEAR_CHUNKS);
  const index_t N = p.plan.count(), H = a.q.template extent<axis::H>(), K = a.q.template extent<axis::K>();
  if (a.initial_z) {
    c.extent<axis::N>("initial_z", a.initial_z, N, "number of sequences");
    c.extent<axis::H>("initial_z", a.initial_z, H, "q [B,T,H,K]");
    c.extent<axis::K>("initial_z", a.initial_z, K, "q [B,T,H,K]");
  }
  if (a.final_z) {
    c.extent<axis::N>("final_z", a.final_z, N, "number of sequences");
    c.extent<axis::H>("final_z", a.final_z, H, "q [B,T,H,K]");
    c.extent<axis::K>("final_z", a.final_z, K, "q [B,T,H,K]");
  }
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.o = a.o;
  p.kind = gate_kind::none;
  p.normalize = o.normalize;
  p.z = z_io{a.initial_z, a.final_z};
  p.scale = resolve_scale_f64(o, K);
  p.H = H;
  p.K = K;
  p.V = a.v.template extent<axis::V>();
  return p;
}
template <class T, class Args, class Opt>
gated_problem<T> plain_problem(const check& c, const Args& a, const Opt& o) {
  gated_problem<T> p;
  p.plan = check_qkvo(c, "q", a.q, a.k, a.v, a.o, a.cu_seqlens);
  check_options(c, o, SEQMIX_LINEAR_CHUNKS);
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.o = a.o;
  p.H = a.q.template extent<axis::H>();
  p.K = a.q.template extent<axis::K>();
  p.V = a.v.template extent<axis::V>();
  p.scale = resolve_scale_f64(o, p.K);
  return p;
}
template <class T>
gated_problem<T> simple_gla_problem(const check& c, const simple_gla_args<T>& a, const simple_gla_options& o,
                                    std::vector<double>& gamma) {
  auto p = plain_problem<T>(c, a, o);
  c.require(!a.g != !a.g_gamma, "exactly one of g [B,T,H] and g_gamma [H] must be given");
  if (a.g) {
    c.same_extent<axis::B>("g", a.g, "q", a.q);
    c.same_extent<axis::T>("g", a.g, "q", a.q);
    c.same_extent<axis::H>("g", a.g, "q", a.q);
    p.kind = gate_kind::scalar;
    p.g = a.g;
  } else {
    c.extent<axis::H>("g_gamma", a.g_gamma, p.H, "q [B,T,H,K]");
    gamma.resize(static_cast<std::size_t>(p.H));
    for (index_t h = 0; h < p.H; ++h) gamma[static_cast<std::size_t>(h)] = a.g_gamma(h);
    p.kind = gate_kind::constant;
    p.gamma = gamma.data();
  }
  return p;
}
template <class T>
gated_problem<T> retention_problem(const check& c, const retention_args<T>& a, const retention_options& o,
                                   std::vector<double>& gamma) {
  auto p = plain_problem<T>(c, a, o);
  gamma.resize(static_cast<std::size_t>(p.H));
  for (index_t h = 0; h < p.H; ++h) gamma[static_cast<std::size_t>(h)] = linear_policy::retention_log_decay(h);
  p.kind = gate_kind::constant;
  p.gamma = gamma.data();
  return p;
}
template <class T>
gated_problem<T> gla_problem(const check& c, const gla_args<T>& a, const gla_options& o) {
  auto p = plain_problem<T>(c, a, o);
  check_same_bthk(c, "gk", a.gk, "q", a.q);
  if (a.gv) {
    c.same_extent<axis::B>("gv", a.gv, "v", a.v);
    c.same_extent<axis::T>("gv", a.gv, "v", a.v);
    c.same_extent<axis::H>("gv", a.gv, "v", a.v);
    c.same_extent<axis::V>("gv", a.gv, "v", a.v);
  }
  p.kind = gate_kind::key;
  p.gk = a.gk;
  p.gv = a.gv;
  return p;
}
template <class T>
gated_problem<T> rwkv6_problem(const check& c, const rwkv6_args<T>& a, const rwkv6_options& o) {
  gated_problem<T> p;
  p.plan = check_qkvo(c, "r", a.r, a.k, a.v, a.o, a.cu_seqlens);
  check_options(c, o, SEQMIX_LINEAR_CHUNKS);
  check_same_bthk(c, "w", a.w, "r", a.r);
  c.present("u", a.u);
  c.same_extent<axis::H>("u", a.u, "r", a.r);
  c.same_extent<axis::K>("u", a.u, "r", a.r);
  p.q = a.r;
  p.k = a.k;
  p.v = a.v;
  p.o = a.o;
  p.kind = gate_kind::key;
  p.gk = a.w;
  p.u = a.u;
  p.H = a.r.template extent<axis::H>();
  p.K = a.r.template extent<axis::K>();
  p.V = a.v.template extent<axis::V>();
  p.scale = resolve_scale_f64(o, p.K);
  return p;
}
}  // namespace linear_detail

/// Linear attention (SPEC §3.1.1): S_t = S_{t-1} + k_t v_t^T; o_t = S_t^T q~_t, q~ = scale q; with
/// normalize, o_t /= (q~_t . z_t + 1e-10), z_t = z_0 + sum_{s<=t} k_s (z_0 from initial_z or 0).
/// Shapes: q, k [B,T,H,K]; v, o [B,T,H,V]; initial/final_state [N,H,K,V]; initial/final_z [N,H,K];
/// cu_seqlens [N+1] with B = 1 (else N = B).
/// Throws: seqmix::shape_error naming the tensor and axis when extents, cu_seqlens or options disagree.
template <class Backend = simd<>, class T>
void linear_attn(const linear_attn_args<T>& a, const linear_attn_options& o = {}, Backend be = {}) {
  const check c("linear_attn");
  auto p = linear_detail::linear_attn_problem(c, a, o);
  linear_detail::check_states(c, a.initial_state, a.final_state, p.plan.count(), a.q, a.v);
  p.st = {a.initial_state, a.final_state, {}};
  linear_detail::run_gated(p, o.mode, linear_detail::resolve_chunk(o, linear_policy::default_chunk), o.run, be);
}
/// Decode form of linear_attn: the recurrent step over each row's tokens, `state` updated in place
/// (z carried through initial_z/final_z when normalize; pass the same buffer for both).
/// Shapes: q, k [B,T,H,K] (T = 1 usually); v, o [B,T,H,V]; state [N,H,K,V]; state_indices [B].
/// Throws: seqmix::shape_error when extents disagree, a slot is out of range, or prefill states are set.
template <class Backend = simd<>, class T>
void linear_attn_decode(const linear_attn_args<T>& a, state_view state, state_indices_view state_indices = {},
                        const linear_attn_options& o = {}, Backend be = {}) {
  const check c("linear_attn_decode");
  auto p = linear_detail::linear_attn_problem(c, a, o);
  p.st = linear_detail::check_decode(c, state, state_indices, a.initial_state, a.final_state, a.cu_seqlens, a.q, a.v);
  linear_detail::run_gated(p, linear_mode::recurrent, linear_policy::default_chunk, o.run, be);
}

/// Simple GLA (SPEC §3.1.2): S_t = e^{g_t} S_{t-1} + k_t v_t^T; o_t = S_t^T q~_t; g per (token, head) or
/// a constant g_gamma per head.
/// Shapes: q, k [B,T,H,K]; v, o [B,T,H,V]; g [B,T,H] or g_gamma [H]; states [N,H,K,V]; cu_seqlens [N+1].
/// Throws: seqmix::shape_error when extents disagree or neither/both of g and g_gamma are given.
template <class Backend = simd<>, class T>
void simple_gla(const simple_gla_args<T>& a, const simple_gla_options& o = {}, Backend be = {}) {
  const check c("simple_gla");
  std::vector<double> gamma;
  auto p = linear_detail::simple_gla_problem(c, a, o, gamma);
  linear_detail::check_states(c, a.initial_state, a.final_state, p.plan.count(), a.q, a.v);
  p.st = {a.initial_state, a.final_state, {}};
  linear_detail::run_gated(p, o.mode, linear_detail::resolve_chunk(o, linear_policy::default_chunk), o.run, be);
}
/// Decode form of simple_gla (state in place; see linear_attn_decode).
/// Shapes: as simple_gla; state [N,H,K,V]; state_indices [B]. Throws: seqmix::shape_error.
template <class Backend = simd<>, class T>
void simple_gla_decode(const simple_gla_args<T>& a, state_view state, state_indices_view state_indices = {},
                       const simple_gla_options& o = {}, Backend be = {}) {
  const check c("simple_gla_decode");
  std::vector<double> gamma;
  auto p = linear_detail::simple_gla_problem(c, a, o, gamma);
  p.st = linear_detail::check_decode(c, state, state_indices, a.initial_state, a.final_state, a.cu_seqlens, a.q, a.v);
  linear_detail::run_gated(p, linear_mode::recurrent, linear_policy::default_chunk, o.run, be);
}

/// Retention (SPEC §3.1.3): simple GLA with the per-head decay g_h = ln(1 - 2^(-5-h)).
/// Shapes: q, k [B,T,H,K]; v, o [B,T,H,V]; states [N,H,K,V]; cu_seqlens [N+1].
/// Throws: seqmix::shape_error when extents disagree.
template <class Backend = simd<>, class T>
void retention(const retention_args<T>& a, const retention_options& o = {}, Backend be = {}) {
  const check c("retention");
  std::vector<double> gamma;
  auto p = linear_detail::retention_problem(c, a, o, gamma);
  linear_detail::check_states(c, a.initial_state, a.final_state, p.plan.count(), a.q, a.v);
  p.st = {a.initial_state, a.final_state, {}};
  linear_detail::run_gated(p, o.mode, linear_detail::resolve_chunk(o, linear_policy::default_chunk), o.run, be);
}
/// Decode form of retention (state in place; see linear_attn_decode).
/// Shapes: as retention; state [N,H,K,V]; state_indices [B]. Throws: seqmix::shape_error.
template <class Backend = simd<>, class T>
void retention_decode(const retention_args<T>& a, state_view state, state_indices_view state_indices = {},
                      const retention_options& o = {}, Backend be = {}) {
  const check c("retention_decode");
  std::vector<double> gamma;
  auto p = linear_detail::retention_problem(c, a, o, gamma);
  p.st = linear_detail::check_decode(c, state, state_indices, a.initial_state, a.final_state, a.cu_seqlens, a.q, a.v);
  linear_detail::run_gated(p, linear_mode::recurrent, linear_policy::default_chunk, o.run, be);
}

/// GLA (SPEC §3.1.4): S_t = diag(e^{gk_t}) S_{t-1} diag(e^{gv_t}) + k_t v_t^T; o_t = S_t^T q~_t. The chunk
/// form factors per-channel decays through a reference point (split when a chunk's decay range exceeds
/// the stability bound); with gv the recurrent form runs.
/// Shapes: q, k, gk [B,T,H,K]; v, o, gv [B,T,H,V]; states [N,H,K,V]; cu_seqlens [N+1].
/// Throws: seqmix::shape_error when extents disagree.
template <class Backend = simd<>, class T>
void gla(const gla_args<T>& a, const gla_options& o = {}, Backend be = {}) {
  const check c("gla");
  auto p = linear_detail::gla_problem(c, a, o);
  linear_detail::check_states(c, a.initial_state, a.final_state, p.plan.count(), a.q, a.v);
  p.st = {a.initial_state, a.final_state, {}};
  linear_detail::run_gated(p, o.mode, linear_detail::resolve_chunk(o, linear_policy::default_chunk), o.run, be);
}
/// Decode form of gla (state in place; see linear_attn_decode).
/// Shapes: as gla; state [N,H,K,V]; state_indices [B]. Throws: seqmix::shape_error.
template <class Backend = simd<>, class T>
void gla_decode(const gla_args<T>& a, state_view state, state_indices_view state_indices = {},
                const gla_options& o = {}, Backend be = {}) {
  const check c("gla_decode");
  auto p = linear_detail::gla_problem(c, a, o);
  p.st = linear_detail::check_decode(c, state, state_indices, a.initial_state, a.final_state, a.cu_seqlens, a.q, a.v);
  linear_detail::run_gated(p, linear_mode::recurrent, linear_policy::default_chunk, o.run, be);
}

/// RWKV-6 (SPEC §3.1.8): o_t = S_{t-1}^T r~_t + (r~_t . (u * k_t)) v_t; S_t = diag(e^{w_t}) S_{t-1} + k_t v_t^T.
/// Shapes: r, k, w [B,T,H,K]; u [H,K]; v, o [B,T,H,V]; states [N,H,K,V]; cu_seqlens [N+1].
/// Throws: seqmix::shape_error when extents disagree.
template <class Backend = simd<>, class T>
void rwkv6(const rwkv6_args<T>& a, const rwkv6_options& o = {}, Backend be = {}) {
  const check c("rwkv6");
  auto p = linear_detail::rwkv6_problem(c, a, o);
  linear_detail::check_states(c, a.initial_state, a.final_state, p.plan.count(), a.r, a.v);
  p.st = {a.initial_state, a.final_state, {}};
  linear_detail::run_gated(p, o.mode, linear_detail::resolve_chunk(o, linear_policy::default_chunk), o.run, be);
}
/// Decode form of rwkv6 (state in place; see linear_attn_decode).
/// Shapes: as rwkv6; state [N,H,K,V]; state_indices [B]. Throws: seqmix::shape_error.
template <class Backend = simd<>, class T>
void rwkv6_decode(const rwkv6_args<T>& a, state_view state, state_indices_view state_indices = {},
                  const rwkv6_options& o = {}, Backend be = {}) {
  const check c("rwkv6_decode");
  auto p = linear_detail::rwkv6_problem(c, a, o);
  p.st = linear_detail::check_decode(c, state, state_indices, a.initial_state, a.final_state, a.cu_seqlens, a.r, a.v,
                                    "r");
  linear_detail::run_gated(p, linear_mode::recurrent, linear_policy::default_chunk, o.run, be);
}

namespace linear_detail {
template <class T>
hgrn_problem<T> make_hgrn_problem(const check& c, const hgrn_args<T>& a, const hgrn_options& o) {
  c.present("x", a.x);
  c.present("g", a.g);
  c.present("o", a.o);
  c.same_extent<axis::B>("g", a.g, "x", a.x);
  c.same_extent<axis::T>("g", a.g, "x", a.x);
  c.same_extent<axis::D>("g", a.g, "x", a.x);
  c.same_extent<axis::B>("o", a.o, "x", a.x);
  c.same_extent<axis::T>("o", a.o, "x", a.x);
  c.same_extent<axis::D>("o", a.o, "x", a.x);
  if (o.chunk_size != 0) {
    c.require(o.chunk_size >= 1, "option chunk_size = " + std::to_string(o.chunk_size) + ", expected >= 1");
  }
  hgrn_problem<T> p;
  p.x = a.x;
  p.g = a.g;
  p.o = a.o;
  p.plan = check_plan(c, a.x, a.cu_seqlens);
  p.D = a.x.template extent<axis::D>();
  return p;
}
}  // namespace linear_detail

/// HGRN (SPEC §3.1.7): h_t = e^{g_t} h_{t-1} + x_t; o_t = h_t (no scale). Mode chunk runs a three-phase
/// blocked scan (parallel over T too); recurrent and auto scan token by token, SIMD over D.
/// Shapes: x, g, o [B,T,D]; initial_state, final_state [N,D]; cu_seqlens [N+1] with B = 1.
/// Throws: seqmix::shape_error when extents disagree.
template <class Backend = simd<>, class T>
void hgrn(const hgrn_args<T>& a, const hgrn_options& o = {}, Backend be = {}) {
  const check c("hgrn");
  auto p = linear_detail::make_hgrn_problem(c, a, o);
  const index_t N = p.plan.count();
  if (a.initial_state) {
    c.extent<axis::N>("initial_state", a.initial_state, N, "number of sequences");
    c.same_extent<axis::D>("initial_state", a.initial_state, "x", a.x);
  }
  if (a.final_state) {
    c.extent<axis::N>("final_state", a.final_state, N, "number of sequences");
    c.same_extent<axis::D>("final_state", a.final_state, "x", a.x);
  }
  p.in = a.initial_state;
  p.out = a.final_state;
  linear_detail::hgrn_impl(p, o.mode, o.chunk_size > 0 ? o.chunk_size : linear_policy::default_chunk, o.run, be);
}
/// Decode form of hgrn: state [N,D] updated in place, row b in slot state_indices[b] (-1 skips the row and zeroes
/// its o) or b.
/// Shapes: x, g, o [B,T,D]; state [N,D]; state_indices [B]. Throws: seqmix::shape_error.
template <class Backend = simd<>, class T>
void hgrn_decode(const hgrn_args<T>& a, tensor_view<float, nd> state, state_indices_view state_indices = {},
                 const hgrn_options& o = {}, Backend be = {}) {
  const check c("hgrn_decode");
  auto p = linear_detail::make_hgrn_problem(c, a, o);
  c.require(!a.initial_state && !a.final_state && !a.cu_seqlens,
            "decode takes `state` (in place) and state_indices; initial_state, final_state and cu_seqlens must "
            "be empty");
  linear_detail::check_decode_slots(c, state, state_indices, a.x.template extent<axis::B>(), "x [B,T,D]");
  c.same_extent<axis::D>("state", state, "x", a.x);
  p.in = state;
  p.out = state;
  p.idx = state_indices;
  linear_detail::hgrn_impl(p, linear_mode::recurrent, linear_policy::default_chunk, o.run, be);
}

#undef SEQMIX_LINEAR_CHUNKS

}  // namespace seqmix

// Delta-rule ops (delta_rule, gated_delta_rule, rwkv7): see detail/ and docs/04b-delta-rules.md.
#include "detail/delta_rule.hpp"
#include "detail/gated_delta_rule.hpp"
#include "detail/rwkv7.hpp"
