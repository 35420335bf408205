// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/simd.hpp: float32 fast paths of the linear-family ops: per (sequence, head)
// tasks running the chunk form (GEMM micro-kernels) or the recurrent form (decode, short sequences).
#pragma once

#include <algorithm>
#include <vector>

#include "../../core/backend.hpp"
#include "detail/common.hpp"
#include "detail/gated_problem.hpp"
#include "detail/gated_simd.hpp"
#include "detail/hgrn.hpp"
#include "policies.hpp"

namespace seqmix::linear_detail {

/// Float32 gated problem: chunk form (chunk or auto with long sequences; not with gv) or recurrent.
template <class T, class Arch>
void gated_impl(const gated_problem<T>& p, linear_mode mode, index_t C, const run_context& run, simd<Arch>) {
  const index_t K = p.K, V = p.V;
  workspace& ws = run.scratch();
  const int workers = std::max(1, run.workers());
  ws.reserve(workers, gated_bufs::bytes<Arch>(K, V, C));
  const float scale = static_cast<float>(p.scale);
  for_each_seq_head(run, p.plan, p.H, [&](const seq_desc& sd, index_t h, int worker) {
    const index_t slot = p.st.slot(sd.n);
    if (slot < 0) return;
    const gated_bufs bf = gated_bufs::carve<Arch>(ws.get(worker), ws.bytes_per_worker(), K, V, C);
    bf.clear(K, V, C);
    if (p.st.in) {
      for (index_t a = 0; a < K; ++a) {
        const float* row = p.st.in.ptr(slot, h, a, 0);
        const index_t sv = p.st.in.template stride<axis::V>();
        for (index_t c = 0; c < V; ++c) bf.S[a * bf.Vp + c] = row[c * sv];
      }
    }
    if (p.normalize) {
      for (index_t a = 0; a < K; ++a) bf.z[a] = p.z.in ? p.z.in(slot, h, a) : 0.0f;
    }
    const gated_task<Arch, T> task{p, bf, sd.b, h, K, V, scale, p.normalize};
    const bool chunked =
        !p.gv && (mode == linear_mode::chunk ||
                  (mode == linear_mode::auto_ && sd.length() >= linear_policy::auto_chunk_min_length));
    if (chunked) {
      for (index_t c0 = sd.t0; c0 < sd.t1; c0 += C) {
        const index_t L = std::min(C, sd.t1 - c0);
        if (p.kind == gate_kind::key) {
          task.chunk_key(c0, L);
        } else {
          task.chunk_scalar(c0, L);
        }
      }
    } else {
      task.recurrent(sd.t0, sd.t1);
    }
    if (p.st.out) {
      for (index_t a = 0; a < K; ++a) {
        float* row = p.st.out.ptr(slot, h, a, 0);
        const index_t sv = p.st.out.template stride<axis::V>();
        for (index_t c = 0; c < V; ++c) row[c * sv] = bf.S[a * bf.Vp + c];
      }
    }
    if (p.z.out) {
      for (index_t a = 0; a < K; ++a) p.z.out(slot, h, a) = bf.z[a];
    }
  });
}

}  // namespace seqmix::linear_detail

// Delta-rule float32 kernels (delta_rule, gated_delta_rule, rwkv7).
#include "detail/gated_delta_rule_kernels.hpp"
#include "detail/rwkv7_kernels.hpp"
