// SPDX-License-Identifier: Apache-2.0
// bench/support/bench_common.hpp: shared helpers for the Google Benchmark programs: counters (GFLOP/s,
// GB/s, tokens/s), random buffers, thread settings (run_ctx), and the T x threads sweep the report reads.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <seqmix/runtime/context.hpp>
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

/// The run_context of a benchmark's thread argument: seq for one thread, else par_t{threads_arg(t)}; scratch
/// from `ws` (the calling thread's default workspace when null).
inline seqmix::run_context run_ctx(std::int64_t threads, seqmix::workspace* ws = nullptr) {
  seqmix::run_context r;
  if (threads == 1) {
    r.executor = seqmix::seq;
  } else {
    r.executor = seqmix::par_t{threads_arg(threads)};
  }
  r.ws = ws;
  return r;
}

// ---------------------------------------------------------------------------------------------------
// The report convention (tools/bench/report.py groups results by these; please follow it):
//   * name      BM_<family>_<variant>, args named "T" and "threads" (use sweep() / t_threads() below);
//   * label     describe(st, form, T, threads, shape): form is one of "prefill" (one pass over T
//               tokens, e.g. attention), "chunk" (chunked-parallel form), "recurrent" (token-by-token
//               scan over T), "decode" (one new token against a context/cache of length T), or
//               "baseline" (reference / naive comparison); shape is a short model-shape string
//               ("Hq=8 Hkv=2 D=128", "H=16 K=V=64", "d_inner=2048 N=16");
//   * counters  set_counters(st, flops, bytes, tokens) with tokens = tokens produced per iteration
//               (B*T for prefill/chunk/recurrent, B for decode), so the report can plot time per token;
//               describe() adds the counters "T" and "n_threads" ("threads" is Google Benchmark's own).
// T sweeps stop at max_t(): 8192 by default (the quick profile), 65536 under the full profile
// (tools/run-benchmarks --full sets SEQMIX_BENCH_MAX_T=65536).
// ---------------------------------------------------------------------------------------------------

/// Largest T a sweep registers: $SEQMIX_BENCH_MAX_T, default 8192.
inline std::int64_t max_t() {
  if (const char* s = std::getenv("SEQMIX_BENCH_MAX_T")) {
    const long long v = std::atoll(s);
    if (v > 0) return v;
  }
  return 8192;
}

/// Powers of two from lo to min(hi, max_t()): 256, 512, ..., 8192 by default.
inline std::vector<std::int64_t> t_sweep(std::int64_t lo = 256, std::int64_t hi = 65536) {
  std::vector<std::int64_t> ts;
  const std::int64_t top = std::min(hi, max_t());
  for (std::int64_t t = lo; t <= top; t *= 2) ts.push_back(t);
  if (ts.empty()) ts.push_back(lo);
  return ts;
}

/// Thread counts to sweep: $SEQMIX_BENCH_THREADS ("1,2,4,8,16") when set, else 1 and all hardware
/// threads (just 1 on a one-core machine).
inline std::vector<std::int64_t> thread_sweep() {
  if (const char* s = std::getenv("SEQMIX_BENCH_THREADS")) {
    std::vector<std::int64_t> ts;
    for (const char* p = s; *p;) {
      char* end = nullptr;
      const long long v = std::strtoll(p, &end, 10);
      if (end == p) break;
      if (v > 0) ts.push_back(v);
      p = (*end == ',') ? end + 1 : end;
    }
    if (!ts.empty()) return ts;
  }
  const std::int64_t all = seqmix::detail::hardware_threads();
  if (all <= 1) return {1};
  return {1, all};
}

/// Registers T in [lo, min(hi, max_t())] x threads (args named "T", "threads"), real time, milliseconds.
inline void sweep_range(benchmark::internal::Benchmark* b, std::int64_t lo, std::int64_t hi) {
  b->ArgNames({"T", "threads"})->ArgsProduct({t_sweep(lo, hi), thread_sweep()});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

/// The standard T x threads product, T = 256 .. max_t():
///   BENCHMARK(BM_gla_chunk)->Apply(seqmix::bench::sweep);
///   BENCHMARK(BM_gla_recurrent)->Apply([](benchmark::internal::Benchmark* b) {
///     seqmix::bench::sweep_range(b, 256, 4096); });
inline void sweep(benchmark::internal::Benchmark* b) { sweep_range(b, 256, 65536); }

/// Registers threads only (for fixed-shape benchmarks such as a decode step): arg named "threads".
inline void threads_only(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->ArgsProduct({thread_sweep()});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

/// Labels a run for the report: form (prefill/chunk/recurrent/decode/baseline), T, threads, model shape.
/// Call once per benchmark, before or after the timing loop.
inline void describe(benchmark::State& st, std::string_view form, std::int64_t t, int threads,
                     std::string_view shape) {
  std::string label = "form=";
  label += form;
  label += ";shape=";
  label += shape;
  st.SetLabel(label);
  st.counters["T"] = benchmark::Counter(static_cast<double>(t));
  st.counters["n_threads"] = benchmark::Counter(static_cast<double>(threads));
}

}  // namespace seqmix::bench
