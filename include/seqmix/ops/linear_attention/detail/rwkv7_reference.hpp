// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/rwkv7_reference.hpp: the resolved RWKV-7 problem and its float64 token
// recurrence (SPEC §3.1.9), any stride: S_t = diag(e^{w_t}) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,
// o_t = S_t^T r~_t.
#pragma once

#include <cmath>
#include <vector>

#include "common.hpp"
#include "gated_delta_rule_reference.hpp"

namespace seqmix::delta_detail {

/// Everything an RWKV-7 kernel reads, after the entry point's checks.
template <class T>
struct rwkv7_problem {
  const_view<T, bthk> r, w, k, a, b;  // [B,T,H,K]
  const_view<T, bthv> v;              // [B,T,H,V]
  tensor_view<T, bthv> o;             // [B,T,H,V]
  index_t H = 0, K = 0, V = 0;
  double scale = 1.0;
};

/// One (sequence, head) task of the reference; state from in[n_in, h], to out[n_out, h].
template <class T>
void rwkv7_reference_job(const rwkv7_problem<T>& p, const linear_detail::seq_desc& s, index_t h, const_state_view in,
                         index_t n_in, state_view out, index_t n_out) {
  const index_t K = p.K, V = p.V;
  std::vector<double> S(static_cast<std::size_t>(K * V), 0.0), hv(V);
  if (in) {
    for (index_t x = 0; x < K; ++x)
      for (index_t y = 0; y < V; ++y) S[x * V + y] = static_cast<double>(in(n_in, h, x, y));
  }
  const index_t b = s.b;
  for (index_t t = s.t0; t < s.t1; ++t) {
    for (index_t y = 0; y < V; ++y) hv[y] = 0;
    for (index_t x = 0; x < K; ++x) {
      const double ax = to_double(p.a(b, t, h, x));
      for (index_t y = 0; y < V; ++y) hv[y] += ax * S[x * V + y];  // a-term sees the undecayed state
    }
    for (index_t x = 0; x < K; ++x) {
      const double d = std::exp(to_double(p.w(b, t, h, x)));
      const double bx = to_double(p.b(b, t, h, x)), kx = to_double(p.k(b, t, h, x));
      for (index_t y = 0; y < V; ++y) S[x * V + y] = d * S[x * V + y] + bx * hv[y] + kx * to_double(p.v(b, t, h, y));
    }
    for (index_t y = 0; y < V; ++y) {
      double acc = 0;
      for (index_t x = 0; x < K; ++x) acc += S[x * V + y] * to_double(p.r(b, t, h, x));
      store_f64(p.o.ptr(b, t, h, y), acc * p.scale);
    }
  }
  if (out) {
    for (index_t x = 0; x < K; ++x)
      for (index_t y = 0; y < V; ++y) out(n_out, h, x, y) = static_cast<float>(S[x * V + y]);
  }
}

}  // namespace seqmix::delta_detail
