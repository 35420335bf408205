// SPDX-License-Identifier: Apache-2.0
// bench/support/bench_common.hpp: shared helpers for the Google Benchmark programs: counters (GFLOP/s,
// GB/s, tokens/s), random buffers, thread settings.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include <seqmix/runtime/executor.hpp>

namespace seqmix::bench {

/// Rate counters per iteration: flops, bytes and tokens processed by one iteration.
inline void set_counters(benchmark::State& st, double flops, double bytes, double tokens = 0) {
  using C = benchmark::Counter;
  if (flops > 0) st.counters["GFLOP/s"] = C(flops / 1e9, C::kIsIterationInvariantRate);
  if (bytes > 0) st.counters["GB/s"] = C(bytes / 1e9, C::kIsIterationInvariantRate);
  if (tokens > 0) st.counters["tokens/s"] = C(tokens, C::kIsIterationInvariantRate);
}

/// Random values in [lo, hi), seeded: never zeros, never all-equal.
inline std::vector<float> random_vector(std::size_t n, float lo = -1.0f, float hi = 1.0f, std::uint64_t seed = 42) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

/// Thread count for a benchmark argument: 0 means all hardware threads.
inline int threads_arg(std::int64_t t) { return t > 0 ? static_cast<int>(t) : seqmix::num_threads(); }

}  // namespace seqmix::bench
