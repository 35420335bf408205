// SPDX-License-Identifier: Apache-2.0
// bench/core/bench_simd_gemm.cpp: vec::gemm on the small tiles of chunked kernels (64x64x64, 64x128x64,
// 128x128x128; B plain or transposed as in Q K^T), one core, against Eigen 3.4's product on the same maps.
// GFLOP/s = 2 M N K per call; the machine's fp32 peak is 99 GFLOP/s per core (PERF.md). Run:
//   bench_simd_gemm --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include <seqmix/simd/gemm.hpp>

#include "support/bench_common.hpp"

namespace {

using seqmix::index_t;
namespace vec = seqmix::vec;

struct problem {
  index_t m, n, k;
  bool trans_b;
  std::vector<float> a, b, c;
  explicit problem(const benchmark::State& st)
      : m(st.range(0)),
        n(st.range(1)),
        k(st.range(2)),
        trans_b(st.range(3) != 0),
        a(seqmix::bench::random_vector(static_cast<std::size_t>(m * k), -1.0f, 1.0f, 1)),
        b(seqmix::bench::random_vector(static_cast<std::size_t>(k * n), -1.0f, 1.0f, 2)),
        c(seqmix::bench::random_vector(static_cast<std::size_t>(m * n), -1.0f, 1.0f, 3)) {}
  std::string shape() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + (trans_b ? " B^T" : " B");
  }
};

void BM_simd_gemm_vec(benchmark::State& st) {
  problem p(st);
  for (auto _ : st) {
    vec::gemm_rm(false, p.trans_b, p.m, p.n, p.k, 1.0f, p.a.data(), p.k, p.b.data(), p.trans_b ? p.k : p.n, 1.0f,
                 p.c.data(), p.n);
    benchmark::DoNotOptimize(p.c.data());
    benchmark::ClobberMemory();
  }
  seqmix::bench::describe(st, "simd", 0, 1, p.shape());
  seqmix::bench::set_counters(st, 2.0 * static_cast<double>(p.m * p.n * p.k), 0);
}

void BM_simd_gemm_eigen(benchmark::State& st) {
  Eigen::setNbThreads(1);
  problem p(st);
  using rm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const rm> a(p.a.data(), p.m, p.k);
  Eigen::Map<rm> c(p.c.data(), p.m, p.n);
  for (auto _ : st) {
    if (p.trans_b)
      c.noalias() += a * Eigen::Map<const rm>(p.b.data(), p.n, p.k).transpose();
    else
      c.noalias() += a * Eigen::Map<const rm>(p.b.data(), p.k, p.n);
    benchmark::DoNotOptimize(p.c.data());
    benchmark::ClobberMemory();
  }
  seqmix::bench::describe(st, "baseline", 0, 1, p.shape());
  seqmix::bench::set_counters(st, 2.0 * static_cast<double>(p.m * p.n * p.k), 0);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "transB"});
  for (int tb : {0, 1}) {
    b->Args({64, 64, 64, tb});
    b->Args({64, 128, 64, tb});
    b->Args({128, 128, 128, tb});
  }
  b->Args({64, 64, 128, 1});  // attention tile: 64 queries x 64 keys, head dim 128
  b->Args({61, 53, 47, 0});   // tails everywhere
}

}  // namespace

BENCHMARK(BM_simd_gemm_vec)->Apply(shapes);
BENCHMARK(BM_simd_gemm_eigen)->Apply(shapes);

BENCHMARK_MAIN();
