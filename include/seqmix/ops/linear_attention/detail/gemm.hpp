// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/gemm.hpp: register-blocked small SGEMM micro-kernels for the chunk
// forms (C x K by K x V with C = 64). Kept here until simd/gemm.hpp lands.
#pragma once

#include <algorithm>

#include <xsimd/xsimd.hpp>

#include "../../../config.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::linear_detail {

/// Triangular shortcuts of gemm(): `lower_a` means A is lower triangular (row i reads only k <= i);
/// `lower_c` means only C's lower triangle (j <= i, rounded up to whole vectors) is needed.
enum class tri { none, lower_a, lower_c };

template <class Arch, int MR, int NV, bool Acc>
SEQMIX_ALWAYS_INLINE void gemm_micro(index_t Kd, index_t Kfull, const float* SEQMIX_RESTRICT A, index_t lda,
                                     const float* SEQMIX_RESTRICT B, index_t ldb, float* SEQMIX_RESTRICT C,
                                     index_t ldc) noexcept {
  using F = xsimd::batch<float, Arch>;
  constexpr index_t W = static_cast<index_t>(F::size);
  F acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = F(0.0f);
  for (index_t k = 0; k < Kfull; ++k) {
    F b[NV];
    for (int v = 0; v < NV; ++v) b[v] = F::load_aligned(B + k * ldb + v * W);
    for (int r = 0; r < MR; ++r) {
      const F a(A[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(a, b[v], acc[r][v]);
    }
  }
  // Triangular tail (tri::lower_a): row r reads k <= Kfull + r only, so rows of B past the diagonal
  // (possibly NaN) never meet the zeros above it.
  for (index_t k = Kfull; k < Kd; ++k) {
    F b[NV];
    for (int v = 0; v < NV; ++v) b[v] = F::load_aligned(B + k * ldb + v * W);
    for (int r = 0; r < MR; ++r) {
      if (k > Kfull + r) continue;
      const F a(A[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) {
      float* c = C + r * ldc + v * W;
      if constexpr (Acc) {
        (F::load_aligned(c) + acc[r][v]).store_aligned(c);
      } else {
        acc[r][v].store_aligned(c);
      }
    }
  }
}

template <class Arch, int MR, bool Acc>
SEQMIX_ALWAYS_INLINE void gemm_rows(index_t N, index_t Kd, index_t Kfull, const float* A, index_t lda, const float* B,
                                    index_t ldb, float* C, index_t ldc) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  index_t j = 0;
  for (; j + 2 * W <= N; j += 2 * W) gemm_micro<Arch, MR, 2, Acc>(Kd, Kfull, A, lda, B + j, ldb, C + j, ldc);
  for (; j < N; j += W) gemm_micro<Arch, MR, 1, Acc>(Kd, Kfull, A, lda, B + j, ldb, C + j, ldc);
}

/// C[M x N] (= or +=) A[M x Kd] B[Kd x N], all row-major float with 64-byte aligned rows (leading
/// dimensions multiples of the SIMD width); N must be a multiple of the SIMD width (pad with zeros).
template <class Arch, bool Acc, tri Tri = tri::none>
void gemm(index_t M, index_t N, index_t Kd, const float* A, index_t lda, const float* B, index_t ldb, float* C,
          index_t ldc) noexcept {
  constexpr index_t W = static_cast<index_t>(xsimd::batch<float, Arch>::size);
  constexpr int MR = 6;
  for (index_t i = 0; i < M; i += MR) {
    const int mr = static_cast<int>(std::min<index_t>(MR, M - i));
    index_t kd = Kd, kfull = Kd, n = N;
    if constexpr (Tri == tri::lower_a) {
      kd = std::min<index_t>(Kd, i + mr);
      kfull = std::min<index_t>(Kd, i);
    }
    if constexpr (Tri == tri::lower_c) n = std::min<index_t>(N, (i + mr + W - 1) / W * W);
    const float* a = A + i * lda;
    float* c = C + i * ldc;
    switch (mr) {
      case 6: gemm_rows<Arch, 6, Acc>(n, kd, kfull, a, lda, B, ldb, c, ldc); break;
      case 5: gemm_rows<Arch, 5, Acc>(n, kd, kfull, a, lda, B, ldb, c, ldc); break;
      case 4: gemm_rows<Arch, 4, Acc>(n, kd, kfull, a, lda, B, ldb, c, ldc); break;
      case 3: gemm_rows<Arch, 3, Acc>(n, kd, kfull, a, lda, B, ldb, c, ldc); break;
      case 2: gemm_rows<Arch, 2, Acc>(n, kd, kfull, a, lda, B, ldb, c, ldc); break;
      default: gemm_rows<Arch, 1, Acc>(n, kd, kfull, a, lda, B, ldb, c, ldc); break;
    }
  }
}

}  // namespace seqmix::linear_detail
SEQMIX_DIAG_POP
