// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/rwkv7_kernels.hpp: float32 fast path of RWKV-7: the chunk form
// (generalized WY: pseudo-values h_i = S_{i-1}^T a_i by forward substitution, per-channel decays factored
// about a reference point inside the chunk) and the token recurrence (decode). See docs/04b-delta-rules.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../../../simd/math.hpp"
#include "../../../simd/prefetch.hpp"
#include "../../../simd/transpose.hpp"
#include "gated_delta_rule_kernels.hpp"
#include "rwkv7_reference.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::delta_detail {

/// Scratch of one RWKV-7 (sequence, head) task.
struct rwkv7_scratch {
  index_t C = 0, Cp = 0, Kp = 0, Vp = 0;
  float *r, *wr, *W, *a, *X, *Y;  // C x Kp
  float *k, *b;                   // Cp x Kp (whole 8-row blocks for the transposes)
  float* kb;                      // Kp x 2Cp: [k^ | b^] transposed
  float *Ma, *Mr;                 // C x 2Cp
  float *v, *hh, *o;              // C x Vp
  float* S;                       // Kp x Vp
  float *R, *eR, *emR, *d, *t1;   // Kp

  static std::size_t bytes(index_t C, index_t K, index_t V) noexcept {
    const index_t Cp = pad_up(C), Kp = pad_up(K), Vp = pad_up(V);
    return 6 * arena_bytes<float>(C * Kp) + 2 * arena_bytes<float>(Cp * Kp) + arena_bytes<float>(Kp * 2 * Cp) +
           2 * arena_bytes<float>(C * 2 * Cp) + 3 * arena_bytes<float>(C * Vp) + arena_bytes<float>(Kp * Vp) +
           5 * arena_bytes<float>(Kp);
  }
  rwkv7_scratch(std::byte* mem, index_t C_, index_t K, index_t V) noexcept
      : C(C_), Cp(pad_up(C_)), Kp(pad_up(K)), Vp(pad_up(V)) {
    arena ar(mem, bytes(C_, K, V));
    r = ar.alloc<float>(C * Kp);
    wr = ar.alloc<float>(C * Kp);
    W = ar.alloc<float>(C * Kp);
    k = ar.alloc<float>(Cp * Kp);
    a = ar.alloc<float>(C * Kp);
    b = ar.alloc<float>(Cp * Kp);
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
    const std::size_t head =
        static_cast<std::size_t>(reinterpret_cast<std::byte*>(S) - reinterpret_cast<std::byte*>(r));
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
    load_row<Arch>(p.r.ptr(bi, tt, h, 0), sr, K, w.r + i * Kp, scale);
    load_row<Arch>(p.w.ptr(bi, tt, h, 0), sw, K, w.wr + i * Kp);
    load_row<Arch>(p.k.ptr(bi, tt, h, 0), sk, K, w.k + i * Kp);
    load_row<Arch>(p.a.ptr(bi, tt, h, 0), sa, K, w.a + i * Kp);
    load_row<Arch>(p.b.ptr(bi, tt, h, 0), sb, K, w.b + i * Kp);
    load_row<Arch>(p.v.ptr(bi, tt, h, 0), sv, p.V, w.v + i * w.Vp);
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
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t Wd = static_cast<index_t>(bt::size);
  bt range(0.0f);
  for (index_t x = 0; x < Kp; x += Wd) {  // (padding lanes: W = 0, R = 0; a NaN W is skipped, as std::max does)
    bt mx(0.0f), mn(0.0f);
    for (index_t i = 0; i < c; ++i) {
      const bt v = bt::load_unaligned(w.W + i * Kp + x);
      mx = xsimd::max(v, mx);
      mn = xsimd::min(v, mn);
    }
    range = xsimd::max(range, mx - mn);
    (bt(0.5f) * (mx + mn)).store_unaligned(w.R + x);
  }
  if (!(-lane_min<Arch>(-range) <= linear_detail::factor_range_limit)) return false;
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
  // k^_j = k_j Y_j, b^_j = b_j Y_j in place, then transposed into kb by 8 x 8 blocks (rows past c and columns
  // past K land in kb columns / rows no product reads)
  for (index_t j = 0; j < c; ++j) {
    vmul<Arch>(Kp, w.k + j * Kp, w.Y + j * Kp, w.k + j * Kp);
    vmul<Arch>(Kp, w.b + j * Kp, w.Y + j * Kp, w.b + j * Kp);
  }
  for (index_t j0 = 0; j0 < c; j0 += 8) {
    for (index_t x0 = 0; x0 < Kp; x0 += 8) {
      vec::transpose8(w.k + j0 * Kp + x0, Kp, w.kb + x0 * C2 + j0, C2);
      vec::transpose8(w.b + j0 * Kp + x0, Kp, w.kb + x0 * C2 + w.Cp + j0, C2);
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
  const index_t cw = (c + Wd - 1) / Wd * Wd;
  for (index_t x = 0; x < K; ++x) {
    scal<Arch>(Vp, Xl[x] * w.eR[x], w.S + x * Vp);
    scal<Arch>(cw, Xl[x], w.kb + x * C2);
    scal<Arch>(cw, Xl[x], w.kb + x * C2 + w.Cp);
  }
  sgemm<false, true, Arch>(K, Vp, c, w.kb, C2, w.v, Vp, w.S, Vp);
  sgemm<false, true, Arch>(K, Vp, c, w.kb + w.Cp, C2, w.hh, Vp, w.S, Vp);
  return true;
}

/// Tokens per head visit of the RWKV-7 recurrence, and heads cycled through per pass over the sequence (their
/// states stay in L2; their input rows at one token are contiguous). See docs/04b-delta-rules.md §4.
inline constexpr index_t rwkv7_rec_rows = 32;
inline constexpr index_t rwkv7_rec_heads = 64;
/// Head visits ahead whose rows are prefetched (into L2) during a visit.
inline constexpr index_t rwkv7_prefetch_visits = 2;

/// Floats between the R-row arrays of rwkv7_rec_scratch beyond their rows: 320 bytes, so the rows a sweep reads
/// for one token (bs, ks, rs, as: R Kp floats apart unskewed, 8 KiB at K = 64) fall in different L1 sets, not
/// one (docs/04b §4).
inline constexpr index_t rwkv7_row_skew = 80;

/// Scratch of the RWKV-7 recurrence over G heads: the staged and prepared rows of one visit (R tokens) and
/// each head's carried row scales sigma and next-token projection h.
struct rwkv7_rec_scratch {
  index_t R = 0, Kp = 0, Vp = 0, G = 0;
  float *wr, *d, *bs, *ks, *rs, *sp;  // R x Kp
  float* as;                          // (R + 1) x Kp: row R is the next visit's first token
  float* pre;                         // Kp: row scales folded before the visit's first token
  float *v, *o;                       // R x Vp
  float* sig;                         // G x Kp
  float* h;                           // G x Vp
  unsigned char *mode, *hvalid;       // R, G

  static std::size_t bytes(index_t R, index_t K, index_t V, index_t G) noexcept {
    const index_t Kp = pad_up(K), Vp = pad_up(V);
    return 6 * arena_bytes<float>(R * Kp + rwkv7_row_skew) + arena_bytes<float>((R + 1) * Kp + rwkv7_row_skew) +
           arena_bytes<float>(Kp) + 2 * arena_bytes<float>(R * Vp) + arena_bytes<float>(G * Kp) +
           arena_bytes<float>(G * Vp) + arena_bytes<unsigned char>(R) + arena_bytes<unsigned char>(G);
  }
  rwkv7_rec_scratch(std::byte* mem, index_t R_, index_t K, index_t V, index_t G_) noexcept
      : R(R_), Kp(pad_up(K)), Vp(pad_up(V)), G(G_) {
    arena ar(mem, bytes(R_, K, V, G_));
    wr = ar.alloc<float>(R * Kp + rwkv7_row_skew);
    d = ar.alloc<float>(R * Kp + rwkv7_row_skew);
    bs = ar.alloc<float>(R * Kp + rwkv7_row_skew);
    ks = ar.alloc<float>(R * Kp + rwkv7_row_skew);
    rs = ar.alloc<float>(R * Kp + rwkv7_row_skew);
    sp = ar.alloc<float>(R * Kp + rwkv7_row_skew);
    as = ar.alloc<float>((R + 1) * Kp + rwkv7_row_skew);
    pre = ar.alloc<float>(Kp);
    v = ar.alloc<float>(R * Vp);
    o = ar.alloc<float>(R * Vp);
    sig = ar.alloc<float>(G * Kp);
    h = ar.alloc<float>(G * Vp);
    mode = ar.alloc<unsigned char>(R);
    hvalid = ar.alloc<unsigned char>(G);
    // padding lanes stay 0 (rows) and 1 (scales): staging writes the first K (V) entries only
    std::memset(static_cast<void*>(wr), 0, reinterpret_cast<std::byte*>(sig) - reinterpret_cast<std::byte*>(wr));
    std::fill(sig, sig + G * Kp, 1.0f);
    std::memset(hvalid, 0, static_cast<std::size_t>(G));
  }
};

inline constexpr unsigned char rwkv7_explicit = 1;  // the step multiplies by its decay (sigma = 1 around it)
inline constexpr unsigned char rwkv7_fold = 2;      // the step stores diag(sigma) S~: sigma = 1 after it

/// Prefetches the n elements from p into L2: every line they touch (malloc'd rows often start 16 bytes past
/// one), but with `after` not a partial first line, which ends the previous head's row (prefetched already).
template <class T>
SEQMIX_ALWAYS_INLINE void rwkv7_prefetch(const T* p, index_t n, bool after) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p), e = a + static_cast<std::uintptr_t>(n) * sizeof(T);
  const auto q = after ? (a + 63) & ~std::uintptr_t{63} : a;
  if (q < e) vec::prefetch_bytes<vec::prefetch_hint::l2>(reinterpret_cast<const void*>(q), e - q);
}

/// One column block (NB batches from c0) of a fused RWKV-7 step on S~ (row scales outside):
///   s = [d .] S~ + bs h^T + ks v^T;  o = s^T rs;  hn = s^T an (the next token's projection);  S~ = [sp .] s.
/// h and hn may alias (each block reads its h columns before it writes them).
template <int NB, bool Decay, bool Fold, bool Next, class Arch>
SEQMIX_ALWAYS_INLINE void rwkv7_sweep_block(index_t K, index_t Vp, float* SEQMIX_RESTRICT S, const float* d,
                                            const float* bs, const float* ks, const float* rs, const float* an,
                                            const float* sp, const float* h, const float* v, float* o, float* hn,
                                            index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt hv[NB], vv[NB], acc[NB], nx[NB];
  for (int x = 0; x < NB; ++x) {
    hv[x] = bt::load_unaligned(h + c0 + x * W);
    vv[x] = bt::load_unaligned(v + c0 + x * W);
    acc[x] = nx[x] = bt(0.0f);
  }
  for (index_t i = 0; i < K; ++i) {
    float* row = S + i * Vp + c0;
    const bt bi(bs[i]), ki(ks[i]), ri(rs[i]);
    bt ai(0.0f);
    if constexpr (Next) ai = bt(an[i]);
    for (int x = 0; x < NB; ++x) {
      bt s = bt::load_unaligned(row + x * W);
      if constexpr (Decay) s = bt(d[i]) * s;
      s = xsimd::fma(ki, vv[x], xsimd::fma(bi, hv[x], s));
      if constexpr (Fold) {
        (bt(sp[i]) * s).store_unaligned(row + x * W);
      } else {
        s.store_unaligned(row + x * W);
      }
      acc[x] = xsimd::fma(ri, s, acc[x]);
      if constexpr (Next) nx[x] = xsimd::fma(ai, s, nx[x]);
    }
  }
  for (int x = 0; x < NB; ++x) {
    acc[x].store_unaligned(o + c0 + x * W);
    if constexpr (Next) nx[x].store_unaligned(hn + c0 + x * W);
  }
}

template <bool Decay, bool Fold, bool Next, class Arch>
SEQMIX_ALWAYS_INLINE void rwkv7_sweep(index_t K, index_t Vp, float* S, const float* d, const float* bs, const float* ks,
                                      const float* rs, const float* an, const float* sp, float* h, const float* v,
                                      float* o) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  index_t c0 = 0;
  for (; c0 + 4 * W <= Vp; c0 += 4 * W)
    rwkv7_sweep_block<4, Decay, Fold, Next, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, h, v, o, h, c0);
  for (; c0 + 2 * W <= Vp; c0 += 2 * W)
    rwkv7_sweep_block<2, Decay, Fold, Next, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, h, v, o, h, c0);
  for (; c0 < Vp; c0 += W)
    rwkv7_sweep_block<1, Decay, Fold, Next, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, h, v, o, h, c0);
}

/// h = S~^T x over the K rows (the projection of a visit's first token when no sweep carried it): blocks of NB
/// batches, even and odd rows in separate chains (2 NB chains in flight).
template <int NB, class Arch>
SEQMIX_ALWAYS_INLINE void rwkv7_project_block(index_t K, index_t Vp, const float* S, const float* x, float* h,
                                              index_t c0) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt a0[NB], a1[NB];
  for (int q = 0; q < NB; ++q) a0[q] = a1[q] = bt(0.0f);
  index_t i = 0;
  for (; i + 1 < K; i += 2) {
    const bt x0(x[i]), x1(x[i + 1]);
    for (int q = 0; q < NB; ++q) {
      a0[q] = xsimd::fma(x0, bt::load_unaligned(S + i * Vp + c0 + q * W), a0[q]);
      a1[q] = xsimd::fma(x1, bt::load_unaligned(S + (i + 1) * Vp + c0 + q * W), a1[q]);
    }
  }
  if (i < K)
    for (int q = 0; q < NB; ++q) a0[q] = xsimd::fma(bt(x[i]), bt::load_unaligned(S + i * Vp + c0 + q * W), a0[q]);
  for (int q = 0; q < NB; ++q) (a0[q] + a1[q]).store_unaligned(h + c0 + q * W);
}

template <class Arch>
void rwkv7_project(index_t K, index_t Vp, const float* S, const float* x, float* h) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  index_t c0 = 0;
  for (; c0 + 4 * W <= Vp; c0 += 4 * W) rwkv7_project_block<4, Arch>(K, Vp, S, x, h, c0);
  for (; c0 < Vp; c0 += W) rwkv7_project_block<1, Arch>(K, Vp, S, x, h, c0);
}

/// Per-token set-up of a visit of c tokens (rows staged: wr, a in as, b in bs, k in ks, scaled r in rs), the
/// decays and row scales of all tokens before any sweep. With sigma the scale before token i (S = diag(sigma)
/// S~): as_i = sigma a_i (the a-term reads the undecayed state), then either a lazy step, sigma' = sigma d_i,
/// bs = b / sigma', ks = k / sigma', rs = sigma' r, or, when d_i < floor or i is the sequence's last token, an
/// explicit step (sigma = 1: the previous step folds, or `pre` before the visit). A fold is also due when
/// sigma' would drop below the floor. Returns whether the visit starts with a fold of `pre`.
template <class Arch>
bool rwkv7_prepare(rwkv7_rec_scratch& w, float* sig, index_t c, bool last_is_end, bool lookahead) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const index_t Kp = w.Kp;
  for (index_t x = 0; x < c * Kp; x += W) xsimd::exp(bt::load_unaligned(w.wr + x)).store_unaligned(w.d + x);
  bool unit = true, pre_fold = false;
  for (index_t x = 0; x < Kp && unit; ++x) unit = sig[x] == 1.0f;
  for (index_t i = 0; i < c; ++i) {
    float *as = w.as + i * Kp, *bs = w.bs + i * Kp, *ks = w.ks + i * Kp, *rs = w.rs + i * Kp;
    const float* d = w.d + i * Kp;
    bt mn(1.0f), dmn(1.0f);
    for (index_t x = 0; x < Kp; x += W) {
      const bt s = bt::load_unaligned(sig + x), a = bt::load_unaligned(as + x), dx = bt::load_unaligned(d + x);
      (s * a).store_unaligned(as + x);
      mn = xsimd::min(mn, s * dx);
      dmn = xsimd::min(dmn, dx);
    }
    const bool expl = (i + 1 == c && last_is_end) || !(lane_min<Arch>(dmn) >= lazy_decay_floor);
    w.mode[i] = expl ? rwkv7_explicit : 0;
    if ((expl && !unit) || !(lane_min<Arch>(mn) >= lazy_decay_floor)) {
      if (!unit) {  // fold sigma into S~ before token i
        if (i == 0) {
          pre_fold = true;
          std::copy(sig, sig + Kp, w.pre);
        } else {
          w.mode[i - 1] |= rwkv7_fold;
          std::copy(sig, sig + Kp, w.sp + (i - 1) * Kp);
        }
        std::fill(sig, sig + Kp, 1.0f);
        unit = true;
      }
    }
    if (expl) continue;  // bs, ks, rs as staged
    unit = false;
    for (index_t x = 0; x < Kp; x += W) {
      const bt s = bt::load_unaligned(sig + x) * bt::load_unaligned(d + x);
      s.store_unaligned(sig + x);
      const bt inv = bt(1.0f) / s;
      (bt::load_unaligned(bs + x) * inv).store_unaligned(bs + x);
      (bt::load_unaligned(ks + x) * inv).store_unaligned(ks + x);
      (bt::load_unaligned(rs + x) * s).store_unaligned(rs + x);
    }
  }
  if (lookahead) {
    float* an = w.as + c * Kp;
    for (index_t x = 0; x < Kp; x += W)
      (bt::load_unaligned(sig + x) * bt::load_unaligned(an + x)).store_unaligned(an + x);
  }
  return pre_fold;
}

/// Set-up of a visit without folds or explicit steps (the common case), read in place from float rows
/// (token i of r, w, k, a, b at ts[0..4] elements times i; K a multiple of the padding): as_i = sigma a_i,
/// sigma *= e^{w_i}, bs = b / sigma, ks = k / sigma, rs = scale sigma r, token by token, into w.pre and the
/// scratch rows (Unit: scale == 1, not multiplied). With Narrow the decays come from vec::exp_narrow (a third of
/// vec::exp's cost: the set-up is latency-bound, docs/04b §4), valid only when every w lies in its domain; the
/// floor is then checked once, on the final sigma (see below). Returns 1, 0 when a decay or a row scale drops
/// below the floor (the visit then takes rwkv7_prepare), -1 when Narrow and a w lies outside the domain (run
/// again without Narrow).
template <bool Narrow, bool Unit, class Arch>
int rwkv7_setup_rows(rwkv7_rec_scratch& w, const float* r, const float* wl, const float* k, const float* a,
                     const float* b, const index_t* ts, index_t c, float scale) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const index_t Kp = w.Kp;
  // token-major: each token's rows lie on their own pages (rows 8 KiB apart in [B,T,H,K]), so a visit walks
  // each page once instead of once per batch (L1 TLB)
  bt mn(1.0f), lo(0.0f), hi(0.0f);
  for (index_t i = 0; i < c; ++i) {
    const float *ri = r + i * ts[0], *wi = wl + i * ts[1], *ki = k + i * ts[2], *ai = a + i * ts[3],
                *bi = b + i * ts[4];
    for (index_t j = 0; j < Kp; j += W) {
      const index_t q = i * Kp + j;
      bt sg = bt::load_unaligned(w.pre + j);
      const bt wv = bt::load_unaligned(wi + j);
      bt d;
      if constexpr (Narrow) {
        d = vec::exp_narrow(wv);
        lo = xsimd::min(wv, lo);  // (a NaN w keeps lo and hi: both forms give NaN for it)
        hi = xsimd::max(wv, hi);
      } else {
        d = vec::exp(wv);
      }
      (sg * bt::load_unaligned(ai + j)).store_unaligned(w.as + q);
      sg *= d;
      sg.store_unaligned(w.pre + j);
      if constexpr (!Narrow) mn = xsimd::min(mn, xsimd::min(sg, d));
      bt inv = xsimd::reciprocal(sg);  // and one Newton step: ~1 ulp
      inv = xsimd::fma(xsimd::fnma(sg, inv, bt(1.0f)), inv, inv);
      (bt::load_unaligned(bi + j) * inv).store_unaligned(w.bs + q);
      (bt::load_unaligned(ki + j) * inv).store_unaligned(w.ks + q);
      if constexpr (Unit) {
        (bt::load_unaligned(ri + j) * sg).store_unaligned(w.rs + q);
      } else {
        (bt::load_unaligned(ri + j) * (sg * bt(scale))).store_unaligned(w.rs + q);
      }
    }
  }
  if constexpr (Narrow) {
    if (!(lane_min<Arch>(lo) >= vec::exp_narrow_lo && -lane_min<Arch>(-hi) <= vec::exp_narrow_hi)) return -1;
    // In the domain every d >= e^{-3/4}, and sigma after token i >= final sigma / e^{(c - 1) w_max}: with
    // w_max <= 1/16 and c <= 32 that is more than final / 8, so the final sigma bounds all of them.
    static_assert(rwkv7_rec_rows * vec::exp_narrow_hi <= 2.0f);
    bt fin = bt::load_unaligned(w.pre);
    for (index_t j = W; j < Kp; j += W) fin = xsimd::min(fin, bt::load_unaligned(w.pre + j));
    return lane_min<Arch>(fin) * 0.125f >= lazy_decay_floor ? 1 : 0;
  }
  return lane_min<Arch>(mn) >= lazy_decay_floor ? 1 : 0;
}

/// The fast set-up of a visit (rwkv7_setup_rows, narrow decays first) and the next visit's first a-row.
/// Returns false, with sig unchanged, when the visit must take rwkv7_prepare.
template <class Arch>
bool rwkv7_prepare_fast(rwkv7_rec_scratch& w, float* sig, const float* r, const float* wl, const float* k,
                        const float* a, const float* b, const index_t* ts, index_t c, float scale,
                        const float* a_next) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const index_t Kp = w.Kp;
  std::copy(sig, sig + Kp, w.pre);
  int res = scale == 1.0f ? rwkv7_setup_rows<true, true, Arch>(w, r, wl, k, a, b, ts, c, scale)
                          : rwkv7_setup_rows<true, false, Arch>(w, r, wl, k, a, b, ts, c, scale);
  if (res < 0) {
    std::copy(sig, sig + Kp, w.pre);
    res = rwkv7_setup_rows<false, false, Arch>(w, r, wl, k, a, b, ts, c, scale);
  }
  if (res == 0) return false;
  if (a_next)
    for (index_t j = 0; j < Kp; j += W)
      (bt::load_unaligned(w.pre + j) * bt::load_unaligned(a_next + j)).store_unaligned(w.as + c * Kp + j);
  std::copy(w.pre, w.pre + Kp, sig);
  std::fill(w.mode, w.mode + c, static_cast<unsigned char>(0));
  return true;
}

/// Row scales below this are folded into the state before a visit's fast set-up: rwkv7_rec_rows steps of the
/// layer's strongest decay (e^{-0.61} each, e^{-19.4} for 32) then stay above lazy_decay_floor.
inline constexpr float rwkv7_refold = 1e-3f;

inline float rwkv7_min(const float* x, index_t n) noexcept {
  float m = 1.0f;
  for (index_t i = 0; i < n; ++i) m = std::min(m, x[i]);
  return m;
}

/// The RWKV-7 recurrence over heads [h0, h1) of one sequence (docs/04b-delta-rules.md §4): one fused sweep of
/// the state per token (update, output and the next token's projection), the decays kept lazily as row scales
/// with per-row folds, the set-up of a visit's tokens done before its sweeps.
template <class Arch, class T>
void rwkv7_recurrent_group(const rwkv7_problem<T>& p, const linear_detail::seq_desc& s, index_t h0, index_t h1,
                           const_state_view in, index_t n_in, state_view out, index_t n_out, std::byte* mem) noexcept {
  const index_t K = p.K, V = p.V, G = h1 - h0, Kp = pad_up(K), Vp = pad_up(V), KV = Kp * Vp;
  const index_t R = std::max<index_t>(1, std::min(rwkv7_rec_rows, s.length()));
  float* states = reinterpret_cast<float*>(mem);
  rwkv7_rec_scratch w(mem + arena_bytes<float>(G * KV), R, K, V, G);
  float* direct = G == 1 ? direct_state(in, n_in, out, n_out, h0, K, V) : nullptr;
  if (direct) states = direct;
  for (index_t h = h0; h < h1 && !direct; ++h) gdr_load_state(in, n_in, h, K, V, states + (h - h0) * KV, Kp, Vp);
  const float scale = static_cast<float>(p.scale);
  const index_t so = p.o.template stride<axis::V>();
  const index_t sr = p.r.template stride<axis::K>(), sw = p.w.template stride<axis::K>();
  const index_t sk = p.k.template stride<axis::K>(), sa = p.a.template stride<axis::K>();
  const index_t sb = p.b.template stride<axis::K>(), sv = p.v.template stride<axis::V>();
  const bool pf_ok = sr == 1 && sw == 1 && sk == 1 && sa == 1 && sb == 1 && sv == 1;
  // float rows read and written in place (no staging) when whole batches cover them
  const bool f32 = std::is_same_v<T, float>;
  const bool in_place = f32 && sr == 1 && sw == 1 && sk == 1 && sa == 1 && sb == 1 && K == Kp;
  const bool v_in_place = f32 && sv == 1 && V == Vp, o_in_place = f32 && so == 1 && V == Vp;
  const index_t tstr[5] = {p.r.template stride<axis::T>(), p.w.template stride<axis::T>(),
                           p.k.template stride<axis::T>(), p.a.template stride<axis::T>(),
                           p.b.template stride<axis::T>()};  // token strides
  // heads adjacent in every row tensor: the visit before prefetched the first line of a row, if partial
  const bool adjacent = p.r.template stride<axis::H>() == K && p.w.template stride<axis::H>() == K &&
                        p.k.template stride<axis::H>() == K && p.a.template stride<axis::H>() == K &&
                        p.b.template stride<axis::H>() == K && p.v.template stride<axis::H>() == V &&
                        p.o.template stride<axis::H>() == V;
  // tokens t + [i0, i1) of head h; `after`: the previous visit prefetched the same tokens of head h - 1
  auto prefetch = [&](index_t t, index_t h, index_t i0, index_t i1, bool after) {
    const bool skip = after && adjacent;
    for (index_t i = i0; i < std::min(i1, s.t1 - t); ++i) {
      rwkv7_prefetch(p.r.ptr(s.b, t + i, h, 0), K, skip);
      rwkv7_prefetch(p.w.ptr(s.b, t + i, h, 0), K, skip);
      rwkv7_prefetch(p.k.ptr(s.b, t + i, h, 0), K, skip);
      rwkv7_prefetch(p.a.ptr(s.b, t + i, h, 0), K, skip);
      rwkv7_prefetch(p.b.ptr(s.b, t + i, h, 0), K, skip);
      rwkv7_prefetch(p.v.ptr(s.b, t + i, h, 0), V, skip);
      if (so == 1) rwkv7_prefetch(p.o.ptr(s.b, t + i, h, 0), V, skip);  // to L2, not L1 (prefetchw): docs/04b §4
    }
  };
  for (index_t g0 = h0; g0 < h1; g0 += rwkv7_rec_heads) {
    const index_t g1 = std::min(h1, g0 + rwkv7_rec_heads);
    for (index_t t = s.t0; t < s.t1; t += R) {
      const index_t c = std::min(R, s.t1 - t);
      for (index_t h = g0; h < g1; ++h) {
        // the rows of the visit rwkv7_prefetch_visits ahead stream into L2 during this one, a token's rows per sweep
        index_t tn = -1, hn = 0;
        if (pf_ok && s.length() > 1) {
          const index_t ahead_h = h - g0 + rwkv7_prefetch_visits, n = g1 - g0;
          tn = t + ahead_h / n * R;
          hn = g0 + ahead_h % n;
          if (tn >= s.t1) tn = -1;
        }
        float* S = states + (h - h0) * KV;
        float* sig = w.sig + (h - h0) * Kp;
        float* hv = w.h + (h - h0) * Vp;
        const bool ahead = t + c < s.t1;
        bool pre_fold = false, fast = false;
        if constexpr (std::is_same_v<T, float>) {
          if (in_place && ahead && rwkv7_min(sig, Kp) < rwkv7_refold)  // fold early: the visit stays on the fast set-up
            materialize_decay<Arch>(S, sig, K, Kp, Vp);
          if (in_place && ahead)
            fast = rwkv7_prepare_fast<Arch>(w, sig, p.r.ptr(s.b, t, h, 0), p.w.ptr(s.b, t, h, 0), p.k.ptr(s.b, t, h, 0),
                                            p.a.ptr(s.b, t, h, 0), p.b.ptr(s.b, t, h, 0), tstr, c, scale,
                                            p.a.ptr(s.b, t + c, h, 0));
        }
        if (!fast) {
          for (index_t i = 0; i < c; ++i) {
            const index_t tt = t + i;
            load_row<Arch>(p.r.ptr(s.b, tt, h, 0), sr, K, w.rs + i * Kp, scale);
            load_row<Arch>(p.w.ptr(s.b, tt, h, 0), sw, K, w.wr + i * Kp);
            load_row<Arch>(p.k.ptr(s.b, tt, h, 0), sk, K, w.ks + i * Kp);
            load_row<Arch>(p.a.ptr(s.b, tt, h, 0), sa, K, w.as + i * Kp);
            load_row<Arch>(p.b.ptr(s.b, tt, h, 0), sb, K, w.bs + i * Kp);
          }
          if (ahead) load_row<Arch>(p.a.ptr(s.b, t + c, h, 0), sa, K, w.as + c * Kp);
          pre_fold = rwkv7_prepare<Arch>(w, sig, c, !ahead, ahead);
        }
        if (!v_in_place)
          for (index_t i = 0; i < c; ++i) load_row<Arch>(p.v.ptr(s.b, t + i, h, 0), sv, V, w.v + i * Vp);
        if (!w.hvalid[h - h0]) rwkv7_project<Arch>(K, Vp, S, w.as, hv);
        if (pre_fold) materialize_decay<Arch>(S, w.pre, K, Kp, Vp);
        for (index_t i = 0; i < c; ++i) {
          const float *d = w.d + i * Kp, *bs = w.bs + i * Kp, *ks = w.ks + i * Kp, *rs = w.rs + i * Kp;
          const float *an = w.as + (i + 1) * Kp, *sp = w.sp + i * Kp;
          const float* v = w.v + i * Vp;
          float* o = w.o + i * Vp;
          if constexpr (std::is_same_v<T, float>) {
            if (v_in_place) v = p.v.ptr(s.b, t + i, h, 0);
            if (o_in_place) o = p.o.ptr(s.b, t + i, h, 0);
          }
          const bool next = i + 1 < c || ahead;
          if (tn >= 0) prefetch(tn, hn, i, i + 1 < c ? i + 1 : R, hn > g0);
          switch (w.mode[i] | (next ? 4 : 0)) {
            case 0:
              rwkv7_sweep<false, false, false, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            case 4:
              rwkv7_sweep<false, false, true, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            case rwkv7_fold:
              rwkv7_sweep<false, true, false, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            case rwkv7_fold | 4:
              rwkv7_sweep<false, true, true, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            case rwkv7_explicit:
              rwkv7_sweep<true, false, false, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            case rwkv7_explicit | 4:
              rwkv7_sweep<true, false, true, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            case rwkv7_explicit | rwkv7_fold:
              rwkv7_sweep<true, true, false, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
            default:
              rwkv7_sweep<true, true, true, Arch>(K, Vp, S, d, bs, ks, rs, an, sp, hv, v, o);
              break;
          }
        }
        w.hvalid[h - h0] = ahead ? 1 : 0;
        if (!o_in_place)
          for (index_t i = 0; i < c; ++i) store_row<Arch>(p.o.ptr(s.b, t + i, h, 0), so, V, w.o + i * Vp);
      }
    }
  }
  if (direct) return;
  for (index_t h = h0; h < h1; ++h) gdr_store_state(out, n_out, h, K, V, states + (h - h0) * KV, Vp);
}

inline std::size_t rwkv7_group_bytes(index_t C, index_t K, index_t V, index_t G) noexcept {
  const std::size_t rec =
      arena_bytes<float>(G * pad_up(K) * pad_up(V)) + rwkv7_rec_scratch::bytes(rwkv7_rec_rows, K, V, G);
  C = std::max(C, recurrent_rows);
  return std::max(rec, rwkv7_scratch::bytes(C, K, V) + (G > 1 ? arena_bytes<float>(G * pad_up(K) * pad_up(V)) : 0));
}

/// One task: heads [h0, h1) of one sequence, chunks outer and heads inner (see gdr_fast_group).
template <class Arch, class T>
void rwkv7_fast_group(const rwkv7_problem<T>& p, const linear_detail::seq_desc& s, index_t h0, index_t h1,
                      const_state_view in, index_t n_in, state_view out, index_t n_out, bool chunked, index_t C,
                      std::byte* mem) noexcept {
  if (!chunked) return rwkv7_recurrent_group<Arch>(p, s, h0, h1, in, n_in, out, n_out, mem);
  const index_t len = s.length();
  const index_t Ce = std::max<index_t>(1, std::min(chunked ? C : std::max(C, recurrent_rows), len));
  rwkv7_scratch w(mem, Ce, p.K, p.V);
  const index_t G = h1 - h0, KV = w.Kp * w.Vp;
  float* states = G > 1 ? reinterpret_cast<float*>(mem + rwkv7_scratch::bytes(Ce, p.K, p.V)) : w.S;
  float* direct = (!chunked && G == 1) ? direct_state(in, n_in, out, n_out, h0, p.K, p.V) : nullptr;
  if (direct) states = direct;
  for (index_t h = h0; h < h1 && !direct; ++h)
    gdr_load_state(in, n_in, h, p.K, p.V, states + (h - h0) * KV, w.Kp, w.Vp);
  const float scale = static_cast<float>(p.scale);
  const index_t so = p.o.template stride<axis::V>();
  auto prefetch = [&](index_t t, index_t cn, index_t h) {
    for (const auto* x : {&p.r, &p.w, &p.k, &p.a, &p.b})
      if (x->template stride<axis::K>() == 1)
        prefetch_rows(x->ptr(s.b, t, h, 0), x->template stride<axis::T>(), cn, p.K);
    if (p.v.template stride<axis::V>() == 1)
      prefetch_rows(p.v.ptr(s.b, t, h, 0), p.v.template stride<axis::T>(), cn, p.V);
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
      for (index_t i = 0; i < c; ++i) store_row<Arch>(p.o.ptr(s.b, t + i, h, 0), so, p.V, w.o + i * w.Vp);
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
SEQMIX_DIAG_POP
