// SPDX-License-Identifier: Apache-2.0
// tests/runtime/test_parallel_for.cpp: every index visited exactly once, under 1, 2 and 7 threads;
// worker ids in range; grids; a user-supplied executor; workspaces.
#include <algorithm>
#include <atomic>
#include <limits>
#include <set>
#include <tuple>
#include <vector>

#include <seqmix/runtime/runtime.hpp>

#include "support/support.hpp"

using namespace seqmix;

namespace {
// A user's executor: runs tasks in reverse order on the calling thread.
struct reverse_executor {
  int concurrency() const { return 1; }
  void run(index_t n, task_fn fn, void* ctx) const {
    for (index_t i = n; i-- > 0;) fn(ctx, i, 0);
  }
};
static_assert(executor<reverse_executor>);
}  // namespace

TEST_CASE("parallel_for: each index exactly once, worker ids in range", "[runtime]") {
  for (int threads : {1, 2, 7}) {
    for (index_t n : {0, 1, 5, 64, 1001}) {
      for (index_t grain : {1, 3, 64}) {
        const par_t ex{threads};
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::atomic<int> bad_worker{0};
        parallel_for(
            ex, n,
            [&](index_t i, int w) {
              hits[static_cast<std::size_t>(i)].fetch_add(1);
              if (w < 0 || w >= threads) bad_worker.fetch_add(1);
            },
            grain);
        INFO("threads " << threads << " n " << n << " grain " << grain);
        for (auto& h : hits) REQUIRE(h.load() == 1);
        REQUIRE(bad_worker.load() == 0);
      }
    }
  }
}

TEST_CASE("parallel_for: 3-D grid covers batch x head x chunk exactly once", "[runtime]") {
  for (int threads : {1, 2, 7}) {
    const index_t B = 3, H = 5, C = 7;
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(B * H * C));
    parallel_for(par_t{threads}, grid{B, H, C}, [&](index_t b, index_t h, index_t c) {
      hits[static_cast<std::size_t>((b * H + h) * C + c)].fetch_add(1);
    });
    for (auto& x : hits) REQUIRE(x.load() == 1);
    std::vector<int> hits2(static_cast<std::size_t>(4 * 9), 0);
    parallel_for(seq, grid{4, 9}, [&](index_t i, index_t j, int w) {
      REQUIRE(w == 0);
      ++hits2[static_cast<std::size_t>(i * 9 + j)];
    });
    for (int x : hits2) REQUIRE(x == 1);
  }
}

TEST_CASE("parallel_for: user executors plug in; set_num_threads drives par", "[runtime]") {
  std::vector<index_t> order;
  parallel_for(reverse_executor{}, 4, [&](index_t i) { order.push_back(i); });
  REQUIRE(order == std::vector<index_t>{3, 2, 1, 0});
  set_num_threads(3);
  REQUIRE(num_threads() == 3);
  REQUIRE(par.concurrency() == 3);
  set_num_threads(0);
  REQUIRE(num_threads() >= 1);
}

TEST_CASE("workspace: per-worker blocks, aligned, grow without moving when large enough", "[runtime]") {
  workspace ws;
  ws.reserve(3, 1000);
  REQUIRE(ws.workers() == 3);
  REQUIRE(ws.bytes_per_worker() >= 1000);
  std::set<std::byte*> distinct;
  for (int w = 0; w < 3; ++w) {
    REQUIRE(reinterpret_cast<std::uintptr_t>(ws.get(w)) % workspace::alignment == 0);
    distinct.insert(ws.get(w));
  }
  REQUIRE(distinct.size() == 3);
  std::byte* before = ws.get(0);
  ws.reserve(2, 500);  // already big enough: nothing moves
  REQUIRE(ws.get(0) == before);
  arena a(ws.get(1), ws.bytes_per_worker());
  float* x = a.alloc<float>(10);
  double* y = a.alloc<double>(3);
  REQUIRE(reinterpret_cast<std::uintptr_t>(x) % 64 == 0);
  REQUIRE(reinterpret_cast<std::uintptr_t>(y) % 64 == 0);
  REQUIRE(reinterpret_cast<std::byte*>(y) - reinterpret_cast<std::byte*>(x) == 64);
  // Parallel use: each worker writes only its own block.
  ws.reserve(4, sizeof(int) * 16);
  parallel_for(par_t{4}, 64, [&](index_t i, int w) {
    int* blk = reinterpret_cast<int*>(ws.get(w));
    blk[i % 16] = static_cast<int>(i);
  });
  REQUIRE(ws.workers() == 4);
}

TEST_CASE("parallel_for: tasks flush subnormals to zero and restore the caller's mode", "[runtime][denormals]") {
#if SEQMIX_HAS_MXCSR && !defined(SEQMIX_KEEP_DENORMALS)
  volatile float tiny = std::numeric_limits<float>::min();
  volatile float half = 0.5f;
  const unsigned before = _mm_getcsr();
  REQUIRE(tiny * half > 0.0f);  // subnormal outside
  for (int threads : {1, 2}) {
    std::vector<float> inside(4, -1.0f);
    parallel_for(par_t{threads}, 4, [&](index_t i) { inside[static_cast<std::size_t>(i)] = tiny * half; });
    for (float x : inside) REQUIRE(x == 0.0f);
    std::vector<float> grid_inside(6, -1.0f);
    parallel_for(par_t{threads}, grid{2, 3}, [&](index_t i, index_t j) {
      grid_inside[static_cast<std::size_t>(i * 3 + j)] = tiny * half;
    });
    for (float x : grid_inside) REQUIRE(x == 0.0f);
  }
  REQUIRE((_mm_getcsr() & ~0x3fu) == (before & ~0x3fu));  // control bits restored (status flags are sticky)
  REQUIRE(tiny * half > 0.0f);
#else
  // No MXCSR (or SEQMIX_KEEP_DENORMALS): subnormals must come through tasks unchanged.
  volatile float tiny = std::numeric_limits<float>::min();
  volatile float half = 0.5f;
  std::vector<float> inside(4, -1.0f);
  parallel_for(par_t{2}, 4, [&](index_t i) { inside[static_cast<std::size_t>(i)] = tiny * half; });
  for (float x : inside) REQUIRE(x == tiny * half);
#endif
}

TEST_CASE("items_per_task: one task per worker when rows split evenly, else two", "[runtime]") {
  CHECK(items_per_task(1, 16, 1) == 16);  // one worker: all items in one task
  CHECK(items_per_task(1, 16, 2) == 8);   // one task per worker
  CHECK(items_per_task(1, 32, 2) == 16);
  CHECK(items_per_task(2, 16, 2) == 16);        // one row per worker
  CHECK(items_per_task(3, 16, 2) == 8);         // 3 tasks would not divide: 6
  CHECK(items_per_task(1, 16, 2, true) == 4);   // uneven rows: two tasks per worker
  CHECK(items_per_task(1, 32, 16) == 2);
  CHECK(items_per_task(1, 3, 2) == 2);
  CHECK(items_per_task(1, 1, 2) == 1);
  CHECK(items_per_task(1, 0, 2) == 1);  // no items: callers make 0 groups
}

TEST_CASE("parallel_for_groups: every row x item exactly once, items of a task contiguous", "[runtime]") {
  for (const auto& shape : {std::tuple{1, 7, 2}, std::tuple{3, 5, 2}, std::tuple{8, 32, 2}, std::tuple{2, 1, 3},
                            std::tuple{4, 0, 2}, std::tuple{0, 4, 2}}) {
    const index_t rows = std::get<0>(shape), items = std::get<1>(shape);  // plain locals: clang 14 cannot
    const int threads = std::get<2>(shape);                                 // capture structured bindings
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(std::max<index_t>(rows * items, 1)));
    std::vector<std::atomic<int>> last(static_cast<std::size_t>(std::max(threads, 1)));
    for (auto& x : last) x = -1;
    std::atomic<bool> contiguous{true}, ids_ok{true};
    parallel_for_groups(par_t{threads}, rows, items, [&](index_t r, index_t i, int w) {
      if (w < 0 || w >= threads) {
        ids_ok = false;
        return;
      }
      hits[static_cast<std::size_t>(r * items + i)]++;
      const int prev = last[static_cast<std::size_t>(w)].exchange(static_cast<int>(r * items + i));
      // within a task the items of one row follow each other (a new task may start anywhere)
      if (prev >= 0 && prev / std::max<index_t>(items, 1) == r && i > 0 && prev != r * items + i - 1 &&
          (i % items_per_task(rows, items, threads)) != 0)
        contiguous = false;
    });
    for (index_t k = 0; k < rows * items; ++k) CHECK(hits[static_cast<std::size_t>(k)] == 1);
    CHECK(ids_ok);
    CHECK(contiguous);
  }
}

TEST_CASE("parallel_for: named (lvalue) functors, 1-D and grid", "[runtime]") {
  std::vector<std::atomic<int>> hits(12);
  auto one = [&](index_t i) { hits[static_cast<std::size_t>(i)]++; };
  parallel_for(par_t{2}, 12, one);
  auto two = [&](index_t a, index_t b, int) { hits[static_cast<std::size_t>(a * 4 + b)]++; };
  parallel_for(par_t{2}, grid{3, 4}, two);
  for (auto& h : hits) CHECK(h == 2);
}
