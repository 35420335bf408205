// SPDX-License-Identifier: Apache-2.0
// Must not compile: a temporary user executor put in a run_context (any_executor keeps a pointer to it,
// which would dangle before the op runs).
#include <seqmix/runtime/context.hpp>

using namespace seqmix;

struct my_pool {
  int concurrency() const { return 1; }
  void run(index_t n, task_fn fn, void* ctx) const {
    for (index_t i = 0; i < n; ++i) fn(ctx, i, 0);
  }
};

int main() {
  run_context r;
#if defined(SEQMIX_CF_CONTROL)
  const my_pool pool{};
  r.executor = pool;
#else
  r.executor = my_pool{};
#endif
  return r.workers() == 1 ? 0 : 1;
}
