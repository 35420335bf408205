// SPDX-License-Identifier: Apache-2.0
// seqmix/runtime/parallel_for.hpp: the one parallel loop of the library, over index ranges and 2-D/3-D
// grids (batch x head x chunk), on any executor.
#pragma once

#include <algorithm>
#include <array>
#include <utility>
#include <type_traits>

#include "../config.hpp"
#include "executor.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#define SEQMIX_HAS_MXCSR 1
#else
#define SEQMIX_HAS_MXCSR 0
#endif

namespace seqmix {

/// A rectangular grid of independent tasks: grid<3>{B, H, C}.
template <std::size_t R>
struct grid {
  std::array<index_t, R> n{};
  constexpr index_t size() const noexcept {
    index_t s = 1;
    for (auto x : n) s *= x;
    return s;
  }
};
template <class... I>
grid(I...) -> grid<sizeof...(I)>;

namespace detail {
/// Flushes subnormal floats to zero (FTZ + DAZ) while a task runs and restores the caller's mode after.
/// Decay products such as e^{G_i - G_j} underflow through the subnormal range, where some CPUs (Intel)
/// are many times slower: SSD with chunk 256 ran 7x slower on a Xeon without it. Results change by less
/// than FLT_MIN in absolute terms. Define SEQMIX_KEEP_DENORMALS to keep IEEE subnormals.
class denormal_guard {
 public:
#if SEQMIX_HAS_MXCSR && !defined(SEQMIX_KEEP_DENORMALS)
  denormal_guard() noexcept : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~denormal_guard() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#else
  denormal_guard() noexcept = default;
#endif
 public:
  denormal_guard(const denormal_guard&) = delete;
  denormal_guard& operator=(const denormal_guard&) = delete;
};

template <class F, std::size_t R, std::size_t... Is>
SEQMIX_ALWAYS_INLINE void call_grid(F& f, const grid<R>& g, index_t flat, int worker,
                                    std::index_sequence<Is...>) {
  std::array<index_t, R> idx{};
  for (std::size_t k = R; k-- > 0;) {
    idx[k] = flat % g.n[k];
    flat /= g.n[k];
  }
  if constexpr (std::is_invocable_v<F&, decltype(Is, index_t{})..., int>) {
    f(idx[Is]..., worker);
  } else {
    f(idx[Is]...);
  }
}
}  // namespace detail

/// Runs f(i) (or f(i, worker)) for every i in [0, n), each exactly once, `grain` indices per task.
/// Tasks run with subnormals flushed to zero (detail::denormal_guard).
template <executor Ex, class F>
void parallel_for(const Ex& ex, index_t n, F&& f, index_t grain = 1) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  struct ctx_t {
    std::remove_reference_t<F>* f;
    index_t n, grain;
  } ctx{&f, n, grain};
  const index_t tasks = (n + grain - 1) / grain;
  ex.run(
      tasks,
      [](void* c, index_t task, int worker) {
        auto& x = *static_cast<ctx_t*>(c);
        [[maybe_unused]] const detail::denormal_guard ftz;
        const index_t e = std::min(x.n, (task + 1) * x.grain);
        for (index_t i = task * x.grain; i < e; ++i) {
          if constexpr (std::is_invocable_v<F&, index_t, int>) {
            (*x.f)(i, worker);
          } else {
            (*x.f)(i);
          }
        }
      },
      &ctx);
}

/// Runs f(i0, i1, ...) (or with a trailing worker id) for every point of the grid, each exactly once,
/// with subnormals flushed to zero (detail::denormal_guard).
template <executor Ex, std::size_t R, class F>
void parallel_for(const Ex& ex, const grid<R>& g, F&& f) {
  const index_t total = g.size();
  if (total <= 0) return;
  struct ctx_t {
    std::remove_reference_t<F>* f;
    const grid<R>* g;
  } ctx{&f, &g};
  ex.run(
      total,
      [](void* c, index_t task, int worker) {
        auto& x = *static_cast<ctx_t*>(c);
        [[maybe_unused]] const detail::denormal_guard ftz;
        detail::call_grid(*x.f, *x.g, task, worker, std::make_index_sequence<R>{});
      },
      &ctx);
}

/// Items per task when `rows` independent rows of `items` items each (sequences x heads) run as tasks of
/// contiguous items, rows outer: a task's heads then share the pages and lines of each [B,T,H,D] input row
/// while they are hot (one head per task touches one page per token: 1.5x slower for GLA at H = 16, K = 64).
/// Rows that split evenly take one task per worker (fewest tasks, largest groups: 3% faster at two threads
/// than two per worker); `uneven` rows (varlen) or counts that do not divide among the workers, two tasks per
/// worker. With no items, 1 (the caller makes no groups).
inline index_t items_per_task(index_t rows, index_t items, int workers, bool uneven = false) noexcept {
  if (items <= 0) return 1;
  const index_t w = std::max(1, workers), n = std::max<index_t>(rows, 1);
  index_t groups = std::clamp<index_t>((w + n - 1) / n, 1, items);
  const index_t tasks = n * ((items + (items + groups - 1) / groups - 1) / ((items + groups - 1) / groups));
  if (uneven || tasks % w != 0) groups = std::clamp<index_t>((2 * w + n - 1) / n, 1, items);
  return (items + groups - 1) / groups;
}

/// Runs f(row, item) (or f(row, item, worker)) for every row x item, the items of a row in contiguous groups
/// of items_per_task, one task per group. For many small items (decode steps: one (batch row, head) per task
/// made 256 tasks of ~1 us at B = 8, H = 32, and the shared task counter and output lines bounced between
/// the cores).
template <executor Ex, class F>
void parallel_for_groups(const Ex& ex, index_t rows, index_t items, F&& f) {
  const index_t G = items_per_task(rows, items, ex.concurrency());
  const index_t ng = items > 0 ? (items + G - 1) / G : 0;
  parallel_for(ex, grid{rows, ng}, [&](index_t r, index_t g, int worker) {
    for (index_t i = g * G; i < std::min(items, (g + 1) * G); ++i) {
      if constexpr (std::is_invocable_v<F&, index_t, index_t, int>) {
        f(r, i, worker);
      } else {
        f(r, i);
      }
    }
  });
}

}  // namespace seqmix
