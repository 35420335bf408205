// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/ssd_simd.hpp: Mamba-2 SSD fast paths: the chunked form (C B^T once per group
// and chunk, decay-masked GEMMs inside a chunk, state passing between chunks) and the token-recurrent form.
// Derivation: docs/06-ssm-scans.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../../../core/backend.hpp"
#include "../../../runtime/parallel_for.hpp"
#include "../../../runtime/workspace.hpp"
#include "../../../simd/gemm.hpp"
#include "../../../simd/math.hpp"
#include "../../../simd/prefetch.hpp"
#include "args.hpp"
#include "segments.hpp"
#include "vmath.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::detail::ssm {

inline constexpr index_t round_up_to(index_t x, index_t m) noexcept { return (x + m - 1) / m * m; }

/// dt' = clamp(softplus?(dt + bias), lo, hi) for n values in place (buffer padded to the batch width).
template <class A>
inline void dt_transform(float* dts, index_t n, float bias, bool softplus, float lo, float hi) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  for (index_t i = 0; i < n; i += W) {
    Bt v = Bt::load_aligned(dts + i) + Bt(bias);
    if (softplus) v = vec::softplus(v);
    v = xsimd::min(xsimd::max(v, Bt(lo)), Bt(hi));  // NaN stays NaN
    v.store_aligned(dts + i);
  }
}

/// Reads n values at stride s into float dst (contiguous fast path for float).
template <class T>
inline void read_row(const T* src, index_t s, index_t n, float* dst) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    if (s == 1) {
      std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
      return;
    }
  }
  for (index_t i = 0; i < n; ++i) dst[i] = to_float(src[i * s]);
}

/// Prefetches n rows of `bytes` bytes each, `stride` elements apart, into L1 (rows that a later step reads
/// with a large stride, which the hardware prefetchers do not follow). The lines at row + 0, 64, ... only:
/// vec::prefetch_bytes (every line a row touches, one more for rows off a line) measured 36 -> 60 ms here.
template <class T>
SEQMIX_ALWAYS_INLINE void prefetch_rows(const T* p, index_t stride, index_t n, index_t bytes) noexcept {
  for (index_t r = 0; r < n; ++r) {
    const char* row = reinterpret_cast<const char*>(p + r * stride);
    for (index_t o = 0; o < bytes; o += 64) vec::prefetch<vec::prefetch_hint::l1>(row + o);
  }
}

/// One output row of the chunked kernel: dst = (y + D x) silu(z) over Pp values (rows padded to whole
/// batches), silu four batches in lockstep.
template <class A, bool HasD, bool HasZ>
SEQMIX_ALWAYS_INLINE void ssd_gate_row(index_t Pp, const float* yr, const float* xr, const float* Dh, const float* zs,
                                       float* dst) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  auto run = [&](auto k, index_t p) {
    constexpr int K = decltype(k)::value;
    Bt y[K], zv[K];
    for (int u = 0; u < K; ++u) {
      y[u] = Bt::load_unaligned(yr + p + u * W);
      if constexpr (HasD) y[u] = xsimd::fma(Bt::load_unaligned(Dh + p + u * W), Bt::load_unaligned(xr + p + u * W), y[u]);
      if constexpr (HasZ) zv[u] = Bt::load_unaligned(zs + p + u * W);
    }
    if constexpr (HasZ) {
      lockstep::silu<A, K>(zv);
      for (int u = 0; u < K; ++u) y[u] = y[u] * zv[u];
    }
    for (int u = 0; u < K; ++u) y[u].store_unaligned(dst + p + u * W);
  };
  index_t p = 0;
  for (; p + 4 * W <= Pp; p += 4 * W) run(std::integral_constant<int, 4>{}, p);
  for (; p < Pp; p += W) run(std::integral_constant<int, 1>{}, p);
}

/// Token block of the chunked kernel: the state is passed every min(chunk_size, ssd_block) tokens. Any
/// block length gives the same result (SPEC §3.1); on a CPU the causal in-block product (about Q·P/2
/// multiply-adds per token and head) is pure overhead next to the 2·N·P of state passing, so longer blocks
/// only cost time; 48 = 8 row tiles of the 6x16 GEMM (docs/06-ssm-scans.md §2).
inline constexpr index_t ssd_block = 48;
/// Most heads one chunked task keeps (their states, 40 KiB each at N = 128, P = 64, stay in a 1 MiB L2).
inline constexpr index_t ssd_max_heads_per_task = 16;

/// Heads per chunked-SSD task: at most ssd_max_heads_per_task, and one task per worker (more, smaller
/// blocks read shorter runs of each token's rows and recompute C B^T more often: two 8-head tasks per
/// worker ran 2 threads ~1 ms slower than one 16-head task each, docs/06 §6).
inline index_t ssd_heads_per_task(index_t HG, index_t tasks_outer, int workers) noexcept {
  const index_t want = (workers + tasks_outer - 1) / tasks_outer;
  const index_t nhb = std::max((HG + ssd_max_heads_per_task - 1) / ssd_max_heads_per_task, std::min(HG, want));
  return (HG + nhb - 1) / nhb;
}

/// Chunked SSD. A task owns (segment, group, block of HB heads) and walks the segment in blocks of Q tokens:
/// C, B, C B^T, every head's dt' and decays and the block's x (token-major) once per block; then per head
/// C S and the state update B^T (w o X) on vec::gemm (16 columns of S at a time; the next block's x and z
/// rows prefetched through its after-tile hook) and the causal in-block term (L o C B^T) X on
/// vec::gemm_lower; then D, the z gate and the store, token-major. See docs/06-ssm-scans.md §2.
template <class Arch, class T>
void ssd_chunked(const ssd_args<T>& a, const ssd_options& o, const std::vector<segment>& segs) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  const index_t L = a.x.template extent<axis::T>();
  const index_t H = a.x.template extent<axis::H>(), P = a.x.template extent<axis::P>();
  const index_t G = a.B.template extent<axis::G>(), N = a.B.template extent<axis::N>();
  const index_t HG = H / G;
  const index_t Q = std::max<index_t>(1, std::min({o.chunk_size, ssd_block, std::max<index_t>(L, 1)}));
  const index_t Qv = round_up_to(Q, W) + W;          // per-token vectors, padded
  const index_t ldm = round_up_to(Q, W) + W;         // rows of C B^T and of the decay mask
  const index_t ldb = round_up_to(Q, 16) + 16;        // rows of B^T [N][ldb]
  const index_t Pp = round_up_to(P, W);              // x, y rows of one head
  const index_t ldS = Pp + (Pp % 64 == 0 ? 16 : 0);  // state rows [N][ldS]: no 2^k row stride
  const index_t ns = static_cast<index_t>(segs.size());
  const int workers = std::max(1, o.run.workers());
  const index_t HB = ssd_heads_per_task(HG, ns * G, workers), nhb = (HG + HB - 1) / HB;

  const std::size_t bytes = arena_bytes<float>(Q * N) + arena_bytes<float>(N * ldb) + 2 * arena_bytes<float>(Q * ldm) +
                            2 * arena_bytes<float>(HB * Q * Pp) + arena_bytes<float>(Q * Pp) +
                            arena_bytes<float>(HB * N * ldS) +
                            3 * arena_bytes<float>(HB * Qv) + 3 * arena_bytes<float>(Qv) +
                            arena_bytes<float>((Q / W + 1) * Qv) +
                            arena_bytes<float>(HB * Pp) + 2 * arena_bytes<float>(Pp) + arena_bytes<unsigned char>(HB);
  workspace& ws = o.run.scratch();
  ws.reserve(workers, bytes);
  const float lo = static_cast<float>(o.dt_min), hi = static_cast<float>(o.dt_max);
  const index_t sxp = a.x.template stride<axis::P>(), szp = a.z ? a.z.template stride<axis::P>() : 0;
  const index_t sop = a.out.template stride<axis::P>();
  const index_t sxh = a.x.template stride<axis::H>(), szh = a.z ? a.z.template stride<axis::H>() : 0;
  const index_t sbn = a.B.template stride<axis::N>(), scn = a.C.template stride<axis::N>();
  // float rows read / written in place when contiguous and a whole number of batches
  const bool zdirect = std::is_same_v<T, float> && szp == 1 && P == Pp;
  const bool odirect = std::is_same_v<T, float> && sop == 1 && P == Pp;
  const index_t row_bytes = static_cast<index_t>(sizeof(T)) * P;
  constexpr index_t pf_dist = 4;  // tokens ahead that the staging and epilogue passes prefetch

  const any_executor ex = pick_executor(o.run, static_cast<double>(a.x.size()) * N * 2);
  parallel_for(ex, grid{ns, G, nhb}, [&](index_t si, index_t g, index_t hbi, int worker) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b;
    const index_t h0 = g * HG + hbi * HB, h1 = std::min(g * HG + HG, h0 + HB), nh = h1 - h0;
    arena ar(ws.get(worker), ws.bytes_per_worker());
    float* Cc = ar.alloc<float>(Q * N);          // [Q][N]
    float* BT = ar.alloc<float>(N * ldb);        // [N][ldb] B^T
    float* CB = ar.alloc<float>(Q * ldm);        // [Q][ldm] C B^T (lower triangle)
    float* M = ar.alloc<float>(Q * ldm);         // [Q][ldm] decay-masked C B^T of one head
    float* Xs = ar.alloc<float>(HB * Q * Pp);    // [HB][Q][Pp] x of the block, staged token-major
    float* Ys = ar.alloc<float>(HB * Q * Pp);    // [HB][Q][Pp] outputs before D and z
    float* Xw = ar.alloc<float>(Q * Pp);         // [Q][Pp] w o x
    float* S = ar.alloc<float>(HB * N * ldS);    // [HB][N][ldS] states, transposed (S = h^T)
    float* dts = ar.alloc<float>(HB * Qv);       // [HB][Qv] dt'
    float* chi = ar.alloc<float>(HB * Qv);       // [HB][Qv] cumulative log decay, float hi + lo
    float* clo = ar.alloc<float>(HB * Qv);
    float* ec = ar.alloc<float>(Qv);             // [Qv] e^{c_t}
    float* wv = ar.alloc<float>(Qv);             // [Qv] e^{c_last - c_s} dt'_s
    float* U = ar.alloc<float>(Qv);              // [Qv] e^{c_r - c_s} dt'_s, r the last column of s's group
    float* E = ar.alloc<float>((Q / W + 1) * Qv);  // [Q/W][Qv] e^{c_t - c_r} of each full column group
    float* Dm = ar.alloc<float>(HB * Pp);        // [HB][Pp] D
    float* zr = ar.alloc<float>(Pp);             // [Pp] one row of z (strided or converted input)
    float* orr = ar.alloc<float>(Pp);            // [Pp] one output row before conversion
    unsigned char* zero_state = ar.alloc<unsigned char>(HB);  // [HB] state known to be zero
    std::fill(zero_state, zero_state + HB, static_cast<unsigned char>(1));
    std::fill(dts, dts + HB * Qv, 0.0f);
    std::fill(Dm, Dm + HB * Pp, 0.0f);
    std::fill(zr, zr + Pp, 0.0f);
    std::fill(Xs, Xs + HB * Q * Pp, 0.0f);
    if (a.D)
      for (index_t j = 0; j < nh; ++j)
        for (index_t p = 0; p < P; ++p) Dm[j * Pp + p] = to_float(a.D(h0 + j, p));

    // initial states, transposed to [N][ldS]
    std::fill(S, S + HB * N * ldS, 0.0f);
    if (a.initial_states && sg.init >= 0) {
      for (index_t j = 0; j < nh; ++j) {
        float* Sh = S + j * N * ldS;
        for (index_t p = 0; p < P; ++p)
          for (index_t n = 0; n < N; ++n) Sh[n * ldS + p] = a.initial_states(sg.init, h0 + j, p, n);
        zero_state[j] = 0;
      }
    }
    alignas(64) float iota[W];
    for (index_t i = 0; i < W; ++i) iota[i] = static_cast<float>(i);
    const Bt lane = Bt::load_aligned(iota);

    for (index_t c0 = sg.t0; c0 < sg.t1; c0 += Q) {
      const index_t q = std::min(Q, sg.t1 - c0);
      // C, B of this block (shared by the group's heads) and the lower triangle of C B^T, 16 columns at a time
      for (index_t t = 0; t < q; ++t) {
        read_row(a.C.ptr(b, c0 + t, g, 0), scn, N, Cc + t * N);
        const T* br = a.B.ptr(b, c0 + t, g, 0);
        for (index_t n = 0; n < N; ++n) BT[n * ldb + t] = to_float(br[n * sbn]);
      }
      for (index_t j0 = 0; j0 < q; j0 += 16)
        vec::gemm<A>(q - j0, std::min<index_t>(16, q - j0), N, 1.0f, {Cc + j0 * N, N, 1}, {BT + j0, ldb, 1}, 0.0f,
                     {CB + j0 * ldm + j0, ldm, 1});
      // dt' and the cumulative log decay of each head (float64 sum, kept as a float pair hi + lo so that
      // c_t - c_s is exact to float precision even when both are large)
      for (index_t t = 0; t < q; ++t)
        for (index_t j = 0; j < nh; ++j) dts[j * Qv + t] = to_float(a.dt(b, c0 + t, h0 + j));
      for (index_t j = 0; j < nh; ++j) {
        float* d = dts + j * Qv;
        float* ch = chi + j * Qv;
        float* cl = clo + j * Qv;
        std::fill(d + q, d + Qv, 0.0f);
        dt_transform<A>(d, q, a.dt_bias ? to_float(a.dt_bias(h0 + j)) : 0.0f, o.dt_softplus, lo, hi);
        std::fill(d + q, d + Qv, 0.0f);
        const double Ah = to_double(a.A(h0 + j));
        double cum = 0;
        for (index_t t = 0; t < q; ++t) {
          cum += static_cast<double>(d[t]) * Ah;
          ch[t] = static_cast<float>(cum);
          cl[t] = static_cast<float>(cum - static_cast<double>(ch[t]));
        }
        for (index_t t = q; t < Qv; ++t) ch[t] = cl[t] = 0.0f;
      }

      // x of the block, token-major: one token's rows of the task's heads are adjacent in [B,L,H,P]
      // (a contiguous run the hardware prefetchers follow); the run pf_dist tokens ahead is prefetched.
      for (index_t t = 0; t < q; ++t) {
        if (c0 == sg.t0 && t + pf_dist < q)
          prefetch_rows(a.x.ptr(b, c0 + t + pf_dist, h0, 0), sxh, nh, row_bytes);
        for (index_t j = 0; j < nh; ++j) read_row(a.x.ptr(b, c0 + t, h0 + j, 0), sxp, P, Xs + (j * Q + t) * Pp);
      }
      // The next block's x and z rows (qn * nh of each) are prefetched spread evenly over this block's two
      // big products, a few rows after each register tile (vec::gemm's hook): they arrive while the FMA
      // pipes are busy instead of stalling the staging and epilogue passes at DRAM latency (out needs no
      // prefetch: stores do not stall). A cursor walks (array, token, head), pf_total rows over pf_steps
      // tiles.
      const index_t cn = c0 + q, qn = cn < sg.t1 ? std::min(Q, sg.t1 - cn) : 0;
      const index_t pf_arrays = a.z ? 2 : 1, pf_total = pf_arrays * qn * nh;
      const index_t pf_steps = nh * ((q + 5) / 6 + (N + 5) / 6) * ((Pp + 15) / 16);
      index_t pf_acc = 0, pf_arr = 0, pf_t = cn, pf_h = h0;
      auto prefetch_next = [&] {
        for (pf_acc += pf_total; pf_acc >= pf_steps && pf_arr < pf_arrays; pf_acc -= pf_steps) {
          prefetch_rows(pf_arr == 0 ? a.x.ptr(b, pf_t, pf_h, 0) : a.z.ptr(b, pf_t, pf_h, 0), 0, 1, row_bytes);
          if (++pf_h == h1) {
            pf_h = h0;
            if (++pf_t == cn + qn) pf_t = cn, ++pf_arr;
          }
        }
      };
      for (index_t j = 0; j < nh; ++j) {
        float* X = Xs + j * Q * Pp;
        float* Y = Ys + j * Q * Pp;
        float* Sh = S + j * N * ldS;
        const float* d = dts + j * Qv;
        const float* ch = chi + j * Qv;
        const float* cl = clo + j * Qv;
        const bool szero = zero_state[j] != 0;
        // state passing: S' = e^{c_last} S + B^T (w o X), w_s = e^{c_last - c_s} dt'_s; and Y = C S (what the
        // state brings in), both 16 columns of S at a time so that the panel stays in L1 between the two
        const Bt lh(ch[q - 1]), ll(cl[q - 1]);
        for (index_t s = 0; s < q; s += W) {
          const Bt dd = (lh - Bt::load_aligned(ch + s)) + (ll - Bt::load_aligned(cl + s));
          (vec::exp(dd) * Bt::load_aligned(d + s)).store_aligned(wv + s);
        }
        for (index_t t = 0; t < q; ++t) {
          const Bt w(wv[t]);
          for (index_t p = 0; p < Pp; p += W) (Bt::load_aligned(X + t * Pp + p) * w).store_aligned(Xw + t * Pp + p);
        }
        float decay = 0.0f;
        bool kill = false;  // the decay underflows: S is multiplied by 0 explicitly (keeps a NaN state NaN)
        if (!szero) {
          decay = static_cast<float>(std::exp(static_cast<double>(ch[q - 1]) + cl[q - 1]));
          kill = decay == 0.0f;
          if (kill) decay = 1.0f;
        }
        if (szero) std::fill(Y, Y + q * Pp, 0.0f);
        for (index_t j0 = 0; j0 < Pp; j0 += 16) {
          const index_t nc = std::min<index_t>(16, Pp - j0);
          if (!szero) vec::gemm<A>(q, nc, N, 1.0f, {Cc, N, 1}, {Sh + j0, ldS, 1}, 0.0f, {Y + j0, Pp, 1}, prefetch_next);
          if (kill)
            for (index_t n = 0; n < N; ++n)
              for (index_t p = j0; p < j0 + nc; p += W)
                (Bt::load_aligned(Sh + n * ldS + p) * Bt(0.0f)).store_aligned(Sh + n * ldS + p);
          vec::gemm<A>(N, nc, q, 1.0f, {BT, ldb, 1}, {Xw + j0, Pp, 1}, decay, {Sh + j0, ldS, 1}, prefetch_next);
        }
        zero_state[j] = 0;
        if (!szero) {
          for (index_t t = 0; t < q; t += W) {  // e^{hi + lo} = e^{hi} (1 + lo)
            const Bt l = Bt::load_aligned(cl + t);
            (vec::exp(Bt::load_aligned(ch + t)) * (Bt(1.0f) + l)).store_aligned(ec + t);
          }
          for (index_t t = 0; t < q; ++t) {
            const Bt e(ec[t]);
            float* yr = Y + t * Pp;
            for (index_t p = 0; p < Pp; p += W) (Bt::load_aligned(yr + p) * e).store_aligned(yr + p);
          }
        }
        // M[t][s] = CB[t][s] e^{c_t - c_s} dt'_s for s <= t (columns past t are never read).
        // Below a group of W columns ending at r (t > r >= s) the decay factors as e^{c_t - c_r} e^{c_r - c_s},
        // both <= 1 (SPEC's reference point inside the chunk): one exp per row and group instead of W.
        for (index_t g = 0; g < q / W; ++g) {
          const index_t s0 = g * W, r = s0 + W - 1;
          const Bt rh(ch[r]), rl(cl[r]);
          const Bt du = (rh - Bt::load_aligned(ch + s0)) + (rl - Bt::load_aligned(cl + s0));
          (vec::exp(du) * Bt::load_aligned(d + s0)).store_aligned(U + s0);
          for (index_t t0 = (r + 1) / W * W; t0 < q; t0 += W) {
            const Bt de = (Bt::load_aligned(ch + t0) - rh) + (Bt::load_aligned(cl + t0) - rl);
            vec::exp(de).store_aligned(E + g * Qv + t0);
          }
        }
        for (index_t t = 0; t < q; ++t) {
          const Bt th(ch[t]), tl(cl[t]);
          float* mr = M + t * ldm;
          const float* cr = CB + t * ldm;
          index_t s = 0;
          for (; s + W <= t; s += W)  // whole group below the diagonal
            (Bt::load_aligned(cr + s) * Bt::load_aligned(U + s) * Bt(E[(s / W) * Qv + t])).store_aligned(mr + s);
          for (; s <= t; s += W) {
            const Bt dd = (th - Bt::load_aligned(ch + s)) + (tl - Bt::load_aligned(cl + s));
            const Bt v = Bt::load_aligned(cr + s) * vec::exp(dd) * Bt::load_aligned(d + s);
            xsimd::select(lane + Bt(static_cast<float>(s)) <= Bt(static_cast<float>(t)), v, Bt(0.0f)).store_aligned(mr + s);
          }
        }
        // Y += M X, causal: row t never reads X[s > t] (0 * NaN would leak a NaN of x into earlier rows)
        vec::gemm_lower<A>(q, Pp, 1.0f, {M, ldm, 1}, {X, Pp, 1}, 1.0f, {Y, Pp, 1});
      }
      // y = Y + D x, z gate, store: token-major over the task's heads (z and out rows adjacent, as x)
      for (index_t t = 0; t < q; ++t) {
        if (a.z && c0 == sg.t0 && t + pf_dist < q)  // later blocks were prefetched during the previous one
          prefetch_rows(a.z.ptr(b, c0 + t + pf_dist, h0, 0), szh, nh, row_bytes);
        for (index_t j = 0; j < nh; ++j) {
          const index_t h = h0 + j;
          const float* zs = zr;
          if (a.z) {
            const T* zp = a.z.ptr(b, c0 + t, h, 0);
            if (zdirect) zs = reinterpret_cast<const float*>(zp);
            else read_row(zp, szp, P, zr);
          }
          T* orow = a.out.ptr(b, c0 + t, h, 0);
          float* dst = odirect ? reinterpret_cast<float*>(orow) : orr;
          const float* yr = Ys + (j * Q + t) * Pp;
          const float* xr = Xs + (j * Q + t) * Pp;
          const float* Dh = Dm + j * Pp;
          if (a.D) {
            if (a.z) ssd_gate_row<A, true, true>(Pp, yr, xr, Dh, zs, dst);
            else ssd_gate_row<A, true, false>(Pp, yr, xr, Dh, zs, dst);
          } else {
            if (a.z) ssd_gate_row<A, false, true>(Pp, yr, xr, Dh, zs, dst);
            else ssd_gate_row<A, false, false>(Pp, yr, xr, Dh, zs, dst);
          }
          if (!odirect)
            for (index_t p = 0; p < P; ++p) orow[p * sop] = from_float<T>(orr[p]);
        }
      }
    }
    if (a.final_states && sg.fin >= 0) {
      for (index_t j = 0; j < nh; ++j) {
        const float* Sh = S + j * N * ldS;
        for (index_t p = 0; p < P; ++p)
          for (index_t n = 0; n < N; ++n) a.final_states(sg.fin, h0 + j, p, n) = Sh[n * ldS + p];
      }
    }
  });
}

template <class Arch, class T>
void ssd_recurrent(const ssd_args<T>& a, const ssd_options& o, const std::vector<segment>& segs) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  const index_t H = a.x.template extent<axis::H>(), P = a.x.template extent<axis::P>();
  const index_t G = a.B.template extent<axis::G>(), N = a.B.template extent<axis::N>();
  const index_t Np = round_up_to(N, W), HG = H / G;
  const index_t ns = static_cast<index_t>(segs.size());
  const int workers = std::max(1, o.run.workers());
  workspace& ws = o.run.scratch();
  ws.reserve(workers, arena_bytes<float>(P * Np) + 2 * arena_bytes<float>(Np) + 3 * arena_bytes<float>(P));
  const float lo = static_cast<float>(o.dt_min), hi = static_cast<float>(o.dt_max);
  const any_executor ex = pick_executor(o.run, static_cast<double>(a.x.size()) * N * 2);
  parallel_for(ex, grid{ns, H}, [&](index_t si, index_t h, int worker) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b, g = h / HG;
    arena ar(ws.get(worker), ws.bytes_per_worker());
    float* S = ar.alloc<float>(P * Np);  // [P][Np]
    float* Bf = ar.alloc<float>(Np);
    float* Cf = ar.alloc<float>(Np);
    float* xr = ar.alloc<float>(P);
    float* zr = ar.alloc<float>(P);
    float* yr = ar.alloc<float>(P);
    std::fill(S, S + P * Np, 0.0f);
    std::fill(Bf, Bf + Np, 0.0f);
    std::fill(Cf, Cf + Np, 0.0f);
    if (a.initial_states && sg.init >= 0)
      for (index_t p = 0; p < P; ++p)
        for (index_t n = 0; n < N; ++n) S[p * Np + n] = a.initial_states(sg.init, h, p, n);
    const double Ah = to_double(a.A(h));
    const float bias = a.dt_bias ? to_float(a.dt_bias(h)) : 0.0f;
    for (index_t t = sg.t0; t < sg.t1; ++t) {
      float dt = to_float(a.dt(b, t, h)) + bias;
      if (o.dt_softplus) dt = softplus_scalar(dt);
      dt = std::isnan(dt) ? dt : std::min(std::max(dt, lo), hi);
      const Bt dA(static_cast<float>(std::exp(static_cast<double>(dt) * Ah)));
      read_row(a.B.ptr(b, t, g, 0), a.B.template stride<axis::N>(), N, Bf);
      read_row(a.C.ptr(b, t, g, 0), a.C.template stride<axis::N>(), N, Cf);
      read_row(a.x.ptr(b, t, h, 0), a.x.template stride<axis::P>(), P, xr);
      if (a.z) read_row(a.z.ptr(b, t, h, 0), a.z.template stride<axis::P>(), P, zr);
      for (index_t p = 0; p < P; ++p) {
        const Bt xv(dt * xr[p]);
        float* sr = S + p * Np;
        Bt y0(0.0f), y1(0.0f);
        index_t n = 0;
        for (; n + 2 * W <= Np; n += 2 * W) {
          const Bt s0 = xsimd::fma(Bt::load_aligned(sr + n), dA, xv * Bt::load_aligned(Bf + n));
          const Bt s1 = xsimd::fma(Bt::load_aligned(sr + n + W), dA, xv * Bt::load_aligned(Bf + n + W));
          s0.store_aligned(sr + n);
          s1.store_aligned(sr + n + W);
          y0 = xsimd::fma(s0, Bt::load_aligned(Cf + n), y0);
          y1 = xsimd::fma(s1, Bt::load_aligned(Cf + n + W), y1);
        }
        for (; n < Np; n += W) {
          const Bt s0 = xsimd::fma(Bt::load_aligned(sr + n), dA, xv * Bt::load_aligned(Bf + n));
          s0.store_aligned(sr + n);
          y0 = xsimd::fma(s0, Bt::load_aligned(Cf + n), y0);
        }
        float y = xsimd::hadd(y0 + y1);
        if (a.D) y += to_float(a.D(h, p)) * xr[p];
        yr[p] = y;
      }
      if (a.z)
        for (index_t p = 0; p < P; p += W) {
          const index_t m = std::min(W, P - p);
          (load_n<A>(yr + p, m) * vec::silu(load_n<A>(zr + p, m))).store_unaligned(yr + p);  // yr, zr padded
        }
      T* orow = a.out.ptr(b, t, h, 0);
      const index_t sop = a.out.template stride<axis::P>();
      for (index_t p = 0; p < P; ++p) orow[p * sop] = from_float<T>(yr[p]);
    }
    if (a.final_states && sg.fin >= 0)
      for (index_t p = 0; p < P; ++p)
        for (index_t n = 0; n < N; ++n) a.final_states(sg.fin, h, p, n) = S[p * Np + n];
  });
}

template <class Arch, class T>
void ssd_impl(const ssd_args<T>& a, const ssd_options& o, simd<Arch>) {
  const index_t Bn = a.x.template extent<axis::B>(), L = a.x.template extent<axis::T>();
  const auto segs = make_segments(Bn, L, a.cu_seqlens, a.seq_idx);
  ssd_mode m = o.mode;
  if (m == ssd_mode::auto_select) {
    index_t longest = 0;
    for (const auto& s : segs) longest = std::max(longest, s.t1 - s.t0);
    m = longest >= 8 ? ssd_mode::chunk : ssd_mode::recurrent;  // crossover measured at 8 tokens (docs/06 §6)
  }
  if (m == ssd_mode::chunk) ssd_chunked<Arch>(a, o, segs);
  else ssd_recurrent<Arch>(a, o, segs);
}

}  // namespace seqmix::detail::ssm
SEQMIX_DIAG_POP
