// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/reference.hpp: float64 token-recurrent definitions of the linear-family ops
// (SPEC §3.1), any stride: the yardstick every fast path is tested against.
#pragma once

#include <cmath>
#include <vector>

#include "../../core/backend.hpp"
#include "detail/common.hpp"
#include "detail/gated_problem.hpp"

namespace seqmix::linear_detail {

/// Float64 recurrence of a gated problem (both modes: the reference has one form).
template <class T>
void gated_impl(const gated_problem<T>& p, linear_mode, index_t, const run_context& run, reference) {
  const index_t K = p.K, V = p.V;
  for_each_seq_head(run, p.plan, p.H, [&](const seq_desc& sd, index_t h, int) {
    const index_t slot = p.st.slot(sd.n);
    if (slot < 0) return zero_skipped(p.o, sd.b, sd.t0, sd.t1, h, h + 1);
    std::vector<double> S(static_cast<std::size_t>(K * V), 0.0), z(static_cast<std::size_t>(K), 0.0);
    std::vector<double> q(static_cast<std::size_t>(K)), kk(static_cast<std::size_t>(K)),
        vv(static_cast<std::size_t>(V)), o(static_cast<std::size_t>(V));
    if (p.st.in) {
      for (index_t a = 0; a < K; ++a)
        for (index_t c = 0; c < V; ++c) S[a * V + c] = p.st.in(slot, h, a, c);
    }
    if (p.z.in) {
      for (index_t a = 0; a < K; ++a) z[a] = p.z.in(slot, h, a);
    }
    for (index_t t = sd.t0; t < sd.t1; ++t) {
      const index_t b = sd.b;
      for (index_t a = 0; a < K; ++a) {
        q[a] = to_double(p.q(b, t, h, a)) * p.scale;
        kk[a] = to_double(p.k(b, t, h, a));
      }
      for (index_t c = 0; c < V; ++c) vv[c] = to_double(p.v(b, t, h, c));
      if (p.bonus()) {  // RWKV-6: o_t = S_{t-1}^T r~ + (r~ . (u * k)) v
        double bon = 0;
        for (index_t a = 0; a < K; ++a) bon += q[a] * to_double(p.u(h, a)) * kk[a];
        for (index_t c = 0; c < V; ++c) {
          double acc = bon * vv[c];
          for (index_t a = 0; a < K; ++a) acc += S[a * V + c] * q[a];
          o[c] = acc;
        }
      }
      double gs = 0;
      if (p.kind == gate_kind::scalar) gs = to_double(p.g(b, t, h));
      if (p.kind == gate_kind::constant) gs = p.gamma[h];
      for (index_t a = 0; a < K; ++a) {
        double d = std::exp(gs);
        if (p.kind == gate_kind::key) d = std::exp(to_double(p.gk(b, t, h, a)));
        for (index_t c = 0; c < V; ++c) {
          double s = S[a * V + c] * d;
          if (p.gv) s *= std::exp(to_double(p.gv(b, t, h, c)));
          S[a * V + c] = s + kk[a] * vv[c];
        }
      }
      if (!p.bonus()) {
        for (index_t c = 0; c < V; ++c) {
          double acc = 0;
          for (index_t a = 0; a < K; ++a) acc += S[a * V + c] * q[a];
          o[c] = acc;
        }
      }
      if (p.normalize) {
        double den = 0;
        for (index_t a = 0; a < K; ++a) {
          z[a] += kk[a];
          den += q[a] * z[a];
        }
        for (index_t c = 0; c < V; ++c) o[c] /= den + 1e-10;
      }
      for (index_t c = 0; c < V; ++c) p.o(b, t, h, c) = from_double<T>(o[c]);
    }
    if (p.st.out) {
      for (index_t a = 0; a < K; ++a)
        for (index_t c = 0; c < V; ++c) p.st.out(slot, h, a, c) = static_cast<float>(S[a * V + c]);
    }
    if (p.z.out) {
      for (index_t a = 0; a < K; ++a) p.z.out(slot, h, a) = static_cast<float>(z[a]);
    }
  });
}

/// Float64 HGRN recurrence h_t = e^{g_t} h_{t-1} + x_t, o_t = h_t.
template <class T>
void hgrn_impl(const hgrn_problem<T>& p, linear_mode, index_t, const run_context& run, reference) {
  const index_t D = p.D;
  parallel_for(run.executor, p.plan.count(), [&](index_t n) {
    const seq_desc sd = p.plan[n];
    const index_t slot = p.slot(n);
    if (slot < 0) return zero_skipped(p.o, sd.b, sd.t0, sd.t1, 0, p.D);
    std::vector<double> hs(static_cast<std::size_t>(D), 0.0);
    if (p.in) {
      for (index_t d = 0; d < D; ++d) hs[d] = p.in(slot, d);
    }
    for (index_t t = sd.t0; t < sd.t1; ++t) {
      for (index_t d = 0; d < D; ++d) {
        hs[d] = std::exp(to_double(p.g(sd.b, t, d))) * hs[d] + to_double(p.x(sd.b, t, d));
        p.o(sd.b, t, d) = from_double<T>(hs[d]);
      }
    }
    if (p.out) {
      for (index_t d = 0; d < D; ++d) p.out(slot, d) = static_cast<float>(hs[d]);
    }
  });
}

}  // namespace seqmix::linear_detail

// Delta-rule float64 references (delta_rule, gated_delta_rule, rwkv7).
#include "detail/gated_delta_rule_reference.hpp"
#include "detail/rwkv7_reference.hpp"
