// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/delta_rule_stage.hpp: double-buffered, token-major staging of the input
// and output rows of a delta-rule task (one sequence, a group of heads), shared by Gated DeltaNet and RWKV-7.
// See docs/04b-delta-rules.md §6.
#pragma once

#include <algorithm>
#include <cstddef>

#include "../../../runtime/workspace.hpp"
#include "delta_rule_blas.hpp"

namespace seqmix::delta_detail {

/// Tokens per staged chunk (at least): a task visits each head of its group for this many tokens at a time.
/// 32 and 16 measured alike, 64 slower (the double buffer of 32 heads outgrows what the L3 keeps).
inline constexpr index_t stage_tokens = 32;

/// Staged chunk length for chunk size C (a multiple of C, so chunks never straddle two stages).
constexpr index_t stage_chunk(index_t C) noexcept { return (std::max(stage_tokens, C) + C - 1) / C * C; }
/// How many (token, head) items ahead the staging copy prefetches its input rows.
inline constexpr index_t stage_prefetch = 8;

/// A task computes chunk n head by head (head-major) from one buffer, while chunk n + 1's input rows are
/// copied into the other buffer and chunk n - 1's output rows are written back, both in token-major order:
/// one (token, head) per pump(). [B,T,H,D] rows of consecutive heads are contiguous, so those copies stream
/// (the hardware prefetcher follows them), whereas a head-major walk reads one short row per page at a
/// stride of H * D elements, which thrashes the cache sets and runs at a quarter of the DRAM bandwidth.
///
/// load(t, g, dst) writes the in_row floats of token t, head g of the group (padding included);
/// store(t, g, src) writes the out_row floats of token t, head g back; load.prefetch(t, g) prefetches the rows
/// that load(t, g) will read.
template <class Load, class Store>
class stage_pipe {
 public:
  static std::size_t bytes(index_t G, index_t Tc, index_t in_row, index_t out_row) noexcept {
    return 2 * arena_bytes<float>(G * Tc * in_row) + 2 * arena_bytes<float>(G * Tc * out_row);
  }

  /// Tokens [t0, t1) in chunks of Tc; mem holds bytes(G, Tc, in_row, out_row). With zero, the input buffers
  /// are zeroed first (rows with padding: load writes the real entries only). Stages the first chunk.
  stage_pipe(index_t t0, index_t t1, index_t G, index_t Tc, index_t in_row, index_t out_row, std::byte* mem,
             bool zero, Load load, Store store) noexcept
      : load_(load), store_(store), t1_(t1), G_(G), Tc_(Tc), in_row_(in_row), out_row_(out_row) {
    arena ar(mem, bytes(G, Tc, in_row, out_row));
    for (auto*& b : in_) b = ar.alloc<float>(G * Tc * in_row);
    for (auto*& b : out_) b = ar.alloc<float>(G * Tc * out_row);
    if (zero)
      for (auto* b : in_) std::fill_n(b, G * Tc * in_row, 0.0f);
    cur_t_ = t0;
    cur_c_ = std::min(Tc, t1 - t0);
    next_t_ = cur_t_ + cur_c_;
    next_c_ = std::min(Tc, t1 - next_t_);
    for (index_t j = 0; j < G * cur_c_; ++j) load_(cur_t_ + j / G, j % G, in_[0] + (j % G * Tc + j / G) * in_row);
  }

  index_t t() const noexcept { return cur_t_; }  ///< first token of the current chunk
  index_t c() const noexcept { return cur_c_; }  ///< its length (0: done)
  const float* in(index_t g, index_t i) const noexcept { return in_[slot_] + (g * Tc_ + i) * in_row_; }
  float* out(index_t g, index_t i) const noexcept { return out_[slot_] + (g * Tc_ + i) * out_row_; }

  /// Stages one (token, head) of the next chunk and writes back one of the previous chunk.
  SEQMIX_ALWAYS_INLINE void pump() noexcept {
    if (jin_ < G_ * next_c_) {
      if (const index_t jp = jin_ + stage_prefetch; jp < G_ * next_c_) load_.prefetch(next_t_ + jp / G_, jp % G_);
      load_(next_t_ + jin_ / G_, jin_ % G_, in_[slot_ ^ 1] + (jin_ % G_ * Tc_ + jin_ / G_) * in_row_);
      ++jin_;
    }
    if (jout_ < G_ * prev_c_) {
      store_(prev_t_ + jout_ / G_, jout_ % G_, out_[slot_ ^ 1] + (jout_ % G_ * Tc_ + jout_ / G_) * out_row_);
      ++jout_;
    }
  }

  /// Finishes the copies and moves to the next chunk (c() == 0 after the last one, whose outputs are then
  /// written back).
  void advance() noexcept {
    while (jin_ < G_ * next_c_ || jout_ < G_ * prev_c_) pump();
    prev_t_ = cur_t_;
    prev_c_ = cur_c_;
    cur_t_ = next_t_;
    cur_c_ = next_c_;
    next_t_ = cur_t_ + cur_c_;
    next_c_ = std::min(Tc_, t1_ - next_t_);
    jin_ = jout_ = 0;
    slot_ ^= 1;
    if (cur_c_ == 0) {
      while (jout_ < G_ * prev_c_) pump();
      prev_c_ = 0;
    }
  }

 private:
  Load load_;
  Store store_;
  index_t t1_, G_, Tc_, in_row_, out_row_;
  float* in_[2];
  float* out_[2];
  int slot_ = 0;
  index_t cur_t_ = 0, cur_c_ = 0, next_t_ = 0, next_c_ = 0, prev_t_ = 0, prev_c_ = 0;
  index_t jin_ = 0, jout_ = 0;
};

}  // namespace seqmix::delta_detail
