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
#include "args.hpp"
#include "gemm.hpp"
#include "segments.hpp"
#include "vmath.hpp"

namespace seqmix::detail::ssm {

inline constexpr index_t round_up_to(index_t x, index_t m) noexcept { return (x + m - 1) / m * m; }

/// dt' = clamp(softplus?(dt + bias), lo, hi) for n values in place (buffer padded to the batch width).
template <class A>
inline void dt_transform(float* dts, index_t n, float bias, bool softplus, float lo, float hi) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  for (index_t i = 0; i < n; i += W) {
    Bt v = Bt::load_aligned(dts + i) + Bt(bias);
    if (softplus) v = vsoftplus<A>(v);
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

/// Prefetches n rows of `bytes` bytes each, `stride` elements apart (rows that a later step reads or
/// writes with a large stride, which the hardware prefetchers do not follow).
template <class T>
inline void prefetch_rows(const T* p, index_t stride, index_t n, index_t bytes, bool write) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  for (index_t r = 0; r < n; ++r) {
    const char* row = reinterpret_cast<const char*>(p + r * stride);
    for (index_t o = 0; o < bytes; o += 64) {
      if (write) __builtin_prefetch(row + o, 1, 3);
      else __builtin_prefetch(row + o, 0, 3);
    }
  }
#else
  (void)p, (void)stride, (void)n, (void)bytes, (void)write;
#endif
}

/// Heads per chunked-SSD task: enough tasks for the workers, at most 16 heads sharing one C B^T.
inline index_t ssd_heads_per_task(index_t HG, index_t tasks_outer, int workers) noexcept {
  const index_t want = std::max<index_t>(1, (2 * workers + tasks_outer - 1) / tasks_outer);
  index_t nhb = std::min<index_t>(HG, want);
  nhb = std::max<index_t>(nhb, (HG + 15) / 16);
  return (HG + nhb - 1) / nhb;
}

template <class Arch, class T>
void ssd_chunked(const ssd_args<T>& a, const ssd_options& o, const std::vector<segment>& segs) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  const index_t L = a.x.template extent<axis::T>();
  const index_t H = a.x.template extent<axis::H>(), P = a.x.template extent<axis::P>();
  const index_t G = a.B.template extent<axis::G>(), N = a.B.template extent<axis::N>();
  const index_t HG = H / G;
  const index_t Q = std::max<index_t>(1, std::min<index_t>(o.chunk_size, std::max<index_t>(L, 1)));
  const index_t Qb = round_up_to(Q, 2 * W), ldm = Qb + 2 * W, Pp = round_up_to(P, 2 * W);
  const index_t ns = static_cast<index_t>(segs.size());
  const int workers = std::max(1, o.run.workers());
  const index_t HB = ssd_heads_per_task(HG, ns * G, workers), nhb = (HG + HB - 1) / HB;

  const std::size_t bytes = arena_bytes<float>(Q * N) + arena_bytes<float>(N * Qb) + 2 * arena_bytes<float>(Q * ldm) +
                            2 * arena_bytes<float>(Q * Pp) + arena_bytes<float>(HB * N * Pp) +
                            4 * arena_bytes<float>(Qb + W) + arena_bytes<float>(Pp) * 3 + arena_bytes<unsigned char>(HB);
  workspace& ws = o.run.scratch();
  ws.reserve(workers, bytes);
  const float lo = static_cast<float>(o.dt_min), hi = static_cast<float>(o.dt_max);

  const any_executor ex = pick_executor(o.run, static_cast<double>(a.x.size()) * N * 2);
  parallel_for(ex, grid{ns, G, nhb}, [&](index_t si, index_t g, index_t hbi, int worker) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b;
    const index_t h0 = g * HG + hbi * HB, h1 = std::min(g * HG + HG, h0 + HB);
    arena ar(ws.get(worker), ws.bytes_per_worker());
    float* Cc = ar.alloc<float>(Q * N);        // [Q][N]
    float* BcT = ar.alloc<float>(N * Qb);      // [N][Qb]
    float* CB = ar.alloc<float>(Q * ldm);      // [Q][ldm]
    float* M = ar.alloc<float>(Q * ldm);       // [Q][ldm]
    float* X = ar.alloc<float>(Q * Pp);        // [Q][Pp]
    float* Y = ar.alloc<float>(Q * Pp);        // [Q][Pp]
    float* S = ar.alloc<float>(HB * N * Pp);   // [HB][N][Pp]
    float* dts = ar.alloc<float>(Qb + W);      // [Qb]
    float* chi = ar.alloc<float>(Qb + W);
    float* clo = ar.alloc<float>(Qb + W);
    float* wv = ar.alloc<float>(Qb + W);
    float* Dv = ar.alloc<float>(Pp);
    float* zr = ar.alloc<float>(Pp);
    float* xr = ar.alloc<float>(Pp);
    unsigned char* zero_state = ar.alloc<unsigned char>(HB);  // [HB] state known to be zero
    std::fill(zero_state, zero_state + HB, static_cast<unsigned char>(1));

    // initial states, transposed to [N][Pp]
    std::fill(S, S + HB * N * Pp, 0.0f);
    if (a.initial_states && sg.init >= 0) {
      for (index_t h = h0; h < h1; ++h) {
        float* Sh = S + (h - h0) * N * Pp;
        for (index_t p = 0; p < P; ++p)
          for (index_t n = 0; n < N; ++n) Sh[n * Pp + p] = a.initial_states(sg.init, h, p, n);
        zero_state[h - h0] = 0;
      }
    }
    std::fill(dts, dts + Qb + W, 0.0f);
    std::fill(Dv, Dv + Pp, 0.0f);
    std::fill(xr, xr + Pp, 0.0f);
    std::fill(zr, zr + Pp, 0.0f);
    const index_t sxp = a.x.template stride<axis::P>(), szp = a.z ? a.z.template stride<axis::P>() : 0;
    const index_t sop = a.out.template stride<axis::P>();

    for (index_t c0 = sg.t0; c0 < sg.t1; c0 += Q) {
      const index_t q = std::min(Q, sg.t1 - c0);
      // C and B^T of this chunk (shared by the group's heads), then CB = C B^T
      for (index_t t = 0; t < q; ++t) {
        read_row(a.C.ptr(b, c0 + t, g, 0), a.C.template stride<axis::N>(), N, Cc + t * N);
        const T* br = a.B.ptr(b, c0 + t, g, 0);
        const index_t sbn = a.B.template stride<axis::N>();
        for (index_t n = 0; n < N; ++n) BcT[n * Qb + t] = to_float(br[n * sbn]);
      }
      for (index_t n = 0; n < N; ++n) std::fill(BcT + n * Qb + q, BcT + n * Qb + Qb, 0.0f);
      gemm<A, false>(q, round_up_to(q, 2 * W), N, Cc, N, 1, BcT, Qb, CB, ldm);

      for (index_t h = h0; h < h1; ++h) {
        // rows of the next (head, chunk) are H*P elements apart in [B,L,H,P]: fetched below, a few per row of M
        const index_t hn = h + 1 < h1 ? h + 1 : h0, cn = h + 1 < h1 ? c0 : c0 + Q;
        const index_t qn = cn < sg.t1 ? std::min(Q, sg.t1 - cn) : 0;
        const index_t rb = static_cast<index_t>(sizeof(T)) * P;
        auto prefetch_next = [&](index_t t) {
          if (t >= qn) return;
          prefetch_rows(a.x.ptr(b, cn + t, hn, 0), 0, 1, rb, false);
          if (a.z) prefetch_rows(a.z.ptr(b, cn + t, hn, 0), 0, 1, rb, false);
          prefetch_rows(a.out.ptr(b, cn + t, hn, 0), 0, 1, rb, true);
        };
        float* Sh = S + (h - h0) * N * Pp;
        const bool szero = zero_state[h - h0] != 0;
        // dt' and cumulative log decay (double, split into float hi + lo for exact differences)
        for (index_t t = 0; t < q; ++t) dts[t] = to_float(a.dt(b, c0 + t, h));
        const float bias = a.dt_bias ? to_float(a.dt_bias(h)) : 0.0f;
        dt_transform<A>(dts, q, bias, o.dt_softplus, lo, hi);
        const double Ah = to_double(a.A(h));
        double cum = 0;
        for (index_t t = 0; t < q; ++t) {
          cum += static_cast<double>(dts[t]) * Ah;
          chi[t] = static_cast<float>(cum);
          clo[t] = static_cast<float>(cum - static_cast<double>(chi[t]));
        }
        for (index_t t = q; t < Qb + W; ++t) chi[t] = clo[t] = 0.0f;
        // X chunk [q][Pp]
        for (index_t t = 0; t < q; ++t) {
          read_row(a.x.ptr(b, c0 + t, h, 0), sxp, P, X + t * Pp);
          std::fill(X + t * Pp + P, X + t * Pp + Pp, 0.0f);
        }
        // Y = diag(exp(cum)) C S^T  (state passed in from earlier chunks)
        if (szero) {
          std::fill(Y, Y + q * Pp, 0.0f);
        } else {
          gemm<A, false>(q, Pp, N, Cc, N, 1, Sh, Pp, Y, Pp);
          for (index_t t = 0; t < q; ++t) {
            const Bt e(static_cast<float>(std::exp(static_cast<double>(chi[t]) + clo[t])));
            for (index_t p = 0; p < Pp; p += W) (Bt::load_aligned(Y + t * Pp + p) * e).store_aligned(Y + t * Pp + p);
          }
        }
        // M[t][s] = CB[t][s] exp(cum_t - cum_s) dt'_s for s <= t, else 0
        alignas(64) float iota[W];
        for (index_t i = 0; i < W; ++i) iota[i] = static_cast<float>(i);
        const Bt lane = Bt::load_aligned(iota);
        for (index_t t = 0; t < q; ++t) {
          prefetch_next(t);
          const Bt th(chi[t]), tl(clo[t]);
          float* mr = M + t * ldm;
          const float* cr = CB + t * ldm;
          index_t s = 0;
          for (; s <= t; s += W) {
            const Bt dd = (th - Bt::load_aligned(chi + s)) + (tl - Bt::load_aligned(clo + s));
            const Bt v = Bt::load_aligned(cr + s) * vexp<A>(dd) * Bt::load_aligned(dts + s);
            xsimd::select(lane + Bt(static_cast<float>(s)) <= Bt(static_cast<float>(t)), v, Bt(0.0f)).store_aligned(mr + s);
          }
          Bt(0.0f).store_aligned(mr + s);
          Bt(0.0f).store_aligned(mr + s + W);
        }
        for (index_t t = q; t < qn; ++t) prefetch_next(t);
        gemm<A, true, true>(q, Pp, q, M, ldm, 1, X, Pp, Y, Pp);
        // output: y + D x, gate, store
        if (a.D) for (index_t p = 0; p < P; ++p) Dv[p] = to_float(a.D(h, p));
        for (index_t t = 0; t < q; ++t) {
          float* yr = Y + t * Pp;
          if (a.z) read_row(a.z.ptr(b, c0 + t, h, 0), szp, P, zr);
          for (index_t p = 0; p < Pp; p += W) {
            Bt y = Bt::load_aligned(yr + p);
            if (a.D) y = xsimd::fma(Bt::load_aligned(Dv + p), Bt::load_aligned(X + t * Pp + p), y);
            if (a.z) y = y * vsilu<A>(Bt::load_aligned(zr + p));
            y.store_aligned(yr + p);
          }
          T* orow = a.out.ptr(b, c0 + t, h, 0);
          if (sop == 1) {
            for (index_t p = 0; p < P; p += W) store_n<A>(orow + p, Bt::load_aligned(yr + p), std::min(W, P - p));
          } else {
            for (index_t p = 0; p < P; ++p) orow[p * sop] = from_float<T>(yr[p]);
          }
        }
        // state passing: S = exp(cum_last) S + B^T (w ⊙ X), w_s = exp(cum_last - cum_s) dt'_s
        const Bt lh(chi[q - 1]), ll(clo[q - 1]);
        for (index_t s = 0; s < q; s += W) {
          const Bt dd = (lh - Bt::load_aligned(chi + s)) + (ll - Bt::load_aligned(clo + s));
          (vexp<A>(dd) * Bt::load_aligned(dts + s)).store_aligned(wv + s);
        }
        for (index_t t = 0; t < q; ++t) {
          const Bt w(wv[t]);
          for (index_t p = 0; p < Pp; p += W) (Bt::load_aligned(X + t * Pp + p) * w).store_aligned(X + t * Pp + p);
        }
        if (szero) {
          gemm<A, false>(N, Pp, q, BcT, Qb, 1, X, Pp, Sh, Pp);
        } else {
          const Bt decay(static_cast<float>(std::exp(static_cast<double>(chi[q - 1]) + clo[q - 1])));
          for (index_t i = 0; i < N * Pp; i += W) (Bt::load_aligned(Sh + i) * decay).store_aligned(Sh + i);
          gemm<A, true>(N, Pp, q, BcT, Qb, 1, X, Pp, Sh, Pp);
        }
        zero_state[h - h0] = 0;
      }
    }
    if (a.final_states && sg.fin >= 0) {
      for (index_t h = h0; h < h1; ++h) {
        const float* Sh = S + (h - h0) * N * Pp;
        for (index_t p = 0; p < P; ++p)
          for (index_t n = 0; n < N; ++n) a.final_states(sg.fin, h, p, n) = Sh[n * Pp + p];
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
          (load_n<A>(yr + p, m) * vsilu<A>(load_n<A>(zr + p, m))).store_unaligned(yr + p);  // yr, zr padded
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
    m = longest >= 16 ? ssd_mode::chunk : ssd_mode::recurrent;
  }
  if (m == ssd_mode::chunk) ssd_chunked<Arch>(a, o, segs);
  else ssd_recurrent<Arch>(a, o, segs);
}

}  // namespace seqmix::detail::ssm
