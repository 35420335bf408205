// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/detail/decode_kernels.hpp: AVX2 decode micro-kernels that read K and V rows
// straight from the cache (float, f16 or bf16, converted in registers), with no packing: scores by
// 4-row x 3-key dot products reduced with a horizontal-add tree, P V by 4-row x 24-column blocks, and
// software prefetch of the next tile's rows spread over the work. See docs/03-flash-attention.md.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"
#include "../../../simd/prefetch.hpp"
#include "kernels.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define SEQMIX_FA_DIRECT_DECODE 1
#include <immintrin.h>
#else
#define SEQMIX_FA_DIRECT_DECODE 0
#endif

namespace seqmix::detail::fa {

/// Storage types the direct decode kernels read.
template <class C>
inline constexpr bool direct_storage = std::is_same_v<C, float> || std::is_same_v<C, f16> || std::is_same_v<C, bf16>;

#if SEQMIX_FA_DIRECT_DECODE

template <class C>
SEQMIX_ALWAYS_INLINE __m256 load8(const C* p) noexcept {
  if constexpr (std::is_same_v<C, float>) {
    return _mm256_loadu_ps(p);
  } else if constexpr (std::is_same_v<C, f16>) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
}

/// Lane i of the result is the horizontal sum of a_i.
SEQMIX_ALWAYS_INLINE __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                                  __m256 a7) noexcept {
  const __m256 h0123 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 h4567 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20), _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

/// Keeps a loaded vector in a register (stops the compiler from folding one load into several FMAs).
SEQMIX_ALWAYS_INLINE void pin(__m256& x) noexcept {
#if defined(__GNUC__)
  __asm__("" : "+x"(x));
#else
  (void)x;
#endif
}

/// Prefetches the 64-byte lines of [p, p + bytes) into L2 (T0 would fill L1 with a whole tile ahead and
/// evict q and the scores: 2x slower at Tkv = 8192 on this machine).
SEQMIX_ALWAYS_INLINE void prefetch_span(const void* p, std::size_t bytes) noexcept {
  vec::prefetch_bytes<vec::prefetch_hint::l2>(p, bytes);
}

/// s[r * block_k + c] = q_r . k_c for R rows (q rows ldq apart) and 3 keys (nk <= 3 of them stored).
template <class C, int R>
SEQMIX_ALWAYS_INLINE void qk_rows3(const float* SEQMIX_RESTRICT q, index_t ldq, const C* k0, const C* k1,
                                   const C* k2, index_t nk, index_t D, float* SEQMIX_RESTRICT s) noexcept {
  __m256 a[3][4];
  for (int r = 0; r < 4; ++r) a[0][r] = a[1][r] = a[2][r] = _mm256_setzero_ps();
  for (index_t d = 0; d < D; d += 8) {
    const __m256 x0 = load8(k0 + d), x1 = load8(k1 + d), x2 = load8(k2 + d);
    for (int r = 0; r < R; ++r) {
      __m256 u = _mm256_loadu_ps(q + r * ldq + d);
      pin(u);
      a[0][r] = _mm256_fmadd_ps(u, x0, a[0][r]);
      a[1][r] = _mm256_fmadd_ps(u, x1, a[1][r]);
      a[2][r] = _mm256_fmadd_ps(u, x2, a[2][r]);
    }
  }
  alignas(32) float t[12];
  _mm256_store_ps(t, hsum8(a[0][0], a[0][1], a[0][2], a[0][3], a[1][0], a[1][1], a[1][2], a[1][3]));
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a[2][0], a[2][1]), _mm256_hadd_ps(a[2][2], a[2][3]));
  _mm_store_ps(t + 8, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  for (int r = 0; r < R; ++r) {
    s[r * block_k] = t[r];
    if (nk > 1) s[r * block_k + 1] = t[4 + r];
    if (nk > 2) s[r * block_k + 2] = t[8 + r];
  }
}

/// For every kv head hk < H: S_hk[r][j] = q_{hk,r} . k_{j,hk} for r < M, j < nk, with S_hk = s + hk * M * block_k
/// and q rows of head hk from q + hk * M * ldq. Key j of head hk is krow[j] + hk * khs. Keys are visited in
/// memory order (key triples outer, heads inner); the first row group also prefetches the rows of the next
/// tile's keys (pf[j] + hk * khs, j < npf) that sit at the same place, one tile ahead.
template <class C>
inline void qk_direct(const float* SEQMIX_RESTRICT q, index_t ldq, index_t M, index_t H, const C* const* krow,
                      index_t khs, index_t nk, index_t D, float* SEQMIX_RESTRICT s, const C* const* pf,
                      index_t npf) noexcept {
  const std::size_t row_bytes = static_cast<std::size_t>(D) * sizeof(C);
  for (index_t r0 = 0; r0 < M; r0 += 4) {
    const index_t nr = std::min<index_t>(4, M - r0);
    for (index_t j = 0; j < nk; j += 3) {
      const index_t n3 = std::min<index_t>(3, nk - j);
      const C* k0 = krow[j];
      const C* k1 = krow[n3 > 1 ? j + 1 : j];
      const C* k2 = krow[n3 > 2 ? j + 2 : j];
      for (index_t hk = 0; hk < H; ++hk) {
        if (r0 == 0)
          for (index_t u = j; u < std::min(j + 3, npf); ++u) prefetch_span(pf[u] + hk * khs, row_bytes);
        const float* qh = q + (hk * M + r0) * ldq;
        float* sh = s + (hk * M + r0) * block_k + j;
        const index_t o = hk * khs;
        switch (nr) {
          case 4: qk_rows3<C, 4>(qh, ldq, k0 + o, k1 + o, k2 + o, n3, D, sh); break;
          case 3: qk_rows3<C, 3>(qh, ldq, k0 + o, k1 + o, k2 + o, n3, D, sh); break;
          case 2: qk_rows3<C, 2>(qh, ldq, k0 + o, k1 + o, k2 + o, n3, D, sh); break;
          default: qk_rows3<C, 1>(qh, ldq, k0 + o, k1 + o, k2 + o, n3, D, sh); break;
        }
      }
    }
  }
}

/// O[r][c, c + 8 NB) = alpha[r] O[r][..] + sum_{j < nk} P[r][j] v_j[c, c + 8 NB) for R rows; v_j = vrow[j] + off.
template <class C, int R, int NB>
SEQMIX_ALWAYS_INLINE void pv_block(const float* SEQMIX_RESTRICT p, const C* const* vrow, index_t off, index_t nk,
                                   const float* SEQMIX_RESTRICT alpha, float* SEQMIX_RESTRICT o, index_t Dvp) noexcept {
  __m256 acc[R][NB];
  for (int r = 0; r < R; ++r) {
    const __m256 al = _mm256_set1_ps(alpha[r]);
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_mul_ps(_mm256_loadu_ps(o + r * Dvp + 8 * b), al);
  }
  for (index_t j = 0; j < nk; ++j) {
    const C* vp = vrow[j] + off;
    __m256 v[NB];
    for (int b = 0; b < NB; ++b) v[b] = load8(vp + 8 * b);
    for (int r = 0; r < R; ++r) {
      const __m256 pb = _mm256_broadcast_ss(p + r * block_k + j);
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_fmadd_ps(pb, v[b], acc[r][b]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b) _mm256_storeu_ps(o + r * Dvp + 8 * b, acc[r][b]);
}

template <class C, int R>
SEQMIX_ALWAYS_INLINE void pv_rows(const float* p, const C* const* vrow, index_t off, index_t nk, index_t Dv,
                                  index_t Dvp, const float* alpha, float* o, const C* const* pf, index_t npf) noexcept {
  const index_t nblk = (Dv + 23) / 24;
  index_t c = 0;
  for (index_t blk = 0; c < Dv; ++blk) {
    if (pf)  // an even share of the next tile's rows per column block
      for (index_t u = npf * blk / nblk; u < std::min(npf, npf * (blk + 1) / nblk); ++u)
        prefetch_span(pf[u] + off, static_cast<std::size_t>(Dv) * sizeof(C));
    if (Dv - c >= 24) {
      pv_block<C, R, 3>(p, vrow, off + c, nk, alpha, o + c, Dvp);
      c += 24;
    } else if (Dv - c == 16) {
      pv_block<C, R, 2>(p, vrow, off + c, nk, alpha, o + c, Dvp);
      c += 16;
    } else {
      pv_block<C, R, 1>(p, vrow, off + c, nk, alpha, o + c, Dvp);
      c += 8;
    }
  }
}

/// O[r] = alpha[r] O[r] + sum_{j < nk} P[r][j] v_j for r < M (Dv % 8 == 0, O rows Dvp apart), v_j = vrow[j] + off.
/// Prefetches the next tile's rows pf[j] + off (j < npf) along the way.
template <class C>
inline void pv_direct(const float* SEQMIX_RESTRICT p, index_t M, const C* const* vrow, index_t off, index_t nk,
                      index_t Dv, index_t Dvp, const float* SEQMIX_RESTRICT alpha, float* SEQMIX_RESTRICT o,
                      const C* const* pf, index_t npf) noexcept {
  for (index_t r0 = 0; r0 < M; r0 += 4) {
    const float* pr = p + r0 * block_k;
    float* orow = o + r0 * Dvp;
    const C* const* pfr = r0 == 0 ? pf : nullptr;
    switch (std::min<index_t>(4, M - r0)) {
      case 4: pv_rows<C, 4>(pr, vrow, off, nk, Dv, Dvp, alpha + r0, orow, pfr, npf); break;
      case 3: pv_rows<C, 3>(pr, vrow, off, nk, Dv, Dvp, alpha + r0, orow, pfr, npf); break;
      case 2: pv_rows<C, 2>(pr, vrow, off, nk, Dv, Dvp, alpha + r0, orow, pfr, npf); break;
      default: pv_rows<C, 1>(pr, vrow, off, nk, Dv, Dvp, alpha + r0, orow, pfr, npf); break;
    }
  }
}

#endif

}  // namespace seqmix::detail::fa
