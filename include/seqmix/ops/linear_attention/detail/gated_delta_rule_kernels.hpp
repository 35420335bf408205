// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gated_delta_rule_kernels.hpp: float32 fast path of the delta rules:
// the chunk form (decay-weighted WY representation, solved by forward substitution on register-blocked
// GEMMs) and the token recurrence (decode), per (sequence, value head). See docs/04b-delta-rules.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../../../simd/prefetch.hpp"
#include "../../../simd/reduce.hpp"
#include "gated_delta_rule_problem.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::delta_detail {

/// Scratch of one (sequence, head) task, carved from a worker's workspace block.
struct gdr_scratch {
  index_t C = 0, Cp = 0, Kp = 0, Vp = 0;
  float *q, *k, *qg, *kg, *gam, *gkr;  // C x Kp
  float *kt;                           // Kp x Cp
  float *v, *o, *betav;                // C x Vp
  float *P, *L;                        // C x Cp
  float *S;                            // Kp x Vp
  float *graw, *G, *beta, *ex;         // Cp
  float *t0, *t1, *t2, *t3, *t4;       // Kp
  float* rec;                          // 8 Kp + 10 Vp: the pair recurrence's coefficients and projections

  static std::size_t bytes(index_t C, index_t K, index_t V) noexcept {
    const index_t Cp = pad_up(C), Kp = pad_up(K), Vp = pad_up(V);
    return 6 * arena_bytes<float>(C * Kp) + arena_bytes<float>(Kp * Cp) + 3 * arena_bytes<float>(C * Vp) +
           2 * arena_bytes<float>(C * Cp) + arena_bytes<float>(Kp * Vp) + 4 * arena_bytes<float>(Cp) +
           5 * arena_bytes<float>(Kp) + arena_bytes<float>(8 * Kp + 10 * Vp);
  }
  gdr_scratch(std::byte* mem, index_t C_, index_t K, index_t V) noexcept
      : C(C_), Cp(pad_up(C_)), Kp(pad_up(K)), Vp(pad_up(V)) {
    arena a(mem, bytes(C_, K, V));
    q = a.alloc<float>(C * Kp);
    k = a.alloc<float>(C * Kp);
    qg = a.alloc<float>(C * Kp);
    kg = a.alloc<float>(C * Kp);
    gam = a.alloc<float>(C * Kp);
    gkr = a.alloc<float>(C * Kp);
    kt = a.alloc<float>(Kp * Cp);
    v = a.alloc<float>(C * Vp);
    o = a.alloc<float>(C * Vp);
    betav = a.alloc<float>(C * Vp);
    P = a.alloc<float>(C * Cp);
    L = a.alloc<float>(C * Cp);
    S = a.alloc<float>(Kp * Vp);
    graw = a.alloc<float>(Cp);
    G = a.alloc<float>(Cp);
    beta = a.alloc<float>(Cp);
    ex = a.alloc<float>(Cp);
    t0 = a.alloc<float>(Kp);
    t1 = a.alloc<float>(Kp);
    t2 = a.alloc<float>(Kp);
    t3 = a.alloc<float>(Kp);
    t4 = a.alloc<float>(Kp);
    rec = a.alloc<float>(8 * Kp + 10 * Vp);
    // Everything but the state is zeroed: padding columns must be zero for the GEMMs.
    const std::size_t head = static_cast<std::size_t>(reinterpret_cast<std::byte*>(S) - reinterpret_cast<std::byte*>(q));
    std::memset(static_cast<void*>(q), 0, head);
    std::memset(static_cast<void*>(graw), 0,
                4 * arena_bytes<float>(Cp) + 5 * arena_bytes<float>(Kp) + arena_bytes<float>(8 * Kp + 10 * Vp));
  }
};

/// Loads state in[n, j] (K x V, any strides) into the padded K x Vp scratch (zeros when absent).
inline void gdr_load_state(const_state_view in, index_t n, index_t j, index_t K, index_t V, float* S, index_t Kp,
                           index_t Vp) noexcept {
  if (!in || V != Vp || K != Kp) std::memset(static_cast<void*>(S), 0, sizeof(float) * static_cast<std::size_t>(Kp * Vp));
  if (!in) return;
  const index_t sv = in.stride<axis::V>();
  for (index_t a = 0; a < K; ++a) {
    const float* row = in.ptr(n, j, a, 0);
    float* d = S + a * Vp;
    if (sv == 1) {
      std::memcpy(d, row, sizeof(float) * static_cast<std::size_t>(V));
    } else {
      for (index_t c = 0; c < V; ++c) d[c] = row[c * sv];
    }
  }
}
inline void gdr_store_state(state_view out, index_t n, index_t j, index_t K, index_t V, const float* S,
                            index_t Vp) noexcept {
  if (!out) return;
  const index_t sv = out.stride<axis::V>();
  for (index_t a = 0; a < K; ++a) {
    float* row = out.ptr(n, j, a, 0);
    const float* s = S + a * Vp;
    if (sv == 1) {
      std::memcpy(row, s, sizeof(float) * static_cast<std::size_t>(V));
    } else {
      for (index_t c = 0; c < V; ++c) row[c * sv] = s[c];
    }
  }
}

/// The state row block of head j when it can be updated in place: in and out are the same slot of a [K,V]
/// block with unit V stride, row stride V, and V a multiple of the scratch padding; else nullptr.
inline float* direct_state(const_state_view in, index_t n_in, state_view out, index_t n_out, index_t j, index_t K,
                           index_t V) noexcept {
  if (!in || !out || V % pad_unit != 0) return nullptr;
  if (in.ptr(n_in, j, 0, 0) != out.ptr(n_out, j, 0, 0)) return nullptr;
  if (out.stride<axis::V>() != 1 || (K > 1 && out.stride<axis::K>() != V)) return nullptr;
  return out.ptr(n_out, j, 0, 0);
}

/// Reads tokens [t, t + c) of value head j into the scratch rows (l2norm and scale applied, gates and
/// betas transformed).
template <class Arch, class T>
void gdr_load_chunk(const gdr_problem<T>& p, gdr_scratch& w, index_t b, index_t t, index_t c, index_t j,
                    float scale) noexcept {
  const index_t K = p.K, V = p.V, Kp = w.Kp, Vp = w.Vp;
  const index_t hq = j / p.group();
  const index_t sqk = p.q.template stride<axis::K>(), skk = p.k.template stride<axis::K>();
  const index_t svv = p.v.template stride<axis::V>();
  for (index_t i = 0; i < c; ++i) {
    const index_t tt = t + i;
    float* q = w.q + i * Kp;
    float* k = w.k + i * Kp;
    load_row<Arch>(p.q.ptr(b, tt, hq, 0), sqk, K, q);
    load_row<Arch>(p.k.ptr(b, tt, hq, 0), skk, K, k);
    // rows are zero-padded to Kp: whole-batch sums of squares and scaling
    using bt = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(bt::size);
    float qs = scale;
    if (p.l2norm) {
      bt nq(0.0f), nk(0.0f);
      for (index_t a = 0; a < Kp; a += W) {
        const bt qa = bt::load_unaligned(q + a), ka = bt::load_unaligned(k + a);
        nq = xsimd::fma(qa, qa, nq);
        nk = xsimd::fma(ka, ka, nk);
      }
      qs = scale / std::sqrt(vec::hsum(nq) + 1e-6f);
      scal<Arch>(Kp, 1.0f / std::sqrt(vec::hsum(nk) + 1e-6f), k);
    }
    scal<Arch>(Kp, qs, q);
    load_row<Arch>(p.v.ptr(b, tt, j, 0), svv, V, w.v + i * Vp);
    if (p.beta) {
      w.beta[i] = gdr_beta_transform<float>(to_float(p.beta(b, tt, j)), p.beta_sigmoid, p.beta_mul);
    } else {
      float* bv = w.betav + i * Vp;
      for (index_t c2 = 0; c2 < V; ++c2)
        bv[c2] = gdr_beta_transform<float>(to_float(p.beta_v(b, tt, j, c2)), p.beta_sigmoid, p.beta_mul);
    }
    if (p.gk) {
      float* gr = w.gkr + i * Kp;
      for (index_t a = 0; a < K; ++a) gr[a] = gdr_gate_key<float>(p, b, tt, j, a);
    } else {
      w.graw[i] = gdr_gate<float>(p, b, tt, j);
    }
  }
}

/// Input rows of a later head visit, prefetched into L2 a few tokens per token pair of the current visit (a
/// burst at visit start stalls on the miss buffers; vec::prefetch, since g++ 12 deletes loops made only of
/// __builtin_prefetch, which left gdr_prefetch empty).
struct gdr_row_trickle {
  const char* base[4] = {};
  index_t stride[4] = {}, bytes[4] = {};
  int n = 0;
  index_t rows = 0, per_step = 0, done = 0;
  /// Rows from row0 (element type E), token stride st, unit inner stride only.
  template <class E>
  void add(const E* row0, index_t inner_stride, index_t st, index_t len) noexcept {
    if (inner_stride != 1 || n == 4 || len <= 0) return;
    base[n] = reinterpret_cast<const char*>(row0);
    stride[n] = st * static_cast<index_t>(sizeof(E));
    bytes[n] = len * static_cast<index_t>(sizeof(E));
    ++n;
  }
  SEQMIX_ALWAYS_INLINE static void line(const char* a) noexcept { vec::prefetch(a); }
  SEQMIX_ALWAYS_INLINE void step() noexcept {
    for (const index_t e = std::min(rows, done + per_step); done < e; ++done) {
      for (int a = 0; a < n; ++a) {
        const char* row = base[a] + done * stride[a];
        for (index_t off = 0; off < bytes[a]; off += 64) line(row + off);
        line(row + bytes[a] - 1);  // rows not 64-byte aligned
      }
    }
  }
};

/// The input rows of tokens [t, t + c) of value head j, to trickle in over `steps` token pairs.
template <class T>
gdr_row_trickle gdr_prefetch(const gdr_problem<T>& p, index_t b, index_t t, index_t c, index_t j, index_t steps) noexcept {
  gdr_row_trickle r;
  const index_t hq = j / p.group();
  r.add(p.q.ptr(b, t, hq, 0), p.q.template stride<axis::K>(), p.q.template stride<axis::T>(), p.K);
  r.add(p.k.ptr(b, t, hq, 0), p.k.template stride<axis::K>(), p.k.template stride<axis::T>(), p.K);
  r.add(p.v.ptr(b, t, j, 0), p.v.template stride<axis::V>(), p.v.template stride<axis::T>(), p.V);
  if (p.gk) r.add(p.gk.ptr(b, t, j, 0), p.gk.template stride<axis::K>(), p.gk.template stride<axis::T>(), p.K);
  r.rows = c;
  r.per_step = steps > 0 ? (c + steps - 1) / steps : c;
  return r;
}

/// One column block (NB batches from column c0) of a recurrent step for row i:
/// pred = S^T kd; u = beta (v - pred); S = diag(d) S + ku u^T; o = S^T q. With Lazy the decay is carried in
/// a per-row scale sigma outside S (S_true = diag(sigma) S): the caller passes kd = sigma' k, ku = k / sigma',
/// q = sigma' q and the multiply by d disappears (3 instead of 4 vector ops per state element).
template <int NB, bool Lazy, class Arch>
SEQMIX_ALWAYS_INLINE void gdr_step_block(index_t K, index_t Vp, float* SEQMIX_RESTRICT S, const float* d,
                                         const float* kd, const float* ku, const float* q, const float* v,
                                         const float* betav, float beta, float* o, index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt acc[NB], acc2[NB];
  for (int x = 0; x < NB; ++x) acc[x] = acc2[x] = bt(0.0f);
  index_t a = 0;
  for (; a + 1 < K; a += 2) {
    const bt k0(kd[a]), k1(kd[a + 1]);
    for (int x = 0; x < NB; ++x) {
      acc[x] = xsimd::fma(bt::load_unaligned(S + a * Vp + c0 + x * W), k0, acc[x]);
      acc2[x] = xsimd::fma(bt::load_unaligned(S + (a + 1) * Vp + c0 + x * W), k1, acc2[x]);
    }
  }
  if (a < K) {
    const bt k0(kd[a]);
    for (int x = 0; x < NB; ++x) acc[x] = xsimd::fma(bt::load_unaligned(S + a * Vp + c0 + x * W), k0, acc[x]);
  }
  bt u[NB];
  for (int x = 0; x < NB; ++x) {
    const bt be = betav ? bt::load_unaligned(betav + c0 + x * W) : bt(beta);
    u[x] = be * (bt::load_unaligned(v + c0 + x * W) - (acc[x] + acc2[x]));
    acc[x] = bt(0.0f);
  }
  for (a = 0; a < K; ++a) {
    const bt ka(ku[a]), qa(q[a]);
    if constexpr (Lazy) {
      (void)d;
      for (int x = 0; x < NB; ++x) {
        float* sp = S + a * Vp + c0 + x * W;
        const bt s = xsimd::fma(ka, u[x], bt::load_unaligned(sp));
        s.store_unaligned(sp);
        acc[x] = xsimd::fma(qa, s, acc[x]);
      }
    } else {
      const bt da(d[a]);
      for (int x = 0; x < NB; ++x) {
        float* sp = S + a * Vp + c0 + x * W;
        const bt s = xsimd::fma(ka, u[x], da * bt::load_unaligned(sp));
        s.store_unaligned(sp);
        acc[x] = xsimd::fma(qa, s, acc[x]);
      }
    }
  }
  for (int x = 0; x < NB; ++x) acc[x].store_unaligned(o + c0 + x * W);
}

/// Lazy decays fall back to an explicit multiply before a row scale drops below this (so 1/sigma stays
/// far from overflow; SPEC §3.1 stability rule).
inline constexpr float lazy_decay_floor = 1e-12f;

/// S[a] *= sigma[a] for the K state rows; sigma = 1 on all Kp entries (padding included, so a padding scale
/// never keeps the lazy path below its floor).
template <class Arch>
SEQMIX_ALWAYS_INLINE void materialize_decay(float* S, float* sigma, index_t K, index_t Kp, index_t Vp) noexcept {
  for (index_t a = 0; a < K; ++a) {
    if (sigma[a] != 1.0f) scal<Arch>(Vp, sigma[a], S + a * Vp);
  }
  std::fill(sigma, sigma + Kp, 1.0f);
}

/// One column block of a token-pair pass: with Update, S += ku0 u0^T + ku1 u1^T; with Proj, P_j = S^T x_j
/// (j < 4) of the updated S.
template <int NB, bool Update, bool Proj, class Arch>
SEQMIX_ALWAYS_INLINE void gdr_pair_block(index_t K, index_t Vp, float* SEQMIX_RESTRICT S, const float* ku0,
                                         const float* ku1, const float* u0, const float* u1, const float* x0,
                                         const float* x1, const float* x2, const float* x3, float* P,
                                         index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt U0[NB], U1[NB], A0[NB], A1[NB], A2[NB], A3[NB];
  for (int x = 0; x < NB; ++x) {
    if constexpr (Update) {
      U0[x] = bt::load_unaligned(u0 + c0 + x * W);
      U1[x] = bt::load_unaligned(u1 + c0 + x * W);
    }
    A0[x] = A1[x] = A2[x] = A3[x] = bt(0.0f);
  }
  for (index_t i = 0; i < K; ++i) {
    float* row = S + i * Vp + c0;
    for (int x = 0; x < NB; ++x) {
      bt s = bt::load_unaligned(row + x * W);
      if constexpr (Update) {
        s = xsimd::fma(bt(ku1[i]), U1[x], xsimd::fma(bt(ku0[i]), U0[x], s));
        s.store_unaligned(row + x * W);
      }
      if constexpr (Proj) {
        A0[x] = xsimd::fma(bt(x0[i]), s, A0[x]);
        A1[x] = xsimd::fma(bt(x1[i]), s, A1[x]);
        A2[x] = xsimd::fma(bt(x2[i]), s, A2[x]);
        A3[x] = xsimd::fma(bt(x3[i]), s, A3[x]);
      }
    }
  }
  if constexpr (Proj) {
    for (int x = 0; x < NB; ++x) {
      A0[x].store_unaligned(P + c0 + x * W);
      A1[x].store_unaligned(P + Vp + c0 + x * W);
      A2[x].store_unaligned(P + 2 * Vp + c0 + x * W);
      A3[x].store_unaligned(P + 3 * Vp + c0 + x * W);
    }
  }
}

template <bool Update, bool Proj, class Arch>
void gdr_pair_pass(index_t K, index_t Vp, float* S, const float* ku0, const float* ku1, const float* u0,
                   const float* u1, const float* const* x, float* P) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  index_t c0 = 0;
  for (; c0 + 2 * W <= Vp; c0 += 2 * W)
    gdr_pair_block<2, Update, Proj, Arch>(K, Vp, S, ku0, ku1, u0, u1, x[0], x[1], x[2], x[3], P, c0);
  for (; c0 < Vp; c0 += W)
    gdr_pair_block<1, Update, Proj, Arch>(K, Vp, S, ku0, ku1, u0, u1, x[0], x[1], x[2], x[3], P, c0);
}

/// One token of the recurrence with its decay row d (Kp) applied explicitly, on the materialized state:
/// pred = S^T (d k); u = beta (v - pred); S = diag(d) S + k u^T; o = S^T q. Odd tails and steps below the
/// lazy-decay floor of both recurrences (scalar and per-key gates).
template <class Arch, class T>
void gdr_explicit_step(const gdr_problem<T>& p, gdr_scratch& w, index_t i, const float* d) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  const index_t K = p.K, Kp = w.Kp, Vp = w.Vp;
  float* kd = w.t1;
  const float *k = w.k + i * Kp, *q = w.q + i * Kp, *v = w.v + i * Vp;
  for (index_t a = 0; a < Kp; ++a) kd[a] = d[a] * k[a];
  const float* betav = p.beta ? nullptr : w.betav + i * Vp;
  float* o = w.o + i * Vp;
  index_t c0 = 0;
  for (; c0 + 4 * W <= Vp; c0 += 4 * W)
    gdr_step_block<4, false, Arch>(K, Vp, w.S, d, kd, k, q, v, betav, w.beta[i], o, c0);
  for (; c0 < Vp; c0 += W) gdr_step_block<1, false, Arch>(K, Vp, w.S, d, kd, k, q, v, betav, w.beta[i], o, c0);
}

/// gdr_recurrent_rows for a scalar gate (or none): the decay and the lazy scale sigma are scalars, so the
/// pair pass reads the k / q rows as they are and the scalars move to the V side (docs/04b §4): the update
/// adds k_t (u_t / sigma_t)^T, the projections S~^T k_t, S~^T q_t are scaled by sigma_t when used. No
/// per-key coefficient rows, no divides but one per token.
template <class Arch, class T>
void gdr_recurrent_rows_scalar(const gdr_problem<T>& p, gdr_scratch& w, index_t c, trickle_prefetch pf,
                               gdr_row_trickle* rpf) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const index_t K = p.K, Kp = w.Kp, Vp = w.Vp;
  float* dec = w.G;  // decays of the c tokens (1 without a gate)
  if (p.g) {
    std::copy(w.graw, w.graw + c, dec);
    exp_inplace<Arch>(dec, c);
  } else {
    std::fill(dec, dec + c, 1.0f);
  }
  float sg = 1.0f;
  auto materialize = [&] {
    if (sg != 1.0f) scal<Arch>(K * Vp, sg, w.S);
    sg = 1.0f;
  };
  float* P = w.rec + 8 * Kp;
  float* Pn = P + 4 * Vp;
  float *u0 = Pn + 4 * Vp, *u1 = u0 + Vp;
  auto dot = [&](const float* a, const float* b2) {
    bt acc0(0.0f), acc1(0.0f);
    index_t x = 0;
    for (; x + 2 * W <= Kp; x += 2 * W) {
      acc0 = xsimd::fma(bt::load_unaligned(a + x), bt::load_unaligned(b2 + x), acc0);
      acc1 = xsimd::fma(bt::load_unaligned(a + x + W), bt::load_unaligned(b2 + x + W), acc1);
    }
    for (; x < Kp; x += W) acc0 = xsimd::fma(bt::load_unaligned(a + x), bt::load_unaligned(b2 + x), acc0);
    return vec::hsum(acc0 + acc1);
  };
  auto rows = [&](index_t i, const float** x) {
    x[0] = w.k + i * Kp;
    x[1] = w.k + (i + 1) * Kp;
    x[2] = w.q + i * Kp;
    x[3] = w.q + (i + 1) * Kp;
  };
  const float* xs[4];
  bool has_proj = false;
  index_t i = 0;
  while (i < c) {
    bool pair = i + 1 < c;
    const float di = dec[i], dn = pair ? dec[i + 1] : di;
    if (pair && !(sg * di * dn >= lazy_decay_floor)) {
      materialize();  // projections of the true state are unchanged
      pair = sg * di * dn >= lazy_decay_floor;
    }
    if (!pair) {
      // one token, explicit decay
      materialize();
      std::fill(w.t3, w.t3 + Kp, di);
      gdr_explicit_step<Arch>(p, w, i, w.t3);
      has_proj = false;
      ++i;
      continue;
    }
    // sigma after tokens i and i + 1
    const float A = sg * di, B = A * dn;
    if (!has_proj) {
      rows(i, xs);
      gdr_pair_pass<false, true, Arch>(K, Vp, w.S, xs[0], xs[1], u0, u1, xs, P);
    }
    const float *k0 = w.k + i * Kp, *k1 = w.k + (i + 1) * Kp, *q0 = w.q + i * Kp, *q1 = w.q + (i + 1) * Kp;
    const float c1 = dn * dot(k0, k1), c2 = dot(k0, q0), c3 = dn * dot(k0, q1), c4 = dot(k1, q1);
    {
      const bt C1(c1), C2(c2), C3(c3), C4(c4), B0(w.beta[i]), B1(w.beta[i + 1]), SA(A), SB(B);
      const bt RA(1.0f / A), RB(1.0f / B);
      const float *v0 = w.v + i * Vp, *v1 = w.v + (i + 1) * Vp;
      const float *bv0 = p.beta ? nullptr : w.betav + i * Vp, *bv1 = p.beta ? nullptr : w.betav + (i + 1) * Vp;
      float *o0 = w.o + i * Vp, *o1 = w.o + (i + 1) * Vp;
      for (index_t x = 0; x < Vp; x += W) {
        const bt be0 = bv0 ? bt::load_unaligned(bv0 + x) : B0, be1 = bv1 ? bt::load_unaligned(bv1 + x) : B1;
        const bt U0 = be0 * xsimd::fnma(SA, bt::load_unaligned(P + x), bt::load_unaligned(v0 + x));
        const bt U1 = be1 * (bt::load_unaligned(v1 + x) - xsimd::fma(C1, U0, SB * bt::load_unaligned(P + Vp + x)));
        (U0 * RA).store_unaligned(u0 + x);
        (U1 * RB).store_unaligned(u1 + x);
        xsimd::fma(C2, U0, SA * bt::load_unaligned(P + 2 * Vp + x)).store_unaligned(o0 + x);
        xsimd::fma(C4, U1, xsimd::fma(C3, U0, SB * bt::load_unaligned(P + 3 * Vp + x))).store_unaligned(o1 + x);
      }
    }
    // the next pair's projections, in the current base, when both tokens follow and stay above the floor
    const bool proj = i + 3 < c && B * dec[i + 2] * dec[i + 3] >= lazy_decay_floor;
    if (proj) {
      rows(i + 2, xs);
      gdr_pair_pass<true, true, Arch>(K, Vp, w.S, k0, k1, u0, u1, xs, Pn);
      std::swap(P, Pn);
    } else {
      gdr_pair_pass<true, false, Arch>(K, Vp, w.S, k0, k1, u0, u1, xs, Pn);
    }
    sg = B;
    has_proj = proj;
    i += 2;
    pf.step();
    if (rpf) rpf->step();
  }
  materialize();
}

/// Token recurrence over the c loaded rows (float32 state in w.S), two tokens per pass over the state
/// (docs/04b-delta-rules.md §4). The state is kept as S~ = diag(sigma)^{-1} S; with kd = sigma' k,
/// ku = k / sigma', qd = sigma' q, the projections Pk_j = S~^T kd_j, Pq_j = S~^T qd_j of the state before
/// tokens (t, t+1) give
///   u_t = beta_t (v_t - Pk_t),  u_{t+1} = beta_{t+1} (v_{t+1} - Pk_{t+1} - (k_t . d_{t+1} k_{t+1}) u_t),
///   o_t = Pq_t + (k_t . q_t) u_t,  o_{t+1} = Pq_{t+1} + (k_t . d_{t+1} q_{t+1}) u_t + (k_{t+1} . q_{t+1}) u_{t+1},
/// and one pass applies S~ += ku_t u_t^T + ku_{t+1} u_{t+1}^T while accumulating the next pair's four
/// projections: 3 FMAs per state element and token, and the state read and written once per two tokens.
/// Odd tails and steps whose decay is below the floor run one token at a time (explicit multiply).
template <class Arch, class T>
void gdr_recurrent_rows(const gdr_problem<T>& p, gdr_scratch& w, index_t c, trickle_prefetch pf = {},
                        gdr_row_trickle* rpf = nullptr) noexcept {
  if (!p.gk && !p.tuning.per_key_recurrence) return gdr_recurrent_rows_scalar<Arch>(p, w, c, pf, rpf);
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const index_t K = p.K, Kp = w.Kp, Vp = w.Vp;
  // decays of the c tokens (1 without a gate), rows of w.gam
  float* dec = w.gam;
  for (index_t i = 0; i < c; ++i) {
    float* di = dec + i * Kp;
    if (p.gk) {
      std::copy(w.gkr + i * Kp, w.gkr + (i + 1) * Kp, di);  // padding 0 -> decay 1
      exp_inplace<Arch>(di, Kp);
    } else {
      std::fill(di, di + Kp, p.g ? std::exp(w.graw[i]) : 1.0f);
    }
  }
  float* sig = w.t2;
  std::fill(sig, sig + Kp, 1.0f);
  float *ku0 = w.rec, *ku1 = w.rec + Kp, *s0 = w.rec + 6 * Kp, *s1 = w.rec + 7 * Kp;
  const float* xs[4] = {w.rec + 2 * Kp, w.rec + 3 * Kp, w.rec + 4 * Kp, w.rec + 5 * Kp};
  float* xw[4] = {w.rec + 2 * Kp, w.rec + 3 * Kp, w.rec + 4 * Kp, w.rec + 5 * Kp};
  float* P = w.rec + 8 * Kp;
  float* Pn = P + 4 * Vp;
  float *u0 = Pn + 4 * Vp, *u1 = u0 + Vp;
  auto dmin = [&](const float* a, const float* b2, const float* c2) {  // min over lanes of a b c
    bt m(1.0f);
    for (index_t x = 0; x < Kp; x += W) {
      bt v = bt::load_unaligned(a + x) * bt::load_unaligned(b2 + x);
      if (c2) v = v * bt::load_unaligned(c2 + x);
      m = xsimd::min(m, v);
    }
    return lane_min<Arch>(m);
  };
  auto dot3 = [&](const float* a, const float* b2, const float* c2) {  // sum a b (c)
    bt acc(0.0f);
    for (index_t x = 0; x < Kp; x += W) {
      bt v = bt::load_unaligned(a + x) * bt::load_unaligned(b2 + x);
      acc = c2 ? xsimd::fma(v, bt::load_unaligned(c2 + x), acc) : acc + v;
    }
    return vec::hsum(acc);
  };
  // coefficients sa (s0 = sigma d_i), sb (s1 = s0 d_{i+1}) of tokens (i, i+1): x = {sa k_i, sb k_{i+1}, sa q_i, sb q_{i+1}}
  auto proj_coef = [&](index_t i, const float* sa, const float* sb) {
    const float *ka = w.k + i * Kp, *kb = w.k + (i + 1) * Kp, *qa = w.q + i * Kp, *qb = w.q + (i + 1) * Kp;
    for (index_t x = 0; x < Kp; x += W) {
      const bt A = bt::load_unaligned(sa + x), B = bt::load_unaligned(sb + x);
      (A * bt::load_unaligned(ka + x)).store_unaligned(xw[0] + x);
      (B * bt::load_unaligned(kb + x)).store_unaligned(xw[1] + x);
      (A * bt::load_unaligned(qa + x)).store_unaligned(xw[2] + x);
      (B * bt::load_unaligned(qb + x)).store_unaligned(xw[3] + x);
    }
  };
  bool has_proj = false;
  index_t i = 0;
  while (i < c) {
    bool pair = i + 1 < c;
    const float *di = dec + i * Kp, *dn = pair ? dec + (i + 1) * Kp : di;
    if (pair && !(dmin(sig, di, dn) >= lazy_decay_floor)) {
      materialize_decay<Arch>(w.S, sig, K, Kp, Vp);  // projections of the true state are unchanged
      pair = dmin(sig, di, dn) >= lazy_decay_floor;
    }
    if (!pair) {
      // one token, explicit decay
      materialize_decay<Arch>(w.S, sig, K, Kp, Vp);
      gdr_explicit_step<Arch>(p, w, i, di);
      has_proj = false;
      ++i;
      continue;
    }
    // sigma after tokens i and i + 1, and the update coefficients k / sigma'
    for (index_t x = 0; x < Kp; x += W) {
      const bt A = bt::load_unaligned(sig + x) * bt::load_unaligned(di + x);
      const bt B = A * bt::load_unaligned(dn + x);
      A.store_unaligned(s0 + x);
      B.store_unaligned(s1 + x);
      (bt::load_unaligned(w.k + i * Kp + x) / A).store_unaligned(ku0 + x);
      (bt::load_unaligned(w.k + (i + 1) * Kp + x) / B).store_unaligned(ku1 + x);
    }
    if (!has_proj) {
      proj_coef(i, s0, s1);
      gdr_pair_pass<false, true, Arch>(K, Vp, w.S, ku0, ku1, u0, u1, xs, P);
    }
    // the pair's corrections (free of sigma)
    const float *k0 = w.k + i * Kp, *k1 = w.k + (i + 1) * Kp, *q0 = w.q + i * Kp, *q1 = w.q + (i + 1) * Kp;
    const float c1 = dot3(k0, k1, dn), c2 = dot3(k0, q0, nullptr), c3 = dot3(k0, q1, dn), c4 = dot3(k1, q1, nullptr);
    {
      const bt C1(c1), C2(c2), C3(c3), C4(c4), B0(w.beta[i]), B1(w.beta[i + 1]);
      const float *v0 = w.v + i * Vp, *v1 = w.v + (i + 1) * Vp;
      const float *bv0 = p.beta ? nullptr : w.betav + i * Vp, *bv1 = p.beta ? nullptr : w.betav + (i + 1) * Vp;
      float *o0 = w.o + i * Vp, *o1 = w.o + (i + 1) * Vp;
      for (index_t x = 0; x < Vp; x += W) {
        const bt be0 = bv0 ? bt::load_unaligned(bv0 + x) : B0, be1 = bv1 ? bt::load_unaligned(bv1 + x) : B1;
        const bt U0 = be0 * (bt::load_unaligned(v0 + x) - bt::load_unaligned(P + x));
        const bt U1 = be1 * (bt::load_unaligned(v1 + x) - xsimd::fma(C1, U0, bt::load_unaligned(P + Vp + x)));
        U0.store_unaligned(u0 + x);
        U1.store_unaligned(u1 + x);
        xsimd::fma(C2, U0, bt::load_unaligned(P + 2 * Vp + x)).store_unaligned(o0 + x);
        xsimd::fma(C4, U1, xsimd::fma(C3, U0, bt::load_unaligned(P + 3 * Vp + x))).store_unaligned(o1 + x);
      }
    }
    // the next pair's projections, in the current base, when both tokens follow and stay above the floor
    bool proj = i + 3 < c;
    if (proj) {
      const float *d2 = dec + (i + 2) * Kp, *d3 = dec + (i + 3) * Kp;
      proj = dmin(s1, d2, d3) >= lazy_decay_floor;
      if (proj) {
        float *s2 = w.t0, *s3 = w.t1;
        for (index_t x = 0; x < Kp; x += W) {
          const bt A = bt::load_unaligned(s1 + x) * bt::load_unaligned(d2 + x);
          A.store_unaligned(s2 + x);
          (A * bt::load_unaligned(d3 + x)).store_unaligned(s3 + x);
        }
        proj_coef(i + 2, s2, s3);
      }
    }
    if (proj) {
      gdr_pair_pass<true, true, Arch>(K, Vp, w.S, ku0, ku1, u0, u1, xs, Pn);
      std::swap(P, Pn);
    } else {
      gdr_pair_pass<true, false, Arch>(K, Vp, w.S, ku0, ku1, u0, u1, xs, Pn);
    }
    std::copy(s1, s1 + Kp, sig);
    has_proj = proj;
    i += 2;
    pf.step();
    if (rpf) rpf->step();
  }
  materialize_decay<Arch>(w.S, sig, K, Kp, Vp);
}

/// Chunk form over the c loaded rows (SPEC §3.1.6, docs/04b-delta-rules.md):
/// L = StrictTril(diag(beta) (K K^T . Gamma)), P = Tril(Q K^T . Gamma), R = diag(beta)(V - diag(e^G) K S0),
/// (I + L) U = R, O = diag(e^G) Q S0 + P U, S = e^{G_c} S0 + (diag(e^{G_c - G}) K)^T U.
/// Returns false (nothing changed) when a per-key gate's range in this chunk is too wide to factor.
template <class Arch, class T>
bool gdr_chunk_rows(const gdr_problem<T>& p, gdr_scratch& w, index_t c) noexcept {
  const index_t K = p.K, Kp = w.Kp, Vp = w.Vp, Cp = w.Cp;
  float* qg = w.q;
  float* kg = w.k;
  float* dlast = nullptr;  // per-key decay of the whole chunk (per-key gates)
  float slast = 1.0f;      // scalar decay of the whole chunk
  if (p.gk) {
    // cumulative per-key gates and the factor reference R (SPEC §3.1 stability rule)
    std::copy(w.gkr, w.gkr + c * Kp, w.gam);
    linear_detail::cumsum_rows(w.gam, c, K, Kp);
    float* R = w.t0;
    float range = 0;
    for (index_t a = 0; a < K; ++a) {
      float mx = 0, mn = 0;
      for (index_t i = 0; i < c; ++i) {
        mx = std::max(mx, w.gam[i * Kp + a]);
        mn = std::min(mn, w.gam[i * Kp + a]);
      }
      range = std::max(range, mx - mn);
      R[a] = 0.5f * (mx + mn);
    }
    if (!(range <= linear_detail::factor_range_limit)) return false;
    float* e = w.t1;
    qg = w.qg;
    kg = w.kg;
    // qg, kg = q, k . e^{G_i - from} (from = 0 when null); kt = (k . e^{to - G_i})^T
    auto decayed = [&](const float* from, const float* to) {
      for (index_t i = 0; i < c; ++i) {
        const float* gi = w.gam + i * Kp;
        if (from) {
          for (index_t a = 0; a < K; ++a) e[a] = gi[a] - from[a];
        } else {
          std::copy(gi, gi + K, e);
        }
        exp_inplace<Arch>(e, K);
        for (index_t a = 0; a < K; ++a) {
          qg[i * Kp + a] = w.q[i * Kp + a] * e[a];
          kg[i * Kp + a] = w.k[i * Kp + a] * e[a];
        }
        for (index_t a = 0; a < K; ++a) e[a] = to[a] - gi[a];
        exp_inplace<Arch>(e, K);
        for (index_t a = 0; a < K; ++a) w.kt[a * Cp + i] = w.k[i * Kp + a] * e[a];
      }
    };
    decayed(R, R);
    sgemm_tril_c<Arch>(c, Cp, Kp, qg, Kp, w.kt, Cp, w.P, Cp);
    sgemm_tril_c<Arch>(c, Cp, Kp, kg, Kp, w.kt, Cp, w.L, Cp);
    // decay-applied operands for the state terms
    const float* gl = w.gam + (c - 1) * Kp;
    decayed(nullptr, gl);
    dlast = w.t2;
    std::copy(gl, gl + K, dlast);
    exp_inplace<Arch>(dlast, K);
    for (index_t i = 0; i < c; ++i) {
      float* Li = w.L + i * Cp;
      for (index_t jj = 0; jj < i; ++jj) Li[jj] *= w.beta[i];
      float* Pi = w.P + i * Cp;
      for (index_t jj = i + 1; jj < c; ++jj) Pi[jj] = 0.0f;
    }
  } else {
    if (p.g) {  // e^{G_i - G_j} loses precision (or is inf - inf) past the factorisation range
      float acc = 0, lo = 0, hi = 0;
      for (index_t i = 0; i < c; ++i) {
        acc += w.graw[i];
        lo = std::min(lo, acc);
        hi = std::max(hi, acc);
      }
      if (!(hi - lo <= linear_detail::factor_range_limit)) return false;
    }
    transpose(c, K, w.k, Kp, w.kt, Cp);
    sgemm_tril_c<Arch>(c, Cp, Kp, w.q, Kp, w.kt, Cp, w.P, Cp);
    sgemm_tril_c<Arch>(c, Cp, Kp, w.k, Kp, w.kt, Cp, w.L, Cp);
    if (p.g) {
      float acc = 0;
      for (index_t i = 0; i < c; ++i) w.G[i] = (acc += w.graw[i]);
      for (index_t i = 0; i < c; ++i) {
        // pairwise exponents e^{G_i - G_j}, j <= i (never e^{-G_j} alone)
        for (index_t jj = 0; jj <= i; ++jj) w.ex[jj] = w.G[i] - w.G[jj];
        exp_inplace<Arch>(w.ex, i + 1);
        float* Pi = w.P + i * Cp;
        float* Li = w.L + i * Cp;
        const float bi = w.beta[i];
        for (index_t jj = 0; jj < i; ++jj) {
          Pi[jj] *= w.ex[jj];
          Li[jj] *= bi * w.ex[jj];
        }
        for (index_t jj = i + 1; jj < c; ++jj) Pi[jj] = 0.0f;
      }
      qg = w.qg;
      kg = w.kg;
      const float Gl = w.G[c - 1];
      for (index_t i = 0; i < c; ++i) w.ex[i] = w.G[i];
      exp_inplace<Arch>(w.ex, c);
      for (index_t i = 0; i < c; ++i) {
        const float e = w.ex[i];
        for (index_t a = 0; a < K; ++a) {
          qg[i * Kp + a] = w.q[i * Kp + a] * e;
          kg[i * Kp + a] = w.k[i * Kp + a] * e;
        }
      }
      for (index_t i = 0; i < c; ++i) w.ex[i] = Gl - w.G[i];
      exp_inplace<Arch>(w.ex, c);
      for (index_t a = 0; a < K; ++a) {
        float* row = w.kt + a * Cp;
        for (index_t i = 0; i < c; ++i) row[i] *= w.ex[i];
      }
      slast = std::exp(Gl);
    } else {
      for (index_t i = 0; i < c; ++i) {
        float* Li = w.L + i * Cp;
        for (index_t jj = 0; jj < i; ++jj) Li[jj] *= w.beta[i];
        float* Pi = w.P + i * Cp;
        for (index_t jj = i + 1; jj < c; ++jj) Pi[jj] = 0.0f;
      }
    }
  }
  // R = diag(beta) (V - Kg S0)
  sgemm<false, false, Arch>(c, Vp, Kp, kg, Kp, w.S, Vp, w.o, Vp);
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  for (index_t i = 0; i < c; ++i) {
    const bt be(w.beta[i]);
    float* vi = w.v + i * Vp;
    const float* ti = w.o + i * Vp;
    for (index_t x = 0; x < Vp; x += W)
      (be * (bt::load_unaligned(vi + x) - bt::load_unaligned(ti + x))).store_unaligned(vi + x);
  }
  // (I + L) U = R
  forward_subst<Arch>(c, Vp, w.L, Cp, -1.0f, w.v, Vp);
  // O = Qg S0 + P U
  sgemm<false, false, Arch>(c, Vp, Kp, qg, Kp, w.S, Vp, w.o, Vp);
  sgemm_tril_a<true, Arch>(c, Vp, w.P, Cp, w.v, Vp, w.o, Vp);
  // S = decay S0 + Kd^T U
  if (dlast) {
    for (index_t a = 0; a < K; ++a) scal<Arch>(Vp, dlast[a], w.S + a * Vp);
  } else if (p.g) {
    scal<Arch>(K * Vp, slast, w.S);
  }
  sgemm<false, true, Arch>(K, Vp, c, w.kt, Cp, w.v, Vp, w.S, Vp);
  return true;
}

/// Tokens per head visit of the recurrence (at least; the chunk size when larger): fewer state reloads when a
/// task cycles through its heads.
inline constexpr index_t recurrent_rows = 64;

/// How many heads ahead a task prefetches the next inputs.
inline constexpr index_t prefetch_heads = 2;

/// Scratch bytes of a task over G value heads with chunk C.
inline std::size_t gdr_group_bytes(index_t C, index_t K, index_t V, index_t G) noexcept {
  C = std::max(C, recurrent_rows);
  return gdr_scratch::bytes(C, K, V) + (G > 1 ? arena_bytes<float>(G * pad_up(K) * pad_up(V)) : 0);
}

/// One task of the fast path: value heads [j0, j1) of one sequence, states from in[n_in, j] (zeros when
/// absent) to out[n_out, j]. Chunks are the outer loop and heads the inner one, so the inputs of a chunk
/// ([B,T,H,D] rows of all heads) are read from a few contiguous pages; the states stay in the cache.
template <class Arch, class T>
void gdr_fast_group(const gdr_problem<T>& p, const linear_detail::seq_desc& s, index_t j0, index_t j1,
                    const_state_view in, index_t n_in, state_view out, index_t n_out, bool chunked, index_t C,
                    std::byte* mem) noexcept {
  const index_t len = s.length();
  const index_t Ce = std::max<index_t>(1, std::min(chunked ? C : std::max(C, recurrent_rows), len));
  gdr_scratch w(mem, Ce, p.K, p.V);
  const index_t G = j1 - j0, KV = w.Kp * w.Vp;
  float* states = G > 1 ? reinterpret_cast<float*>(mem + gdr_scratch::bytes(Ce, p.K, p.V)) : w.S;
  // decode in place: the recurrence touches rows < K only, so a dense [K,V] state with V a multiple of the
  // padding is used directly (no copy in and out)
  float* direct = (!chunked && G == 1) ? direct_state(in, n_in, out, n_out, j0, p.K, p.V) : nullptr;
  if (direct) states = direct;
  for (index_t j = j0; j < j1 && !direct; ++j) gdr_load_state(in, n_in, j, p.K, p.V, states + (j - j0) * KV, w.Kp, w.Vp);
  const float scale = static_cast<float>(p.scale);
  const index_t so = p.o.template stride<axis::V>();
  for (index_t t = s.t0; t < s.t1; t += Ce) {
    const index_t c = std::min(Ce, s.t1 - t);
    for (index_t j = j0; j < j1; ++j) {
      w.S = states + (j - j0) * KV;
      gdr_load_chunk<Arch>(p, w, s.b, t, c, j, scale);
      // the inputs of the visit prefetch_heads ahead (wrapping into the next chunk) trickle into L2 during
      // this visit, a token's rows or two per token pair
      gdr_row_trickle rpf;
      if (c > 1) {
        const index_t jp = j + prefetch_heads;
        if (jp < j1) {
          rpf = gdr_prefetch(p, s.b, t, c, jp, c / 2);
        } else if (const index_t cn = std::min(Ce, s.t1 - t - c); cn > 0 && j0 + (jp - j1) < j1) {
          rpf = gdr_prefetch(p, s.b, t + c, cn, j0 + (jp - j1), c / 2);
        }
      }
      // the next head's state streams into L2 during this visit
      const trickle_prefetch pf(j + 1 < j1 ? states + (j + 1 - j0) * KV : states, j + 1 < j1 ? KV : 0, c / 2);
      if (!(chunked && gdr_chunk_rows<Arch>(p, w, c))) gdr_recurrent_rows<Arch>(p, w, c, pf, &rpf);
      for (index_t i = 0; i < c; ++i) store_row<Arch>(p.o.ptr(s.b, t + i, j, 0), so, p.V, w.o + i * w.Vp);
    }
  }
  if (direct) return;
  for (index_t j = j0; j < j1; ++j) gdr_store_state(out, n_out, j, p.K, p.V, states + (j - j0) * KV, w.Vp);
}

/// One (sequence, value head) task (decode).
template <class Arch, class T>
void gdr_fast_job(const gdr_problem<T>& p, const linear_detail::seq_desc& s, index_t j, const_state_view in,
                  index_t n_in, state_view out, index_t n_out, bool chunked, index_t C, std::byte* mem) noexcept {
  gdr_fast_group<Arch>(p, s, j, j + 1, in, n_in, out, n_out, chunked, C, mem);
}

}  // namespace seqmix::delta_detail
SEQMIX_DIAG_POP
