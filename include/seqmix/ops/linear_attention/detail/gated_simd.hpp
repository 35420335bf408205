// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_simd.hpp: float32 recurrent and chunk forms of the gated
// problem (linear_attn, simple_gla, retention, gla, rwkv6). See docs/04-linear-attention.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "../../../runtime/workspace.hpp"
#include "../../../simd/load_store.hpp"
#include "../../../simd/math.hpp"
#include "../../../simd/prefetch.hpp"
#include "../../../simd/reduce.hpp"
#include "common.hpp"
#include "gated_problem.hpp"
#include "gemm.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::linear_detail {

template <class Arch>
inline constexpr index_t simd_width = static_cast<index_t>(xsimd::batch<float, Arch>::size);

template <class Arch>
constexpr index_t pad_to_width(index_t n) noexcept {
  return (n + simd_width<Arch> - 1) / simd_width<Arch> * simd_width<Arch>;
}

/// x[i] = e^{x[i]} for i < n.
template <class Arch>
SEQMIX_ALWAYS_INLINE void exp_inplace(float* x, index_t n) noexcept {
  using F = xsimd::batch<float, Arch>;
  constexpr index_t W = simd_width<Arch>;
  index_t i = 0;
  for (; i + W <= n; i += W) vec::exp(F::load_unaligned(x + i)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] = vec::exp<Arch>(x[i]);
}

/// x[i] *= s for i < n (n a multiple of the width, aligned).
template <class Arch>
SEQMIX_ALWAYS_INLINE void scale_row(float* x, index_t n, float s) noexcept {
  using F = xsimd::batch<float, Arch>;
  const F f(s);
  for (index_t i = 0; i < n; i += simd_width<Arch>) (F::load_aligned(x + i) * f).store_aligned(x + i);
}

/// Per-worker buffers of the gated kernels (float, padded to the SIMD width, 64-byte aligned).
struct gated_bufs {
  float *Q, *Qi, *Kr, *Kt, *Vb, *G, *A, *O, *d, *e, *lo, *hi;
  index_t Kp, Vp, Cp;

  float* states;  ///< G heads x Kp x Vp
  float* zs;      ///< G heads x Kp

  template <class Arch>
  static std::size_t bytes(index_t K, index_t V, index_t C, index_t G) noexcept {
    const index_t Kp = pad_to_width<Arch>(K), Vp = pad_to_width<Arch>(V), Cp = pad_to_width<Arch>(C);
    return arena_bytes<float>(G * Kp * Vp) + arena_bytes<float>(G * Kp) + 4 * arena_bytes<float>(Cp * Kp) + arena_bytes<float>(Kp * Cp) +
           2 * arena_bytes<float>(Cp * Vp) + arena_bytes<float>(Cp * Cp) + 6 * arena_bytes<float>(Kp + Vp + Cp) +
           64;
  }
  template <class Arch>
  static gated_bufs carve(std::byte* mem, std::size_t n, index_t K, index_t V, index_t C, index_t G) noexcept {
    arena ar(mem, n);
    gated_bufs b{};
    b.Kp = pad_to_width<Arch>(K);
    b.Vp = pad_to_width<Arch>(V);
    b.Cp = pad_to_width<Arch>(C);
    const index_t vec_n = b.Kp + b.Vp + b.Cp;
    b.states = ar.alloc<float>(G * b.Kp * b.Vp);
    b.zs = ar.alloc<float>(G * b.Kp);
    b.Q = ar.alloc<float>(b.Cp * b.Kp);
    b.Qi = ar.alloc<float>(b.Cp * b.Kp);
    b.Kr = ar.alloc<float>(b.Cp * b.Kp);
    b.G = ar.alloc<float>(b.Cp * b.Kp);
    b.Kt = ar.alloc<float>(b.Kp * b.Cp);
    b.Vb = ar.alloc<float>(b.Cp * b.Vp);
    b.O = ar.alloc<float>(b.Cp * b.Vp);
    b.A = ar.alloc<float>(b.Cp * b.Cp);
    b.d = ar.alloc<float>(vec_n);
    b.e = ar.alloc<float>(vec_n);
    b.lo = ar.alloc<float>(vec_n);
    b.hi = ar.alloc<float>(vec_n);
    return b;
  }
  /// Zeroes the value rows (their pad columns must stay 0 when V is not a multiple of the width).
  void clear_v() const noexcept { std::memset(Vb, 0, sizeof(float) * static_cast<std::size_t>(Cp * Vp)); }
};

/// One (sequence, head) task of a gated problem in float32.
template <class Arch, class T>
struct gated_task {
  using F = xsimd::batch<float, Arch>;
  static constexpr index_t W = simd_width<Arch>;

  const gated_problem<T>& p;
  const gated_bufs& bf;
  float* S;  ///< this head's state, K x Vp
  float* z;  ///< this head's normalizer sum (linear_attn), K
  index_t b, h, K, V;
  float scale;
  bool has_z;
  index_t t_end;  ///< end of the sequence (prefetch bound)
  index_t ldS;    ///< row pitch of S (bf.Vp, or the caller's state rows in place)
  static constexpr index_t prefetch_ahead = 16;
  static constexpr index_t recurrent_ahead = 4;  ///< tokens prefetched ahead by the recurrent form
  static constexpr index_t rescaled_ahead = 8;   ///< the same, rescaled form (which also prefetches the next unit)

  // ------------------------------------------------------------------ token loads
  float scalar_gate(index_t t) const noexcept {
    if (p.kind == gate_kind::scalar) return to_float(p.g(b, t, h));
    if (p.kind == gate_kind::constant) return static_cast<float>(p.gamma[h]);
    return 0.0f;
  }
  void load_q(index_t t, float* dst) const noexcept {
    load_row<Arch>(p.q.ptr(b, t, h, 0), p.q.template stride<axis::K>(), K, dst, scale);
  }
  void load_k(index_t t, float* dst) const noexcept {
    load_row<Arch>(p.k.ptr(b, t, h, 0), p.k.template stride<axis::K>(), K, dst, 1.0f);
  }
  void load_v(index_t t, float* dst) const noexcept {
    load_row<Arch>(p.v.ptr(b, t, h, 0), p.v.template stride<axis::V>(), V, dst, 1.0f);
  }
  void load_gk(index_t t, float* dst) const noexcept {
    load_row<Arch>(p.gk.ptr(b, t, h, 0), p.gk.template stride<axis::K>(), K, dst, 1.0f);
  }
  /// Software prefetch of tokens [t0, t1) into L2 (rows of one head are H*K elements apart, one page each at
  /// H = 16, K = 64), through vec::prefetch (simd/prefetch.hpp: g++ 12 deletes loops made only of
  /// __builtin_prefetch). The o rows too: prefetchw (owned, into L1) measured no faster.
  template <class View>
  SEQMIX_ALWAYS_INLINE void prefetch_rows(const View& view, index_t n, index_t t0, index_t t1) const noexcept {
    if (!view) return;
    using E = std::remove_cv_t<typename View::element_type>;
    const index_t bytes = n * static_cast<index_t>(sizeof(E));
    for (index_t t = t0; t < t1; ++t) {
      // every line of the row, the last included when it does not start on a line boundary
      vec::prefetch_bytes(view.ptr(b, t, h, 0), static_cast<std::size_t>(bytes));
    }
  }
  SEQMIX_ALWAYS_INLINE void prefetch(index_t t0, index_t t1) const noexcept {
    prefetch_rows(p.q, K, t0, t1);
    prefetch_rows(p.k, K, t0, t1);
    prefetch_rows(p.v, V, t0, t1);
    if (p.kind == gate_kind::key) prefetch_rows(p.gk, K, t0, t1);
    prefetch_rows(p.o, V, t0, t1);
  }
  /// Prefetch of one unit's token rows with the addresses precomputed (base + t * step): a few instructions
  /// per row instead of a strided index computation per view.
  /// Rows that do not start on a line boundary (a malloc'd buffer: 16 bytes past one) end in one more
  /// line, `tail` prefetches it (without it that line was a demand miss per row: 10% of the time).
  struct row_prefetcher {
    const char* base[4]{};
    index_t step[4]{}, bytes[4]{};
    bool tail[4]{};
    int n = 0;
    const char* obase = nullptr;
    index_t ostep = 0, obytes = 0;
    bool otail = false;
    SEQMIX_ALWAYS_INLINE void operator()(index_t t) const noexcept {
      for (int i = 0; i < n; ++i) {
        const char* r = base[i] + t * step[i];
        if (bytes[i] == 256) {  // a row of 64 floats: four lines, unrolled
          vec::prefetch(r);
          vec::prefetch(r + 64);
          vec::prefetch(r + 128);
          vec::prefetch(r + 192);
        } else {
          for (index_t off = 0; off < bytes[i]; off += 64) vec::prefetch(r + off);
        }
        if (tail[i]) vec::prefetch(r + bytes[i] - 1);
      }
      const char* r = obase + t * ostep;
      for (index_t off = 0; off < obytes; off += 64) vec::prefetch(r + off);
      if (otail) vec::prefetch(r + obytes - 1);
    }
    static bool misaligned(const char* p, index_t step) noexcept {
      return ((reinterpret_cast<std::uintptr_t>(p) | static_cast<std::uintptr_t>(step)) & 63) != 0;
    }
  };
  template <class View>
  static void add_rows(row_prefetcher& pf, const View& view, index_t b, index_t h, index_t n) noexcept {
    using E = std::remove_cv_t<typename View::element_type>;
    pf.base[pf.n] = reinterpret_cast<const char*>(view.ptr(b, 0, h, 0));
    pf.step[pf.n] = view.template stride<axis::T>() * static_cast<index_t>(sizeof(E));
    pf.bytes[pf.n] = n * static_cast<index_t>(sizeof(E));
    pf.tail[pf.n] = row_prefetcher::misaligned(pf.base[pf.n], pf.step[pf.n]);
    ++pf.n;
  }
  /// The row prefetcher of this unit (q, k, v, gk and o rows, into L2).
  row_prefetcher rows() const noexcept {
    row_prefetcher pf;
    add_rows(pf, p.q, b, h, K);
    add_rows(pf, p.k, b, h, K);
    add_rows(pf, p.v, b, h, V);
    if (p.kind == gate_kind::key) add_rows(pf, p.gk, b, h, K);
    using E = std::remove_cv_t<typename decltype(p.o)::element_type>;
    pf.obase = reinterpret_cast<const char*>(p.o.ptr(b, 0, h, 0));
    pf.ostep = p.o.template stride<axis::T>() * static_cast<index_t>(sizeof(E));
    pf.obytes = V * static_cast<index_t>(sizeof(E));
    pf.otail = row_prefetcher::misaligned(pf.obase, pf.ostep);
    return pf;
  }
  /// Loads token rows [c0, c0 + L) into Q (scaled), Kr, Vb (and G when `gates`), prefetching
  /// prefetch_ahead tokens ahead so that strided rows arrive from memory in time.
  void load_chunk(index_t c0, index_t L, bool gates) const noexcept {
    const index_t Kp = bf.Kp, Vp = bf.Vp;
    for (index_t i = 0; i < L; ++i) {
      if (gates) load_gk(c0 + i, bf.G + i * Kp);
      load_q(c0 + i, bf.Q + i * Kp);
      load_k(c0 + i, bf.Kr + i * Kp);
      load_v(c0 + i, bf.Vb + i * Vp);
    }
  }
  /// Normalizer (linear_attn) then store of one output row.
  void write_o(index_t t, float* orow, const float* q, const float* k) const noexcept {
    if (has_z) {
      float den = 0;
      for (index_t a = 0; a < K; ++a) {
        z[a] += k[a];
        den += q[a] * z[a];
      }
      const float inv = 1.0f / (den + 1e-10f);
      for (index_t c = 0; c < V; ++c) orow[c] *= inv;
    }
    store_row<Arch>(p.o.ptr(b, t, h, 0), p.o.template stride<axis::V>(), V, orow);
  }

  // ------------------------------------------------------------------ recurrent form
  /// One token on NB column vectors [j, j + NB W) of the state: rows outer, the block's v, o and (gv)
  /// factors in registers, so each state vector costs one load, one store and three FP ops.
  template <int NB, bool Bonus, bool Gv>
  SEQMIX_ALWAYS_INLINE void rec_cols_impl(index_t j, const float* q, const float* k, const float* v, const float* d,
                                          const float* dv, float* o, float bonus) const noexcept {
    F vv[NB], acc[NB], gvv[NB];
    for (int c = 0; c < NB; ++c) {
      vv[c] = F::load_unaligned(v + j + c * W);
      acc[c] = Bonus ? F(bonus) * vv[c] : F(0.0f);
      if constexpr (Gv) gvv[c] = F::load_aligned(dv + j + c * W);
    }
    for (index_t a = 0; a < K; ++a) {
      const F bd(d[a]), bk(k[a]), bq(q[a]);
      float* srow = S + a * ldS + j;
      for (int c = 0; c < NB; ++c) {
        F s = F::load_unaligned(srow + c * W);
        if constexpr (Bonus) acc[c] = xsimd::fma(bq, s, acc[c]);
        if constexpr (Gv) s = s * gvv[c];
        s = xsimd::fma(s, bd, bk * vv[c]);
        s.store_unaligned(srow + c * W);
        if constexpr (!Bonus) acc[c] = xsimd::fma(bq, s, acc[c]);
      }
    }
    for (int c = 0; c < NB; ++c) acc[c].store_aligned(o + j + c * W);
  }
  template <int NB>
  SEQMIX_ALWAYS_INLINE void rec_cols(index_t j, const float* q, const float* k, const float* v, const float* d,
                                     const float* dv, float* o, float bonus) const noexcept {
    if (p.bonus()) {
      if (p.gv) rec_cols_impl<NB, true, true>(j, q, k, v, d, dv, o, bonus);
      else rec_cols_impl<NB, true, false>(j, q, k, v, d, dv, o, bonus);
    } else {
      if (p.gv) rec_cols_impl<NB, false, true>(j, q, k, v, d, dv, o, bonus);
      else rec_cols_impl<NB, false, false>(j, q, k, v, d, dv, o, bonus);
    }
  }
  void recurrent(index_t t0, index_t t1) const noexcept {
    float* q = bf.Q;
    float* k = bf.Kr;
    float* v = bf.Vb;
    float* o = bf.O;
    float* d = bf.d;
    float* dv = bf.e;
    const index_t Vp = bf.Vp;
    for (index_t t = t0; t < t1; ++t) {
      if (t + recurrent_ahead < t1) prefetch(t + recurrent_ahead, t + recurrent_ahead + 1);
      load_q(t, q);
      load_k(t, k);
      load_v(t, v);
      if (p.kind == gate_kind::key) {
        load_gk(t, d);
        exp_inplace<Arch>(d, K);
      } else if (p.kind != gate_kind::none) {
        const float e = vec::exp<Arch>(scalar_gate(t));
        for (index_t a = 0; a < K; ++a) d[a] = e;
      } else {
        for (index_t a = 0; a < K; ++a) d[a] = 1.0f;
      }
      if (p.gv) {
        load_row<Arch>(p.gv.ptr(b, t, h, 0), p.gv.template stride<axis::V>(), V, dv, 1.0f);
        exp_inplace<Arch>(dv, V);
        for (index_t c = V; c < Vp; ++c) dv[c] = 1.0f;
      }
      float bonus = 0;
      if (p.bonus()) {
        for (index_t a = 0; a < K; ++a) bonus += q[a] * to_float(p.u(h, a)) * k[a];
      }
      index_t j = 0;
      for (; j + 4 * W <= Vp; j += 4 * W) rec_cols<4>(j, q, k, v, d, dv, o, bonus);
      for (; j < Vp; j += W) rec_cols<1>(j, q, k, v, d, dv, o, bonus);
      write_o(t, o, q, k);
    }
  }

  // ------------------------------------------------------------------ rescaled recurrent form
  // Row a of the state is kept as S~[a] = S[a] / P[a], P the product of the decays since the last fold:
  // a token costs two FMAs per state element (S~ += k~ v^T, o += q~ S~, k~ = k / P, q~ = q P) instead
  // of three. A channel whose P would leave [fold_lo, fold_hi] (strong or zero decays, NaN) folds its row
  // back (S~ row scaled, P = 1) before the token's pass; an RWKV-6 token whose decay itself is out of range
  // runs the plain step with decay P d instead. Two tokens share each pass over the state.
  // Derivation and bounds: docs/04-linear-attention.md §5.
  static constexpr float fold_lo = 0x1p-40f, fold_hi = 0x1p40f;
  /// One staged token: q (scaled, in a buffer) and k rows for the normalizer and the folding step, the
  /// rescaled qs and ks, v (the input row itself when contiguous float), decay d, output row.
  struct rs_slot {
    float *qb, *kb, *qs, *ks, *vb, *d, *o, *rf;
    const float *q, *k, *v;
    float bonus;
  };
  /// What a staged token needs before its pass: nothing, row folds (rows of S~ scaled by rf), or the plain step.
  enum class rs_fold_kind { none, rows, full };
  rs_slot rs_slot_at(index_t i) const noexcept {
    const index_t Kp = bf.Kp, Vp = bf.Vp;
    return {bf.Q + i * Kp,        bf.Kr + i * Kp, bf.Qi + i * Kp, bf.Kt + i * Kp, bf.Vb + i * Vp, bf.G + i * Kp,
            bf.O + i * Vp,        bf.Kt + (2 + i) * Kp, nullptr, nullptr, nullptr, 0.0f};
  }
  /// Row n of view at token t as contiguous floats: the input itself when it is, else a copy in buf.
  template <class View>
  SEQMIX_ALWAYS_INLINE const float* rs_row(const View& view, index_t t, index_t n, float* buf) const noexcept {
    const auto* src = view.ptr(b, t, h, 0);
    const index_t st = view.template stride<axis::K>();
    if constexpr (std::is_same_v<T, float>) {
      if (st == 1) return src;
    }
    load_row<Arch>(src, st, n, buf, 1.0f);
    return buf;
  }
  /// Stages token t in slot s in one pass over the key channels (q, k, gates read once) and advances P
  /// (Pn: scratch of K floats, swapped with P). Channels whose P would leave [fold_lo, fold_hi] fold their
  /// row (rs_fold_kind::rows: S~ row a scaled by rf[a] before the token's pass); RWKV-6 channels whose decay
  /// itself is out of range (or NaN) make the token run the plain step (rs_fold_kind::full).
  rs_fold_kind rs_stage(index_t t, rs_slot& s, float*& P, float*& Pn, const float* u) const noexcept {
    const bool bon = p.bonus(), none = p.kind == gate_kind::none;
    const float* q = rs_row(p.q, t, K, s.qb);
    const float* k = rs_row(p.k, t, K, s.kb);
    s.k = k;
    const float* g = p.kind == gate_kind::key ? rs_row(p.gk, t, K, s.d) : nullptr;
    {  // v: the input row when contiguous float and V a multiple of the width (the kernel reads Vp lanes)
      const auto* src = p.v.ptr(b, t, h, 0);
      const index_t st = p.v.template stride<axis::V>();
      bool direct = false;
      if constexpr (std::is_same_v<T, float>) direct = st == 1 && V % W == 0;
      if (direct) {
        s.v = reinterpret_cast<const float*>(src);
      } else {
        load_row<Arch>(src, st, V, s.vb, 1.0f);
        s.v = s.vb;
      }
    }
    const float e = (p.kind == gate_kind::scalar || p.kind == gate_kind::constant) ? vec::exp<Arch>(scalar_gate(t))
                                                                                    : 1.0f;
    const F sc(scale), lo(fold_lo), hi(fold_hi), ev(e), one(1.0f);
    auto ok = F(0.0f) == F(0.0f);
    F bacc(0.0f);
    float *qs = s.qs, *ks = s.ks, *dd = s.d, *pnew = Pn;  // locals: vector stores may alias the slot
    const float* pold = P;
    index_t a = 0;
    for (; a + W <= K; a += W) {
      const F qv = F::load_unaligned(q + a) * sc, kv = F::load_unaligned(k + a);
      if (bon) bacc = xsimd::fma(qv * F::load_aligned(u + a), kv, bacc);
      if (none) {
        qv.store_aligned(qs + a);
        kv.store_aligned(ks + a);
        continue;
      }
      const F d = g ? vec::exp(F::load_unaligned(g + a)) : ev;
      const F po = F::load_aligned(pold + a), pn = po * d;
      ok = ok & (pn >= lo) & (pn <= hi);
      // 1 / pn: approximate reciprocal and one Newton step (a relative error of ~1 ulp, per term)
      F r = xsimd::reciprocal(pn);
      r = xsimd::fma(xsimd::fnma(pn, r, one), r, r);
      d.store_aligned(dd + a);
      pn.store_aligned(pnew + a);
      (qv * (bon ? po : pn)).store_aligned(qs + a);
      (kv * r).store_aligned(ks + a);
    }
    float bsum = bon ? vec::hsum(bacc) : 0.0f;
    bool bad_tail = false;
    for (; a < K; ++a) {
      const float qv = q[a] * scale, kv = k[a];
      bsum += bon ? qv * u[a] * kv : 0.0f;
      if (none) {
        s.qs[a] = qv;
        s.ks[a] = kv;
        continue;
      }
      const float d = g ? vec::exp<Arch>(g[a]) : e;
      const float po = P[a], pn = po * d;
      bad_tail = bad_tail || !(pn >= fold_lo && pn <= fold_hi);
      s.d[a] = d;
      Pn[a] = pn;
      s.qs[a] = qv * (bon ? po : pn);
      s.ks[a] = kv / pn;
    }
    s.bonus = bsum;
    if (has_z) {  // the normalizer reads the scaled q
      for (a = 0; a < K; ++a) s.qb[a] = q[a] * scale;
      s.q = s.qb;
    }
    if (none) return rs_fold_kind::none;
    if (xsimd::all(ok) && !bad_tail) {
      std::swap(P, Pn);
      return rs_fold_kind::none;
    }
    // Row folds. gla: S~[a] *= P_{t-1} d_t (= d_t S_{t-1}[a]) and P_t[a] = 1, so the token's update and
    // output are the plain step's (exact for d = 0, inf, NaN). rwkv6 reads S_{t-1}: S~[a] *= P_{t-1},
    // P_{t-1}[a] = 1, P_t[a] = d_t, which needs d_t itself in range; otherwise the plain step.
    bool full = false;
    for (a = 0; a < K; ++a) {
      const float pn = Pn[a];
      if (pn >= fold_lo && pn <= fold_hi) {
        s.rf[a] = 1.0f;
        continue;
      }
      const float qv = q[a] * scale;
      if (!bon) {
        s.rf[a] = pn;
        Pn[a] = 1.0f;
        s.qs[a] = qv;
        s.ks[a] = k[a];
      } else if (s.d[a] >= fold_lo && s.d[a] <= fold_hi) {
        s.rf[a] = P[a];
        Pn[a] = s.d[a];
        s.qs[a] = qv;
        s.ks[a] = k[a] / s.d[a];
      } else {
        full = true;
      }
    }
    if (full) {  // plain step from S_{t-1} = P S~: decay P d, output weights q P
      for (a = 0; a < K; ++a) {
        s.qs[a] = q[a] * scale * P[a];
        s.d[a] *= P[a];
        P[a] = 1.0f;
      }
      return rs_fold_kind::full;
    }
    std::swap(P, Pn);
    return rs_fold_kind::rows;
  }
  /// Applies a staged token's row folds: S~[a] *= rf[a] where rf[a] != 1.
  void rs_fold_rows(const rs_slot& s) const noexcept {
    for (index_t a = 0; a < K; ++a) {
      const float f = s.rf[a];
      if (f == 1.0f) continue;
      const F fv(f);
      float* srow = S + a * ldS;
      for (index_t j = 0; j < bf.Vp; j += W) (F::load_unaligned(srow + j) * fv).store_unaligned(srow + j);
    }
  }
  /// NT consecutive rescaled tokens on NB column vectors [j, j + NB W): one load and one store of each
  /// state vector per NT tokens, two FMAs per token.
  template <int NB, int NT, bool Bonus>
  SEQMIX_ALWAYS_INLINE void rs_cols(index_t j, const rs_slot* sl) const noexcept {
    F vv[NT][NB], acc[NT][NB];
    for (int n = 0; n < NT; ++n)
      for (int c = 0; c < NB; ++c) {
        vv[n][c] = F::load_unaligned(sl[n].v + j + c * W);
        acc[n][c] = Bonus ? F(sl[n].bonus) * vv[n][c] : F(0.0f);
      }
    const float* qs[NT];
    const float* ks[NT];
    for (int n = 0; n < NT; ++n) {
      qs[n] = sl[n].qs;
      ks[n] = sl[n].ks;
    }
    // locals: the vector stores may alias anything, members would be reloaded every row
    float* const S0 = S + j;
    const index_t ld = ldS, Kn = K;
    const auto row = [&](index_t a) {
      F bq[NT], bk[NT];
      for (int n = 0; n < NT; ++n) {
        bq[n] = F(qs[n][a]);
        bk[n] = F(ks[n][a]);
      }
      float* srow = S0 + a * ld;
      for (int c = 0; c < NB; ++c) {
        F s = F::load_unaligned(srow + c * W);
        for (int n = 0; n < NT; ++n) {
          if constexpr (Bonus) {
            acc[n][c] = xsimd::fma(bq[n], s, acc[n][c]);
            s = xsimd::fma(bk[n], vv[n][c], s);
          } else {
            s = xsimd::fma(bk[n], vv[n][c], s);
            acc[n][c] = xsimd::fma(bq[n], s, acc[n][c]);
          }
        }
        s.store_unaligned(srow + c * W);
      }
    };
    index_t a = 0;
    for (; a + 2 <= Kn; a += 2) {  // two rows per iteration: half the loop overhead
      row(a);
      row(a + 1);
    }
    if (a < Kn) row(a);
    for (int n = 0; n < NT; ++n)
      for (int c = 0; c < NB; ++c) acc[n][c].store_aligned(sl[n].o + j + c * W);
  }
  template <int NT, bool Bonus>
  void rs_pass(const rs_slot* sl) const noexcept {
    constexpr int NB = NT == 1 ? 4 : 2;
    const index_t Vp = bf.Vp;
    index_t j = 0;
    for (; j + NB * W <= Vp; j += NB * W) rs_cols<NB, NT, Bonus>(j, sl);
    for (; j < Vp; j += W) rs_cols<1, NT, Bonus>(j, sl);
  }
  template <int NT>
  void rs_run(const rs_slot* sl) const noexcept {
    if (p.bonus()) rs_pass<NT, true>(sl);
    else rs_pass<NT, false>(sl);
  }
  /// The folding step of a staged token: the plain three-op step with decay P d.
  void rs_fold(const rs_slot& s) const noexcept {
    const index_t Vp = bf.Vp;
    index_t j = 0;
    for (; j + 4 * W <= Vp; j += 4 * W) rec_cols<4>(j, s.qs, s.k, s.v, s.d, nullptr, s.o, s.bonus);
    for (; j < Vp; j += W) rec_cols<1>(j, s.qs, s.k, s.v, s.d, nullptr, s.o, s.bonus);
  }
  /// Recurrent form over tokens [t0, t1) with the rescaled state (not with gv); S is exact on return.
  /// Prefetches tokens [n0, n1) of `next` (the unit that runs after this one) on the way.
  void recurrent_rescaled(index_t t0, index_t t1, const gated_task* next, index_t n0, index_t n1) const noexcept {
    float* P = bf.lo;
    float* Pn = bf.hi;
    float* u = bf.e;
    for (index_t a = 0; a < bf.Kp; ++a) P[a] = 1.0f;
    if (p.bonus()) {
      for (index_t a = 0; a < K; ++a) u[a] = to_float(p.u(h, a));
    }
    rs_slot sl[2];
    const row_prefetcher pf_own = rows(), pf_next = next ? next->rows() : row_prefetcher{};
    for (index_t t = t0; t < t1;) {
      // the next unit's token at the same offset streams into the caches a whole block ahead
      // (and this unit's rows a few tokens ahead, in case they left the caches meanwhile)
      for (index_t i = 0; i < 2; ++i) {
        if (next && n0 + (t - t0) + i < n1) pf_next(n0 + (t - t0) + i);
        if (t + rescaled_ahead + i < t1) pf_own(t + rescaled_ahead + i);
      }
      using fk = rs_fold_kind;
      sl[0] = rs_slot_at(0);
      const fk f0 = rs_stage(t, sl[0], P, Pn, u);
      if (f0 == fk::full) {
        rs_fold(sl[0]);
        write_o(t, sl[0].o, sl[0].q, sl[0].k);
        t += 1;
        continue;
      }
      if (f0 == fk::rows) rs_fold_rows(sl[0]);
      sl[1] = rs_slot_at(1);
      const bool pair = t + 1 < t1;
      const fk f1 = pair ? rs_stage(t + 1, sl[1], P, Pn, u) : fk::none;
      if (pair && f1 == fk::none) {
        rs_run<2>(sl);
      } else {
        rs_run<1>(sl);
      }
      write_o(t, sl[0].o, sl[0].q, sl[0].k);
      if (f1 == fk::full) rs_fold(sl[1]);
      if (f1 == fk::rows) {  // the second token's row folds come after the first token's pass
        rs_fold_rows(sl[1]);
        rs_run<1>(sl + 1);
      }
      if (pair) write_o(t + 1, sl[1].o, sl[1].q, sl[1].k);
      t += pair ? 2 : 1;
    }
    for (index_t nt = n0 + (t1 - t0); next && nt < n1; ++nt) pf_next(nt);
    for (index_t a = 0; a < K; ++a) {
      if (P[a] == 1.0f) continue;
      const F f(P[a]);
      float* srow = S + a * ldS;
      for (index_t j = 0; j < bf.Vp; j += W) (F::load_unaligned(srow + j) * f).store_unaligned(srow + j);
    }
  }

  // ------------------------------------------------------------------ chunk form, scalar gates
  void chunk_scalar(index_t c0, index_t L) const noexcept {
    const index_t Kp = bf.Kp, Vp = bf.Vp, Cp = bf.Cp;
    const index_t Lp = pad_to_width<Arch>(L);
    const bool gated = p.kind != gate_kind::none;
    float* G = bf.G;  // G[i], local inclusive cumsum
    load_chunk(c0, L, false);
    if (gated) {
      for (index_t i = 0; i < L; ++i) G[i] = (i ? G[i - 1] : 0.0f) + scalar_gate(c0 + i);
    }
    if (p.kind == gate_kind::constant) {
      for (index_t i = 0; i < L; ++i) G[i] = static_cast<float>(static_cast<double>(i + 1) * p.gamma[h]);
    }
    if (gated) {  // e^{G_i - G_j} loses precision (or is inf - inf) past the factorisation range: split
      float lo = 0.0f, hi = 0.0f;
      for (index_t i = 0; i < L; ++i) {
        lo = std::min(lo, G[i]);
        hi = std::max(hi, G[i]);
      }
      if (!(hi - lo <= factor_range_limit)) {
        if (L == 1) {
          recurrent(c0, c0 + 1);
        } else {
          chunk_scalar(c0, L / 2);
          chunk_scalar(c0 + L / 2, L - L / 2);
        }
        return;
      }
    }
    // inter: O = diag(e^G) Q~ S0
    gemm<Arch, false>(L, Vp, K, bf.Q, Kp, S, Vp, bf.O, Vp);
    float* eg = bf.e;
    if (gated) {
      for (index_t i = 0; i < L; ++i) eg[i] = G[i];
      exp_inplace<Arch>(eg, L);
      for (index_t i = 0; i < L; ++i) scale_row<Arch>(bf.O + i * Vp, Vp, eg[i]);
    }
    // intra: A = (Q~ K^T) .* e^{G_i - G_j}, j <= i
    for (index_t i = 0; i < L; ++i)
      for (index_t a = 0; a < K; ++a) bf.Kt[a * Cp + i] = bf.Kr[i * Kp + a];
    for (index_t a = 0; a < K; ++a)
      for (index_t i = L; i < Lp; ++i) bf.Kt[a * Cp + i] = 0.0f;
    gemm<Arch, false, tri::lower_c>(L, Lp, K, bf.Q, Kp, bf.Kt, Cp, bf.A, Cp);
    for (index_t i = 0; i < L; ++i) {
      float* arow = bf.A + i * Cp;
      if (gated) {
        float* x = bf.d;
        for (index_t j = 0; j <= i; ++j) x[j] = G[i] - G[j];
        exp_inplace<Arch>(x, i + 1);
        for (index_t j = 0; j <= i; ++j) arow[j] *= x[j];
      }
      for (index_t j = i + 1; j < Lp; ++j) arow[j] = 0.0f;
    }
    gemm<Arch, true, tri::lower_a>(L, Vp, L, bf.A, Cp, bf.Vb, Vp, bf.O, Vp);
    // state: S = e^{G_L} S0 + (K .* e^{G_L - G_j})^T V
    if (gated) {
      const float gl = G[L - 1];
      const float el = eg[L - 1];
      for (index_t a = 0; a < K; ++a) scale_row<Arch>(S + a * Vp, Vp, el);
      float* x = bf.d;
      for (index_t j = 0; j < L; ++j) x[j] = gl - G[j];
      exp_inplace<Arch>(x, L);
      for (index_t a = 0; a < K; ++a)
        for (index_t j = 0; j < L; ++j) bf.Kt[a * Cp + j] *= x[j];
    }
    gemm<Arch, true>(K, Vp, L, bf.Kt, Cp, bf.Vb, Vp, S, Vp);
    for (index_t i = 0; i < L; ++i) write_o(c0 + i, bf.O + i * Vp, bf.Q + i * Kp, bf.Kr + i * Kp);
  }

  // ------------------------------------------------------------------ chunk form, per-key gates
  // Segment [c0, c0 + L): factor e^{Γ_i - Γ_j} through a per-channel reference R (SPEC §3.1 stability
  // rule); when a channel's cumulative range exceeds factor_range_limit, split the segment in halves.
  void chunk_key(index_t c0, index_t L) const noexcept {
    const index_t Kp = bf.Kp, Vp = bf.Vp, Cp = bf.Cp;
    const index_t Lp = pad_to_width<Arch>(L);
    const bool rwkv = p.bonus();
    float* G = bf.G;
    load_chunk(c0, L, true);
    cumsum_rows(G, L, K, Kp);
    float* lo = bf.lo;
    float* hi = bf.hi;
    for (index_t a = 0; a < K; ++a) lo[a] = hi[a] = 0.0f;
    for (index_t i = 0; i < L; ++i) {
      const float* g = G + i * Kp;
      for (index_t a = 0; a < K; ++a) {
        lo[a] = std::min(lo[a], g[a]);
        hi[a] = std::max(hi[a], g[a]);
      }
    }
    bool fits = true;
    for (index_t a = 0; a < K; ++a) fits = fits && (hi[a] - lo[a] <= factor_range_limit);
    if (!fits && L > 1) {
      const index_t half = L / 2;
      chunk_key(c0, half);
      chunk_key(c0 + half, L - half);
      return;
    }
    if (!fits) {  // one token whose own gate is out of range (e^{g} = 0, -inf, NaN): the plain step
      recurrent(c0, c0 + 1);
      return;
    }
    float* R = lo;  // reference point per channel; hi becomes Γ_L
    for (index_t a = 0; a < K; ++a) {
      R[a] = 0.5f * (lo[a] + hi[a]);
      hi[a] = G[(L - 1) * Kp + a];
    }
    // Qi = Q~ e^{Γq}, Γq(i) = Γ_i (gla) or Γ_{i-1} (rwkv6, Γ_{-1} = 0)
    for (index_t i = 0; i < L; ++i) {
      float* qi = bf.Qi + i * Kp;
      if (rwkv) {
        if (i == 0) {
          for (index_t a = 0; a < K; ++a) qi[a] = 0.0f;
        } else {
          load_row<Arch>(G + (i - 1) * Kp, 1, K, qi, 1.0f);
        }
      } else {
        load_row<Arch>(G + i * Kp, 1, K, qi, 1.0f);
      }
    }
    exp_inplace<Arch>(bf.Qi, (L - 1) * Kp + K);
    for (index_t i = 0; i < L; ++i) {
      float* qi = bf.Qi + i * Kp;
      const float* q = bf.Q + i * Kp;
      for (index_t a = 0; a < K; ++a) qi[a] *= q[a];
    }
    gemm<Arch, false>(L, Vp, K, bf.Qi, Kp, S, Vp, bf.O, Vp);
    // Qr = Qi e^{-R} (stored over Q after the bonus needs it), Kt[a][j] = k_j[a] e^{R_a - Γ_j[a]}
    float* er = bf.d;  // e^{-R}
    for (index_t a = 0; a < K; ++a) er[a] = -R[a];
    exp_inplace<Arch>(er, K);
    float* el = bf.e;  // e^{Γ_L - R}, then e^{Γ_L}
    for (index_t a = 0; a < K; ++a) el[a] = G[(L - 1) * Kp + a] - R[a];
    exp_inplace<Arch>(el, K);
    for (index_t i = 0; i < L; ++i) {
      float* g = G + i * Kp;
      for (index_t a = 0; a < K; ++a) g[a] = R[a] - g[a];
    }
    exp_inplace<Arch>(G, (L - 1) * Kp + K);
    for (index_t i = 0; i < L; ++i) {
      const float* k = bf.Kr + i * Kp;
      const float* g = G + i * Kp;
      for (index_t a = 0; a < K; ++a) bf.Kt[a * Cp + i] = k[a] * g[a];
    }
    for (index_t a = 0; a < K; ++a)
      for (index_t i = L; i < Lp; ++i) bf.Kt[a * Cp + i] = 0.0f;
    float* Qr = bf.G;  // G is free now
    for (index_t i = 0; i < L; ++i) {
      const float* qi = bf.Qi + i * Kp;
      float* qr = Qr + i * Kp;
      for (index_t a = 0; a < K; ++a) qr[a] = qi[a] * er[a];
    }
    gemm<Arch, false, tri::lower_c>(L, Lp, K, Qr, Kp, bf.Kt, Cp, bf.A, Cp);
    for (index_t i = 0; i < L; ++i) {
      float* arow = bf.A + i * Cp;
      if (rwkv) {
        float bon = 0;
        const float* q = bf.Q + i * Kp;
        const float* k = bf.Kr + i * Kp;
        for (index_t a = 0; a < K; ++a) bon += q[a] * to_float(p.u(h, a)) * k[a];
        arow[i] = bon;
      }
      for (index_t j = i + 1; j < Lp; ++j) arow[j] = 0.0f;
    }
    gemm<Arch, true, tri::lower_a>(L, Vp, L, bf.A, Cp, bf.Vb, Vp, bf.O, Vp);
    // state: S = diag(e^{Γ_L}) S0 + (Kt .* e^{Γ_L - R})^T V
    for (index_t a = 0; a < K; ++a) {
      const float f = el[a];
      float* kt = bf.Kt + a * Cp;
      for (index_t j = 0; j < L; ++j) kt[j] *= f;
    }
    float* gl = hi;  // Γ_L, saved before G was overwritten
    exp_inplace<Arch>(gl, K);
    for (index_t a = 0; a < K; ++a) scale_row<Arch>(S + a * Vp, Vp, gl[a]);
    gemm<Arch, true>(K, Vp, L, bf.Kt, Cp, bf.Vb, Vp, S, Vp);
    for (index_t i = 0; i < L; ++i) write_o(c0 + i, bf.O + i * Vp, bf.Q + i * Kp, bf.Kr + i * Kp);
  }

};

}  // namespace seqmix::linear_detail
SEQMIX_DIAG_POP
