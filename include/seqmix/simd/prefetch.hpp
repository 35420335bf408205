// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/prefetch.hpp: software prefetch of one cache line or of every line of a byte range. With
// GCC / Clang on x86 the instructions are emitted through `asm volatile`: g++ 12 deletes loops whose only
// statements are __builtin_prefetch / _mm_prefetch calls (they have no side effects), which had silently
// removed the prefetches of several kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../config.hpp"

namespace seqmix::vec {

/// Where a prefetch brings the line: L1 (prefetcht0), L2 (prefetcht1), L3 (prefetcht2), or L1 with intent
/// to write (prefetchw: the line arrives owned, so the later store skips the ownership request).
enum class prefetch_hint { l1, l2, l3, write };

/// Prefetches the cache line holding p.
template <prefetch_hint H = prefetch_hint::l2>
SEQMIX_ALWAYS_INLINE void prefetch(const void* p) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  const char* c = static_cast<const char*>(p);
  if constexpr (H == prefetch_hint::l1) asm volatile("prefetcht0 %0" : : "m"(*c));
  else if constexpr (H == prefetch_hint::l2) asm volatile("prefetcht1 %0" : : "m"(*c));
  else if constexpr (H == prefetch_hint::l3) asm volatile("prefetcht2 %0" : : "m"(*c));
  else asm volatile("prefetchw %0" : : "m"(*c));
#elif defined(__GNUC__) || defined(__clang__)
  if constexpr (H == prefetch_hint::l1) __builtin_prefetch(p, 0, 3);
  else if constexpr (H == prefetch_hint::l2) __builtin_prefetch(p, 0, 2);
  else if constexpr (H == prefetch_hint::l3) __builtin_prefetch(p, 0, 1);
  else __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

/// Prefetches every line that [p, p + bytes) touches, the first and last included when p is not on a line
/// boundary (a 256-byte row 16 bytes past a line spans 5 lines).
template <prefetch_hint H = prefetch_hint::l2>
SEQMIX_ALWAYS_INLINE void prefetch_bytes(const void* p, std::size_t bytes) noexcept {
  if (bytes == 0) return;
  const auto first = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{63};
  const auto last = reinterpret_cast<std::uintptr_t>(p) + bytes - 1;
  for (std::uintptr_t a = first; a <= last; a += 64) prefetch<H>(reinterpret_cast<const void*>(a));
}

}  // namespace seqmix::vec
