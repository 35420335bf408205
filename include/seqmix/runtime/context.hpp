// SPDX-License-Identifier: Apache-2.0
// seqmix/runtime/context.hpp: how an op runs: any_executor (seq, par, or the user's pool) and the
// workspace it draws scratch memory from. Every op's options struct holds one `run_context run`.
#pragma once

#include "../config.hpp"
#include "executor.hpp"
#include "workspace.hpp"

namespace seqmix {

namespace detail {
/// A user's executor: neither seq, par nor any_executor itself (those are held by value).
template <class E, class Handle>
concept user_executor = executor<E> && !std::is_same_v<E, seq_t> && !std::is_same_v<E, par_t> &&
                        !std::is_same_v<E, Handle>;
template <class>
inline constexpr bool dependent_false = false;
}  // namespace detail

/// A non-template handle to an executor, so op signatures stay concrete. seq and par (with their thread
/// count) are held by value; any other executor is referenced and must outlive the op call, so a temporary
/// one (`run.executor = my_pool{4};`, which would dangle) does not compile.
class any_executor {
 public:
  any_executor() noexcept : kind_(kind::par), threads_(0) {}
  any_executor(seq_t) noexcept : kind_(kind::seq), threads_(1) {}
  any_executor(par_t p) noexcept : kind_(kind::par), threads_(p.threads) {}
  template <class E>
    requires detail::user_executor<E, any_executor>
  any_executor(const E& e) noexcept
      : kind_(kind::user),
        user_(&e),
        conc_([](const void* x) { return static_cast<int>(static_cast<const E*>(x)->concurrency()); }),
        run_([](const void* x, index_t n, task_fn fn, void* ctx) { static_cast<const E*>(x)->run(n, fn, ctx); }) {}
  template <class E>
    requires(!std::is_reference_v<E> && detail::user_executor<std::remove_cv_t<E>, any_executor>)
  any_executor(E&&) noexcept {
    static_assert(detail::dependent_false<E>,
                  "seqmix::any_executor keeps a pointer to a user executor, and this one is a temporary that dies "
                  "before the op runs: create the executor as a named object that outlives the op call and pass "
                  "that (my_pool pool{4}; run.executor = pool;)");
  }

  int concurrency() const noexcept {
    switch (kind_) {
      case kind::seq: return 1;
      case kind::par: return par_t{threads_}.concurrency();
      default: return conc_(user_);
    }
  }
  void run(index_t n, task_fn fn, void* ctx) const {
    switch (kind_) {
      case kind::seq: seq.run(n, fn, ctx); break;
      case kind::par: par_t{threads_}.run(n, fn, ctx); break;
      default: run_(user_, n, fn, ctx); break;
    }
  }

 private:
  enum class kind { seq, par, user };
  kind kind_;
  int threads_ = 0;
  const void* user_ = nullptr;
  int (*conc_)(const void*) = nullptr;
  void (*run_)(const void*, index_t, task_fn, void*) = nullptr;
};
static_assert(executor<any_executor>);

/// Executor and workspace of one op call. Default: par (all threads set by set_num_threads) and the
/// calling thread's default workspace.
struct run_context {
  any_executor executor{};
  workspace* ws = nullptr;

  workspace& scratch() const { return ws ? *ws : default_workspace(); }
  int workers() const noexcept { return executor.concurrency(); }
};

/// Op calls doing fewer multiply-adds than this run on the calling thread: waking a pool worker costs
/// ~10-20 us, more than it saves on a smaller call (measured on decode steps, docs/00-architecture.md).
inline constexpr double parallel_min_madds = 5.0e5;

/// The executor for an op call of about `madds` multiply-adds: run.executor, or seq for a small call.
inline any_executor executor_for(const run_context& run, double madds) noexcept {
  return madds < parallel_min_madds ? any_executor(seq) : run.executor;
}

}  // namespace seqmix
