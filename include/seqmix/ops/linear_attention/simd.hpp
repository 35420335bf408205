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

/// Sequences of at least this many tokens run the rescaled recurrence (its final fold costs about one
/// token); shorter ones (decode steps) the plain step.
inline constexpr index_t rescaled_min_length = 4;

/// Float32 gated problem: chunk form (chunk or auto with long sequences; not with gv) or recurrent.
template <class T, class Arch>
void gated_impl(const gated_problem<T>& p, linear_mode mode, index_t C, const run_context& run, simd<Arch>) {
  const index_t K = p.K, V = p.V, H = p.H, N = p.plan.count();
  if (N == 0 || H == 0) return;
  workspace& ws = run.scratch();
  // Small calls (decode steps, a few tokens: ~3 multiply-adds per state element) run on the calling thread.
  index_t tokens = 0;
  for (index_t n = 0; n < N; ++n) tokens += p.plan[n].length();
  const bool small = 3.0 * static_cast<double>(tokens * H * K * V) < parallel_min_madds;
  const any_executor ex = small ? any_executor(seq) : run.executor;
  const int workers = small ? 1 : std::max(1, run.workers());
  const index_t G = items_per_task(N, H, workers, static_cast<bool>(p.plan.cu));
  const index_t groups = (H + G - 1) / G;
  ws.reserve(workers, gated_bufs::bytes<Arch>(K, V, C, G));
  const float scale = static_cast<float>(p.scale);
  // Decode in place: the recurrent step works on the caller's state rows directly (no copy in or out)
  // when they are contiguous along V and V is a multiple of the SIMD width.
  const bool recurrent_only = mode == linear_mode::recurrent || p.gv ||
                              (mode == linear_mode::auto_ && !linear_policy::auto_uses_chunk(p.plan.T, K, V) &&
                               !p.plan.cu);
  const bool in_place = recurrent_only && p.st.out && p.st.in.data() == p.st.out.data() &&
                        p.st.out.template stride<axis::V>() == 1 && V % simd_width<Arch> == 0 && !p.normalize;
  parallel_for(ex, grid{N, groups}, [&](index_t n, index_t grp, int worker) {
    const seq_desc sd = p.plan[n];
    const index_t slot = p.st.slot(sd.n);
    const index_t h0 = grp * G, h1 = std::min(H, h0 + G);
    if (slot < 0) return zero_skipped(p.o, sd.b, sd.t0, sd.t1, h0, h1);
    const gated_bufs bf = gated_bufs::carve<Arch>(ws.get(worker), ws.bytes_per_worker(), K, V, C, G);
    if (V % simd_width<Arch> != 0) bf.clear_v();
    const auto task = [&](index_t h) {
      if (in_place) {
        return gated_task<Arch, T>{p, bf, p.st.out.ptr(slot, h, 0, 0), bf.zs, sd.b, h, K, V, scale, p.normalize,
                                   sd.t1, p.st.out.template stride<axis::K>()};
      }
      float* S = bf.states + (h - h0) * bf.Kp * bf.Vp;
      float* z = bf.zs + (h - h0) * bf.Kp;
      return gated_task<Arch, T>{p, bf, S, z, sd.b, h, K, V, scale, p.normalize, sd.t1, bf.Vp};
    };
    // Recurrent form: the rescaled recurrence (two FMAs per state element) in blocks of C tokens, heads
    // inner with the next head's block prefetched (as the chunk form: an input row is one page per token);
    // gv and short sequences (decode steps) run the plain step.
    const auto run_recurrent = [&] {
      if (p.gv || sd.length() < rescaled_min_length) {
        for (index_t h = h0; h < h1; ++h) task(h).recurrent(sd.t0, sd.t1);
        return;
      }
      const auto block_end = [&](index_t c0) {  // no short last block
        return sd.t1 - c0 < C + rescaled_min_length ? sd.t1 : c0 + C;
      };
      for (index_t c0 = sd.t0; c0 < sd.t1;) {
        const index_t c1 = block_end(c0);
        for (index_t h = h0; h < h1; ++h) {
          if (h + 1 < h1) {
            const auto nx = task(h + 1);
            task(h).recurrent_rescaled(c0, c1, &nx, c0, c1);
          } else if (c1 < sd.t1) {
            const auto nx = task(h0);
            task(h).recurrent_rescaled(c0, c1, &nx, c1, block_end(c1));
          } else {
            task(h).recurrent_rescaled(c0, c1, nullptr, 0, 0);
          }
        }
        c0 = c1;
      }
    };
    if (in_place) {
      run_recurrent();
      return;
    }
    for (index_t h = h0; h < h1; ++h) {
      const auto tk = task(h);
      for (index_t a = 0; a < K; ++a) {
        float* dst = tk.S + a * bf.Vp;
        if (p.st.in) {
          const float* row = p.st.in.ptr(slot, h, a, 0);
          const index_t sv = p.st.in.template stride<axis::V>();
          if (sv == 1) {
            for (index_t c = 0; c < V; ++c) dst[c] = row[c];
          } else {
            for (index_t c = 0; c < V; ++c) dst[c] = row[c * sv];
          }
        } else {
          for (index_t c = 0; c < V; ++c) dst[c] = 0.0f;
        }
        for (index_t c = V; c < bf.Vp; ++c) dst[c] = 0.0f;
      }
      if (p.normalize) {
        for (index_t a = 0; a < K; ++a) tk.z[a] = p.z.in ? p.z.in(slot, h, a) : 0.0f;
      }
    }
    const bool chunked =
        !p.gv && (mode == linear_mode::chunk ||
                  (mode == linear_mode::auto_ && linear_policy::auto_uses_chunk(sd.length(), K, V)));
    if (chunked) {
      for (index_t c0 = sd.t0; c0 < sd.t1; c0 += C) {
        const index_t L = std::min(C, sd.t1 - c0);
        for (index_t h = h0; h < h1; ++h) {
          const auto tk = task(h);
          // the next unit of work (next head, or the first head of the next chunk) streams in meanwhile
          if (h + 1 < h1) {
            task(h + 1).prefetch(c0, c0 + L);
          } else if (c0 + C < sd.t1) {
            task(h0).prefetch(c0 + C, std::min(sd.t1, c0 + 2 * C));
          }
          if (p.kind == gate_kind::key) {
            tk.chunk_key(c0, L);
          } else {
            tk.chunk_scalar(c0, L);
          }
        }
      }
    } else {
      run_recurrent();
    }
    for (index_t h = h0; h < h1; ++h) {
      const auto tk = task(h);
      if (p.st.out) {
        for (index_t a = 0; a < K; ++a) {
          float* row = p.st.out.ptr(slot, h, a, 0);
          const index_t sv = p.st.out.template stride<axis::V>();
          if (sv == 1) {
            for (index_t c = 0; c < V; ++c) row[c] = tk.S[a * bf.Vp + c];
          } else {
            for (index_t c = 0; c < V; ++c) row[c * sv] = tk.S[a * bf.Vp + c];
          }
        }
      }
      if (p.z.out) {
        for (index_t a = 0; a < K; ++a) p.z.out(slot, h, a) = tk.z[a];
      }
    }
  });
}

}  // namespace seqmix::linear_detail

// Delta-rule float32 kernels (delta_rule, gated_delta_rule, rwkv7).
#include "detail/gated_delta_rule_kernels.hpp"
#include "detail/rwkv7_kernels.hpp"
