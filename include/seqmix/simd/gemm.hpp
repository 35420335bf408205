// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/gemm.hpp: register-blocked float GEMM for the small tiles of chunked linear attention, SSD and
// attention: C[M,N] = alpha A[M,K] B[K,N] + beta C, every operand strided (transposes are strides).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "arch.hpp"
#include "load_store.hpp"
#include "transpose.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::vec {

/// Read-only strided matrix: element (i, j) is p[i * rs + j * cs]. A transpose is the same memory with rs
/// and cs swapped: a row-major [K,M] buffer read as an [M,K] matrix is {p, 1, M}.
struct const_matrix_ref {
  const float* p;
  index_t rs;
  index_t cs;
};

/// Writable strided matrix: element (i, j) is p[i * rs + j * cs].
struct matrix_ref {
  float* p;
  index_t rs;
  index_t cs;
};

namespace detail {

/// Register tile: MR rows x NR = 2 batches of columns (6 x 16 on AVX2: 12 accumulators, 2 B loads and one
/// A broadcast per k: 15 of the 16 ymm registers).
inline constexpr index_t gemm_mr = 6;
template <class A>
inline constexpr index_t gemm_nr = 2 * width<A>;
/// K block: the packed B panel is gemm_kc x NR floats (16 KiB on AVX2), kept in L1 while every row block
/// of A streams past it.
inline constexpr index_t gemm_kc = 256;


/// Packs B[k0 .. k0+kc, j0 .. j0+nr) into dst[kc][NR] (row k holds the NR columns), columns >= nr zeroed.
template <class A>
inline void gemm_pack_b(const_matrix_ref b, index_t k0, index_t kc, index_t j0, index_t nr, float* dst) noexcept {
  constexpr index_t w = width<A>;
  constexpr index_t nr_max = gemm_nr<A>;
  const float* base = b.p + k0 * b.rs + j0 * b.cs;
  if (b.cs == 1) {  // rows of B contiguous: copy (with tails)
    const index_t n0 = std::min(nr, w), n1 = std::max<index_t>(nr - w, 0);
    for (index_t k = 0; k < kc; ++k) {
      const float* src = base + k * b.rs;
      float* d = dst + k * nr_max;
      if (nr == nr_max) {
        vec::store(d, vec::load<A>(src));
        vec::store(d + w, vec::load<A>(src + w));
      } else {
        vec::store(d, vec::load_tail<A>(src, n0));
        vec::store(d + w, vec::load_tail<A>(src + w, n1));
      }
    }
    return;
  }
  index_t j = 0;
#if defined(__AVX2__)
  if constexpr (is_avx2<A> || is_avx512<A>) {  // (AVX-512 implies AVX2: NR = 32 is 4 groups of 8)
    if (b.rs == 1) {  // B transposed (columns contiguous, e.g. K^T in Q K^T): 8x8 register transposes
      for (; j + 8 <= nr; j += 8) {
        index_t k = 0;
        for (; k + 8 <= kc; k += 8) {
          __m256 r[8];
          for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(base + (j + q) * b.cs + k);
          vec::transpose8(r);
          for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (k + q) * nr_max + j, r[q]);
        }
        for (; k < kc; ++k)
          for (index_t q = 0; q < 8; ++q) dst[k * nr_max + j + q] = base[(j + q) * b.cs + k];
      }
    }
  }
#endif
  for (index_t k = 0; k < kc; ++k) {  // general strides, and what the transposes left
    const float* src = base + k * b.rs;
    float* d = dst + k * nr_max;
    for (index_t q = j; q < nr; ++q) d[q] = src[q * b.cs];
    for (index_t q = nr; q < nr_max; ++q) d[q] = 0.0f;
  }
}

/// One MR x NR tile: acc = A[i0 .. i0+MR, k-block] * packed B, then C = alpha acc + beta C (C not read when
/// beta == 0), columns j0 .. j0+nr.
template <class A, index_t MR>
SEQMIX_ALWAYS_INLINE void gemm_tile(index_t kc, const float* a, index_t a_rs, index_t a_cs, const float* bp,
                                    index_t b_rs, float alpha, float beta, float* c, index_t c_rs, index_t c_cs,
                                    index_t nr) noexcept {
  using F = fbatch<A>;
  constexpr index_t w = width<A>;
  constexpr index_t nr_max = gemm_nr<A>;
  F acc0[MR], acc1[MR];
  for (index_t i = 0; i < MR; ++i) acc0[i] = acc1[i] = F(0.0f);
  const float* ar[MR];
  for (index_t i = 0; i < MR; ++i) ar[i] = a + i * a_rs;
  if (a_cs == 1) {
    for (index_t k = 0; k < kc; ++k) {
      const F b0 = F::load_unaligned(bp + k * b_rs);
      const F b1 = F::load_unaligned(bp + k * b_rs + w);
      for (index_t i = 0; i < MR; ++i) {
        const F ai(ar[i][k]);
        acc0[i] = xsimd::fma(ai, b0, acc0[i]);
        acc1[i] = xsimd::fma(ai, b1, acc1[i]);
      }
    }
  } else {
    for (index_t k = 0; k < kc; ++k) {
      const F b0 = F::load_unaligned(bp + k * b_rs);
      const F b1 = F::load_unaligned(bp + k * b_rs + w);
      const index_t ko = k * a_cs;
      for (index_t i = 0; i < MR; ++i) {
        const F ai(ar[i][ko]);
        acc0[i] = xsimd::fma(ai, b0, acc0[i]);
        acc1[i] = xsimd::fma(ai, b1, acc1[i]);
      }
    }
  }
  const F va(alpha), vb(beta);
  const index_t n0 = std::min(nr, w), n1 = std::max<index_t>(nr - w, 0);
  for (index_t i = 0; i < MR; ++i) {
    float* cr = c + i * c_rs;
    F v0 = acc0[i] * va, v1 = acc1[i] * va;
    if (c_cs == 1) {
      if (nr == nr_max) {
        if (beta != 0.0f) {
          v0 = xsimd::fma(vb, vec::load<A>(cr), v0);
          v1 = xsimd::fma(vb, vec::load<A>(cr + w), v1);
        }
        vec::store(cr, v0);
        vec::store(cr + w, v1);
      } else {
        if (beta != 0.0f) {
          v0 = xsimd::fma(vb, vec::load_tail<A>(cr, n0), v0);
          v1 = xsimd::fma(vb, vec::load_tail<A>(cr + w, n1), v1);
        }
        vec::store_tail(cr, v0, n0);
        vec::store_tail(cr + w, v1, n1);
      }
    } else {
      if (beta != 0.0f) {
        v0 = xsimd::fma(vb, vec::load_strided_tail<A>(cr, c_cs, n0), v0);
        v1 = xsimd::fma(vb, vec::load_strided_tail<A>(cr + w * c_cs, c_cs, n1), v1);
      }
      vec::store_strided(cr, c_cs, v0, n0);
      vec::store_strided(cr + w * c_cs, c_cs, v1, n1);
    }
  }
}

/// The default after-tile hook: nothing.
struct gemm_no_hook {
  SEQMIX_ALWAYS_INLINE void operator()() const noexcept {}
};

template <class A, index_t MR, class Hook = gemm_no_hook>
inline void gemm_rows(index_t m, index_t kc, const float* a, index_t a_rs, index_t a_cs, const float* bp, index_t b_rs,
                      float alpha, float beta, float* c, index_t c_rs, index_t c_cs, index_t nr,
                      Hook& hook) noexcept {
  index_t i = 0;
  for (; i + MR <= m; i += MR) {
    gemm_tile<A, MR>(kc, a + i * a_rs, a_rs, a_cs, bp, b_rs, alpha, beta, c + i * c_rs, c_rs, c_cs, nr);
    hook();
  }
  const float* at = a + i * a_rs;
  float* ct = c + i * c_rs;
  switch (m - i) {  // row tail: one smaller tile
    case 5:
      gemm_tile<A, 5>(kc, at, a_rs, a_cs, bp, b_rs, alpha, beta, ct, c_rs, c_cs, nr);
      break;
    case 4:
      gemm_tile<A, 4>(kc, at, a_rs, a_cs, bp, b_rs, alpha, beta, ct, c_rs, c_cs, nr);
      break;
    case 3:
      gemm_tile<A, 3>(kc, at, a_rs, a_cs, bp, b_rs, alpha, beta, ct, c_rs, c_cs, nr);
      break;
    case 2:
      gemm_tile<A, 2>(kc, at, a_rs, a_cs, bp, b_rs, alpha, beta, ct, c_rs, c_cs, nr);
      break;
    case 1:
      gemm_tile<A, 1>(kc, at, a_rs, a_cs, bp, b_rs, alpha, beta, ct, c_rs, c_cs, nr);
      break;
    default:
      break;
  }
  if (i < m) hook();
}

}  // namespace detail

/// C = alpha A B + beta C for float matrices given as strided refs: A [M,K], B [K,N], C [M,N]. Any strides
/// (transposes, row slices of bigger tensors, negative); C must not alias A or B. beta == 0 overwrites C
/// without reading it (NaN in C does not propagate, as in BLAS); K == 0 gives C = beta C.
/// Fastest when C rows are contiguous (c.cs == 1) and B rows (b.cs == 1: read in place) or columns
/// (b.rs == 1: packed with 8x8 transposes) are; A may be row- or column-major at the same speed. The sum over k runs in order k = 0 .. K-1 for every element
/// (deterministic, independent of M and N); no allocation (a 16 KiB stack panel), single-threaded: callers
/// parallelise over heads / chunks.
/// Shapes: A [M,K], B [K,N], C [M,N]; sized for the tiles of chunked kernels (M, N, K up to a few hundred;
/// K is blocked by 256). Throws: nothing.
/// As gemm below, calling hook() after every register tile: a caller can spread work that is not on the
/// FMA pipes over the product (e.g. software prefetches of rows a later phase reads) instead of issuing it
/// in a burst. Shapes, order of summation and results: exactly those of gemm. Throws: nothing.
template <class A = xsimd::default_arch, class Hook>
inline void gemm(index_t m, index_t n, index_t k, float alpha, const_matrix_ref a, const_matrix_ref b, float beta,
                 matrix_ref c, Hook&& hook) noexcept {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        float& x = c.p[i * c.rs + j * c.cs];
        x = beta == 0.0f ? 0.0f : beta * x;
      }
    return;
  }
  constexpr index_t nr_max = detail::gemm_nr<A>;
  alignas(64) float panel[detail::gemm_kc * nr_max];  // [kc, NR] packed B
  for (index_t k0 = 0; k0 < k; k0 += detail::gemm_kc) {
    const index_t kc = std::min(detail::gemm_kc, k - k0);
    const float beta_k = k0 == 0 ? beta : 1.0f;
    const float* ak = a.p + k0 * a.cs;
    for (index_t j0 = 0; j0 < n; j0 += nr_max) {
      const index_t nr = std::min(nr_max, n - j0);
      const float* bp = panel;
      index_t b_rs = nr_max;
      if (b.cs == 1 && nr == nr_max) {  // full panel of contiguous B rows: read B in place
        bp = b.p + k0 * b.rs + j0;
        b_rs = b.rs;
      } else {
        detail::gemm_pack_b<A>(b, k0, kc, j0, nr, panel);
      }
      detail::gemm_rows<A, detail::gemm_mr>(m, kc, ak, a.rs, a.cs, bp, b_rs, alpha, beta_k, c.p + j0 * c.cs, c.rs, c.cs,
                                            nr, hook);
    }
  }
}

template <class A = xsimd::default_arch>
inline void gemm(index_t m, index_t n, index_t k, float alpha, const_matrix_ref a, const_matrix_ref b, float beta,
                 matrix_ref c) noexcept {
  detail::gemm_no_hook none;
  vec::gemm<A>(m, n, k, alpha, a, b, beta, c, none);
}

namespace detail {

/// One MR x NR tile of the lower-triangular product (rows i0 .. i0+MR, B rows contiguous): every row takes
/// A's first i0 columns, then the tile's own MR x MR triangle row by row (row i never reads B rows k > i).
/// The finished tile alpha acc + beta C goes to store(i0, nr, v0, v1).
template <class A, index_t MR, bool Full, class Store>
SEQMIX_ALWAYS_INLINE void gemm_lower_tile(index_t i0, const float* a, index_t a_rs, index_t a_cs, const float* b,
                                          index_t b_rs, index_t nr, float alpha, float beta, const float* c,
                                          index_t c_rs, Store& store) noexcept {
  using F = fbatch<A>;
  constexpr index_t w = width<A>;
  const index_t n0 = std::min(nr, w), n1 = std::max<index_t>(nr - w, 0);
  auto load_b = [&](index_t k, F& b0, F& b1) {
    if constexpr (Full) {
      b0 = F::load_unaligned(b + k * b_rs);
      b1 = F::load_unaligned(b + k * b_rs + w);
    } else {
      b0 = vec::load_tail<A>(b + k * b_rs, n0);
      b1 = vec::load_tail<A>(b + k * b_rs + w, n1);
    }
  };
  F acc0[MR], acc1[MR];
  for (index_t i = 0; i < MR; ++i) acc0[i] = acc1[i] = F(0.0f);
  const float* ar[MR];
  for (index_t i = 0; i < MR; ++i) ar[i] = a + (i0 + i) * a_rs;
  for (index_t k = 0; k < i0; ++k) {
    F b0, b1;
    load_b(k, b0, b1);
    for (index_t i = 0; i < MR; ++i) {
      const F ai(ar[i][k * a_cs]);
      acc0[i] = xsimd::fma(ai, b0, acc0[i]);
      acc1[i] = xsimd::fma(ai, b1, acc1[i]);
    }
  }
  for (index_t u = 0; u < MR; ++u) {  // the triangle: B row i0 + u reaches rows i0 + u .. i0 + MR - 1
    F b0, b1;
    load_b(i0 + u, b0, b1);
    for (index_t i = u; i < MR; ++i) {
      const F ai(ar[i][(i0 + u) * a_cs]);
      acc0[i] = xsimd::fma(ai, b0, acc0[i]);
      acc1[i] = xsimd::fma(ai, b1, acc1[i]);
    }
  }
  const F va(alpha), vb(beta);
  for (index_t i = 0; i < MR; ++i) {
    acc0[i] = acc0[i] * va;
    acc1[i] = acc1[i] * va;
    if (beta != 0.0f) {
      const float* cr = c + i * c_rs;
      acc0[i] = xsimd::fma(vb, Full ? F::load_unaligned(cr) : vec::load_tail<A>(cr, n0), acc0[i]);
      acc1[i] = xsimd::fma(vb, Full ? F::load_unaligned(cr + w) : vec::load_tail<A>(cr + w, n1), acc1[i]);
    }
  }
  store(i0, nr, acc0, acc1);
}

template <class A, bool Full, class Store>
inline void gemm_lower_rows(index_t m, const float* a, index_t a_rs, index_t a_cs, const float* b, index_t b_rs,
                            index_t nr, float alpha, float beta, const float* c, index_t c_rs, Store& store) noexcept {
  constexpr index_t MR = gemm_mr;
  index_t i = 0;
  for (; i + MR <= m; i += MR)
    gemm_lower_tile<A, MR, Full>(i, a, a_rs, a_cs, b, b_rs, nr, alpha, beta, c + i * c_rs, c_rs, store);
  switch (m - i) {
    case 5: gemm_lower_tile<A, 5, Full>(i, a, a_rs, a_cs, b, b_rs, nr, alpha, beta, c + i * c_rs, c_rs, store); break;
    case 4: gemm_lower_tile<A, 4, Full>(i, a, a_rs, a_cs, b, b_rs, nr, alpha, beta, c + i * c_rs, c_rs, store); break;
    case 3: gemm_lower_tile<A, 3, Full>(i, a, a_rs, a_cs, b, b_rs, nr, alpha, beta, c + i * c_rs, c_rs, store); break;
    case 2: gemm_lower_tile<A, 2, Full>(i, a, a_rs, a_cs, b, b_rs, nr, alpha, beta, c + i * c_rs, c_rs, store); break;
    case 1: gemm_lower_tile<A, 1, Full>(i, a, a_rs, a_cs, b, b_rs, nr, alpha, beta, c + i * c_rs, c_rs, store); break;
    default: break;
  }
}

}  // namespace detail

/// Causal (lower-triangular) product: C = alpha L B + beta C with L the lower triangle of A (diagonal
/// included): row i of C sums A(i, k) B(k, :) over k <= i only, so B rows k > i are never read (a NaN or
/// inf in a later row of B cannot reach an earlier row of C through a zero of A). The in-chunk products of
/// chunked scans ((L o Q K^T) V). A [M,M] (any strides), B [M,N] and C [M,N] with contiguous rows (cs == 1).
/// Each finished MR x NR register tile (MR <= 6 rows from i0, nr <= NR columns from j0, as batch arrays
/// v0 = columns j0 .. j0+w, v1 = the next w) is handed to store(i0, j0, nr, v0, v1) instead of being
/// written to C, so a caller can fuse its epilogue; C is still read when beta != 0. Sums over k in order.
/// Throws: nothing.
template <class A = xsimd::default_arch, class Store>
inline void gemm_lower(index_t m, index_t n, float alpha, const_matrix_ref a, const_matrix_ref b, float beta,
                       const_matrix_ref c, Store&& store) noexcept {
  SEQMIX_ASSERT(b.cs == 1 && (beta == 0.0f || c.cs == 1));
  constexpr index_t nr_max = detail::gemm_nr<A>;
  for (index_t j0 = 0; j0 < n; j0 += nr_max) {
    const index_t nr = std::min(nr_max, n - j0);
    auto st = [&](index_t i0, index_t nrr, auto& v0, auto& v1) { store(i0, j0, nrr, v0, v1); };
    if (nr == nr_max)
      detail::gemm_lower_rows<A, true>(m, a.p, a.rs, a.cs, b.p + j0, b.rs, nr, alpha, beta, c.p + j0, c.rs, st);
    else
      detail::gemm_lower_rows<A, false>(m, a.p, a.rs, a.cs, b.p + j0, b.rs, nr, alpha, beta, c.p + j0, c.rs, st);
  }
}

/// gemm_lower writing the tiles to C (C [M,N] with contiguous rows). Throws: nothing.
template <class A = xsimd::default_arch>
inline void gemm_lower(index_t m, index_t n, float alpha, const_matrix_ref a, const_matrix_ref b, float beta,
                       matrix_ref c) noexcept {
  SEQMIX_ASSERT(c.cs == 1);
  constexpr index_t w = width<A>;
  vec::gemm_lower<A>(m, n, alpha, a, b, beta, const_matrix_ref{c.p, c.rs, 1},
                     [&](index_t i0, index_t j0, index_t nr, auto& v0, auto& v1) {
                       constexpr index_t MR = static_cast<index_t>(std::extent_v<std::remove_reference_t<decltype(v0)>>);
                       const index_t n0 = std::min(nr, w), n1 = std::max<index_t>(nr - w, 0);
                       for (index_t i = 0; i < MR; ++i) {
                         float* cr = c.p + (i0 + i) * c.rs + j0;
                         if (nr == 2 * w) {
                           vec::store(cr, v0[i]);
                           vec::store(cr + w, v1[i]);
                         } else {
                           vec::store_tail(cr, v0[i], n0);
                           vec::store_tail(cr + w, v1[i], n1);
                         }
                       }
                     });
}

/// Row-major convenience form: C[M,N] (ldc) = alpha op(A) op(B) + beta C, with op(A) = A [M,K] (lda) or,
/// trans_a, A^T for A stored [K,M]; op(B) = B [K,N] (ldb) or, trans_b, B^T for B stored [N,K] (Q K^T).
/// Shapes: as gemm. Throws: nothing.
template <class A = xsimd::default_arch>
inline void gemm_rm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
                    index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc) noexcept {
  const const_matrix_ref ar = trans_a ? const_matrix_ref{a, 1, lda} : const_matrix_ref{a, lda, 1};
  const const_matrix_ref br = trans_b ? const_matrix_ref{b, 1, ldb} : const_matrix_ref{b, ldb, 1};
  vec::gemm<A>(m, n, k, alpha, ar, br, beta, matrix_ref{c, ldc, 1});
}

}  // namespace seqmix::vec
SEQMIX_DIAG_POP
