// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/detail/kernels.hpp: the tile engine of the fast path: register-blocked
// micro-kernels for S = Q K^T (K packed transposed) and O = alpha O + P V, the online-softmax step with
// masking, and conversions of K/V rows from float/double/bf16/f16 storage. See docs/03-flash-attention.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#if defined(__SSE__) || defined(__AVX2__) || defined(__AVX__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"
#include "../../../simd/math.hpp"
#include "../../../simd/prefetch.hpp"
#include "../../../simd/transpose.hpp"
#include "../policies.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::detail::fa {

inline constexpr index_t block_k = 64;  ///< keys per tile (columns of S)
inline constexpr index_t block_q = 64;  ///< query rows per prefill tile
inline constexpr index_t row_block = 6; ///< rows per micro-kernel call
inline constexpr index_t kt_panel = 16; ///< packed K^T is [block_k / 16][Dp][16]: one panel per micro-kernel column block

/// Head dims are padded to a multiple of 8 floats in every packed buffer (zeros in the pad).
constexpr index_t pad8(index_t n) noexcept { return (n + 7) / 8 * 8; }

inline constexpr float neg_inf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------------------
// Conversions

/// Converts n elements at p (element stride `stride`) to float, times `mul`, into out[0..n), then zeros
/// out[n..npad). Returns false when a converted value is not finite.
template <class C>
inline bool convert_row(const C* SEQMIX_RESTRICT p, index_t n, index_t stride, float mul, float* SEQMIX_RESTRICT out,
                        index_t npad) noexcept {
  index_t d = 0;
  float bad = 0.0f;  // x * 0 is NaN for inf/NaN x
#if defined(__AVX2__)
  if (stride == 1) {
    const __m256 vm = _mm256_set1_ps(mul);
    __m256 vb = _mm256_setzero_ps();
    const __m256 z = _mm256_setzero_ps();
    for (; d + 8 <= n; d += 8) {
      __m256 x;
      if constexpr (std::is_same_v<C, float>) {
        x = _mm256_loadu_ps(p + d);
      } else if constexpr (std::is_same_v<C, double>) {
        x = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(p + d + 4)), _mm256_cvtpd_ps(_mm256_loadu_pd(p + d)));
      } else if constexpr (std::is_same_v<C, bf16>) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + d));
        x = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
#if defined(__F16C__)
      } else if constexpr (std::is_same_v<C, f16>) {
        x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + d)));
#endif
      } else {
        break;
      }
      vb = _mm256_fmadd_ps(x, z, vb);
      _mm256_storeu_ps(out + d, _mm256_mul_ps(x, vm));
    }
    alignas(32) float t[8];
    _mm256_store_ps(t, vb);
    for (float x : t) bad += x;
  }
#endif
  for (; d < n; ++d) {
    const float x = to_float(p[d * stride]);
    bad += x * 0.0f;
    out[d] = x * mul;
  }
  for (; d < npad; ++d) out[d] = 0.0f;
  return bad == 0.0f;
}

/// Packs nk (<= block_k) key rows into Kt, transposed in panels [block_k / 16][Dp][16], converting to
/// float; rows d >= D are zero. Columns >= nk hold unspecified finite-or-not values: the softmax masks them. `row(j)` gives
/// a pointer to key j's first element; `dstride` is the element stride along D. `tmp` holds 8 x Dp floats.
template <class C, class RowFn>
inline void pack_kt(RowFn row, index_t nk, index_t D, index_t dstride, index_t Dp, float* SEQMIX_RESTRICT kt,
                    float* SEQMIX_RESTRICT tmp) noexcept {
  for (index_t j0 = 0; j0 < nk; j0 += 8) {
    const index_t nb = std::min<index_t>(8, nk - j0);
    for (index_t u = 0; u < nb; ++u) (void)convert_row<C>(row(j0 + u), D, dstride, 1.0f, tmp + u * Dp, Dp);
    for (index_t u = nb; u < 8; ++u) std::memset(tmp + u * Dp, 0, static_cast<std::size_t>(Dp) * sizeof(float));
    float* panel = kt + (j0 / kt_panel) * Dp * kt_panel + j0 % kt_panel;
    for (index_t d = 0; d < Dp; d += 8) vec::transpose8(tmp + d, Dp, panel + d * kt_panel, kt_panel);
  }
}

/// Width of V panel p (16, or 8 for the last panel when Dvp % 16 == 8).
constexpr index_t v_panel_width(index_t Dvp, index_t c) noexcept { return std::min<index_t>(16, Dvp - c / 16 * 16); }
/// Offset of V element (j, c) in the panel layout [Dvp / 16][block_k][16] (last panel possibly 8 wide).
constexpr index_t v_offset(index_t Dvp, index_t j, index_t c) noexcept {
  return c / 16 * block_k * 16 + j * v_panel_width(Dvp, c) + c % 16;
}

/// Converts nk value rows into V panels [Dvp / 16][block_k][16] (zero pad columns). Returns false if any
/// value is not finite.
template <class C, class RowFn>
inline bool pack_v(RowFn row, index_t nk, index_t Dv, index_t vstride, index_t Dvp, float* SEQMIX_RESTRICT vs) noexcept {
  bool ok = true;
  for (index_t j = 0; j < nk; ++j) {
    const C* p = row(j);
    for (index_t c = 0; c < Dvp; c += 16) {
      const index_t n = std::clamp<index_t>(Dv - c, 0, 16);
      ok &= convert_row<C>(p + c * vstride, n, vstride, 1.0f, vs + v_offset(Dvp, j, c), v_panel_width(Dvp, c));
    }
  }
  return ok;
}

/// Prefetches n rows of `bytes` bytes each (row(j) gives the first element) into L1 / L2.
template <class RowFn>
inline void prefetch_rows(RowFn row, index_t n, std::size_t bytes) noexcept {
  for (index_t j = 0; j < n; ++j) vec::prefetch_bytes<vec::prefetch_hint::l2>(row(j), bytes);
}

// ---------------------------------------------------------------------------------------------------
// Micro-kernels

template <class A>
using fbatch = xsimd::batch<float, A>;

/// S[r][c] = sum_d Q[r][d] K[c][d] (K packed in panels) for R rows, all block_k columns. Q rows have stride ldq.
template <class A, int R>
SEQMIX_ALWAYS_INLINE void qk_rows(const float* SEQMIX_RESTRICT q, index_t ldq, const float* SEQMIX_RESTRICT kt,
                                  index_t Dp, float* SEQMIX_RESTRICT s) noexcept {
  using b = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(b::size);
  static_assert(2 * W == kt_panel || W == 4, "qk_rows: column blocks must match the K panels");
  for (index_t c = 0; c < block_k; c += 2 * W) {
    b acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = b(0.0f);
    const float* kp = kt + (c / kt_panel) * Dp * kt_panel + c % kt_panel;
    for (index_t d = 0; d < Dp; ++d, kp += kt_panel) {
      const b k0 = b::load_unaligned(kp), k1 = b::load_unaligned(kp + W);
      for (int r = 0; r < R; ++r) {
        const b qb(q[r * ldq + d]);
        acc[r][0] = xsimd::fma(qb, k0, acc[r][0]);
        acc[r][1] = xsimd::fma(qb, k1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r][0].store_unaligned(s + r * block_k + c);
      acc[r][1].store_unaligned(s + r * block_k + c + W);
    }
  }
}

/// Wider archs than 8 lanes (AVX-512) run the 8-lane kernel: K panels are 16 floats, 2 batches per row.
template <class Arch>
inline void qk_tile(const float* q, index_t ldq, index_t M, const float* kt, index_t Dp, float* s) noexcept {
  using A = vec::narrow_arch<Arch>;
  index_t r = 0;
  for (; r + row_block <= M; r += row_block) qk_rows<A, row_block>(q + r * ldq, ldq, kt, Dp, s + r * block_k);
  switch (M - r) {
    case 5: qk_rows<A, 5>(q + r * ldq, ldq, kt, Dp, s + r * block_k); break;
    case 4: qk_rows<A, 4>(q + r * ldq, ldq, kt, Dp, s + r * block_k); break;
    case 3: qk_rows<A, 3>(q + r * ldq, ldq, kt, Dp, s + r * block_k); break;
    case 2: qk_rows<A, 2>(q + r * ldq, ldq, kt, Dp, s + r * block_k); break;
    case 1: qk_rows<A, 1>(q + r * ldq, ldq, kt, Dp, s + r * block_k); break;
    default: break;
  }
}

/// O[r][:] = alpha[r] O[r][:] + sum_{j < nk} P[r][j] V[j][:] for R rows (V in panels, see pack_v).
template <class A, int R>
SEQMIX_ALWAYS_INLINE void pv_rows(const float* SEQMIX_RESTRICT p, const float* SEQMIX_RESTRICT v, index_t nk,
                                  index_t Dvp, const float* SEQMIX_RESTRICT alpha, float* SEQMIX_RESTRICT o) noexcept {
  using b = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(b::size);
  static_assert(W <= 8, "pv_rows: a batch must fit the 8-wide last V panel");
  index_t c = 0;
  for (; c + 2 * W <= Dvp; c += 2 * W) {
    b acc[R][2];
    for (int r = 0; r < R; ++r) {
      const b al(alpha[r]);
      acc[r][0] = b::load_unaligned(o + r * Dvp + c) * al;
      acc[r][1] = b::load_unaligned(o + r * Dvp + c + W) * al;
    }
    const float* vp = v + v_offset(Dvp, 0, c);
    const index_t ldv = v_panel_width(Dvp, c);
    for (index_t j = 0; j < nk; ++j, vp += ldv) {
      const b v0 = b::load_unaligned(vp), v1 = b::load_unaligned(vp + W);
      for (int r = 0; r < R; ++r) {
        const b pb(p[r * block_k + j]);
        acc[r][0] = xsimd::fma(pb, v0, acc[r][0]);
        acc[r][1] = xsimd::fma(pb, v1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r][0].store_unaligned(o + r * Dvp + c);
      acc[r][1].store_unaligned(o + r * Dvp + c + W);
    }
  }
  for (; c < Dvp; c += W) {
    b acc[R];
    for (int r = 0; r < R; ++r) acc[r] = b::load_unaligned(o + r * Dvp + c) * b(alpha[r]);
    const float* vp = v + v_offset(Dvp, 0, c);
    const index_t ldv = v_panel_width(Dvp, c);
    for (index_t j = 0; j < nk; ++j, vp += ldv) {
      const b v0 = b::load_unaligned(vp);
      for (int r = 0; r < R; ++r) acc[r] = xsimd::fma(b(p[r * block_k + j]), v0, acc[r]);
    }
    for (int r = 0; r < R; ++r) acc[r].store_unaligned(o + r * Dvp + c);
  }
}

/// Wider archs than 8 lanes run the 8-lane kernel: V panels are 16 floats, the last one possibly 8.
template <class Arch>
inline void pv_tile(const float* p, index_t M, const float* v, index_t nk, index_t Dvp, const float* alpha,
                    float* o) noexcept {
  using A = vec::narrow_arch<Arch>;
  index_t r = 0;
  for (; r + row_block <= M; r += row_block) pv_rows<A, row_block>(p + r * block_k, v, nk, Dvp, alpha + r, o + r * Dvp);
  switch (M - r) {
    case 5: pv_rows<A, 5>(p + r * block_k, v, nk, Dvp, alpha + r, o + r * Dvp); break;
    case 4: pv_rows<A, 4>(p + r * block_k, v, nk, Dvp, alpha + r, o + r * Dvp); break;
    case 3: pv_rows<A, 3>(p + r * block_k, v, nk, Dvp, alpha + r, o + r * Dvp); break;
    case 2: pv_rows<A, 2>(p + r * block_k, v, nk, Dvp, alpha + r, o + r * Dvp); break;
    case 1: pv_rows<A, 1>(p + r * block_k, v, nk, Dvp, alpha + r, o + r * Dvp); break;
    default: break;
  }
}

/// Exact P V for tiles whose V holds inf/NaN: a zero probability (masked key) never touches its row.
template <class A>
inline void pv_tile_exact(const float* p, index_t M, const float* v, index_t nk, index_t Dvp, const float* alpha,
                          float* o) noexcept {
  using b = fbatch<vec::narrow_arch<A>>;  // Dvp is a multiple of 8 only
  constexpr index_t W = static_cast<index_t>(b::size);
  for (index_t r = 0; r < M; ++r) {
    float* orow = o + r * Dvp;
    for (index_t c = 0; c < Dvp; ++c) orow[c] *= alpha[r];
    for (index_t j = 0; j < nk; ++j) {
      const float pj = p[r * block_k + j];
      if (pj == 0.0f) continue;
      const b pb(pj);
      for (index_t c = 0; c < Dvp; c += W) {
        xsimd::fma(pb, b::load_unaligned(v + v_offset(Dvp, j, c)), b::load_unaligned(orow + c)).store_unaligned(orow + c);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Online softmax over one tile

/// Per-call score parameters of the fast path (scale is folded into q when it is packed).
struct score_params {
  float softcap = 0.0f;  ///< 0 = off
  index_t diag_off = 0;  ///< tk - tq: row i's diagonal key is i + diag_off (ALiBi distance)
};

template <class A>
inline float hmax(fbatch<A> x) noexcept {
  alignas(64) float t[fbatch<A>::size];
  x.store_aligned(t);
  float m = t[0];
  for (std::size_t i = 1; i < fbatch<A>::size; ++i) m = std::max(m, t[i]);
  return m;
}

/// Scores S [M][block_k] of keys [j0, j0 + nk) -> probabilities P (in place), updating the running max m,
/// sum l and writing the rescale factor alpha of each row. Row r is query qpos[r] with ALiBi slope
/// slope[r] (slope may be null). Masked and padding columns become probability 0. NaN in a kept score
/// makes the row NaN from then on.
template <class A, mask_policy Mask>
inline void softmax_tile(float* SEQMIX_RESTRICT s, index_t M, const index_t* qpos, const float* slope, index_t j0,
                         index_t nk, tile_kind kind, const Mask& mask, const score_params& sp,
                         float* SEQMIX_RESTRICT m, float* SEQMIX_RESTRICT l, float* SEQMIX_RESTRICT alpha) noexcept {
  using b = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(b::size);
  alignas(64) static constexpr float iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const b vneg(neg_inf);
  const index_t ncols = (nk + W - 1) / W * W;  // columns beyond are never read by P V
  for (index_t r = 0; r < M; ++r) {
    float* sr = s + r * block_k;
    if (sp.softcap > 0.0f) {
      const b cap(sp.softcap), inv(1.0f / sp.softcap);
      for (index_t c = 0; c < ncols; c += W) (cap * vec::tanh(b::load_unaligned(sr + c) * inv)).store_unaligned(sr + c);
    }
    if (slope && slope[r] != 0.0f) {
      const b sl(slope[r]);
      const b dg(static_cast<float>(qpos[r] + sp.diag_off - j0));
      for (index_t c = 0; c < ncols; c += W) {
        const b dist = xsimd::abs(dg - (b::load_unaligned(iota) + b(static_cast<float>(c))));
        xsimd::fnma(sl, dist, b::load_unaligned(sr + c)).store_unaligned(sr + c);
      }
    }
    if (kind == tile_kind::partial) {
      if constexpr (Mask::is_interval) {
        const key_range kr = mask.row_range(qpos[r]);
        const index_t lo = std::clamp<index_t>(kr.lo - j0, 0, nk), hi = std::clamp<index_t>(kr.hi - j0, lo, nk);
        for (index_t c = 0; c < lo; ++c) sr[c] = neg_inf;
        for (index_t c = hi; c < ncols; ++c) sr[c] = neg_inf;
      } else {
        for (index_t c = 0; c < nk; ++c)
          if (!mask.keep(qpos[r], j0 + c)) sr[c] = neg_inf;
        for (index_t c = nk; c < ncols; ++c) sr[c] = neg_inf;
      }
    } else if (nk < ncols) {
      for (index_t c = nk; c < ncols; ++c) sr[c] = neg_inf;
    }
    b vmax = vneg;
    auto bad = xsimd::isnan(b(0.0f));  // false
    for (index_t c = 0; c < ncols; c += W) {
      const b x = b::load_unaligned(sr + c);
      bad = bad | xsimd::isnan(x);
      vmax = xsimd::max(vmax, x);
    }
    const float mold = m[r];
    float mnew = std::max(mold, hmax<A>(vmax));
    if (xsimd::any(bad) || std::isnan(mold)) mnew = std::numeric_limits<float>::quiet_NaN();
    if (mnew == neg_inf) {  // nothing kept so far
      alpha[r] = 1.0f;
      for (index_t c = 0; c < ncols; c += W) b(0.0f).store_unaligned(sr + c);
      continue;
    }
    const float a = std::exp(mold - mnew);
    const b mb(mnew);
    b sum(0.0f);
    for (index_t c = 0; c < ncols; c += W) {
      const b p = vec::exp(b::load_unaligned(sr + c) - mb);
      sum += p;
      p.store_unaligned(sr + c);
    }
    l[r] = l[r] * a + xsimd::hadd(sum);
    m[r] = mnew;
    alpha[r] = a;
  }
}

/// One tile step: S = Q Kt, softmax update, O = alpha O + P V.
template <class A, mask_policy Mask>
inline void tile_step(const float* q, index_t M, index_t Dp, const index_t* qpos, const float* slope,
                      const float* kt, const float* v, bool v_finite, index_t j0, index_t nk, tile_kind kind,
                      const Mask& mask, const score_params& sp, index_t Dvp, float* s, float* m, float* l,
                      float* alpha, float* o) noexcept {
  qk_tile<A>(q, Dp, M, kt, Dp, s);
  softmax_tile<A>(s, M, qpos, slope, j0, nk, kind, mask, sp, m, l, alpha);
  if (v_finite || kind != tile_kind::partial) pv_tile<A>(s, M, v, nk, Dvp, alpha, o);
  else pv_tile_exact<A>(s, M, v, nk, Dvp, alpha, o);
}

/// Normalises one row: o = acc / l (and the sink term), lse = m + log l. Empty rows give o = 0,
/// lse = -inf (lse = sink with a sink). Writes Dv values through `store(c, value)`.
template <class Store>
inline float finish_row(const float* acc, index_t Dv, float m, float l, const float* sink, Store store) noexcept {
  if (sink) {
    const float s = *sink;
    const float mm = std::isnan(m) ? m : std::max(m, s);
    const float a = (m == neg_inf) ? 0.0f : std::exp(m - mm);
    const float lt = l * a + std::exp(s - mm);
    const float f = a / lt;
    for (index_t c = 0; c < Dv; ++c) store(c, (m == neg_inf) ? 0.0f : acc[c] * f);
    return mm + std::log(lt);
  }
  if (m == neg_inf) {
    for (index_t c = 0; c < Dv; ++c) store(c, 0.0f);
    return neg_inf;
  }
  const float f = 1.0f / l;
  for (index_t c = 0; c < Dv; ++c) store(c, acc[c] * f);
  return m + std::log(l);
}

}  // namespace seqmix::detail::fa
SEQMIX_DIAG_POP
