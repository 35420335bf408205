// SPDX-License-Identifier: Apache-2.0
// seqmix/config.hpp: SEQMIX_ macros (assertions, throwing, inlining) and index_t.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define SEQMIX_HAS_EXCEPTIONS 1
#else
#define SEQMIX_HAS_EXCEPTIONS 0
#endif

/// Throws `ex`; under -fno-exceptions prints ex.what() and aborts (as nlohmann/json's JSON_THROW).
#if SEQMIX_HAS_EXCEPTIONS
#define SEQMIX_THROW(ex) throw ex
#else
#define SEQMIX_THROW(ex)                              \
  do {                                                \
    std::fprintf(stderr, "%s\n", (ex).what());        \
    std::abort();                                     \
  } while (0)
#endif

/// Debug-only invariant check inside kernels (like eigen_assert); compiled out under NDEBUG.
#ifndef SEQMIX_ASSERT
#ifdef NDEBUG
#define SEQMIX_ASSERT(cond) ((void)0)
#else
#define SEQMIX_ASSERT(cond)                                                                   \
  ((cond) ? (void)0                                                                           \
          : (std::fprintf(stderr, "%s:%d: SEQMIX_ASSERT(%s) failed\n", __FILE__, __LINE__, #cond), \
             std::abort()))
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SEQMIX_ALWAYS_INLINE inline __attribute__((always_inline))
#define SEQMIX_RESTRICT __restrict__
#else
#define SEQMIX_ALWAYS_INLINE inline
#define SEQMIX_RESTRICT
#endif

/// g++ 12.2 and older warn -W(maybe-)uninitialized on AVX-512 intrinsics built on _mm512_undefined_*
/// (`__m512i __Y = __Y;`) once they are inlined into a caller (GCC PR 105593). seqmix headers that emit
/// xsimd code are wrapped in SEQMIX_DIAG_PUSH / SEQMIX_DIAG_POP, which silence those two warnings there
/// (a pragma on any frame of the inline stack applies); nothing changes for other compilers or ISAs.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13 && defined(__AVX512F__)
#define SEQMIX_DIAG_PUSH                                    \
  _Pragma("GCC diagnostic push")                            \
  _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
  _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define SEQMIX_DIAG_POP _Pragma("GCC diagnostic pop")
#else
#define SEQMIX_DIAG_PUSH
#define SEQMIX_DIAG_POP
#endif

namespace seqmix {
/// Signed index type for extents, strides and indices (like Eigen::Index), so `t - 1` never wraps.
using index_t = std::ptrdiff_t;
}  // namespace seqmix
