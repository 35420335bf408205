// SPDX-License-Identifier: Apache-2.0
// bench/core/bench_calibration.cpp: this machine's ceilings, the roofline the report divides every result
// by: fp32 FMA peak (8 independent chains of 8-wide FMA) and STREAM-triad bandwidth on arrays far beyond L3,
// each at 1 thread and all threads.
//
// The report (tools/bench/report.py) reads BM_calibration_fma_peak's "GFLOP/s" and BM_calibration_triad's
// "GB/s" at each thread count. Reference figures for the Zen 3 dev box are in PERF.md: 99 / 200 GFLOP/s and
// 20.7 / 28.4 GB/s at 1 / 2 threads.
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include <xsimd/xsimd.hpp>

#include <seqmix/runtime/parallel_for.hpp>

#include "support/bench_common.hpp"

namespace {

using batch = xsimd::batch<float>;
constexpr int chains = 8;                  // Zen 3: 2 FMA pipes x 4-cycle latency = 8 in flight
constexpr seqmix::index_t fma_iters = 1 << 18;  // per task: 8 * 2^18 FMAs per lane
constexpr seqmix::index_t fma_tasks_per_thread = 8;

/// One task: 8 independent FMA chains, 2^18 steps each; the sum escapes so nothing is folded away.
float fma_chains(float seed) noexcept {
  batch acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = batch(seed + 0.001f * static_cast<float>(c));
  const batch m(0.999999f), a(1e-7f);
  for (seqmix::index_t i = 0; i < fma_iters; ++i) {
    for (int c = 0; c < chains; ++c) acc[c] = xsimd::fma(acc[c], m, a);  // unrolled by the compiler
  }
  batch s = acc[0];
  for (int c = 1; c < chains; ++c) s += acc[c];
  return xsimd::hadd(s);
}

void BM_calibration_fma_peak(benchmark::State& st) {
  const int threads = seqmix::bench::threads_arg(st.range(0));
  const seqmix::par_t ex{threads};
  const seqmix::index_t tasks = fma_tasks_per_thread * threads;
  std::vector<float> sink(static_cast<std::size_t>(tasks));
  for (auto _ : st) {
    seqmix::parallel_for(ex, tasks, [&](seqmix::index_t i) { sink[static_cast<std::size_t>(i)] = fma_chains(1.0f + static_cast<float>(i)); });
    benchmark::DoNotOptimize(sink.data());
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * chains * batch::size * static_cast<double>(fma_iters) * static_cast<double>(tasks);
  seqmix::bench::describe(st, "calibration", 0, threads, "fp32 FMA, 8 chains x 8 lanes");
  seqmix::bench::set_counters(st, flops, 0);
}

struct aligned_free {
  void operator()(float* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
};
using buffer = std::unique_ptr<float, aligned_free>;
buffer make_buffer(std::size_t n) { return buffer(static_cast<float*>(::operator new(n * sizeof(float), std::align_val_t{64}))); }

/// STREAM triad a = b + s * c over 3 x 64 MiB (>> 32 MiB L3), split in 256 blocks across threads.
void BM_calibration_triad(benchmark::State& st) {
  const int threads = seqmix::bench::threads_arg(st.range(0));
  const seqmix::par_t ex{threads};
  constexpr std::size_t n = std::size_t{16} << 20;  // floats per array: 64 MiB
  constexpr seqmix::index_t blocks = 256;
  constexpr std::size_t per = n / blocks;
  auto a = make_buffer(n), b = make_buffer(n), c = make_buffer(n);
  float* SEQMIX_RESTRICT pa = a.get();
  const float* SEQMIX_RESTRICT pb = b.get();
  const float* SEQMIX_RESTRICT pc = c.get();
  seqmix::parallel_for(ex, blocks, [&](seqmix::index_t k) {  // first touch, random values (never zeros)
    const std::size_t lo = static_cast<std::size_t>(k) * per;
    for (std::size_t i = lo; i < lo + per; ++i) {
      a.get()[i] = 0.5f;
      b.get()[i] = 1.0f + static_cast<float>(i % 97) * 0.01f;
      c.get()[i] = 2.0f - static_cast<float>(i % 89) * 0.01f;
    }
  });
  const float s = 1.0001f;
  for (auto _ : st) {
    seqmix::parallel_for(ex, blocks, [&](seqmix::index_t k) {
      const std::size_t lo = static_cast<std::size_t>(k) * per;
      for (std::size_t i = lo; i < lo + per; ++i) pa[i] = pb[i] + s * pc[i];
    });
    benchmark::DoNotOptimize(pa);
    benchmark::ClobberMemory();
  }
  seqmix::bench::describe(st, "calibration", 0, threads, "STREAM triad, 3 x 64 MiB");
  seqmix::bench::set_counters(st, 0, 3.0 * sizeof(float) * static_cast<double>(n));
}

}  // namespace

BENCHMARK(BM_calibration_fma_peak)->Apply(seqmix::bench::threads_only);
BENCHMARK(BM_calibration_triad)->Apply(seqmix::bench::threads_only);

BENCHMARK_MAIN();
