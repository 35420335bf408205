// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_problem.hpp: one internal description of the gated linear
// recurrences (linear_attn, simple_gla, retention, gla, rwkv6): S <- diag(e^gk) e^g S diag(e^gv) + k v^T,
// output from the updated state (or RWKV-6's bonus form). Reference and fast paths both run it.
#pragma once

#include <cstdint>

#include "common.hpp"

namespace seqmix::linear_detail {

/// Kind of decay gate of a gated problem.
enum class gate_kind {
  none,      ///< no decay (linear_attn)
  scalar,    ///< g [B,T,H] (simple_gla)
  constant,  ///< one log decay per head, gamma[h] (simple_gla g_gamma, retention)
  key,       ///< gk [B,T,H,K] per key channel (gla; rwkv6's w)
};

/// Where the state of sequence n comes from and goes to: prefill (initial_state -> final_state, row n)
/// or decode (one state tensor updated in place, row state_indices[n] or n; -1 skips the sequence).
struct state_io {
  const_state_view in{};
  state_view out{};
  state_indices_view idx{};
  index_t slot(index_t n) const noexcept { return idx ? static_cast<index_t>(idx(n)) : n; }
};

/// Optional normalizer carry of linear_attn (z [N,H,K]).
struct z_io {
  const_view<float, nhk> in{};
  tensor_view<float, nhk> out{};
};

/// A gated linear recurrence over a plan of sequences, every head independent.
template <class T>
struct gated_problem {
  const_view<T, bthk> q, k;    // [B,T,H,K]
  const_view<T, bthv> v;       // [B,T,H,V]
  gate_kind kind = gate_kind::none;
  const_view<T, bth> g{};      // [B,T,H]    (scalar)
  const double* gamma = nullptr;  // [H]     (constant)
  const_view<T, bthk> gk{};    // [B,T,H,K]  (key)
  const_view<T, bthv> gv{};    // [B,T,H,V]  optional per-value gate (gla)
  const_view<T, hk> u{};       // [H,K]      rwkv6 bonus; given = bonus form (output before update)
  bool normalize = false;      // linear_attn
  z_io z{};
  tensor_view<T, bthv> o;      // [B,T,H,V]
  seq_plan plan{};
  state_io st{};
  double scale = 1.0;
  index_t H = 0, K = 0, V = 0;

  bool bonus() const noexcept { return u.data() != nullptr; }
};

/// HGRN's elementwise recurrence h_t = e^{g_t} h_{t-1} + x_t over a plan of sequences.
template <class T>
struct hgrn_problem {
  const_view<T, btd> x, g;            // [B,T,D]
  tensor_view<T, btd> o;              // [B,T,D]
  const_view<float, nd> in{};         // [N,D]
  tensor_view<float, nd> out{};       // [N,D]
  state_indices_view idx{};           // decode slots
  seq_plan plan{};
  index_t D = 0;
  index_t slot(index_t n) const noexcept { return idx ? static_cast<index_t>(idx(n)) : n; }
};

}  // namespace seqmix::linear_detail
