// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/policies.hpp: gates and defaults of the linear-attention family: RetNet's
// per-head decay, default chunk sizes, and the auto-mode crossover (docs/04-linear-attention.md).
#pragma once

#include <cmath>

#include "../../config.hpp"

namespace seqmix::linear_policy {

/// RetNet decay of head h: g = ln(1 - 2^(-5-h)) (SPEC §3.1.3), in float64.
inline double retention_log_decay(index_t h) noexcept {
  return std::log1p(-std::exp2(-5.0 - static_cast<double>(h)));
}

/// Default chunk size of the gated ops (linear_attn, simple_gla, retention, gla, rwkv6, hgrn).
inline constexpr index_t default_chunk = 64;
/// Chunk sizes the gated ops accept (any of them gives the same result within SPEC §6).
inline constexpr index_t allowed_chunks[] = {16, 32, 64, 128};

/// mode auto, measured crossover (docs/04-linear-attention.md §6): the rescaled recurrence (two FMAs per
/// state element) wins at every length up to K = V = 256 (256 KiB state: 1.4x faster than the chunk form at
/// K = V = 128, 1.0-1.2x at 256); at K = 256, V = 512 the chunk form wins (2.1x) from about 1024 tokens.
inline constexpr index_t auto_chunk_min_length = 1024;
inline constexpr index_t auto_recurrent_max_state = 256 * 256;
/// True when mode auto runs the chunk form for a sequence of `length` tokens and a K x V state.
constexpr bool auto_uses_chunk(index_t length, index_t K, index_t V) noexcept {
  return K * V > auto_recurrent_max_state && length >= auto_chunk_min_length;
}

}  // namespace seqmix::linear_policy

// Delta-rule gate and beta transforms (in-kernel softplus gate, sigmoid beta).
#include "detail/gated_delta_rule_problem.hpp"
