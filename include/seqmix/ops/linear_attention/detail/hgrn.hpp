// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/hgrn.hpp: float32 HGRN scan h_t = e^{g_t} h_{t-1} + x_t, recurrent
// (SIMD over channels) and chunked (three-phase blocked scan, parallel over T as well).
#pragma once

#include <algorithm>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../../../core/backend.hpp"
#include "../../../simd/load_store.hpp"
#include "../../../simd/math.hpp"
#include "common.hpp"
#include "gated_problem.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::linear_detail {

/// Channels per task: one block per worker and sequence, but at least 8 KiB of each row (or the whole row).
/// The scan is memory-bound, and this machine streams whole [T,D] rows far better than parts of them: one
/// thread over D = 2048 floats took 2.4-3.0 ms as one block and 6.6 ms as two (T = 2048); at D = 4096 two
/// threads on 8 KiB halves took 10.2 ms against 14.1 for one thread on whole rows (docs/04 §5).
inline constexpr index_t hgrn_block_max = 8192;
template <class T>
inline index_t hgrn_block_for(index_t D, int workers) noexcept {
  const index_t per_worker = (D + workers - 1) / std::max(1, workers);
  const index_t min_run = std::min<index_t>(D, 8192 / static_cast<index_t>(sizeof(T)));
  const index_t b = (std::max(per_worker, min_run) + 63) / 64 * 64;
  return std::clamp<index_t>(b, 64, hgrn_block_max);
}

/// Runs h <- e^{g_t} h + x_t over tokens [t0, t1) for channels [d0, d0 + n) of batch row b; writes o when
/// `write`; accumulates the decay product into P when P != nullptr. h, P hold n floats. Contiguous rows of
/// any storage type run in batches (vec::load / vec::store; no software prefetch: the rows stream).
template <class Arch, class T>
void hgrn_run(const hgrn_problem<T>& p, index_t b, index_t t0, index_t t1, index_t d0, index_t n, float* h,
              float* P, bool write) noexcept {
  using F = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(F::size);
  const index_t sx = p.x.template stride<axis::D>(), sg = p.g.template stride<axis::D>(),
                so = p.o.template stride<axis::D>();
  const bool vec_ok = sx == 1 && sg == 1 && (!write || so == 1);
  for (index_t t = t0; t < t1; ++t) {
    const T* x = p.x.ptr(b, t, d0);
    const T* g = p.g.ptr(b, t, d0);
    T* o = p.o.ptr(b, t, d0);
    index_t d = 0;
    if (vec_ok) {
      for (; d + W <= n; d += W) {
        const F e = vec::exp(vec::load<Arch>(g + d));
        const F hv = xsimd::fma(e, F::load_unaligned(h + d), vec::load<Arch>(x + d));
        hv.store_unaligned(h + d);
        if (write) vec::store<Arch>(o + d, hv);
        if (P) (F::load_unaligned(P + d) * e).store_unaligned(P + d);
      }
    }
    for (; d < n; ++d) {
      const float e = vec::exp<Arch>(to_float(g[d * sg]));
      h[d] = e * h[d] + to_float(x[d * sx]);
      if (write) o[d * so] = from_float<T>(h[d]);
      if (P) P[d] *= e;
    }
  }
}

/// Float32 HGRN: recurrent (mode recurrent / auto) or the three-phase chunked scan (mode chunk).
template <class T, class Arch>
void hgrn_impl(const hgrn_problem<T>& p, linear_mode mode, index_t C, const run_context& run, simd<Arch>) {
  const index_t D = p.D, N = p.plan.count();
  const index_t blkw = hgrn_block_for<T>(D, std::max(1, run.workers())), nb = (D + blkw - 1) / blkw;
  auto load_h = [&](index_t slot, index_t d0, index_t n, float* h) {
    for (index_t d = 0; d < n; ++d) h[d] = p.in ? p.in(slot, d0 + d) : 0.0f;
  };
  auto store_h = [&](index_t slot, index_t d0, index_t n, const float* h) {
    if (!p.out) return;
    for (index_t d = 0; d < n; ++d) p.out(slot, d0 + d) = h[d];
  };
  if (mode != linear_mode::chunk) {
    parallel_for(run.executor, grid{N, nb}, [&](index_t s, index_t blk) {
      const seq_desc sd = p.plan[s];
      const index_t slot = p.slot(s);
      const index_t d0 = blk * blkw, n = std::min(blkw, D - d0);
      if (slot < 0) return zero_skipped(p.o, sd.b, sd.t0, sd.t1, d0, d0 + n);
      alignas(64) float h[hgrn_block_max];
      load_h(slot, d0, n, h);
      hgrn_run<Arch>(p, sd.b, sd.t0, sd.t1, d0, n, h, nullptr, true);
      store_h(slot, d0, n, h);
    });
    return;
  }
  // Chunked: (a) per chunk from zero: local end state E and decay product P; (b) per sequence, chunk-start
  // states H_c = P_{c-1} H_{c-1} + E_{c-1}; (c) per chunk, the recurrence from H_c writes o.
  struct piece {
    index_t s, t0, t1;
  };
  std::vector<piece> pieces;
  std::vector<index_t> first(static_cast<std::size_t>(N + 1));
  for (index_t s = 0; s < N; ++s) {
    const seq_desc sd = p.plan[s];
    first[static_cast<std::size_t>(s)] = static_cast<index_t>(pieces.size());
    for (index_t c0 = sd.t0; c0 < sd.t1; c0 += C) pieces.push_back({s, c0, std::min(sd.t1, c0 + C)});
  }
  first[static_cast<std::size_t>(N)] = static_cast<index_t>(pieces.size());
  const index_t np = static_cast<index_t>(pieces.size());
  std::vector<float> E(static_cast<std::size_t>(np * D)), P(static_cast<std::size_t>(np * D)),
      Hs(static_cast<std::size_t>(np * D));
  parallel_for(run.executor, grid{np, nb}, [&](index_t i, index_t blk) {
    const piece& pc = pieces[static_cast<std::size_t>(i)];
    const index_t d0 = blk * blkw, n = std::min(blkw, D - d0);
    float* e = E.data() + i * D + d0;
    float* pr = P.data() + i * D + d0;
    std::fill(e, e + n, 0.0f);
    std::fill(pr, pr + n, 1.0f);
    hgrn_run<Arch>(p, p.plan[pc.s].b, pc.t0, pc.t1, d0, n, e, pr, false);
  });
  parallel_for(run.executor, grid{N, nb}, [&](index_t s, index_t blk) {
    const index_t slot = p.slot(s);
    if (slot < 0) return;
    const index_t d0 = blk * blkw, n = std::min(blkw, D - d0);
    alignas(64) float h[hgrn_block_max];
    load_h(slot, d0, n, h);
    for (index_t i = first[static_cast<std::size_t>(s)]; i < first[static_cast<std::size_t>(s + 1)]; ++i) {
      float* hs = Hs.data() + i * D + d0;
      const float* e = E.data() + i * D + d0;
      const float* pr = P.data() + i * D + d0;
      for (index_t d = 0; d < n; ++d) {
        hs[d] = h[d];
        h[d] = pr[d] * h[d] + e[d];
      }
    }
    store_h(slot, d0, n, h);
  });
  parallel_for(run.executor, grid{np, nb}, [&](index_t i, index_t blk) {
    const piece& pc = pieces[static_cast<std::size_t>(i)];
    const index_t d0 = blk * blkw, n = std::min(blkw, D - d0);
    if (p.slot(pc.s) < 0) return zero_skipped(p.o, p.plan[pc.s].b, pc.t0, pc.t1, d0, d0 + n);
    alignas(64) float h[hgrn_block_max];
    std::copy(Hs.data() + i * D + d0, Hs.data() + i * D + d0 + n, h);
    hgrn_run<Arch>(p, p.plan[pc.s].b, pc.t0, pc.t1, d0, n, h, nullptr, true);
  });
}

}  // namespace seqmix::linear_detail
SEQMIX_DIAG_POP
