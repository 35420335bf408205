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

/// mode auto: sequences shorter than this run the recurrent form, longer ones the chunk form
/// (measured crossover, docs/04-linear-attention.md).
inline constexpr index_t auto_chunk_min_length = 256;

}  // namespace seqmix::linear_policy

// Delta-rule gate and beta transforms (in-kernel softplus gate, sigmoid beta).
#include "detail/gated_delta_rule_problem.hpp"
