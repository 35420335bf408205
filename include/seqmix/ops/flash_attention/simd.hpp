// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/simd.hpp: the fast path: FlashAttention-2 style prefill (K/V packed once per
// call, Q tiles x KV tiles, online softmax, masked tiles skipped) and flash-decoding over contiguous or
// paged caches (split-KV across threads, exact log-sum-exp merge). See docs/03-flash-attention.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>
#include <vector>

#include "../../runtime/parallel_for.hpp"
#include "../../runtime/workspace.hpp"
#include "detail/decode_kernels.hpp"
#include "detail/kernels.hpp"
#include "flash_attention.hpp"

namespace seqmix::detail::fa {

/// A growable 64-byte aligned float buffer owned by the calling thread (packed K/V, split partials):
/// allocated once per size, reused by later calls.
inline float* call_buffer(int slot, std::size_t floats) {
  struct del {
    void operator()(float* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
  };
  thread_local std::unique_ptr<float, del> buf[2];
  thread_local std::size_t cap[2] = {0, 0};
  if (floats > cap[slot]) {
    buf[slot].reset(static_cast<float*>(::operator new(floats * sizeof(float), std::align_val_t{64})));
    cap[slot] = floats;
  }
  return buf[slot].get();
}

/// One sequence of a (possibly varlen) batch: queries [q0, q0 + tq) and keys [k0, k0 + tk) of batch row b.
struct segment {
  index_t b = 0, q0 = 0, tq = 0, k0 = 0, tk = 0;
  index_t tile0 = 0;  ///< index of its first packed K/V tile among all segments
};

template <class T>
inline void store_out(T* p, index_t stride, index_t c, float x) noexcept {
  if constexpr (std::is_same_v<T, double>) p[c * stride] = static_cast<double>(x);
  else p[c * stride] = from_float<T>(x);
}

template <class A, class T>
void attention_impl(const attention_args<T>& a, const attention_options& o, simd<A>) {
  const index_t B = a.q.template extent<axis::B>(), Hq = a.q.template extent<axis::H>();
  const index_t D = a.q.template extent<axis::D>(), Dv = a.v.template extent<axis::V>();
  const index_t Hkv = a.k.template extent<axis::H>(), G = Hq / Hkv;
  const index_t Dp = pad8(D), Dvp = pad8(Dv);
  const float scale = static_cast<float>(resolve_scale(o.scale, D));
  const bool varlen = static_cast<bool>(a.cu_seqlens_q);

  std::vector<segment> segs;
  const index_t nseg = varlen ? a.cu_seqlens_q.template extent<axis::I>() - 1 : B;
  segs.reserve(static_cast<std::size_t>(nseg));
  index_t ntiles = 0;
  for (index_t n = 0; n < nseg; ++n) {
    segment s;
    if (varlen) {
      s.q0 = a.cu_seqlens_q(n);
      s.tq = a.cu_seqlens_q(n + 1) - s.q0;
      s.k0 = a.cu_seqlens_k(n);
      s.tk = a.cu_seqlens_k(n + 1) - s.k0;
    } else {
      s.b = n;
      s.tq = a.q.template extent<axis::T>();
      s.tk = a.k.template extent<axis::T>();
    }
    s.tile0 = ntiles;
    ntiles += (s.tk + block_k - 1) / block_k;
    segs.push_back(s);
  }

  const int workers = std::max(1, o.run.workers());
  workspace& ws = o.run.scratch();
  const std::size_t per_worker = arena_bytes<float>(block_q * Dp) + arena_bytes<float>(block_q * block_k) +
                                 arena_bytes<float>(block_q * Dvp) + 4 * arena_bytes<float>(block_q) +
                                 arena_bytes<index_t>(block_q) + arena_bytes<float>(8 * Dp);
  ws.reserve(workers, per_worker);

  // Phase 1: pack K (transposed, panels [block_k/16][Dp][16]) and V (panels [Dvp/16][block_k][16]) once, as float.
  const std::size_t kt_sz = static_cast<std::size_t>(Dp * block_k), v_sz = static_cast<std::size_t>(block_k * Dvp);
  const std::size_t n_all = static_cast<std::size_t>(ntiles * Hkv);
  float* kpack = call_buffer(0, n_all * (kt_sz + v_sz) + n_all);
  float* vpack = kpack + n_all * kt_sz;
  float* vfin = vpack + n_all * v_sz;  // 1 = tile's V all finite
  const index_t kds = a.k.template stride<axis::D>(), vds = a.v.template stride<axis::V>();
  parallel_for(o.run.executor, ntiles * Hkv, [&](index_t i, int w) {
    const index_t h = i / ntiles, gt = i % ntiles;
    const auto it = std::upper_bound(segs.begin(), segs.end(), gt,
                                     [](index_t x, const segment& s) { return x < s.tile0; }) - 1;
    const segment& sg = *it;
    const index_t j0 = (gt - sg.tile0) * block_k, nk = std::min(block_k, sg.tk - j0);
    arena ar(ws.get(w), ws.bytes_per_worker());
    float* tmp = ar.alloc<float>(8 * Dp);
    const std::size_t idx = static_cast<std::size_t>(i);
    pack_kt<T>([&](index_t j) { return a.k.ptr(sg.b, sg.k0 + j0 + j, h, 0); }, nk, D, kds, Dp, kpack + idx * kt_sz, tmp);
    vfin[idx] = pack_v<T>([&](index_t j) { return a.v.ptr(sg.b, sg.k0 + j0 + j, h, 0); }, nk, Dv, vds, Dvp,
                          vpack + idx * v_sz)
                    ? 1.0f
                    : 0.0f;
  });

  // Phase 2: (segment, q tile) tasks, heaviest first, times Hq heads.
  struct qtask {
    index_t seg, qt, cost;
  };
  std::vector<qtask> tasks;
  for (index_t n = 0; n < nseg; ++n) {
    const segment& sg = segs[static_cast<std::size_t>(n)];
    const causal_window_mask mask{sg.tq, sg.tk, o.causal, o.window_left, o.window_right};
    for (index_t qt = 0; qt * block_q < sg.tq; ++qt) {
      const index_t i0 = qt * block_q, i1 = std::min(sg.tq, i0 + block_q);
      index_t cost = 1;
      for (index_t j0 = 0; j0 < sg.tk; j0 += block_k)
        cost += mask.tile(i0, i1, j0, std::min(sg.tk, j0 + block_k)) != tile_kind::skip;
      tasks.push_back({n, qt, cost});
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(), [](const qtask& x, const qtask& y) { return x.cost > y.cost; });

  const index_t qds = a.q.template stride<axis::D>(), ods = a.o.template stride<axis::V>();
  const score_params sp0{static_cast<float>(o.softcap), 0};
  // kv head outer, then q tiles (heaviest first), then the G query heads sharing the kv head: one kv head's
  // packed K/V (2 MiB at T = 2048, D = 128) stays in cache across its tiles, where a q-tile-outer order
  // cycled through all heads' panels (32 MiB for 16 MHA heads: from DRAM, 12% slower)
  const index_t ntask = static_cast<index_t>(tasks.size());
  parallel_for(o.run.executor, ntask * Hq, [&](index_t ti, int w) {
    const index_t hk = ti / (ntask * G), rem = ti % (ntask * G), h = hk * G + rem % G;
    const qtask& tk = tasks[static_cast<std::size_t>(rem / G)];
    const segment& sg = segs[static_cast<std::size_t>(tk.seg)];
    const causal_window_mask mask{sg.tq, sg.tk, o.causal, o.window_left, o.window_right};
    score_params sp = sp0;
    sp.diag_off = sg.tk - sg.tq;
    const index_t i0 = tk.qt * block_q, M = std::min(block_q, sg.tq - i0);

    arena ar(ws.get(w), ws.bytes_per_worker());
    float* qs = ar.alloc<float>(block_q * Dp);
    float* s = ar.alloc<float>(block_q * block_k);
    float* acc = ar.alloc<float>(block_q * Dvp);
    float* m = ar.alloc<float>(block_q);
    float* l = ar.alloc<float>(block_q);
    float* alpha = ar.alloc<float>(block_q);
    float* slope = ar.alloc<float>(block_q);
    index_t* qpos = ar.alloc<index_t>(block_q);

    const float sl = a.alibi_slopes ? a.alibi_slopes(h) : 0.0f;
    for (index_t r = 0; r < M; ++r) {
      (void)convert_row<T>(a.q.ptr(sg.b, sg.q0 + i0 + r, h, 0), D, qds, scale, qs + r * Dp, Dp);
      qpos[r] = i0 + r;
      slope[r] = sl;
      m[r] = neg_inf;
      l[r] = 0.0f;
    }
    std::fill(acc, acc + M * Dvp, 0.0f);

    const key_range first = mask.row_range(i0), last = mask.row_range(i0 + M - 1);
    const index_t t_lo = first.lo / block_k, t_hi = (last.hi + block_k - 1) / block_k;
    for (index_t t = t_lo; t < t_hi; ++t) {
      const index_t j0 = t * block_k, nk = std::min(block_k, sg.tk - j0);
      const tile_kind kind = mask.tile(i0, i0 + M, j0, j0 + nk);
      if (kind == tile_kind::skip) continue;
      const std::size_t idx = static_cast<std::size_t>(hk * ntiles + sg.tile0 + t);
      tile_step<A>(qs, M, Dp, qpos, a.alibi_slopes ? slope : nullptr, kpack + idx * kt_sz, vpack + idx * v_sz,
                   vfin[idx] != 0.0f, j0, nk, kind, mask, sp, Dvp, s, m, l, alpha, acc);
    }
    const float sink = a.sinks ? a.sinks(h) : 0.0f;
    for (index_t r = 0; r < M; ++r) {
      T* op = a.o.ptr(sg.b, sg.q0 + i0 + r, h, 0);
      const float lse = finish_row(acc + r * Dvp, Dv, m[r], l[r], a.sinks ? &sink : nullptr,
                                   [&](index_t c, float x) { store_out(op, ods, c, x); });
      if (a.lse) a.lse(sg.b, h, sg.q0 + i0 + r) = lse;
    }
  });
}

/// Keys per decode chunk (a tile of every kv head): a multiple of the 3-key score blocks holding at most
/// 192 KiB of K and V rows, as the next chunk is prefetched into L2 while this one is computed (two chunks
/// then fit a 512 KiB L2): 48 keys for f16 Hkv = 8 D = 128, 24 for f32.
inline constexpr index_t decode_chunk_max = 48;
inline index_t decode_chunk_for(std::size_t bytes_per_key) noexcept {
  const index_t n = static_cast<index_t>((std::size_t{192} << 10) / std::max<std::size_t>(1, bytes_per_key)) / 3 * 3;
  return std::clamp<index_t>(n, 12, decode_chunk_max);
}

/// Chooses the number of KV splits of a row of `chunks` chunks (out of `total` in the batch): about 4 tasks
/// per worker in all (a multiple of the workers for equal rows), at least 4 chunks per split; the tasks then
/// run longest first.
inline index_t auto_splits(index_t chunks, index_t total, int workers) noexcept {
  if (workers <= 1 || chunks < 8 || total <= 0) return 1;
  const index_t want = workers * std::clamp<index_t>(total / (4 * workers), 1, 4);  // tasks in the batch
  return std::clamp<index_t>((chunks * want + total / 2) / total, 1, chunks / 4);
}

template <class A, class T, class Cache>
void attention_decode_impl(const attention_decode_args<T, Cache>& a, const attention_decode_options& o, simd<A>) {
  using C = typename Cache::storage_type;
  const auto& kc = a.cache;
  const index_t B = a.q.template extent<axis::B>(), Tq = a.q.template extent<axis::T>();
  const index_t Hq = a.q.template extent<axis::H>(), D = a.q.template extent<axis::D>();
  const index_t Dv = kc.v.template extent<axis::V>(), Hkv = kc.k.template extent<axis::H>(), G = Hq / Hkv;
  const index_t Dp = pad8(D), Dvp = pad8(Dv), M = G * Tq;
  const float scale = static_cast<float>(resolve_scale(o.scale, D));
  const int workers = std::max(1, o.run.workers());
  const index_t kds = kc.k.template stride<axis::D>(), vds = kc.v.template stride<axis::V>();
  // direct: rows are contiguous and whole vectors, so the kernels read the storage rows in place
  [[maybe_unused]] const bool direct = SEQMIX_FA_DIRECT_DECODE && direct_storage<C> && kds == 1 && vds == 1 && D % 8 == 0 &&
                      Dv % 8 == 0;

  const index_t chunk = decode_chunk_for(static_cast<std::size_t>(Hkv * (D + Dv)) * sizeof(C));
  [[maybe_unused]] const index_t khs = kc.k.template stride<axis::H>(), vhs = kc.v.template stride<axis::H>();
  struct dtask {
    index_t b, c0, c1;  // chunks [c0, c1) of `chunk` keys, all kv heads
  };
  std::vector<dtask> tasks;
  std::vector<index_t> first_task(static_cast<std::size_t>(B + 1));
  index_t total_chunks = 0;
  for (index_t b = 0; b < B; ++b) total_chunks += (kc.seqlens(b) + chunk - 1) / chunk;
  for (index_t b = 0; b < B; ++b) {
    const index_t L = kc.seqlens(b), chunks = (L + chunk - 1) / chunk;
    const index_t ns = o.num_splits > 0 ? std::clamp<index_t>(o.num_splits, 1, std::max<index_t>(1, chunks))
                                        : auto_splits(chunks, total_chunks, workers);
    first_task[static_cast<std::size_t>(b)] = static_cast<index_t>(tasks.size());
    for (index_t sidx = 0; sidx < ns; ++sidx) tasks.push_back({b, chunks * sidx / ns, chunks * (sidx + 1) / ns});
  }
  first_task[static_cast<std::size_t>(B)] = static_cast<index_t>(tasks.size());
  const index_t ntasks = static_cast<index_t>(tasks.size());
  std::vector<index_t> order(static_cast<std::size_t>(ntasks));  // longest first (rows differ in length)
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t x, index_t y) {
    const dtask &tx = tasks[static_cast<std::size_t>(x)], &ty = tasks[static_cast<std::size_t>(y)];
    return tx.c1 - tx.c0 > ty.c1 - ty.c0;
  });

  // partials per task and kv head: m [M], l [M], acc [M][Dvp]
  const std::size_t part = static_cast<std::size_t>(M * (2 + Dvp));
  float* parts = call_buffer(1, static_cast<std::size_t>(ntasks * Hkv) * part);

  workspace& ws = o.run.scratch();
  const std::size_t per_worker = arena_bytes<float>(Hq * Tq * Dp) + arena_bytes<float>(Hkv * M * block_k) +
                                 arena_bytes<float>(Dp * block_k) + arena_bytes<float>(block_k * Dvp) +
                                 arena_bytes<float>(8 * Dp) + 2 * arena_bytes<float>(M) + arena_bytes<index_t>(M) +
                                 arena_bytes<float>(Dvp) + arena_bytes<const C*>(4 * block_k);
  ws.reserve(workers, per_worker);

  const index_t qds = a.q.template stride<axis::D>();
  parallel_for(o.run.executor, ntasks, [&](index_t oi, int w) {
    const index_t ti = order[static_cast<std::size_t>(oi)];
    const dtask& tk = tasks[static_cast<std::size_t>(ti)];
    const index_t b = tk.b, L = kc.seqlens(b);
    arena ar(ws.get(w), ws.bytes_per_worker());
    float* qs = ar.alloc<float>(Hq * Tq * Dp);  // rows (hk, g, t)
    float* s = ar.alloc<float>(Hkv * M * block_k);  // [Hkv][M][block_k]
    float* kt = ar.alloc<float>(Dp * block_k);
    float* vs = ar.alloc<float>(block_k * Dvp);
    float* tmp = ar.alloc<float>(8 * Dp);
    float* alpha = ar.alloc<float>(M);
    float* slope = ar.alloc<float>(M);
    index_t* qpos = ar.alloc<index_t>(M);
    const C** row_ptrs = ar.alloc<const C*>(4 * block_k);
    for (index_t h = 0; h < Hq; ++h) {
      const index_t hk = h / G, g = h % G;
      for (index_t t = 0; t < Tq; ++t) {
        (void)convert_row<T>(a.q.ptr(b, t, h, 0), D, qds, scale, qs + ((hk * G + g) * Tq + t) * Dp, Dp);
        float* m = parts + static_cast<std::size_t>(ti * Hkv + hk) * part;
        m[g * Tq + t] = neg_inf;
        m[M + g * Tq + t] = 0.0f;
      }
    }
    for (index_t hk = 0; hk < Hkv; ++hk) {
      float* acc = parts + static_cast<std::size_t>(ti * Hkv + hk) * part + 2 * M;
      std::fill(acc, acc + M * Dvp, 0.0f);
    }
    for (index_t r = 0; r < M; ++r) qpos[r] = r % Tq;
    const causal_window_mask mask{Tq, L, true, o.window_left, -1};
    const score_params sp{static_cast<float>(o.softcap), L - Tq};
    [[maybe_unused]] const C** kr = row_ptrs;  // K, V rows (head 0) of the current tile, then of the next
    [[maybe_unused]] const C** vr = row_ptrs + block_k;
    [[maybe_unused]] const C** kn = row_ptrs + 2 * block_k;
    [[maybe_unused]] const C** vn = row_ptrs + 3 * block_k;
    [[maybe_unused]] auto fill_rows = [&](index_t c, const C** kd, const C** vd) {
      const index_t j0 = c * chunk, nk = std::min(chunk, L - j0);
      if constexpr (Cache::paged) {  // walk the pages instead of dividing per key
        const index_t page = kc.k.template extent<axis::T>();
        index_t pg = j0 / page, slot = j0 % page;
        for (index_t j = 0; j < nk; ++j) {
          const index_t blk = kc.block_table(b, pg);
          kd[j] = kc.k.ptr(blk, slot, 0, 0);
          vd[j] = kc.v.ptr(blk, slot, 0, 0);
          if (++slot == page) {
            slot = 0;
            ++pg;
          }
        }
      } else {
        for (index_t j = 0; j < nk; ++j) {
          kd[j] = kc.k.ptr(b, j0 + j, 0, 0);
          vd[j] = kc.v.ptr(b, j0 + j, 0, 0);
        }
      }
      return nk;
    };
    [[maybe_unused]] index_t filled = -1;  // the chunk whose rows kr / vr hold
    for (index_t c = tk.c0; c < tk.c1; ++c) {
      const index_t j0 = c * chunk, nk = std::min(chunk, L - j0);
      const tile_kind kind = mask.tile(0, Tq, j0, j0 + nk);
      if (kind == tile_kind::skip) continue;
      auto slopes_of = [&](index_t hk) -> const float* {
        if (!a.alibi_slopes) return nullptr;
        for (index_t r = 0; r < M; ++r) slope[r] = a.alibi_slopes(hk * G + r / Tq);
        return slope;
      };
#if SEQMIX_FA_DIRECT_DECODE
      if constexpr (direct_storage<C>) {
        if (direct && kind == tile_kind::full) {
          // Row pointers (head 0) of this tile and the next; the kernels prefetch the next tile's rows
          // while they compute this one (scores: K in memory order; P V: V head by head).
          if (filled != c) {  // a task's first chunk (or one after a skipped / partial chunk): fetch it now
            fill_rows(c, kr, vr);
            for (index_t j = 0; j < nk; ++j)
              for (index_t hk = 0; hk < Hkv; ++hk) {
                prefetch_span(kr[j] + hk * khs, static_cast<std::size_t>(D) * sizeof(C));
                prefetch_span(vr[j] + hk * vhs, static_cast<std::size_t>(Dv) * sizeof(C));
              }
          }
          index_t npf = 0;
          if (c + 1 < tk.c1 && mask.tile(0, Tq, j0 + chunk, std::min(L, j0 + 2 * chunk)) != tile_kind::skip)
            npf = fill_rows(c + 1, kn, vn);
          qk_direct<C>(qs, Dp, M, Hkv, kr, khs, nk, D, s, kn, npf);
          for (index_t hk = 0; hk < Hkv; ++hk) {
            float* m = parts + static_cast<std::size_t>(ti * Hkv + hk) * part;
            float* sh = s + hk * M * block_k;
            softmax_tile<A>(sh, M, qpos, slopes_of(hk), j0, nk, kind, mask, sp, m, m + M, alpha);
            pv_direct<C>(sh, M, vr, hk * vhs, nk, Dv, Dvp, alpha, m + 2 * M, vn, npf);
          }
          std::swap(kr, kn);
          std::swap(vr, vn);
          filled = npf > 0 ? c + 1 : -1;
          continue;
        }
      }
#endif
      for (index_t hk = 0; hk < Hkv; ++hk) {
        float* m = parts + static_cast<std::size_t>(ti * Hkv + hk) * part;
        pack_kt<C>([&](index_t j) { return kc.k_row(b, j0 + j, hk); }, nk, D, kds, Dp, kt, tmp);
        const bool fin = pack_v<C>([&](index_t j) { return kc.v_row(b, j0 + j, hk); }, nk, Dv, vds, Dvp, vs);
        tile_step<A>(qs + hk * M * Dp, M, Dp, qpos, slopes_of(hk), kt, vs, fin, j0, nk, kind, mask, sp, Dvp, s, m,
                     m + M, alpha, m + 2 * M);
      }
    }
  });

  // Exact merge of the splits: m* = max m_s, l = sum l_s e^{m_s - m*}, acc = sum acc_s e^{m_s - m*};
  // equivalently lse = log sum_s exp(lse_s), o = sum_s exp(lse_s - lse) o_s.
  // (cheap: B * Hq * Tq * Dv per split, so it runs on the calling thread with worker 0's scratch)
  const index_t ods = a.o.template stride<axis::V>();
  parallel_for(seq, B * Hkv, [&](index_t bh, int w) {
    const index_t b = bh / Hkv, hk = bh % Hkv;
    const index_t s0 = first_task[static_cast<std::size_t>(b)], s1 = first_task[static_cast<std::size_t>(b + 1)];
    auto pm_of = [&](index_t si) { return parts + static_cast<std::size_t>(si * Hkv + hk) * part; };
    arena ar(ws.get(w), ws.bytes_per_worker());
    float* acc = ar.alloc<float>(Dvp);
    for (index_t g = 0; g < G; ++g) {
      const index_t h = hk * G + g;
      for (index_t t = 0; t < Tq; ++t) {
        const index_t r = g * Tq + t;
        float mm = neg_inf;
        bool nan = false;
        for (index_t si = s0; si < s1; ++si) {
          const float ms = pm_of(si)[r];
          if (std::isnan(ms)) nan = true;
          else mm = std::max(mm, ms);
        }
        if (nan) mm = std::numeric_limits<float>::quiet_NaN();
        float l = 0.0f;
        std::fill(acc, acc + Dv, 0.0f);
        if (mm != neg_inf) {
          for (index_t si = s0; si < s1; ++si) {
            const float* pm = pm_of(si);
            const float ms = pm[r];
            if (ms == neg_inf) continue;
            const float f = std::exp(ms - mm);
            l += pm[M + r] * f;
            const float* pa = pm + 2 * M + r * Dvp;
            for (index_t c = 0; c < Dv; ++c) acc[c] += pa[c] * f;
          }
        }
        const float sink = a.sinks ? a.sinks(h) : 0.0f;
        T* op = a.o.ptr(b, t, h, 0);
        const float lse = finish_row(acc, Dv, mm, l, a.sinks ? &sink : nullptr,
                                     [&](index_t c, float x) { store_out(op, ods, c, x); });
        if (a.lse) a.lse(b, h, t) = lse;
      }
    }
  });
}

}  // namespace seqmix::detail::fa
