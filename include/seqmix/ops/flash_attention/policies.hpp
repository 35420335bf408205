// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/policies.hpp: attention mask policies (bottom-right causal, sliding windows)
// with a tile-skip hook, shared by the reference, the tiled fast path and (later) sparse attention.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>

#include "../../config.hpp"

namespace seqmix {

/// What a mask says about a rectangle of queries x keys: nothing kept (skip it), everything kept (no
/// per-element masking), or some kept (mask element by element).
enum class tile_kind { skip, full, partial };

/// Kept keys of one query row, [lo, hi) (empty when lo >= hi).
struct key_range {
  index_t lo = 0;
  index_t hi = 0;
};

/// A mask policy: keep(i, j) is the definition; tile(i0, i1, j0, j1) classifies the rectangle
/// [i0, i1) x [j0, j1) so tiled kernels skip whole tiles (it may answer `partial` conservatively, never
/// `skip` or `full` wrongly); row_range(i) bounds the kept keys of row i (exact when is_interval).
/// Query indices i are in [0, tq), key indices j in [0, tk) of one sequence's frame.
template <class M>
concept mask_policy = requires(const M& m, index_t i, index_t j) {
  { m.keep(i, j) } -> std::convertible_to<bool>;
  { m.tile(i, i, j, j) } -> std::same_as<tile_kind>;
  { m.row_range(i) } -> std::same_as<key_range>;
  { M::is_interval } -> std::convertible_to<bool>;
};

/// Causal (bottom-right aligned, SPEC §2.6) and/or sliding window (SPEC §2.7) mask of one sequence:
/// query i keeps key j iff 0 <= j < tk, (!causal or j <= i + tk - tq), and
/// i + tk - tq - wl <= j <= i + tk - tq + wr (wl, wr = -1: unbounded on that side).
/// Every row keeps an interval of keys whose ends never decrease with i, so tiles are classified
/// from their corner rows.
struct causal_window_mask {
  static constexpr bool is_interval = true;
  static constexpr bool skips_tiles = true;

  index_t tq = 0, tk = 0;
  bool causal = false;
  index_t window_left = -1, window_right = -1;

  /// The diagonal of row i: key i + tk - tq.
  constexpr index_t diag(index_t i) const noexcept { return i + tk - tq; }

  constexpr key_range row_range(index_t i) const noexcept {
    const index_t d = diag(i);
    index_t lo = window_left >= 0 ? d - window_left : 0;
    index_t hi = tk;
    if (causal) hi = std::min(hi, d + 1);
    if (window_right >= 0) hi = std::min(hi, d + window_right + 1);
    lo = std::max<index_t>(lo, 0);
    return {lo, std::max(lo, hi)};
  }
  constexpr bool keep(index_t i, index_t j) const noexcept {
    const key_range r = row_range(i);
    return j >= r.lo && j < r.hi;
  }
  /// Rows [i0, i1) x keys [j0, j1) (both non-empty).
  constexpr tile_kind tile(index_t i0, index_t i1, index_t j0, index_t j1) const noexcept {
    if (i1 <= i0 || j1 <= j0) return tile_kind::skip;
    const key_range first = row_range(i0), last = row_range(i1 - 1);
    // ends are non-decreasing in i: the union is [first.lo, last.hi), the intersection
    // [last.lo, first.hi) — but empty rows (lo == hi) break the union bound, so check them.
    if (j1 <= first.lo || j0 >= last.hi) return tile_kind::skip;
    if (last.lo <= j0 && first.hi >= j1 && first.lo < first.hi) return tile_kind::full;
    return tile_kind::partial;
  }
};
static_assert(mask_policy<causal_window_mask>);

/// ALiBi slopes as ggml computes them for max_bias (SPEC §3.3.1): n2 = 2^floor(log2 H),
/// m0 = 2^(-max_bias/n2), m1 = 2^(-max_bias/(2 n2)); slope_h = m0^(h+1) if h < n2 else m1^(2(h-n2)+1).
/// Shapes: out [H] (contiguous, H = heads).
/// Throws: nothing.
inline void alibi_slopes(float* out, index_t heads, double max_bias = 8.0) noexcept {
  index_t n2 = 1;
  while (n2 * 2 <= heads) n2 *= 2;
  const double m0 = std::pow(2.0, -max_bias / static_cast<double>(n2));
  const double m1 = std::pow(2.0, -max_bias / (2.0 * static_cast<double>(n2)));
  for (index_t h = 0; h < heads; ++h) {
    out[h] = static_cast<float>(h < n2 ? std::pow(m0, static_cast<double>(h + 1))
                                       : std::pow(m1, static_cast<double>(2 * (h - n2) + 1)));
  }
}

}  // namespace seqmix
