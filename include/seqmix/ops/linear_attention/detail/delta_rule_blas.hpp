// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/delta_rule_blas.hpp: register-blocked SGEMM micro-kernels and vector
// helpers shared by the delta-rule family kernels (delta_rule, gated_delta_rule, rwkv7).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../../config.hpp"
#include "../../../core/dtype.hpp"
#include "../../../simd/load_store.hpp"
#include "../../../simd/prefetch.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::delta_detail {

/// Scratch rows are padded to this many floats (64 bytes), so every row holds whole batches.
inline constexpr index_t pad_unit = 16;
constexpr index_t pad_up(index_t n) noexcept { return (n + pad_unit - 1) / pad_unit * pad_unit; }

/// One MR x (NB * W) tile of C (+)= op(A) B over an inner dimension kd.
template <int MR, int NB, bool TransA, bool Acc, class Arch>
SEQMIX_ALWAYS_INLINE void sgemm_tile(index_t kd, const float* SEQMIX_RESTRICT a, index_t lda,
                                     const float* SEQMIX_RESTRICT b, index_t ldb, float* SEQMIX_RESTRICT c,
                                     index_t ldc) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  bt acc[MR][NB];
  for (int r = 0; r < MR; ++r) {
    for (int nb = 0; nb < NB; ++nb) {
      if constexpr (Acc) {
        acc[r][nb] = bt::load_unaligned(c + r * ldc + nb * W);
      } else {
        acc[r][nb] = bt(0.0f);
      }
    }
  }
  for (index_t p = 0; p < kd; ++p) {
    bt bv[NB];
    for (int nb = 0; nb < NB; ++nb) bv[nb] = bt::load_unaligned(b + p * ldb + nb * W);
    for (int r = 0; r < MR; ++r) {
      const bt av(TransA ? a[p * lda + r] : a[r * lda + p]);
      for (int nb = 0; nb < NB; ++nb) acc[r][nb] = xsimd::fma(av, bv[nb], acc[r][nb]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int nb = 0; nb < NB; ++nb) acc[r][nb].store_unaligned(c + r * ldc + nb * W);
  }
}

template <int NB, bool TransA, bool Acc, class Arch>
SEQMIX_ALWAYS_INLINE void sgemm_rows(index_t M, index_t kd, const float* a, index_t lda, const float* b,
                                     index_t ldb, float* c, index_t ldc) noexcept {
  constexpr int MR = NB >= 2 ? 6 : 8;
  index_t i = 0;
  auto a_at = [&](index_t row) { return TransA ? a + row : a + row * lda; };
  for (; i + MR <= M; i += MR) sgemm_tile<MR, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc);
  switch (M - i) {
    case 7: sgemm_tile<7, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    case 6: sgemm_tile<6, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    case 5: sgemm_tile<5, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    case 4: sgemm_tile<4, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    case 3: sgemm_tile<3, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    case 2: sgemm_tile<2, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    case 1: sgemm_tile<1, NB, TransA, Acc, Arch>(kd, a_at(i), lda, b, ldb, c + i * ldc, ldc); break;
    default: break;
  }
}

/// C[M x N] (+)= op(A)[M x kd] B[kd x N], all row-major; op(A)(i,p) = TransA ? A[p*lda+i] : A[i*lda+p].
/// N must be a multiple of the batch width (scratch rows are padded with pad_up).
template <bool TransA, bool Acc, class Arch>
inline void sgemm(index_t M, index_t N, index_t kd, const float* a, index_t lda, const float* b, index_t ldb,
                  float* c, index_t ldc) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  SEQMIX_ASSERT(N % W == 0);
  index_t n = 0;
  for (; n + 2 * W <= N; n += 2 * W) sgemm_rows<2, TransA, Acc, Arch>(M, kd, a, lda, b + n, ldb, c + n, ldc);
  for (; n + W <= N; n += W) sgemm_rows<1, TransA, Acc, Arch>(M, kd, a, lda, b + n, ldb, c + n, ldc);
}

/// C (+)= A B with A lower triangular (M x M, diagonal included): the rectangle left of each row block is
/// one GEMM, the diagonal block is row axpys that never touch B rows past the diagonal (so a NaN in a later
/// row of B cannot reach an earlier row of C through a 0 * NaN). N a multiple of the batch width.
template <bool Acc, class Arch>
inline void sgemm_tril_a(index_t M, index_t N, const float* a, index_t lda, const float* b, index_t ldb, float* c,
                         index_t ldc) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  constexpr index_t MB = 8;
  for (index_t i0 = 0; i0 < M; i0 += MB) {
    const index_t m = std::min(MB, M - i0);
    if (i0 > 0) {
      sgemm<false, Acc, Arch>(m, N, i0, a + i0 * lda, lda, b, ldb, c + i0 * ldc, ldc);
    } else if constexpr (!Acc) {
      for (index_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.0f);
    }
    for (index_t i = i0; i < i0 + m; ++i) {
      float* ci = c + i * ldc;
      index_t x = 0;  // 4 batches of columns at a time: 4 independent chains of FMAs
      for (; x + 4 * W <= N; x += 4 * W) {
        bt acc[4];
        for (int q = 0; q < 4; ++q) acc[q] = bt::load_unaligned(ci + x + q * W);
        for (index_t j = i0; j <= i; ++j) {
          const bt aij(a[i * lda + j]);
          for (int q = 0; q < 4; ++q) acc[q] = xsimd::fma(aij, bt::load_unaligned(b + j * ldb + x + q * W), acc[q]);
        }
        for (int q = 0; q < 4; ++q) acc[q].store_unaligned(ci + x + q * W);
      }
      for (; x < N; x += W) {
        bt acc = bt::load_unaligned(ci + x);
        for (index_t j = i0; j <= i; ++j) acc = xsimd::fma(bt(a[i * lda + j]), bt::load_unaligned(b + j * ldb + x), acc);
        acc.store_unaligned(ci + x);
      }
    }
  }
}

/// C = A B where only the lower triangle of C (column j <= row i) is needed: row block [i0, i0 + m) is
/// computed up to column i0 + m rounded up to the batch width (never past N).
template <class Arch>
inline void sgemm_tril_c(index_t M, index_t N, index_t kd, const float* a, index_t lda, const float* b, index_t ldb,
                         float* c, index_t ldc) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  constexpr index_t MB = 12;
  for (index_t i0 = 0; i0 < M; i0 += MB) {
    const index_t m = std::min(MB, M - i0);
    const index_t n = std::min(N, (i0 + m + W - 1) / W * W);
    sgemm<false, false, Arch>(m, n, kd, a + i0 * lda, lda, b, ldb, c + i0 * ldc, ldc);
  }
}

/// Smallest lane of a batch.
template <class Arch>
SEQMIX_ALWAYS_INLINE float lane_min(const xsimd::batch<float, Arch>& x) noexcept {
  alignas(64) float t[xsimd::batch<float, Arch>::size];
  x.store_aligned(t);
  float m = t[0];
  for (std::size_t i = 1; i < xsimd::batch<float, Arch>::size; ++i) m = std::min(m, t[i]);
  return m;
}

/// x[i] = exp(x[i]) for i < n.
template <class Arch>
SEQMIX_ALWAYS_INLINE void exp_inplace(float* x, index_t n) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  index_t i = 0;
  for (; i + W <= n; i += W) xsimd::exp(bt::load_unaligned(x + i)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

/// y[i] += a * x[i] for i < n (n a multiple of the width).
template <class Arch>
SEQMIX_ALWAYS_INLINE void axpy(index_t n, float a, const float* SEQMIX_RESTRICT x, float* SEQMIX_RESTRICT y) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const bt av(a);
  for (index_t i = 0; i < n; i += W) xsimd::fma(av, bt::load_unaligned(x + i), bt::load_unaligned(y + i)).store_unaligned(y + i);
}

/// x[i] *= a for i < n (n a multiple of the width).
template <class Arch>
SEQMIX_ALWAYS_INLINE void scal(index_t n, float a, float* x) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  const bt av(a);
  for (index_t i = 0; i < n; i += W) (av * bt::load_unaligned(x + i)).store_unaligned(x + i);
}

/// z[i] = x[i] * y[i] for i < n (n a multiple of the width).
template <class Arch>
SEQMIX_ALWAYS_INLINE void vmul(index_t n, const float* x, const float* y, float* z) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  for (index_t i = 0; i < n; i += W) (bt::load_unaligned(x + i) * bt::load_unaligned(y + i)).store_unaligned(z + i);
}

/// Forward substitution in place over the rows of X (rows x n, row stride ldx):
/// X_i <- X_i + sign * sum_{j<i} L[i][j] X_j, L strictly lower (row stride ldl); sign = -1 solves
/// (I + L) X = R, sign = +1 solves (I - L) X = R.
template <class Arch>
inline void forward_subst(index_t rows, index_t n, const float* L, index_t ldl, float sign, float* X,
                          index_t ldx) noexcept {
  using bt = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(bt::size);
  constexpr index_t NB = 4;
  index_t c0 = 0;
  for (; c0 + NB * W <= n; c0 += NB * W) {
    for (index_t i = 1; i < rows; ++i) {
      bt acc[NB];
      for (index_t q = 0; q < NB; ++q) acc[q] = bt::load_unaligned(X + i * ldx + c0 + q * W);
      for (index_t j = 0; j < i; ++j) {
        const bt l(sign * L[i * ldl + j]);
        for (index_t q = 0; q < NB; ++q) acc[q] = xsimd::fma(l, bt::load_unaligned(X + j * ldx + c0 + q * W), acc[q]);
      }
      for (index_t q = 0; q < NB; ++q) acc[q].store_unaligned(X + i * ldx + c0 + q * W);
    }
  }
  for (; c0 < n; c0 += W) {
    for (index_t i = 1; i < rows; ++i) {
      bt acc = bt::load_unaligned(X + i * ldx + c0);
      for (index_t j = 0; j < i; ++j) acc = xsimd::fma(bt(sign * L[i * ldl + j]), bt::load_unaligned(X + j * ldx + c0), acc);
      acc.store_unaligned(X + i * ldx + c0);
    }
  }
}

/// Prefetches `rows` rows of `n` contiguous elements (row stride `stride` elements) into the cache, so the
/// next chunk's inputs (one row per 4 KiB page in [B,T,H,D] layouts) stream in while this chunk computes.
template <class T>
SEQMIX_ALWAYS_INLINE void prefetch_rows(const T* p, index_t stride, index_t rows, index_t n) noexcept {
  for (index_t r = 0; r < rows; ++r)
    vec::prefetch_bytes<vec::prefetch_hint::l3>(p + r * stride, static_cast<std::size_t>(n) * sizeof(T));
}

/// Prefetches a block (the next head's state) into L2 a few lines at a time, spread over a head visit.
struct trickle_prefetch {
  const char* p = nullptr;
  index_t lines = 0, per_step = 0, done = 0;
  trickle_prefetch() = default;
  trickle_prefetch(const float* block, index_t floats, index_t steps) noexcept
      : p(reinterpret_cast<const char*>(block)), lines((floats * 4 + 63) / 64),
        per_step(steps > 0 ? (lines + steps - 1) / steps : lines) {}
  SEQMIX_ALWAYS_INLINE void step() noexcept {
    for (index_t e = std::min(lines, done + per_step); done < e; ++done) vec::prefetch(p + done * 64);
  }
};

/// dst (cols x rows, row stride ldd) = transpose of src (rows x cols, row stride lds).
inline void transpose(index_t rows, index_t cols, const float* SEQMIX_RESTRICT src, index_t lds,
                      float* SEQMIX_RESTRICT dst, index_t ldd) noexcept {
  for (index_t i = 0; i < rows; ++i) {
    for (index_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
}

/// Numerically safe softplus (SPEC §2.13: x for x > 20).
inline float softplus_f(float x) noexcept { return x > 20.0f ? x : std::log1p(std::exp(x)); }
inline double softplus_d(double x) noexcept { return x > 20.0 ? x : std::log1p(std::exp(x)); }
inline float sigmoid_f(float x) noexcept { return 1.0f / (1.0f + std::exp(-x)); }
inline double sigmoid_d(double x) noexcept { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace seqmix::delta_detail
SEQMIX_DIAG_POP
