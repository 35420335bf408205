// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/scan_simd.hpp: Mamba-1 selective scan, vectorised across channels (one
// batch of channels per task, state [N] batches in L1), sequential in time over tiles of TS tokens.
#pragma once

#include <algorithm>
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "../../../core/backend.hpp"
#include "../../../runtime/parallel_for.hpp"
#include "../../../runtime/workspace.hpp"
#include "../../../simd/prefetch.hpp"
#include "../../../simd/transpose.hpp"
#include "args.hpp"
#include "segments.hpp"
#include "vmath.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::detail::ssm {

inline constexpr index_t scan_tile = 64;  // tokens per time tile

/// Reads rows src(c, t0..t0+n) for c < nc into dst[t*W + c] (lanes >= nc get `fill`).
template <class A, class T>
inline void gather_rows(const_view<T, bdl> v, index_t b, index_t d0, index_t nc, index_t t0, index_t n, float* dst,
                        float fill) noexcept {
  constexpr index_t W = static_cast<index_t>(fbatch<A>::size);
  const index_t sd = v.template stride<axis::D>(), sl = v.template stride<axis::L>();
  const T* base = v.ptr(b, d0, t0);
#if defined(__AVX__)
  if constexpr (W % 8 == 0 && !std::is_same_v<T, double>) {
    if (sl == 1 && nc == W) {  // 8x8 transposes, W / 8 channel groups (AVX-512: 2); bf16/f16 widen first
      using A8 = vec::narrow_arch<A>;
      for (index_t c0 = 0; c0 < W; c0 += 8) {
        index_t t = 0;
        for (; t + 8 <= n; t += 8) {
          if constexpr (std::is_same_v<T, float>) {
            vec::transpose8(base + c0 * sd + t, sd, dst + t * W + c0, W);
          } else {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = vec::load<A8>(base + (c0 + i) * sd + t);
            vec::transpose8(r);
            for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (t + i) * W + c0, r[i]);
          }
        }
        for (; t < n; ++t)
          for (index_t c = 0; c < 8; ++c) dst[t * W + c0 + c] = to_float(base[(c0 + c) * sd + t]);
      }
      return;
    }
  }
#endif
  for (index_t c = 0; c < W; ++c) {
    if (c < nc) {
      const T* row = base + c * sd;
      for (index_t t = 0; t < n; ++t) dst[t * W + c] = to_float(row[t * sl]);
    } else {
      for (index_t t = 0; t < n; ++t) dst[t * W + c] = fill;
    }
  }
}

/// Prefetches rows v(c, t0..t0+n), c < nc, into L2 when they are contiguous: the next tile's u, delta, z
/// (and out, for writing) are requested while this tile is scanned; 32 concurrent row streams are too
/// many for the hardware prefetchers (without this: +3.5 ms of 25 at D=2048 T=2048). Not into L1: rows
/// 2^k apart share L1 sets (measured 15% slower).
template <class T>
SEQMIX_ALWAYS_INLINE void prefetch_rows(const_view<T, bdl> v, index_t b, index_t d0, index_t nc, index_t t0, index_t n,
                                        bool write = false) noexcept {
  if (!v || n <= 0 || v.template stride<axis::L>() != 1) return;
  const index_t sd = v.template stride<axis::D>();
  const char* base = reinterpret_cast<const char*>(v.ptr(b, d0, t0));
  const auto bytes = static_cast<std::size_t>(n) * sizeof(T);
  for (index_t c = 0; c < nc; ++c) {
    const char* row = base + c * sd * static_cast<index_t>(sizeof(T));
    if (write) vec::prefetch_bytes<vec::prefetch_hint::write>(row, bytes);
    else vec::prefetch_bytes<vec::prefetch_hint::l2>(row, bytes);
  }
}

/// Writes src[t*W + c] to rows out(c, t0..t0+n), c < nc.
template <class A, class T>
inline void scatter_rows(tensor_view<T, bdl> v, index_t b, index_t d0, index_t nc, index_t t0, index_t n,
                         const float* src) noexcept {
  constexpr index_t W = static_cast<index_t>(fbatch<A>::size);
  const index_t sd = v.template stride<axis::D>(), sl = v.template stride<axis::L>();
  T* base = v.ptr(b, d0, t0);
#if defined(__AVX__)
  if constexpr (W % 8 == 0 && !std::is_same_v<T, double>) {
    if (sl == 1 && nc == W) {  // 8x8 transposes, W / 8 channel groups (AVX-512: 2); bf16/f16 round after
      using A8 = vec::narrow_arch<A>;
      for (index_t c0 = 0; c0 < W; c0 += 8) {
        index_t t = 0;
        for (; t + 8 <= n; t += 8) {
          if constexpr (std::is_same_v<T, float>) {
            vec::transpose8(src + t * W + c0, W, base + c0 * sd + t, sd);
          } else {
            __m256 r[8];
            for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (t + i) * W + c0);
            vec::transpose8(r);
            for (int i = 0; i < 8; ++i) vec::store<A8>(base + (c0 + i) * sd + t, fbatch<A8>(r[i]));
          }
        }
        for (; t < n; ++t)
          for (index_t c = 0; c < 8; ++c) base[(c0 + c) * sd + t] = from_float<T>(src[t * W + c0 + c]);
      }
      return;
    }
  }
#endif
  for (index_t c = 0; c < nc; ++c) {
    T* row = base + c * sd;
    for (index_t t = 0; t < n; ++t) row[t * sl] = from_float<T>(src[t * W + c]);
  }
}

/// The time loop of one tile. BU/CU: B/C are one scalar per (t, n) at bp[t*bts + n*bns], broadcast to
/// all lanes; otherwise one batch per (t, n) at bp + t*bts + n*W (bts = 0: time-invariant).
template <class A, bool BU, bool CU>
inline void scan_tile_loop(index_t nt, index_t N, const float* SEQMIX_RESTRICT dtb, const float* SEQMIX_RESTRICT ub,
                           const float* SEQMIX_RESTRICT Av, const float* SEQMIX_RESTRICT bp, index_t bts,
                           index_t bns, const float* SEQMIX_RESTRICT cp, index_t cts, index_t cns,
                           float* SEQMIX_RESTRICT xs, float* SEQMIX_RESTRICT yb) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  auto bval = [&](index_t t, index_t n) {
    if constexpr (BU) return Bt(bp[t * bts + n * bns]);
    else return Bt::load_aligned(bp + t * bts + n * W);
  };
  auto cval = [&](index_t t, index_t n) {
    if constexpr (CU) return Bt(cp[t * cts + n * cns]);
    else return Bt::load_aligned(cp + t * cts + n * W);
  };
  for (index_t t = 0; t < nt; ++t) {
    const Bt dt = Bt::load_aligned(dtb + t * W);
    const Bt du = dt * Bt::load_aligned(ub + t * W);
    Bt y0(0.0f), y1(0.0f), y2(0.0f), y3(0.0f);
    index_t n = 0;
    for (; n + 4 <= N; n += 4) {
      const Bt e0 = vexp2<A>(dt * Bt::load_aligned(Av + (n + 0) * W));
      const Bt e1 = vexp2<A>(dt * Bt::load_aligned(Av + (n + 1) * W));
      const Bt e2 = vexp2<A>(dt * Bt::load_aligned(Av + (n + 2) * W));
      const Bt e3 = vexp2<A>(dt * Bt::load_aligned(Av + (n + 3) * W));
      const Bt x0 = xsimd::fma(Bt::load_aligned(xs + (n + 0) * W), e0, du * bval(t, n + 0));
      const Bt x1 = xsimd::fma(Bt::load_aligned(xs + (n + 1) * W), e1, du * bval(t, n + 1));
      const Bt x2 = xsimd::fma(Bt::load_aligned(xs + (n + 2) * W), e2, du * bval(t, n + 2));
      const Bt x3 = xsimd::fma(Bt::load_aligned(xs + (n + 3) * W), e3, du * bval(t, n + 3));
      x0.store_aligned(xs + (n + 0) * W);
      x1.store_aligned(xs + (n + 1) * W);
      x2.store_aligned(xs + (n + 2) * W);
      x3.store_aligned(xs + (n + 3) * W);
      y0 = xsimd::fma(x0, cval(t, n + 0), y0);
      y1 = xsimd::fma(x1, cval(t, n + 1), y1);
      y2 = xsimd::fma(x2, cval(t, n + 2), y2);
      y3 = xsimd::fma(x3, cval(t, n + 3), y3);
    }
    for (; n < N; ++n) {
      const Bt e = vexp2<A>(dt * Bt::load_aligned(Av + n * W));
      const Bt x = xsimd::fma(Bt::load_aligned(xs + n * W), e, du * bval(t, n));
      x.store_aligned(xs + n * W);
      y0 = xsimd::fma(x, cval(t, n), y0);
    }
    ((y0 + y1) + (y2 + y3)).store_aligned(yb + t * W);
  }
}

/// The time loop of one tile when all lanes share B and C (one group), read as rows: B(t, n) =
/// bp[n*bns + t*bts], C likewise. Loop order n-pair outer, t inner: the two states stay in registers for
/// the whole tile; yb [nt][W] holds D*u on entry and accumulates C.h. dub = dt*u. Fast: the caller has
/// checked that every dt*A*log2(e) of the tile is finite and in [-125, 125] (vexp2_unchecked's domain).
/// exp2(dt * a) of one state batch: a plain function, not a lambda, so that it is inlined in every
/// translation unit (g++ 12 left a lambda out of line in the parity tool: 31 vs 24 ms).
template <class A, bool Fast>
SEQMIX_ALWAYS_INLINE fbatch<A> scan_decay(fbatch<A> dt, fbatch<A> a) noexcept {
  if constexpr (Fast) return vexp2_unchecked<A>(dt, a);
  else return vexp2<A>(dt * a);
}

template <class A, bool Fast>
inline void scan_rows_loop(index_t nt, index_t N, const float* SEQMIX_RESTRICT dtb, const float* SEQMIX_RESTRICT dub,
                           const float* SEQMIX_RESTRICT Av, const float* SEQMIX_RESTRICT bp, index_t bns,
                           index_t bts, const float* SEQMIX_RESTRICT cp, index_t cns, index_t cts,
                           float* SEQMIX_RESTRICT xs, float* SEQMIX_RESTRICT yb) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  index_t n = 0;
  for (; n + 2 <= N; n += 2) {
    const Bt a0 = Bt::load_aligned(Av + n * W), a1 = Bt::load_aligned(Av + (n + 1) * W);
    Bt h0 = Bt::load_aligned(xs + n * W), h1 = Bt::load_aligned(xs + (n + 1) * W);
    const float* b0 = bp + n * bns;
    const float* b1 = b0 + bns;
    const float* c0 = cp + n * cns;
    const float* c1 = c0 + cns;
    for (index_t t = 0; t < nt; ++t) {
      const Bt dt = Bt::load_aligned(dtb + t * W), du = Bt::load_aligned(dub + t * W);
      h0 = xsimd::fma(h0, scan_decay<A, Fast>(dt, a0), du * Bt(b0[t * bts]));
      h1 = xsimd::fma(h1, scan_decay<A, Fast>(dt, a1), du * Bt(b1[t * bts]));
      Bt y = Bt::load_aligned(yb + t * W);
      y = xsimd::fma(h0, Bt(c0[t * cts]), y);
      y = xsimd::fma(h1, Bt(c1[t * cts]), y);
      y.store_aligned(yb + t * W);
    }
    h0.store_aligned(xs + n * W);
    h1.store_aligned(xs + (n + 1) * W);
  }
  if (n < N) {
    const Bt a0 = Bt::load_aligned(Av + n * W);
    Bt h0 = Bt::load_aligned(xs + n * W);
    const float* b0 = bp + n * bns;
    const float* c0 = cp + n * cns;
    for (index_t t = 0; t < nt; ++t) {
      const Bt dt = Bt::load_aligned(dtb + t * W), du = Bt::load_aligned(dub + t * W);
      h0 = xsimd::fma(h0, scan_decay<A, Fast>(dt, a0), du * Bt(b0[t * bts]));
      xsimd::fma(h0, Bt(c0[t * cts]), Bt::load_aligned(yb + t * W)).store_aligned(yb + t * W);
    }
    h0.store_aligned(xs + n * W);
  }
}

template <class Arch, class T>
void selective_scan_impl(const selective_scan_args<T>& a, const selective_scan_options& o, simd<Arch>) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  constexpr index_t TS = scan_tile;
  const index_t Bn = a.u.template extent<axis::B>(), Dn = a.u.template extent<axis::D>();
  const index_t L = a.u.template extent<axis::L>(), N = a.A.template extent<axis::N>();
  const index_t G = a.B ? a.B.template extent<axis::G>() : (a.C ? a.C.template extent<axis::G>() : 1);
  const index_t dpg = Dn / G;
  const auto segs = make_segments(Bn, L, a.cu_seqlens);
  const index_t ns = static_cast<index_t>(segs.size()), nblk = (Dn + W - 1) / W;

  // per worker: u, dt, z, y tiles [TS][W]; B, C tiles [TS][N][W] (lane form); A, state, fixed B/C [N][W]
  const std::size_t bytes = 4 * arena_bytes<float>(TS * W) + 2 * arena_bytes<float>(TS * N * W) +
                            3 * arena_bytes<float>(N * W) + arena_bytes<float>(N * W);
  workspace& ws = o.run.scratch();
  ws.reserve(std::max(1, o.run.workers()), bytes);

  const any_executor ex = pick_executor(o.run, static_cast<double>(Bn) * Dn * std::max<index_t>(L, 1) * N);
  parallel_for(ex, grid{ns, nblk}, [&](index_t si, index_t blk, int worker) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b, d0 = blk * W, nc = std::min(W, Dn - d0);
    arena ar(ws.get(worker), ws.bytes_per_worker());
    float* ub = ar.alloc<float>(TS * W);   // [TS][W]
    float* dtb = ar.alloc<float>(TS * W);  // [TS][W]
    float* zb = ar.alloc<float>(TS * W);   // [TS][W]
    float* yb = ar.alloc<float>(TS * W);   // [TS][W]
    float* bb = ar.alloc<float>(TS * N * W);  // [TS][N] or [TS][N][W]
    float* cb = ar.alloc<float>(TS * N * W);
    float* Av = ar.alloc<float>(N * W);    // [N][W] A * log2(e)
    float* xs = ar.alloc<float>(N * W);    // [N][W] state
    float* bf = ar.alloc<float>(N * W);    // [N][W] fixed B
    float* cf = ar.alloc<float>(N * W);    // [N][W] fixed C
    const index_t g0 = d0 / dpg, g1 = (d0 + nc - 1) / dpg;
    const bool uniform = g0 == g1;  // all lanes in one group: B, C broadcast
    for (index_t c = 0; c < W; ++c)
      for (index_t n = 0; n < N; ++n) {
        const bool on = c < nc;
        Av[n * W + c] = on ? to_float(a.A(d0 + c, n)) * log2e_f : 0.0f;  // exp(x) = 2^(x log2 e)
        xs[n * W + c] = (on && a.initial_state && sg.init >= 0) ? a.initial_state(sg.init, d0 + c, n) : 0.0f;
        bf[n * W + c] = (on && a.B_fixed) ? to_float(a.B_fixed(d0 + c, n)) : 0.0f;
        cf[n * W + c] = (on && a.C_fixed) ? to_float(a.C_fixed(d0 + c, n)) : 0.0f;
      }
    alignas(64) float biasv[W], Dv[W];
    for (index_t c = 0; c < W; ++c) {
      biasv[c] = (c < nc && a.delta_bias) ? to_float(a.delta_bias(d0 + c)) : 0.0f;
      Dv[c] = (c < nc && a.D) ? to_float(a.D(d0 + c)) : 0.0f;
    }
    const Bt bias = Bt::load_aligned(biasv), Dvec = Bt::load_aligned(Dv);
    // rows: B and C per token, one group for all lanes -> scan_rows_loop (ub then holds dt*u, yb starts at D*u)
    const bool rows = uniform && a.B && a.C;
    Bt amin = Bt::load_aligned(Av), amax = amin;  // per lane min/max of A*log2(e) over n: bounds dt*A
    for (index_t n = 1; n < N; ++n) {
      amin = xsimd::min(amin, Bt::load_aligned(Av + n * W));
      amax = xsimd::max(amax, Bt::load_aligned(Av + n * W));
    }

    for (index_t t0 = sg.t0; t0 < sg.t1; t0 += TS) {
      const index_t nt = std::min(TS, sg.t1 - t0);
      const index_t nt_next = std::min(TS, sg.t1 - t0 - nt);
      prefetch_rows(a.u, b, d0, nc, t0 + nt, nt_next);
      prefetch_rows(a.delta, b, d0, nc, t0 + nt, nt_next);
      prefetch_rows(a.z, b, d0, nc, t0 + nt, nt_next);
      prefetch_rows<T>(a.out, b, d0, nc, t0 + nt, nt_next, true);
      gather_rows<A>(a.u, b, d0, nc, t0, nt, ub, 0.0f);
      gather_rows<A>(a.delta, b, d0, nc, t0, nt, dtb, 0.0f);
      // dt = softplus?(delta + bias), four tokens in lockstep (latency-bound one at a time); row path: dt*u
      // into ub, y starts at D*u, and dt's range per lane for the exp2 check
      Bt dt_lo(0.0f), dt_hi(0.0f);
      auto nan_seen = Bt(0.0f) != Bt(0.0f);
      auto finish = [&](index_t t, Bt dt) {
        dt.store_aligned(dtb + t * W);
        if (rows) {
          const Bt u = Bt::load_aligned(ub + t * W);
          (dt * u).store_aligned(ub + t * W);
          (a.D ? Dvec * u : Bt(0.0f)).store_aligned(yb + t * W);
          dt_lo = xsimd::min(dt_lo, dt);
          dt_hi = xsimd::max(dt_hi, dt);
          nan_seen = nan_seen | (dt != dt);
        }
      };
      {
        index_t t = 0;
        for (; t + 8 <= nt; t += 8) {
          Bt v[8];
          for (int k = 0; k < 8; ++k) v[k] = Bt::load_aligned(dtb + (t + k) * W) + bias;
          if (o.delta_softplus) lockstep::softplus<A, 8>(v);
          for (int k = 0; k < 8; ++k) finish(t + k, v[k]);
        }
        for (; t < nt; ++t) {
          Bt v[1] = {Bt::load_aligned(dtb + t * W) + bias};
          if (o.delta_softplus) lockstep::softplus<A, 1>(v);
          finish(t, v[0]);
        }
      }
      // every dt*A of the tile lies between the products of {dt_lo, dt_hi} and {amin, amax} (rounding is
      // monotonic; the products of 0 are 0); a NaN dt fails the check
      const Bt lim(125.0f);
      const auto in_range = (!nan_seen) & (xsimd::abs(dt_lo * amin) <= lim) & (xsimd::abs(dt_lo * amax) <= lim) &
                            (xsimd::abs(dt_hi * amin) <= lim) & (xsimd::abs(dt_hi * amax) <= lim);
      // B and C: read in place (float, one group), else converted into [nt][N] or [nt][N][W] tiles
      struct src {
        const float* p;
        index_t ts, ns;
        bool uni;
      };
      auto prep = [&](const_view<T, bgnl> M, const float* fixed, float* buf) -> src {
        if (!M) return {fixed, 0, W, false};
        const index_t sn = M.template stride<axis::N>(), sl = M.template stride<axis::L>();
        if (uniform) {
          if constexpr (std::is_same_v<T, float>) {
            return {M.ptr(b, g0, 0, t0), sl, sn, true};
          } else {
            for (index_t n = 0; n < N; ++n) {  // widened row by row, buf[n * TS + t]
              const T* row = M.ptr(b, g0, n, t0);
              float* dst = buf + n * TS;
              index_t t = 0;
              if (sl == 1)
                for (; t + W <= nt; t += W) vec::load<A>(row + t).store_unaligned(dst + t);
              for (; t < nt; ++t) dst[t] = to_float(row[t * sl]);
            }
            return {buf, 1, TS, true};
          }
        }
        for (index_t t = 0; t < nt; ++t)
          for (index_t n = 0; n < N; ++n)
            for (index_t c = 0; c < W; ++c)
              buf[(t * N + n) * W + c] = c < nc ? to_float(M(b, (d0 + c) / dpg, n, t0 + t)) : 0.0f;
        return {buf, N * W, W, false};
      };
      const src bs = prep(a.B, bf, bb), cs = prep(a.C, cf, cb);
      if (rows) {
        if (xsimd::all(in_range)) scan_rows_loop<A, true>(nt, N, dtb, ub, Av, bs.p, bs.ns, bs.ts, cs.p, cs.ns, cs.ts, xs, yb);
        else scan_rows_loop<A, false>(nt, N, dtb, ub, Av, bs.p, bs.ns, bs.ts, cs.p, cs.ns, cs.ts, xs, yb);
      } else if (bs.uni && cs.uni) scan_tile_loop<A, true, true>(nt, N, dtb, ub, Av, bs.p, bs.ts, bs.ns, cs.p, cs.ts, cs.ns, xs, yb);
      else if (bs.uni) scan_tile_loop<A, true, false>(nt, N, dtb, ub, Av, bs.p, bs.ts, bs.ns, cs.p, cs.ts, cs.ns, xs, yb);
      else if (cs.uni) scan_tile_loop<A, false, true>(nt, N, dtb, ub, Av, bs.p, bs.ts, bs.ns, cs.p, cs.ts, cs.ns, xs, yb);
      else scan_tile_loop<A, false, false>(nt, N, dtb, ub, Av, bs.p, bs.ts, bs.ns, cs.p, cs.ts, cs.ns, xs, yb);
      // epilogue: D skip and z gate
      if ((a.D && !rows) || a.z) {
        if (a.z) {
          gather_rows<A>(a.z, b, d0, nc, t0, nt, zb, 0.0f);
          index_t t = 0;
          for (; t + 8 <= nt; t += 8) {  // silu(z) eight tokens in lockstep
            Bt v[8];
            for (int k = 0; k < 8; ++k) v[k] = Bt::load_aligned(zb + (t + k) * W);
            lockstep::silu<A, 8>(v);
            for (int k = 0; k < 8; ++k) v[k].store_aligned(zb + (t + k) * W);
          }
          for (; t < nt; ++t) {
            Bt v[1] = {Bt::load_aligned(zb + t * W)};
            lockstep::silu<A, 1>(v);
            v[0].store_aligned(zb + t * W);
          }
        }
        for (index_t t = 0; t < nt; ++t) {
          Bt y = Bt::load_aligned(yb + t * W);
          if (a.D && !rows) y = xsimd::fma(Dvec, Bt::load_aligned(ub + t * W), y);
          if (a.z) y = y * Bt::load_aligned(zb + t * W);
          y.store_aligned(yb + t * W);
        }
      }
      scatter_rows<A>(a.out, b, d0, nc, t0, nt, yb);
    }
    if (a.last_state && sg.fin >= 0)
      for (index_t c = 0; c < nc; ++c)
        for (index_t n = 0; n < N; ++n) a.last_state(sg.fin, d0 + c, n) = xs[n * W + c];
  });
}

}  // namespace seqmix::detail::ssm
SEQMIX_DIAG_POP
