// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_delta_rule_reference.hpp: float64 token recurrence of the delta
// rules (SPEC §3.1.5, §3.1.6), any stride: the yardstick every fast form is tested against.
#pragma once

#include <cmath>
#include <type_traits>
#include <vector>

#include "gated_delta_rule_problem.hpp"

namespace seqmix::delta_detail {

template <class T>
SEQMIX_ALWAYS_INLINE void store_f64(T* p, double x) noexcept {
  if constexpr (std::is_same_v<T, double>) {
    *p = x;
  } else {
    *p = from_float<T>(static_cast<float>(x));
  }
}

/// One (sequence, value head) task: tokens [s.t0, s.t1) of batch row s.b; state read from in[n_in, j]
/// (zeros when in is empty) and written to out[n_out, j] (skipped when out is empty).
template <class T>
void gdr_reference_job(const gdr_problem<T>& p, const linear_detail::seq_desc& s, index_t j, const_state_view in,
                       index_t n_in, state_view out, index_t n_out) {
  const index_t K = p.K, V = p.V;
  const index_t hq = j / p.group();  // GVA: grouped map (SPEC §2.9)
  std::vector<double> S(static_cast<std::size_t>(K * V), 0.0), q(K), k(K), d(K), u(V), pred(V);
  if (in) {
    for (index_t a = 0; a < K; ++a)
      for (index_t c = 0; c < V; ++c) S[a * V + c] = static_cast<double>(in(n_in, j, a, c));
  }
  for (index_t t = s.t0; t < s.t1; ++t) {
    const index_t b = s.b;
    double nq = 0, nk = 0;
    for (index_t a = 0; a < K; ++a) {
      q[a] = to_double(p.q(b, t, hq, a));
      k[a] = to_double(p.k(b, t, hq, a));
      nq += q[a] * q[a];
      nk += k[a] * k[a];
    }
    const double iq = p.l2norm ? 1.0 / std::sqrt(nq + 1e-6) : 1.0;
    const double ik = p.l2norm ? 1.0 / std::sqrt(nk + 1e-6) : 1.0;
    for (index_t a = 0; a < K; ++a) {
      q[a] *= iq * p.scale;
      k[a] *= ik;
    }
    // decay (forget before the error term)
    if (p.gk) {
      for (index_t a = 0; a < K; ++a) d[a] = std::exp(gdr_gate_key<double>(p, b, t, j, a));
    } else {
      const double e = std::exp(gdr_gate<double>(p, b, t, j));
      for (index_t a = 0; a < K; ++a) d[a] = e;
    }
    for (index_t a = 0; a < K; ++a)
      for (index_t c = 0; c < V; ++c) S[a * V + c] *= d[a];
    for (index_t c = 0; c < V; ++c) pred[c] = 0;
    for (index_t a = 0; a < K; ++a)
      for (index_t c = 0; c < V; ++c) pred[c] += S[a * V + c] * k[a];
    const double bs = p.beta ? gdr_beta_transform<double>(to_double(p.beta(b, t, j)), p.beta_sigmoid, p.beta_mul) : 0;
    for (index_t c = 0; c < V; ++c) {
      const double be =
          p.beta ? bs : gdr_beta_transform<double>(to_double(p.beta_v(b, t, j, c)), p.beta_sigmoid, p.beta_mul);
      u[c] = be * (to_double(p.v(b, t, j, c)) - pred[c]);
    }
    for (index_t a = 0; a < K; ++a)
      for (index_t c = 0; c < V; ++c) S[a * V + c] += k[a] * u[c];
    for (index_t c = 0; c < V; ++c) {
      double acc = 0;
      for (index_t a = 0; a < K; ++a) acc += S[a * V + c] * q[a];
      store_f64(p.o.ptr(b, t, j, c), acc);
    }
  }
  if (out) {
    for (index_t a = 0; a < K; ++a)
      for (index_t c = 0; c < V; ++c) out(n_out, j, a, c) = static_cast<float>(S[a * V + c]);
  }
}

}  // namespace seqmix::delta_detail
