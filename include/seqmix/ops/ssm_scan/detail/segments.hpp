// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/segments.hpp: splits the time axis into independent segments (batch rows,
// cu_seqlens sequences, seq_idx runs), each with the state slots it reads and writes.
#pragma once

#include <vector>

#include "../../../config.hpp"
#include "../../../core/index_view.hpp"
#include "../../../core/tensor_view.hpp"
#include "../../../runtime/context.hpp"
#include "../policies.hpp"

namespace seqmix::detail::ssm {

/// Tokens [t0, t1) of batch row b; state starts from slot init (-1: zeros) and is stored to slot fin
/// (-1: not stored).
struct segment {
  index_t b, t0, t1, init, fin;
};

/// One segment per batch row, or one per sequence of cu_seqlens (B = 1), or, with seq_idx [B,L], one per
/// run of equal seq_idx in each row (the row's initial state feeds its first run, its final state is
/// taken after its last run).
inline std::vector<segment> make_segments(index_t batch, index_t len,
                                          index_view<ssm_layouts::i> cu,
                                          index_view<bt> seq_idx = {}) {
  std::vector<segment> s;
  if (cu) {
    const index_t n = cu.extent<axis::I>() - 1;
    for (index_t i = 0; i < n; ++i) s.push_back({0, cu(i), cu(i + 1), i, i});
    return s;
  }
  for (index_t b = 0; b < batch; ++b) {
    if (!seq_idx || len == 0) {
      s.push_back({b, 0, len, b, b});
      continue;
    }
    index_t t0 = 0;
    for (index_t t = 1; t <= len; ++t) {
      if (t == len || seq_idx(b, t) != seq_idx(b, t - 1)) {
        s.push_back({b, t0, t, t0 == 0 ? b : -1, t == len ? b : -1});
        t0 = t;
      }
    }
  }
  return s;
}

/// The executor to use for `work` multiply-adds (seqmix::executor_for).
inline any_executor pick_executor(const run_context& r, double work) { return executor_for(r, work); }

}  // namespace seqmix::detail::ssm
