// SPDX-License-Identifier: Apache-2.0
// tests/support/linear_attention_gated.hpp: random problems for the gated linear-family ops (linear_attn,
// simple_gla, retention, gla, rwkv6) and one call helper that runs any of them on views.
#pragma once

#include <string>
#include <vector>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "support.hpp"

namespace seqmix::testing {

enum class gated_op { linear_attn, linear_attn_norm, simple_gla, simple_gla_gamma, retention, gla, gla_gv, rwkv6 };

inline std::string op_name(gated_op op) {
  switch (op) {
    case gated_op::linear_attn: return "linear_attn";
    case gated_op::linear_attn_norm: return "linear_attn(normalize)";
    case gated_op::simple_gla: return "simple_gla";
    case gated_op::simple_gla_gamma: return "simple_gla(g_gamma)";
    case gated_op::retention: return "retention";
    case gated_op::gla: return "gla";
    case gated_op::gla_gv: return "gla(gv)";
    default: return "rwkv6";
  }
}
inline const std::vector<gated_op>& all_gated_ops() {
  static const std::vector<gated_op> ops = {gated_op::linear_attn, gated_op::linear_attn_norm, gated_op::simple_gla,
                                            gated_op::simple_gla_gamma, gated_op::retention, gated_op::gla,
                                            gated_op::gla_gv, gated_op::rwkv6};
  return ops;
}

struct gated_shape {
  index_t B, T, H, K, V;
};

/// Input views of one gated problem (any storage); slice_t() cuts tokens [t0, t1).
template <class T>
struct gated_inputs {
  const_view<T, bthk> q, k, gk;
  const_view<T, bthv> v, gv;
  const_view<T, bth> g;
  const_view<float, layout<axis::H>> gamma;
  const_view<T, hk> u;

  gated_inputs slice_t(index_t t0, index_t t1) const {
    gated_inputs s = *this;
    s.q = q.template slice<axis::T>(t0, t1);        // [B,t,H,K]
    s.k = k.template slice<axis::T>(t0, t1);        // [B,t,H,K]
    s.gk = gk.template slice<axis::T>(t0, t1);      // [B,t,H,K]
    s.v = v.template slice<axis::T>(t0, t1);        // [B,t,H,V]
    s.gv = gv.template slice<axis::T>(t0, t1);      // [B,t,H,V]
    s.g = g.template slice<axis::T>(t0, t1);        // [B,t,H]
    return s;
  }
  gated_inputs slice_b(index_t b0, index_t b1) const {
    gated_inputs s = *this;
    s.q = q.template slice<axis::B>(b0, b1);        // [b,T,H,K]
    s.k = k.template slice<axis::B>(b0, b1);        // [b,T,H,K]
    s.gk = gk.template slice<axis::B>(b0, b1);      // [b,T,H,K]
    s.v = v.template slice<axis::B>(b0, b1);        // [b,T,H,V]
    s.gv = gv.template slice<axis::B>(b0, b1);      // [b,T,H,V]
    s.g = g.template slice<axis::B>(b0, b1);        // [b,T,H]
    return s;
  }
};

/// Owning random problem. gate_lo / gate_hi bound the log decays (per step).
template <class T, class StorageK = bthk, class StorageV = bthv>
struct gated_data {
  tensor<T, bthk> q, k, gk;
  tensor<T, bthv> v, gv;
  tensor<T, bth> g;
  tensor<float, layout<axis::H>> gamma;
  tensor<T, hk> u;
  tensor<float, nhkv> h0;

  gated_data(const gated_shape& s, rng& r, double gate_lo = -0.3, double gate_hi = -0.01, bool permuted = false)
      : q(make<bthk, StorageK>({s.B, s.T, s.H, s.K}, permuted)),
        k(make<bthk, StorageK>({s.B, s.T, s.H, s.K}, permuted)),
        gk(make<bthk, StorageK>({s.B, s.T, s.H, s.K}, permuted)),
        v(make<bthv, StorageV>({s.B, s.T, s.H, s.V}, permuted)),
        gv(make<bthv, StorageV>({s.B, s.T, s.H, s.V}, permuted)),
        g({s.B, s.T, s.H}),
        gamma(extents<layout<axis::H>>{s.H}),
        u({s.H, s.K}),
        h0({s.B, s.H, s.K, s.V}) {
    q.uniform(r, -1, 1);
    k.uniform(r, -1, 1);
    v.uniform(r, -1, 1);
    gk.uniform(r, gate_lo, gate_hi);
    gv.uniform(r, gate_lo, gate_hi);
    g.uniform(r, gate_lo, gate_hi);
    gamma.uniform(r, gate_lo, gate_hi);
    u.uniform(r, -1, 1);
    h0.uniform(r, -1, 1);
  }
  /// linear_attn with normalize: positive q and k (as feature maps give), so q~ . z stays away from 0.
  gated_data& for_op(gated_op op, rng& r) {
    if (op == gated_op::linear_attn_norm) {
      q.uniform(r, 0.05, 1.0);
      k.uniform(r, 0.05, 1.0);
    }
    return *this;
  }
  template <class L, class S>
  static tensor<T, L> make(extents<L> e, bool permuted) {
    if (permuted) return tensor<T, L>::template permuted<S>(e);
    return tensor<T, L>(e);
  }
  gated_inputs<T> inputs() const {
    return {q.cview(), k.cview(), gk.cview(), v.cview(), gv.cview(), g.cview(), gamma.cview(), u.cview()};
  }
};

/// Runs `op` on the views (prefill form).
template <class Backend, class T>
void run_gated(gated_op op, const gated_inputs<T>& in, tensor_view<T, bthv> o, const_state_view h0,
               state_view ht, cu_seqlens_view cu, linear_mode mode, index_t chunk = 0, Backend be = {}) {
  const linear_options lo{.mode = mode, .chunk_size = chunk};
  switch (op) {
    case gated_op::linear_attn:
    case gated_op::linear_attn_norm:
      linear_attn(linear_attn_args<T>{.q = in.q, .k = in.k, .v = in.v, .initial_state = h0, .cu_seqlens = cu,
                                      .o = o, .final_state = ht},
                  {.mode = mode, .chunk_size = chunk, .normalize = op == gated_op::linear_attn_norm}, be);
      break;
    case gated_op::simple_gla:
      simple_gla(simple_gla_args<T>{.q = in.q, .k = in.k, .v = in.v, .g = in.g, .initial_state = h0,
                                    .cu_seqlens = cu, .o = o, .final_state = ht},
                 lo, be);
      break;
    case gated_op::simple_gla_gamma:
      simple_gla(simple_gla_args<T>{.q = in.q, .k = in.k, .v = in.v, .g_gamma = in.gamma, .initial_state = h0,
                                    .cu_seqlens = cu, .o = o, .final_state = ht},
                 lo, be);
      break;
    case gated_op::retention:
      retention(retention_args<T>{.q = in.q, .k = in.k, .v = in.v, .initial_state = h0, .cu_seqlens = cu, .o = o,
                                  .final_state = ht},
                lo, be);
      break;
    case gated_op::gla:
    case gated_op::gla_gv:
      gla(gla_args<T>{.q = in.q, .k = in.k, .v = in.v, .gk = in.gk,
                      .gv = op == gated_op::gla_gv ? in.gv : const_view<T, bthv>{}, .initial_state = h0,
                      .cu_seqlens = cu, .o = o, .final_state = ht},
          lo, be);
      break;
    default:
      rwkv6(rwkv6_args<T>{.r = in.q, .k = in.k, .v = in.v, .w = in.gk, .u = in.u, .initial_state = h0,
                          .cu_seqlens = cu, .o = o, .final_state = ht},
            lo, be);
      break;
  }
}

/// Runs the decode form of `op` (state in place).
template <class Backend, class T>
void run_gated_decode(gated_op op, const gated_inputs<T>& in, tensor_view<T, bthv> o, state_view state,
                      state_indices_view idx, Backend be = {}) {
  switch (op) {
    case gated_op::linear_attn:
    case gated_op::linear_attn_norm:
      linear_attn_decode(linear_attn_args<T>{.q = in.q, .k = in.k, .v = in.v, .o = o}, state, idx, {}, be);
      break;
    case gated_op::simple_gla:
      simple_gla_decode(simple_gla_args<T>{.q = in.q, .k = in.k, .v = in.v, .g = in.g, .o = o}, state, idx, {}, be);
      break;
    case gated_op::simple_gla_gamma:
      simple_gla_decode(simple_gla_args<T>{.q = in.q, .k = in.k, .v = in.v, .g_gamma = in.gamma, .o = o}, state, idx,
                        {}, be);
      break;
    case gated_op::retention:
      retention_decode(retention_args<T>{.q = in.q, .k = in.k, .v = in.v, .o = o}, state, idx, {}, be);
      break;
    case gated_op::gla:
    case gated_op::gla_gv:
      gla_decode(gla_args<T>{.q = in.q, .k = in.k, .v = in.v, .gk = in.gk,
                             .gv = op == gated_op::gla_gv ? in.gv : const_view<T, bthv>{}, .o = o},
                 state, idx, {}, be);
      break;
    default:
      rwkv6_decode(rwkv6_args<T>{.r = in.q, .k = in.k, .v = in.v, .w = in.gk, .u = in.u, .o = o}, state, idx, {}, be);
      break;
  }
}

}  // namespace seqmix::testing
