// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/gemm.hpp: small register-blocked float32 GEMM for SSD's chunk products
// (C (+)= A B with A read through any row/column strides, B and C row-major, columns padded to 2 batches).
#pragma once

#include <algorithm>

#include <xsimd/xsimd.hpp>

#include "../../../config.hpp"

namespace seqmix::detail::ssm {

/// MR rows x 2 batches of columns: c[i][j] (+)= sum_k a[i*ars + k*acs] * b[k*ldb + j], k < K.
template <class A, int MR, bool Acc>
SEQMIX_ALWAYS_INLINE void gemm_tile(index_t K, const float* SEQMIX_RESTRICT a, index_t ars, index_t acs,
                                    const float* SEQMIX_RESTRICT b, index_t ldb, float* SEQMIX_RESTRICT c,
                                    index_t ldc) noexcept {
  using B = xsimd::batch<float, A>;
  constexpr index_t W = static_cast<index_t>(B::size);
  B c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) {
    if constexpr (Acc) {
      c0[i] = B::load_aligned(c + i * ldc);
      c1[i] = B::load_aligned(c + i * ldc + W);
    } else {
      c0[i] = B(0.0f);
      c1[i] = B(0.0f);
    }
  }
  for (index_t k = 0; k < K; ++k) {
    const B b0 = B::load_aligned(b + k * ldb);
    const B b1 = B::load_aligned(b + k * ldb + W);
    const float* ak = a + k * acs;
    for (int i = 0; i < MR; ++i) {
      const B av(ak[i * ars]);
      c0[i] = xsimd::fma(av, b0, c0[i]);
      c1[i] = xsimd::fma(av, b1, c1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    c0[i].store_aligned(c + i * ldc);
    c1[i].store_aligned(c + i * ldc + W);
  }
}

template <class A, bool Acc>
SEQMIX_ALWAYS_INLINE void gemm_rows(int mr, index_t K, const float* a, index_t ars, index_t acs, const float* b,
                                    index_t ldb, float* c, index_t ldc) noexcept {
  switch (mr) {
    case 6: gemm_tile<A, 6, Acc>(K, a, ars, acs, b, ldb, c, ldc); break;
    case 5: gemm_tile<A, 5, Acc>(K, a, ars, acs, b, ldb, c, ldc); break;
    case 4: gemm_tile<A, 4, Acc>(K, a, ars, acs, b, ldb, c, ldc); break;
    case 3: gemm_tile<A, 3, Acc>(K, a, ars, acs, b, ldb, c, ldc); break;
    case 2: gemm_tile<A, 2, Acc>(K, a, ars, acs, b, ldb, c, ldc); break;
    default: gemm_tile<A, 1, Acc>(K, a, ars, acs, b, ldb, c, ldc); break;
  }
}

/// C[M x NC] (+)= A[M x K] B[K x NC]; NC a multiple of 2 batches; b, c 64-byte aligned rows (ldb, ldc
/// multiples of the batch width). If Causal, row block [i0, i0+mr) only reads k < min(K, i0 + mr + koff)
/// (A must be zero beyond the diagonal there).
template <class A, bool Acc, bool Causal = false>
inline void gemm(index_t M, index_t NC, index_t K, const float* a, index_t ars, index_t acs, const float* b,
                 index_t ldb, float* c, index_t ldc) noexcept {
  constexpr index_t NR = 2 * static_cast<index_t>(xsimd::batch<float, A>::size);
  for (index_t j = 0; j < NC; j += NR) {
    for (index_t i = 0; i < M; i += 6) {
      const int mr = static_cast<int>(std::min<index_t>(6, M - i));
      const index_t k = Causal ? std::min<index_t>(K, i + mr) : K;
      gemm_rows<A, Acc>(mr, k, a + i * ars, ars, acs, b + j, ldb, c + i * ldc + j, ldc);
    }
  }
}

}  // namespace seqmix::detail::ssm
