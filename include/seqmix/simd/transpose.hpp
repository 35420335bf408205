// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/transpose.hpp: the 8 x 8 float transpose in AVX registers, the one used by the GEMM's B packing,
// the attention K panels and the selective scan's channel <-> token tiles.
#pragma once

#include "arch.hpp"

namespace seqmix::vec {

#if defined(__AVX__)
/// In-register 8 x 8 transpose: rows r[0..7] become columns (r[i][j] <- r[j][i]). 24 shuffles.
SEQMIX_ALWAYS_INLINE void transpose8(__m256 (&r)[8]) noexcept {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

/// 8 x 8 transpose in memory: dst[c * ldd + r] = src[r * lds + c] for r, c < 8 (the register form on AVX).
SEQMIX_ALWAYS_INLINE void transpose8(const float* SEQMIX_RESTRICT src, index_t lds, float* SEQMIX_RESTRICT dst,
                                     index_t ldd) noexcept {
#if defined(__AVX__)
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  transpose8(r);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ldd, r[i]);
#else
  for (index_t i = 0; i < 8; ++i)
    for (index_t j = 0; j < 8; ++j) dst[j * ldd + i] = src[i * lds + j];
#endif
}

}  // namespace seqmix::vec
