// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/rwkv7_kernels.hpp: float32 fast path of RWKV-7: the chunk form
// (generalized WY: pseudo-values h_i = S_{i-1}^T a_i by forward substitution, per-channel decays factored
// about a reference point inside the chunk) and the token recurrence (decode). See docs/04b-delta-rules.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

#include "delta_rule_stage.hpp"
#include "gated_delta_rule_kernels.hpp"
#include "rwkv7_reference.hpp"

namespace seqmix::delta_detail {

/// Scratch of one RWKV-7 (sequence, head) task.
struct rwkv7_scratch {
  index_t C = 0, Cp = 0, Kp = 0, Vp = 0;
  float *r, *wr, *W, *k, *a, *b, *X, *Y;  // C x Kp
  float *kb;                              // Kp x 2Cp: [k^ | b^] transposed
  float *Ma, *Mr;                         // C x 2Cp
  float *v, *hh, *o;                      // C x Vp
  float *S;                               // Kp x Vp
  float *R, *eR, *emR, *d, *t1;           // Kp
  float* rec;                             // 10 Kp: the recurrence's decays and coefficients

  static std::size_t bytes(index_t C, index_t K, index_t V) noexcept {
    const index_t Cp = pad_up(C), Kp = pad_up(K), Vp = pad_up(V);
    return 8 * arena_bytes<float>(C * Kp) + arena_bytes<float>(Kp * 2 * Cp) + 2 * arena_bytes<float>(C * 2 * Cp) +
           3 * arena_bytes<float>(C * Vp) + arena_bytes<float>(Kp * Vp) + 5 * arena_bytes<float>(Kp) +
           arena_bytes<float>(10 * Kp);
  }
  rwkv7_scratch(std::byte* mem, index_t C_, index_t K, index_t V) noexcept
      : C(C_), Cp(pad_up(C_)), Kp(pad_up(K)), Vp(pad_up(V)) {
    arena ar(mem, bytes(C_, K, V));
    r = ar.alloc<float>(C * Kp);
    wr = ar.alloc<float>(C * Kp);
    W = ar.alloc<float>(C * Kp);
    k = ar.alloc<float>(C * Kp);
    a = ar.alloc<float>(C * Kp);
    b = ar.alloc<float>(C * Kp);
    X = ar.alloc<float>(C * Kp);
    Y = ar.alloc<float>(C * Kp);
    kb = ar.alloc<float>(Kp * 2 * Cp);
    Ma = ar.alloc<float>(C * 2 * Cp);
    Mr = ar.alloc<float>(C * 2 * Cp);
    v = ar.alloc<float>(C * Vp);
    hh = ar.alloc<float>(C * Vp);
    o = ar.alloc<float>(C * Vp);
    S = ar.alloc<float>(Kp * Vp);
    R = ar.alloc<float>(Kp);
    eR = ar.alloc<float>(Kp);
    emR = ar.alloc<float>(Kp);
    d = ar.alloc<float>(Kp);
    t1 = ar.alloc<float>(Kp);
    rec = ar.alloc<float>(10 * Kp);
    const std::size_t head = static_cast<std::size_t>(reinterpret_cast<std::byte*>(S) - reinterpret_cast<std::byte*>(r));
    std::memset(static_cast<void*>(r), 0, head);
    std::memset(static_cast<void*>(R), 0, 5 * arena_bytes<float>(Kp) + arena_bytes<float>(10 * Kp));
  }
};

/// Float rows of one token of one head: the inputs themselves when they are contiguous float32 rows of whole
/// batches (K, V multiples of pad_unit), else zero-padded copies in scratch.
struct rwkv7_rows {
  const float *r, *w, *k, *a, *b, *v;
};

/// Projection h = S^T c over the K rows of S (one pass; two accumulators per column batch).
template <int NB, class Arch>
SEQMIX_ALWAYS_INLINE void rwkv7_project_block(index_t K, index_t Vp, const float* SEQMIX_RESTRICT S, const float* c,
                                              float* h, index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt h1[NB], h2[NB];
  for (int x = 0; x < NB; ++x) h1[x] = h2[x] = bt(0.0f);
  index_t i = 0;
  for (; i + 1 < K; i += 2) {
    const bt a0(c[i]), a1(c[i + 1]);
    for (int x = 0; x < NB; ++x) {
      h1[x] = xsimd::fma(bt::load_unaligned(S + i * Vp + c0 + x * W), a0, h1[x]);
      h2[x] = xsimd::fma(bt::load_unaligned(S + (i + 1) * Vp + c0 + x * W), a1, h2[x]);
    }
  }
  if (i < K) {
    const bt a0(c[i]);
    for (int x = 0; x < NB; ++x) h1[x] = xsimd::fma(bt::load_unaligned(S + i * Vp + c0 + x * W), a0, h1[x]);
  }
  for (int x = 0; x < NB; ++x) (h1[x] + h2[x]).store_unaligned(h + c0 + x * W);
}

/// One pass over a column block of S for one token, fused with the next token's a-projection:
/// S = diag(d) S + b h^T + k v^T (Lazy: d is carried by the row scales, no multiply), o = S^T r and, with
/// Next, h <- S^T an (h is read before and overwritten after, column block by column block).
template <int NB, bool Lazy, bool Next, class Arch>
SEQMIX_ALWAYS_INLINE void rwkv7_fused_block(index_t K, index_t Vp, float* SEQMIX_RESTRICT S, const float* d,
                                            const float* b, const float* k, const float* r, const float* an,
                                            float* h, const float* v, float* o, index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt hv[NB], vv[NB], acc[NB], nx[NB];
  for (int x = 0; x < NB; ++x) {
    hv[x] = bt::load_unaligned(h + c0 + x * W);
    vv[x] = bt::load_unaligned(v + c0 + x * W);
    acc[x] = nx[x] = bt(0.0f);
  }
  for (index_t i = 0; i < K; ++i) {
    const bt bi(b[i]), ki(k[i]), ri(r[i]);
    float* row = S + i * Vp + c0;
    for (int x = 0; x < NB; ++x) {
      bt s = bt::load_unaligned(row + x * W);
      if constexpr (!Lazy) s = bt(d[i]) * s;
      s = xsimd::fma(ki, vv[x], xsimd::fma(bi, hv[x], s));
      s.store_unaligned(row + x * W);
      acc[x] = xsimd::fma(ri, s, acc[x]);
      if constexpr (Next) nx[x] = xsimd::fma(bt(an[i]), s, nx[x]);
    }
  }
  for (int x = 0; x < NB; ++x) {
    acc[x].store_unaligned(o + c0 + x * W);
    if constexpr (Next) nx[x].store_unaligned(h + c0 + x * W);
  }
}

inline constexpr int rwkv7_nb = 2;

/// One token's pass over all column blocks of S; between(n) runs after the n-th block (so the next token's
/// set-up overlaps the FMAs of this one).
template <bool Lazy, bool Next, class Arch, class Between>
SEQMIX_ALWAYS_INLINE void rwkv7_fused_pass(index_t K, index_t Vp, float* S, const float* d, const float* b,
                                           const float* k, const float* r, const float* an, float* h, const float* v,
                                           float* o, Between&& between) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  constexpr int NB = rwkv7_nb;
  index_t c0 = 0;
  int n = 0;
  for (; c0 + NB * W <= Vp; c0 += NB * W) {
    rwkv7_fused_block<NB, Lazy, Next, Arch>(K, Vp, S, d, b, k, r, an, h, v, o, c0);
    between(n++);
  }
  for (; c0 < Vp; c0 += W) {
    rwkv7_fused_block<1, Lazy, Next, Arch>(K, Vp, S, d, b, k, r, an, h, v, o, c0);
    between(n++);
  }
}

/// Per-token coefficients of the recurrence: b / sigma', k / sigma', sigma' r scale, sigma' a_next.
struct rwkv7_coef {
  float *b, *k, *r, *an;
};

/// Token recurrence over c tokens of one head, one pass over the state per token (docs/04b-delta-rules.md §4):
/// the state is kept as S~ = diag(sigma)^{-1} S, so a step is S~ += (b / sigma') h^T + (k / sigma') v^T,
/// o = S~^T (sigma' r) and the next token's h = S~^T (sigma' a_next) is accumulated in the same pass. The
/// next token's decay and coefficients are computed between the column blocks of this token's pass.
/// rows(i) gives token i's rows; begin(i) returns where token i's Vp outputs go; end(i) runs after token i.
template <class Arch, class Rows, class Begin, class End>
void rwkv7_recurrence(rwkv7_scratch& w, float* S, index_t K, index_t c, float scale, Rows&& rows, Begin&& begin,
                      End&& end) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const index_t Kp = w.Kp, Vp = w.Vp;
  float* sig = w.R;
  float* h = w.hh;
  float* d[2] = {w.rec, w.rec + Kp};
  const rwkv7_coef cs[2] = {{w.rec + 2 * Kp, w.rec + 3 * Kp, w.rec + 4 * Kp, w.rec + 5 * Kp},
                            {w.rec + 6 * Kp, w.rec + 7 * Kp, w.rec + 8 * Kp, w.rec + 9 * Kp}};
  const bt sc(scale);
  // sigma' = sigma d (lazy; else sigma stays 1) and the coefficients of one token
  auto prep = [&](const rwkv7_coef& q, bool lazy, const float* dd, const rwkv7_rows& cur, const float* a_next) {
    if (lazy) {
      for (index_t x = 0; x < Kp; x += W) {
        const bt s2 = bt::load_unaligned(sig + x) * bt::load_unaligned(dd + x);
        s2.store_unaligned(sig + x);
        const bt inv = bt(1.0f) / s2;
        (bt::load_unaligned(cur.b + x) * inv).store_unaligned(q.b + x);
        (bt::load_unaligned(cur.k + x) * inv).store_unaligned(q.k + x);
        (s2 * sc * bt::load_unaligned(cur.r + x)).store_unaligned(q.r + x);
        if (a_next) (s2 * bt::load_unaligned(a_next + x)).store_unaligned(q.an + x);
      }
    } else {  // sigma == 1 here
      for (index_t x = 0; x < Kp; x += W) {
        bt::load_unaligned(cur.b + x).store_unaligned(q.b + x);
        bt::load_unaligned(cur.k + x).store_unaligned(q.k + x);
        (sc * bt::load_unaligned(cur.r + x)).store_unaligned(q.r + x);
        if (a_next) bt::load_unaligned(a_next + x).store_unaligned(q.an + x);
      }
    }
  };
  std::fill(sig, sig + Kp, 1.0f);
  rwkv7_rows cur = rows(0);
  for (index_t x = 0; x < Kp; x += W) xsimd::exp(bt::load_unaligned(cur.w + x)).store_unaligned(d[0] + x);
  bool lazy = c > 1 && lane_min<Arch>(vmin<Arch>(Kp, d[0])) >= lazy_decay_floor;
  rwkv7_rows nxt = c > 1 ? rows(1) : cur;
  prep(cs[0], lazy, d[0], cur, c > 1 ? nxt.a : nullptr);
  {
    index_t c0 = 0;
    for (; c0 + 4 * W <= Vp; c0 += 4 * W) rwkv7_project_block<4, Arch>(K, Vp, S, cur.a, h, c0);
    for (; c0 < Vp; c0 += W) rwkv7_project_block<1, Arch>(K, Vp, S, cur.a, h, c0);
  }
  for (index_t i = 0; i < c; ++i) {
    float* o = begin(i);
    const int z = static_cast<int>(i & 1);
    const bool next = i + 1 < c;
    const float* a_nn = i + 2 < c ? rows(i + 2).a : nullptr;
    bool mat = false, lazy_n = true, prepped = false;
    // after block 0: the next token's decay and the floor check; after block 1: its coefficients
    auto between = [&](int n) {
      if (!next) return;
      if (n == 0) {
        bt mn(1.0f), dmn(1.0f);
        for (index_t x = 0; x < Kp; x += W) {
          const bt dx = xsimd::exp(bt::load_unaligned(nxt.w + x));
          dx.store_unaligned(d[z ^ 1] + x);
          mn = xsimd::min(mn, dx * bt::load_unaligned(sig + x));
          dmn = xsimd::min(dmn, dx);
        }
        // h (a projection of the true state) is unchanged by a materialization of sigma
        mat = !(lane_min<Arch>(mn) >= lazy_decay_floor);
        lazy_n = !mat || lane_min<Arch>(dmn) >= lazy_decay_floor;
      }
      if (n >= 1 && !mat && !prepped) {
        prep(cs[z ^ 1], lazy_n, d[z ^ 1], nxt, a_nn);
        prepped = true;
      }
    };
    const rwkv7_coef& q = cs[z];
    if (lazy) {
      if (next) rwkv7_fused_pass<true, true, Arch>(K, Vp, S, d[z], q.b, q.k, q.r, q.an, h, cur.v, o, between);
      else rwkv7_fused_pass<true, false, Arch>(K, Vp, S, d[z], q.b, q.k, q.r, q.an, h, cur.v, o, between);
    } else {
      if (next) rwkv7_fused_pass<false, true, Arch>(K, Vp, S, d[z], q.b, q.k, q.r, q.an, h, cur.v, o, between);
      else rwkv7_fused_pass<false, false, Arch>(K, Vp, S, d[z], q.b, q.k, q.r, q.an, h, cur.v, o, between);
    }
    end(i);
    if (!next) break;
    if (mat) materialize_decay<Arch>(S, sig, K, Kp, Vp);
    if (!prepped) prep(cs[z ^ 1], lazy_n, d[z ^ 1], nxt, a_nn);
    lazy = lazy_n;
    cur = nxt;
    if (i + 2 < c) nxt = rows(i + 2);
  }
  materialize_decay<Arch>(S, sig, K, Kp, Vp);
}

/// Chunk form over c loaded rows (SPEC §3.1.9). With W the local inclusive cumsum of w and R a per-channel
/// reference point (midpoint of the range of {0, W_i}), X_i = e^{W_i - R}, Y_j = e^{R - W_j}:
///   Ma = [a_i X_{i-1}] [k_j Y_j | b_j Y_j]^T, Mr = [r_i X_i] [k_j Y_j | b_j Y_j]^T,
///   h_i = (a_i e^{W_{i-1}})^T S0 + sum_{j<i} Mak_ij v_j + Mab_ij h_j   (forward substitution),
///   o_i = (r_i e^{W_i})^T S0 + sum_{j<=i} Mrk_ij v_j + Mrb_ij h_j,
///   S = diag(e^{W_c}) S0 + sum_j diag(e^{W_c - W_j}) (k_j v_j^T + b_j h_j^T).
/// Returns false (nothing changed) when the range exceeds the factor limit.
template <class Arch>
bool rwkv7_chunk_rows(rwkv7_scratch& w, index_t K, index_t c) noexcept {
  const index_t Kp = w.Kp, Vp = w.Vp, C2 = 2 * w.Cp;
  for (index_t x = 0; x < K; ++x) w.W[x] = w.wr[x];
  for (index_t i = 1; i < c; ++i) {
    const float* SEQMIX_RESTRICT prev = w.W + (i - 1) * Kp;
    const float* SEQMIX_RESTRICT cur = w.wr + i * Kp;
    float* SEQMIX_RESTRICT dst = w.W + i * Kp;
    for (index_t x = 0; x < K; ++x) dst[x] = prev[x] + cur[x];
  }
  float range = 0;
  for (index_t x = 0; x < K; ++x) {
    float mx = 0, mn = 0;
    for (index_t i = 0; i < c; ++i) {
      mx = std::max(mx, w.W[i * Kp + x]);
      mn = std::min(mn, w.W[i * Kp + x]);
    }
    range = std::max(range, mx - mn);
    w.R[x] = 0.5f * (mx + mn);
  }
  if (!(range <= linear_detail::factor_range_limit)) return false;
  for (index_t i = 0; i < c; ++i) {
    const float* Wi = w.W + i * Kp;
    float* Xi = w.X + i * Kp;
    float* Yi = w.Y + i * Kp;
    for (index_t x = 0; x < K; ++x) {
      Xi[x] = Wi[x] - w.R[x];
      Yi[x] = w.R[x] - Wi[x];
    }
    exp_inplace<Arch>(Xi, K);
    exp_inplace<Arch>(Yi, K);
  }
  for (index_t x = 0; x < K; ++x) {
    w.eR[x] = w.R[x];
    w.emR[x] = -w.R[x];
  }
  exp_inplace<Arch>(w.eR, K);
  exp_inplace<Arch>(w.emR, K);
  // a^_i = a_i X_{i-1} (X_{-1} = e^{-R}), r^_i = r_i X_i, in place; [k^ | b^]^T
  for (index_t i = c; i-- > 0;) {
    float* ai = w.a + i * Kp;
    const float* xp = i > 0 ? w.X + (i - 1) * Kp : w.emR;
    for (index_t x = 0; x < K; ++x) ai[x] *= xp[x];
    vmul<Arch>(Kp, w.r + i * Kp, w.X + i * Kp, w.r + i * Kp);
  }
  for (index_t j = 0; j < c; ++j) {
    const float *kj = w.k + j * Kp, *bj = w.b + j * Kp, *Yj = w.Y + j * Kp;
    for (index_t x = 0; x < K; ++x) {
      w.kb[x * C2 + j] = kj[x] * Yj[x];
      w.kb[x * C2 + w.Cp + j] = bj[x] * Yj[x];
    }
  }
  sgemm_tril_c<Arch>(c, w.Cp, Kp, w.a, Kp, w.kb, C2, w.Ma, C2);
  sgemm_tril_c<Arch>(c, w.Cp, Kp, w.a, Kp, w.kb + w.Cp, C2, w.Ma + w.Cp, C2);
  sgemm_tril_c<Arch>(c, w.Cp, Kp, w.r, Kp, w.kb, C2, w.Mr, C2);
  sgemm_tril_c<Arch>(c, w.Cp, Kp, w.r, Kp, w.kb + w.Cp, C2, w.Mr + w.Cp, C2);
  // masks: Mak strictly lower; Mrk, Mrb lower inclusive (Mab is read below the diagonal only)
  for (index_t i = 0; i < c; ++i) {
    float* ma = w.Ma + i * C2;
    float* mr = w.Mr + i * C2;
    for (index_t j = i; j < c; ++j) ma[j] = 0.0f;
    for (index_t j = i + 1; j < c; ++j) {
      mr[j] = 0.0f;
      mr[w.Cp + j] = 0.0f;
    }
  }
  // true decays for the state terms: a_i e^{W_{i-1}}, r_i e^{W_i}
  for (index_t i = 0; i < c; ++i) {
    vmul<Arch>(Kp, w.a + i * Kp, w.eR, w.a + i * Kp);
    vmul<Arch>(Kp, w.r + i * Kp, w.eR, w.r + i * Kp);
  }
  // H = A0 S0 + Mak V, then (I - Mab) H = rhs
  sgemm<false, false, Arch>(c, Vp, Kp, w.a, Kp, w.S, Vp, w.hh, Vp);
  sgemm_tril_a<true, Arch>(c, Vp, w.Ma, C2, w.v, Vp, w.hh, Vp);
  forward_subst<Arch>(c, Vp, w.Ma + w.Cp, C2, 1.0f, w.hh, Vp);
  // O = R0 S0 + Mrk V + Mrb H
  sgemm<false, false, Arch>(c, Vp, Kp, w.r, Kp, w.S, Vp, w.o, Vp);
  sgemm_tril_a<true, Arch>(c, Vp, w.Mr, C2, w.v, Vp, w.o, Vp);
  sgemm_tril_a<true, Arch>(c, Vp, w.Mr + w.Cp, C2, w.hh, Vp, w.o, Vp);
  // S = diag(e^{W_c}) S0 + [k e^{W_c - W} | b e^{W_c - W}]^T [V; H]
  const float* Xl = w.X + (c - 1) * Kp;
  for (index_t x = 0; x < K; ++x) {
    scal<Arch>(Vp, Xl[x] * w.eR[x], w.S + x * Vp);
    float* row = w.kb + x * C2;
    for (index_t j = 0; j < c; ++j) {
      row[j] *= Xl[x];
      row[w.Cp + j] *= Xl[x];
    }
  }
  sgemm<false, true, Arch>(K, Vp, c, w.kb, C2, w.v, Vp, w.S, Vp);
  sgemm<false, true, Arch>(K, Vp, c, w.kb + w.Cp, C2, w.hh, Vp, w.S, Vp);
  return true;
}

/// Floats of one staged token row block: r (scaled), w, k, a, b (Kp each) and v (Vp).
inline index_t rwkv7_in_row(index_t Kp, index_t Vp) noexcept { return 5 * Kp + Vp; }

inline std::size_t rwkv7_group_bytes(index_t C, index_t K, index_t V, index_t G) noexcept {
  const index_t Kp = pad_up(K), Vp = pad_up(V);
  return rwkv7_scratch::bytes(C, K, V) + (G > 1 ? arena_bytes<float>(G * Kp * Vp) : 0) +
         stage_pipe<int, int>::bytes(G, stage_chunk(C), rwkv7_in_row(Kp, Vp), Vp);
}

/// One task: heads [h0, h1) of one sequence, staged chunks of stage_tokens outer and heads inner
/// (delta_rule_stage.hpp); each head visit runs the recurrence or the chunk form over the chunk's tokens.
template <class Arch, class T>
void rwkv7_fast_group(const rwkv7_problem<T>& p, const linear_detail::seq_desc& s, index_t h0, index_t h1,
                      const_state_view in, index_t n_in, state_view out, index_t n_out, bool chunked, index_t C,
                      std::byte* mem) noexcept {
  const index_t len = s.length();
  if (len <= 0) return;
  const index_t Ce = std::max<index_t>(1, std::min(C, len));
  rwkv7_scratch w(mem, Ce, p.K, p.V);
  const index_t G = h1 - h0, KV = w.Kp * w.Vp, Kp = w.Kp, Vp = w.Vp, K = p.K;
  std::byte* rest = mem + rwkv7_scratch::bytes(Ce, p.K, p.V);
  float* states = w.S;
  if (G > 1) {
    states = reinterpret_cast<float*>(rest);
    rest += arena_bytes<float>(G * KV);
  }
  float* direct = (!chunked && G == 1) ? direct_state(in, n_in, out, n_out, h0, p.K, p.V) : nullptr;
  if (direct) states = direct;
  for (index_t h = h0; h < h1 && !direct; ++h) gdr_load_state(in, n_in, h, p.K, p.V, states + (h - h0) * KV, w.Kp, w.Vp);
  const float scale = static_cast<float>(p.scale);
  const index_t sr = p.r.template stride<axis::K>(), sw = p.w.template stride<axis::K>();
  const index_t sk = p.k.template stride<axis::K>(), sa = p.a.template stride<axis::K>();
  const index_t sb = p.b.template stride<axis::K>(), sv = p.v.template stride<axis::V>();
  const index_t so = p.o.template stride<axis::V>();
  struct loader {
    const rwkv7_problem<T>& p;
    index_t b, h0, sr, sw, sk, sa, sb, sv, Kp;
    float scale;
    void operator()(index_t t, index_t g, float* d) const noexcept {
      const index_t h = h0 + g, K = p.K;
      ld_row<Arch>(p.r.ptr(b, t, h, 0), sr, K, d, scale);
      ld_row<Arch>(p.w.ptr(b, t, h, 0), sw, K, d + Kp);
      ld_row<Arch>(p.k.ptr(b, t, h, 0), sk, K, d + 2 * Kp);
      ld_row<Arch>(p.a.ptr(b, t, h, 0), sa, K, d + 3 * Kp);
      ld_row<Arch>(p.b.ptr(b, t, h, 0), sb, K, d + 4 * Kp);
      ld_row<Arch>(p.v.ptr(b, t, h, 0), sv, p.V, d + 5 * Kp);
    }
    void prefetch(index_t t, index_t g) const noexcept {
      const index_t h = h0 + g;
      if (sr == 1) prefetch_rows(p.r.ptr(b, t, h, 0), 0, 1, p.K);
      if (sw == 1) prefetch_rows(p.w.ptr(b, t, h, 0), 0, 1, p.K);
      if (sk == 1) prefetch_rows(p.k.ptr(b, t, h, 0), 0, 1, p.K);
      if (sa == 1) prefetch_rows(p.a.ptr(b, t, h, 0), 0, 1, p.K);
      if (sb == 1) prefetch_rows(p.b.ptr(b, t, h, 0), 0, 1, p.K);
      if (sv == 1) prefetch_rows(p.v.ptr(b, t, h, 0), 0, 1, p.V);
    }
  } load{p, s.b, h0, sr, sw, sk, sa, sb, sv, Kp, scale};
  auto store = [&](index_t t, index_t g, const float* o) { st_row<Arch>(p.o.ptr(s.b, t, h0 + g, 0), so, p.V, o); };
  const index_t Tc = std::min(stage_chunk(C), len);
  stage_pipe<decltype(load), decltype(store)> pipe(s.t0, s.t1, G, Tc, rwkv7_in_row(Kp, Vp), Vp, rest,
                                                   K != Kp || p.V != Vp, load, store);
  for (; pipe.c() > 0; pipe.advance()) {
    const index_t c = pipe.c();
    for (index_t g = 0; g < G; ++g) {
      w.S = states + g * KV;
      auto rows = [&](index_t i) -> rwkv7_rows {
        const float* x = pipe.in(g, i);
        return {x, x + Kp, x + 2 * Kp, x + 3 * Kp, x + 4 * Kp, x + 5 * Kp};
      };
      if (!chunked) {
        auto begin = [&](index_t i) {
          pipe.pump();
          return pipe.out(g, i);
        };
        rwkv7_recurrence<Arch>(w, w.S, K, c, 1.0f, rows, begin, [](index_t) {});
        continue;
      }
      for (index_t i0 = 0; i0 < c; i0 += Ce) {
        const index_t cc = std::min(Ce, c - i0);
        for (index_t i = 0; i < cc; ++i) {
          const float* x = pipe.in(g, i0 + i);
          std::copy(x, x + Kp, w.r + i * Kp);
          std::copy(x + Kp, x + 2 * Kp, w.wr + i * Kp);
          std::copy(x + 2 * Kp, x + 3 * Kp, w.k + i * Kp);
          std::copy(x + 3 * Kp, x + 4 * Kp, w.a + i * Kp);
          std::copy(x + 4 * Kp, x + 5 * Kp, w.b + i * Kp);
          std::copy(x + 5 * Kp, x + 5 * Kp + Vp, w.v + i * Vp);
          pipe.pump();
        }
        if (!rwkv7_chunk_rows<Arch>(w, K, cc)) {
          // factor range too wide: the exact recurrence on the staged rows
          auto sub = [&](index_t i) { return rows(i0 + i); };
          rwkv7_recurrence<Arch>(w, w.S, K, cc, 1.0f, sub, [&](index_t i) { return w.o + i * Vp; }, [](index_t) {});
        }
        for (index_t i = 0; i < cc; ++i) std::copy(w.o + i * Vp, w.o + (i + 1) * Vp, pipe.out(g, i0 + i));
      }
    }
  }
  if (direct) return;
  for (index_t h = h0; h < h1; ++h) gdr_store_state(out, n_out, h, p.K, p.V, states + (h - h0) * KV, w.Vp);
}

template <class Arch, class T>
void rwkv7_fast_job(const rwkv7_problem<T>& p, const linear_detail::seq_desc& s, index_t h, const_state_view in,
                    index_t n_in, state_view out, index_t n_out, bool chunked, index_t C, std::byte* mem) noexcept {
  rwkv7_fast_group<Arch>(p, s, h, h + 1, in, n_in, out, n_out, chunked, C, mem);
}

}  // namespace seqmix::delta_detail
