// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/rwkv7_kernels.hpp: float32 fast path of RWKV-7: the chunk form
// (generalized WY: pseudo-values h_i = S_{i-1}^T a_i by forward substitution, per-channel decays factored
// about a reference point inside the chunk) and the token recurrence (decode). See docs/04b-delta-rules.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>

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

  static std::size_t bytes(index_t C, index_t K, index_t V) noexcept {
    const index_t Cp = pad_up(C), Kp = pad_up(K), Vp = pad_up(V);
    return 8 * arena_bytes<float>(C * Kp) + arena_bytes<float>(Kp * 2 * Cp) + 2 * arena_bytes<float>(C * 2 * Cp) +
           3 * arena_bytes<float>(C * Vp) + arena_bytes<float>(Kp * Vp) + 5 * arena_bytes<float>(Kp);
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
    const std::size_t head = static_cast<std::size_t>(reinterpret_cast<std::byte*>(S) - reinterpret_cast<std::byte*>(r));
    std::memset(static_cast<void*>(r), 0, head);
    std::memset(static_cast<void*>(R), 0, 5 * arena_bytes<float>(Kp));
  }
};

template <class Arch, class T>
void rwkv7_load_chunk(const rwkv7_problem<T>& p, rwkv7_scratch& w, index_t bi, index_t t, index_t c, index_t h,
                      float scale) noexcept {
  const index_t K = p.K, Kp = w.Kp;
  const index_t sr = p.r.template stride<axis::K>(), sw = p.w.template stride<axis::K>();
  const index_t sk = p.k.template stride<axis::K>(), sa = p.a.template stride<axis::K>();
  const index_t sb = p.b.template stride<axis::K>(), sv = p.v.template stride<axis::V>();
  for (index_t i = 0; i < c; ++i) {
    const index_t tt = t + i;
    ld_row<Arch>(p.r.ptr(bi, tt, h, 0), sr, K, w.r + i * Kp, scale);
    ld_row<Arch>(p.w.ptr(bi, tt, h, 0), sw, K, w.wr + i * Kp);
    ld_row<Arch>(p.k.ptr(bi, tt, h, 0), sk, K, w.k + i * Kp);
    ld_row<Arch>(p.a.ptr(bi, tt, h, 0), sa, K, w.a + i * Kp);
    ld_row<Arch>(p.b.ptr(bi, tt, h, 0), sb, K, w.b + i * Kp);
    ld_row<Arch>(p.v.ptr(bi, tt, h, 0), sv, p.V, w.v + i * w.Vp);
  }
}

/// One column block of an RWKV-7 step: h = S^T a; S = diag(d) S + b h^T + k v^T; o = S^T r. With Lazy the
/// decay lives in a per-row scale sigma (S_true = diag(sigma) S) and the caller passes a = sigma a,
/// b = b / sigma', k = k / sigma', r = sigma' r: 4 instead of 5 vector ops per state element.
template <int NB, bool Lazy, class Arch>
SEQMIX_ALWAYS_INLINE void rwkv7_step_block(index_t K, index_t Vp, float* SEQMIX_RESTRICT S, const float* d,
                                           const float* a, const float* b, const float* k, const float* r,
                                           const float* v, float* o, index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt hv[NB], vv[NB], acc[NB], h2[NB];
  for (int x = 0; x < NB; ++x) {
    hv[x] = h2[x] = acc[x] = bt(0.0f);
    vv[x] = bt::load_unaligned(v + c0 + x * W);
  }
  index_t i = 0;
  for (; i + 1 < K; i += 2) {
    const bt a0(a[i]), a1(a[i + 1]);
    for (int x = 0; x < NB; ++x) {
      hv[x] = xsimd::fma(bt::load_unaligned(S + i * Vp + c0 + x * W), a0, hv[x]);
      h2[x] = xsimd::fma(bt::load_unaligned(S + (i + 1) * Vp + c0 + x * W), a1, h2[x]);
    }
  }
  if (i < K) {
    const bt a0(a[i]);
    for (int x = 0; x < NB; ++x) hv[x] = xsimd::fma(bt::load_unaligned(S + i * Vp + c0 + x * W), a0, hv[x]);
  }
  for (int x = 0; x < NB; ++x) hv[x] += h2[x];
  for (i = 0; i < K; ++i) {
    const bt bi(b[i]), ki(k[i]), ri(r[i]);
    for (int x = 0; x < NB; ++x) {
      float* sp = S + i * Vp + c0 + x * W;
      bt s0 = bt::load_unaligned(sp);
      if constexpr (!Lazy) s0 = bt(d[i]) * s0;
      const bt s = xsimd::fma(ki, vv[x], xsimd::fma(bi, hv[x], s0));
      s.store_unaligned(sp);
      acc[x] = xsimd::fma(ri, s, acc[x]);
    }
  }
  for (int x = 0; x < NB; ++x) acc[x].store_unaligned(o + c0 + x * W);
}

template <class Arch>
void rwkv7_recurrent_rows(rwkv7_scratch& w, index_t K, index_t c) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  const index_t Kp = w.Kp, Vp = w.Vp;
  float* sig = w.R;  // row scales (R is free outside the chunk form)
  float *as = w.eR, *bs = w.emR, *ks = w.t1, *rs = w.X;
  using bt = xsimd::batch<float, Arch>;
  std::fill(sig, sig + Kp, 1.0f);
  for (index_t i = 0; i < c; ++i) {
    std::copy(w.wr + i * Kp, w.wr + (i + 1) * Kp, w.d);  // padding 0 -> decay 1
    exp_inplace<Arch>(w.d, Kp);
    const float *a = w.a + i * Kp, *b = w.b + i * Kp, *k = w.k + i * Kp, *r = w.r + i * Kp, *v = w.v + i * Vp;
    float* o = w.o + i * Vp;
    bool lazy = c > 1;
    if (lazy) {
      bt mn(1.0f), dmn(1.0f);
      for (index_t x = 0; x < Kp; x += W) {
        const bt dx = bt::load_unaligned(w.d + x);
        mn = xsimd::min(mn, dx * bt::load_unaligned(sig + x));
        dmn = xsimd::min(dmn, dx);
      }
      if (!(lane_min<Arch>(mn) >= lazy_decay_floor)) {
        materialize_decay<Arch>(w.S, sig, K, Kp, Vp);
        lazy = lane_min<Arch>(dmn) >= lazy_decay_floor;
      }
    }
    index_t c0 = 0;
    if (lazy) {
      for (index_t x = 0; x < Kp; x += W) {
        const bt s1 = bt::load_unaligned(sig + x);
        (s1 * bt::load_unaligned(a + x)).store_unaligned(as + x);  // the a-term sees the undecayed state
        const bt s2 = s1 * bt::load_unaligned(w.d + x);
        s2.store_unaligned(sig + x);
        const bt inv = bt(1.0f) / s2;
        (bt::load_unaligned(b + x) * inv).store_unaligned(bs + x);
        (bt::load_unaligned(k + x) * inv).store_unaligned(ks + x);
        (s2 * bt::load_unaligned(r + x)).store_unaligned(rs + x);
      }
      for (; c0 + 4 * W <= Vp; c0 += 4 * W) rwkv7_step_block<4, true, Arch>(K, Vp, w.S, w.d, as, bs, ks, rs, v, o, c0);
      for (; c0 < Vp; c0 += W) rwkv7_step_block<1, true, Arch>(K, Vp, w.S, w.d, as, bs, ks, rs, v, o, c0);
    } else {
      for (; c0 + 4 * W <= Vp; c0 += 4 * W) rwkv7_step_block<4, false, Arch>(K, Vp, w.S, w.d, a, b, k, r, v, o, c0);
      for (; c0 < Vp; c0 += W) rwkv7_step_block<1, false, Arch>(K, Vp, w.S, w.d, a, b, k, r, v, o, c0);
    }
  }
  materialize_decay<Arch>(w.S, sig, K, Kp, Vp);
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

inline std::size_t rwkv7_group_bytes(index_t C, index_t K, index_t V, index_t G) noexcept {
  C = std::max(C, recurrent_rows);
  return rwkv7_scratch::bytes(C, K, V) + (G > 1 ? arena_bytes<float>(G * pad_up(K) * pad_up(V)) : 0);
}

/// One task: heads [h0, h1) of one sequence, chunks outer and heads inner (see gdr_fast_group).
template <class Arch, class T>
void rwkv7_fast_group(const rwkv7_problem<T>& p, const linear_detail::seq_desc& s, index_t h0, index_t h1,
                      const_state_view in, index_t n_in, state_view out, index_t n_out, bool chunked, index_t C,
                      std::byte* mem) noexcept {
  const index_t len = s.length();
  const index_t Ce = std::max<index_t>(1, std::min(chunked ? C : std::max(C, recurrent_rows), len));
  rwkv7_scratch w(mem, Ce, p.K, p.V);
  const index_t G = h1 - h0, KV = w.Kp * w.Vp;
  float* states = G > 1 ? reinterpret_cast<float*>(mem + rwkv7_scratch::bytes(Ce, p.K, p.V)) : w.S;
  float* direct = (!chunked && G == 1) ? direct_state(in, n_in, out, n_out, h0, p.K, p.V) : nullptr;
  if (direct) states = direct;
  for (index_t h = h0; h < h1 && !direct; ++h) gdr_load_state(in, n_in, h, p.K, p.V, states + (h - h0) * KV, w.Kp, w.Vp);
  const float scale = static_cast<float>(p.scale);
  const index_t so = p.o.template stride<axis::V>();
  auto prefetch = [&](index_t t, index_t cn, index_t h) {
    for (const auto* x : {&p.r, &p.w, &p.k, &p.a, &p.b})
      if (x->template stride<axis::K>() == 1) prefetch_rows(x->ptr(s.b, t, h, 0), x->template stride<axis::T>(), cn, p.K);
    if (p.v.template stride<axis::V>() == 1) prefetch_rows(p.v.ptr(s.b, t, h, 0), p.v.template stride<axis::T>(), cn, p.V);
  };
  for (index_t t = s.t0; t < s.t1; t += Ce) {
    const index_t c = std::min(Ce, s.t1 - t);
    for (index_t h = h0; h < h1; ++h) {
      w.S = states + (h - h0) * KV;
      rwkv7_load_chunk<Arch>(p, w, s.b, t, c, h, scale);
      if (c > 1) {
        // prefetch prefetch_heads ahead (wrapping into the next chunk)
        const index_t hp = h + prefetch_heads;
        if (hp < h1) {
          prefetch(t, c, hp);
        } else if (const index_t cn = std::min(Ce, s.t1 - t - c); cn > 0 && h0 + (hp - h1) < h1) {
          prefetch(t + c, cn, h0 + (hp - h1));
        }
      }
      if (!(chunked && rwkv7_chunk_rows<Arch>(w, p.K, c))) rwkv7_recurrent_rows<Arch>(w, p.K, c);
      for (index_t i = 0; i < c; ++i) st_row<Arch>(p.o.ptr(s.b, t + i, h, 0), so, p.V, w.o + i * w.Vp);
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
