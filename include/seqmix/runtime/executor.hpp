// SPDX-License-Identifier: Apache-2.0
// seqmix/runtime/executor.hpp: execution policies `seq` and `par`, the user-set thread count, and the
// `executor` concept through which users plug in their own thread pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <type_traits>
#include <thread>
#include <vector>

#include "../config.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace seqmix {

/// A task body as executors see it: fn(ctx, task, worker) with 0 <= worker < concurrency().
using task_fn = void (*)(void* ctx, index_t task, int worker);

/// An executor runs `n` tasks, each exactly once, and returns when all are done. `worker` ids passed to
/// the task are in [0, concurrency()) and no two tasks run at once under the same id (so per-worker
/// workspaces are safe). Users plug in their own pool by providing these two members.
template <class E>
concept executor = requires(const E& e, index_t n, task_fn fn, void* ctx) {
  { e.concurrency() } -> std::convertible_to<int>;
  { e.run(n, fn, ctx) };
};

namespace detail {
inline std::atomic<int>& global_threads() noexcept {
  static std::atomic<int> n{0};  // 0: all hardware threads (or OMP_NUM_THREADS under OpenMP)
  return n;
}
inline int hardware_threads() noexcept {
#if defined(_OPENMP)
  return std::max(1, omp_get_max_threads());
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}
}  // namespace detail

/// Sets the thread count that `par{}` uses (0 restores the default: all hardware threads).
inline void set_num_threads(int n) noexcept { detail::global_threads().store(n < 0 ? 0 : n); }
/// The thread count that `par{}` uses.
inline int num_threads() noexcept {
  const int n = detail::global_threads().load();
  return n > 0 ? n : detail::hardware_threads();
}

/// Sequential execution on the calling thread.
struct seq_t {
  constexpr int concurrency() const noexcept { return 1; }
  void run(index_t n, task_fn fn, void* ctx) const noexcept {
    for (index_t i = 0; i < n; ++i) fn(ctx, i, 0);
  }
};
inline constexpr seq_t seq{};

/// Parallel execution: OpenMP when the compiler enables it, else std::thread. Tasks are handed out
/// dynamically from an atomic counter, so uneven tasks (causal tiles) balance.
struct par_t {
  int threads = 0;  ///< 0: num_threads()

  int concurrency() const noexcept { return threads > 0 ? threads : num_threads(); }

  void run(index_t n, task_fn fn, void* ctx) const {
    const int nt = static_cast<int>(std::min<index_t>(concurrency(), n));
    if (nt <= 1) {
      for (index_t i = 0; i < n; ++i) fn(ctx, i, 0);
      return;
    }
    std::atomic<index_t> next{0};
    auto worker = [&](int w) {
      for (index_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
           i = next.fetch_add(1, std::memory_order_relaxed)) {
        fn(ctx, i, w);
      }
    };
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt)
    worker(omp_get_thread_num());
#else
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(nt - 1));
    for (int w = 1; w < nt; ++w) pool.emplace_back(worker, w);
    worker(0);
    for (auto& t : pool) t.join();
#endif
  }
};
/// par: all threads set by set_num_threads (default: hardware threads); par_t{4}: exactly 4.
inline constexpr par_t par{};

static_assert(executor<seq_t> && executor<par_t>);

}  // namespace seqmix
