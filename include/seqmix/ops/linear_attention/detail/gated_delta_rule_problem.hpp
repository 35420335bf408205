// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_delta_rule_problem.hpp: the resolved (checked) problem of the
// delta-rule ops (delta_rule is gated_delta_rule without a gate), and per-token input readers with the
// in-kernel gate and beta transforms (SPEC §3.1.5, §3.1.6). Shared by the reference and the fast path.
#pragma once

#include <cmath>

#include "../../../core/tensor_view.hpp"
#include "common.hpp"
#include "delta_rule_blas.hpp"

namespace seqmix::delta_detail {

// row loads and stores with dtype conversion: one implementation for the whole linear-attention family
using linear_detail::load_row;
using linear_detail::store_row;

/// Kernel choices that are not API, set per call (never globally) by tests and A/B benchmarks through
/// delta_detail::gated_delta_rule_tuned.
struct gdr_tuning {
  bool per_key_recurrence = false;  ///< scalar gates run the per-key recurrence too (docs/04b-delta-rules.md)
};

/// Everything a delta-rule kernel reads, after the entry point's checks.
template <class T>
struct gdr_problem {
  const_view<T, bthk> q, k;                          // [B,T,H,K]
  const_view<T, bthv> v;                             // [B,T,HV,V]
  const_view<T, bth> g;                              // [B,T,HV] scalar log gate (or raw gate), optional
  const_view<T, bthk> gk;                            // [B,T,HV,K] per-key log gate (KDA), optional
  const_view<T, bth> beta;                           // [B,T,HV], or absent when beta_v is given
  const_view<T, bthv> beta_v;                        // [B,T,HV,V] per-value beta (recurrent only)
  const_view<float, layout<axis::H>> A_log, dt_bias; // [HV]: g = -exp(A_log) softplus(g + dt_bias)
  const_view<float, hk> dt_bias_k;                   // [HV,K] for gk with A_log
  tensor_view<T, bthv> o;                            // [B,T,HV,V]
  index_t H = 0, HV = 0, K = 0, V = 0;
  double scale = 1.0;
  bool l2norm = false;
  bool beta_sigmoid = false;
  double beta_mul = 1.0;  // 2 with allow_neg_eigval
  gdr_tuning tuning{};

  index_t group() const noexcept { return HV / H; }
  bool has_gate() const noexcept { return static_cast<bool>(g) || static_cast<bool>(gk); }
};

/// Scalar log decay of value head j at (b, t) (0 when there is no scalar gate).
template <class F, class T>
SEQMIX_ALWAYS_INLINE F gdr_gate(const gdr_problem<T>& p, index_t b, index_t t, index_t j) noexcept {
  if (!p.g) return F(0);
  F x = static_cast<F>(to_double(p.g(b, t, j)));
  if (!p.A_log) return x;
  if (p.dt_bias) x += static_cast<F>(p.dt_bias(j));
  const F a = std::exp(static_cast<F>(p.A_log(j)));
  if constexpr (std::is_same_v<F, double>) {
    return -a * softplus_d(x);
  } else {
    return -a * softplus_f(x);
  }
}

/// Per-key log decay of value head j, key channel kk, at (b, t).
template <class F, class T>
SEQMIX_ALWAYS_INLINE F gdr_gate_key(const gdr_problem<T>& p, index_t b, index_t t, index_t j, index_t kk) noexcept {
  F x = static_cast<F>(to_double(p.gk(b, t, j, kk)));
  if (!p.A_log) return x;
  if (p.dt_bias_k) x += static_cast<F>(p.dt_bias_k(j, kk));
  const F a = std::exp(static_cast<F>(p.A_log(j)));
  if constexpr (std::is_same_v<F, double>) {
    return -a * softplus_d(x);
  } else {
    return -a * softplus_f(x);
  }
}

/// beta after the optional transform: sigmoid(x) * (2 if allow_neg_eigval).
template <class F>
SEQMIX_ALWAYS_INLINE F gdr_beta_transform(F x, bool sig, double mul) noexcept {
  if (!sig) return x;
  if constexpr (std::is_same_v<F, double>) {
    return sigmoid_d(x) * mul;
  } else {
    return sigmoid_f(x) * static_cast<float>(mul);
  }
}

}  // namespace seqmix::delta_detail
