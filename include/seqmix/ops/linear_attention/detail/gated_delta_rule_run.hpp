// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_delta_rule_run.hpp: drivers of the delta-rule kernels over the
// (sequence x value head) grid, for prefill (chunk / recurrent / auto) and decode (state slots), on the
// reference or the simd backend.
#pragma once

#include <type_traits>

#include "../../../core/backend.hpp"
#include "gated_delta_rule_kernels.hpp"
#include "gated_delta_rule_reference.hpp"

namespace seqmix::delta_detail {

/// auto_ runs the chunk form for sequences at least this long whose state has more than
/// auto_chunk_min_state elements; up to K = V = 256 the (lazy-decay, token-pair) recurrence is as fast or
/// faster at every length measured on AVX2 (docs/04b-delta-rules.md §7).
inline constexpr index_t gdr_auto_chunk_min = 64;
inline constexpr index_t auto_chunk_min_state = 256 * 256;

/// The executor for a call of `work` state-element updates (tokens x value heads x K x V, about four
/// multiply-adds each): seqmix::executor_for keeps small calls on the calling thread.
inline any_executor pick_executor(const run_context& run, double work) noexcept {
  return executor_for(run, 4 * work);
}

/// Whether a sequence of length len runs the chunk form: mode chunk, or auto_ with len >= min_len and a
/// state above auto_chunk_min_state elements.
inline bool use_chunk(linear_mode mode, index_t len, index_t min_len, index_t K, index_t V) noexcept {
  return mode == linear_mode::chunk ||
         (mode == linear_mode::auto_ && len >= min_len && K * V > auto_chunk_min_state);
}

/// The fast path's task grid (docs/04b-delta-rules.md §6): the heads of each sequence split into as few groups
/// as keep every worker busy; fn(s, j0, j1, scratch) runs heads [j0, j1) of sequence s. group_bytes(G) sizes
/// one worker's scratch for groups of G heads. Small calls run on the calling thread.
template <class GroupBytes, class Fn>
void for_each_head_group(const run_context& run, const linear_detail::seq_plan& plan, index_t heads, index_t K,
                         index_t V, GroupBytes&& group_bytes, Fn&& fn) {
  workspace& ws = run.scratch();
  const index_t N = plan.count();
  const double work = static_cast<double>(plan.T) * static_cast<double>(plan.cu ? 1 : plan.B) *
                      static_cast<double>(heads * K * V);
  const int workers = 4 * work < parallel_min_madds ? 1 : run.workers();
  const index_t G = items_per_task(N, heads, workers, static_cast<bool>(plan.cu));
  const index_t ng = (heads + G - 1) / G;
  ws.reserve(run.workers(), group_bytes(G));
  parallel_for(pick_executor(run, work), grid{N, ng}, [&](index_t n, index_t gi, int worker) {
    const auto s = plan[n];
    const index_t j0 = gi * G, j1 = std::min(heads, j0 + G);
    if (j0 < j1) fn(s, j0, j1, ws.get(worker));
  });
}

template <class Backend, class T>
void gdr_run(const gdr_problem<T>& p, const linear_detail::seq_plan& plan, const_state_view h0, state_view ht,
             linear_mode mode, index_t C, const run_context& run) {
  if constexpr (std::is_same_v<Backend, reference>) {
    (void)mode;
    (void)C;
    linear_detail::for_each_seq_head(run, plan, p.HV, [&](const linear_detail::seq_desc& s, index_t j, int) {
      gdr_reference_job(p, s, j, h0, s.n, ht, s.n);
    });
  } else {
    for_each_head_group(
        run, plan, p.HV, p.K, p.V, [&](index_t G) { return gdr_group_bytes(C, p.K, p.V, G); },
        [&](const linear_detail::seq_desc& s, index_t j0, index_t j1, std::byte* mem) {
          const bool chunked = p.beta && use_chunk(mode, s.length(), gdr_auto_chunk_min, p.K, p.V);
          gdr_fast_group<typename Backend::arch>(p, s, j0, j1, h0, s.n, ht, s.n, chunked, C, mem);
        });
  }
}

/// Decode: batch row b runs its tokens on state slot idx[b] (b without idx; -1 skips the row, whose
/// outputs are set to 0), the state updated in place.
template <class Backend, class T>
void gdr_run_decode(const gdr_problem<T>& p, index_t B, index_t Tn, state_view state, state_indices_view idx,
                    const run_context& run) {
  workspace& ws = run.scratch();
  if constexpr (!std::is_same_v<Backend, reference>) ws.reserve(run.workers(), gdr_scratch::bytes(Tn, p.K, p.V));
  const double work = static_cast<double>(B * Tn) * static_cast<double>(p.HV * p.K * p.V);
  parallel_for_groups(pick_executor(run, work), B, p.HV, [&](index_t b, index_t j, int worker) {
    const index_t slot = idx ? static_cast<index_t>(idx(b)) : b;
    if (slot < 0) return linear_detail::zero_skipped(p.o, b, 0, Tn, j, j + 1);
    const linear_detail::seq_desc s{b, 0, Tn, slot};
    if constexpr (std::is_same_v<Backend, reference>) {
      (void)worker;
      gdr_reference_job(p, s, j, state, slot, state, slot);
    } else {
      gdr_fast_job<typename Backend::arch>(p, s, j, state, slot, state, slot, false, Tn, ws.get(worker));
    }
  });
}

}  // namespace seqmix::delta_detail
