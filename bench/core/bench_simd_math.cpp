// SPDX-License-Identifier: Apache-2.0
// bench/core/bench_simd_math.cpp: throughput of vec::exp, softplus, sigmoid, silu, tanh over 4096-float arrays
// (in + out = 32 KiB, L1-resident) against the std:: scalar loops they replace; one core.
// The target: vec::exp >= 4x std::exp. Run:
//   bench_simd_math --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <cmath>
#include <cstddef>
#include <vector>

#include <seqmix/simd/simd.hpp>

#include "support/bench_common.hpp"

namespace {

using A = xsimd::default_arch;
using seqmix::index_t;
namespace vec = seqmix::vec;

constexpr std::size_t n_elems = 4096;

// Functors with always-inline call operators: a lambda this large is not always inlined into the loop by g++,
// and an out-of-line call per batch (constants re-broadcast each call) would halve the measured throughput.
#define SEQMIX_BENCH_FN(name, expr)                                \
  struct name {                                                    \
    template <class B>                                             \
    SEQMIX_ALWAYS_INLINE B operator()(const B& b) const noexcept { \
      return expr;                                                 \
    }                                                              \
  };
SEQMIX_BENCH_FN(vexp, vec::exp(b))
SEQMIX_BENCH_FN(vsoftplus, vec::softplus(b))
SEQMIX_BENCH_FN(vsigmoid, vec::sigmoid(b))
SEQMIX_BENCH_FN(vsilu, vec::silu(b))
SEQMIX_BENCH_FN(vtanh, vec::tanh(b))
SEQMIX_BENCH_FN(vlog, vec::log(b))
SEQMIX_BENCH_FN(xexp, xsimd::exp(b))
#undef SEQMIX_BENCH_FN

/// out[i] = f(in[i]) with full batches and a tail (n is a multiple of the width here, as in the kernels).
template <class F>
SEQMIX_ALWAYS_INLINE void apply_vec(const float* in, float* out, index_t n, F f) {
  index_t i = 0;
  for (; i + vec::width<A> <= n; i += vec::width<A>) vec::store(out + i, f(vec::load<A>(in + i)));
  if (i < n) vec::store_tail(out + i, f(vec::load_tail<A>(in + i, n - i)), n - i);
}

template <class F>
void run_vec(benchmark::State& st, float lo, float hi, F f, const char* what) {
  const auto in = seqmix::bench::random_vector(n_elems, lo, hi);
  std::vector<float> out(n_elems);
  for (auto _ : st) {
    apply_vec(in.data(), out.data(), static_cast<index_t>(n_elems), f);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  st.counters["Gelem/s"] =
      benchmark::Counter(static_cast<double>(n_elems) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  seqmix::bench::set_counters(st, 0, 8.0 * n_elems);
  seqmix::bench::describe(st, "simd", static_cast<std::int64_t>(n_elems), 1, what);
}

template <class F>
void run_std(benchmark::State& st, float lo, float hi, F f, const char* what) {
  const auto in = seqmix::bench::random_vector(n_elems, lo, hi);
  std::vector<float> out(n_elems);
  for (auto _ : st) {
    for (std::size_t i = 0; i < n_elems; ++i) out[i] = f(in[i]);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  st.counters["Gelem/s"] =
      benchmark::Counter(static_cast<double>(n_elems) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  seqmix::bench::set_counters(st, 0, 8.0 * n_elems);
  seqmix::bench::describe(st, "baseline", static_cast<std::int64_t>(n_elems), 1, what);
}

void BM_simd_exp_vec(benchmark::State& st) {
  run_vec(st, -10.0f, 10.0f, vexp{}, "exp 4096 f32");
}
void BM_simd_exp_std(benchmark::State& st) {
  run_std(
      st, -10.0f, 10.0f, [](float x) { return std::exp(x); }, "exp 4096 f32");
}
void BM_simd_exp_vec_scalar(benchmark::State& st) {  // the scalar overload in a plain loop (tails, gates)
  run_std(
      st, -10.0f, 10.0f, [](float x) { return vec::exp(x); }, "exp 4096 f32, scalar overload");
}
void BM_simd_softplus_vec(benchmark::State& st) {
  run_vec(st, -10.0f, 10.0f, vsoftplus{}, "softplus 4096 f32");
}
void BM_simd_softplus_std(benchmark::State& st) {
  run_std(
      st, -10.0f, 10.0f, [](float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }, "softplus 4096 f32");
}
void BM_simd_sigmoid_vec(benchmark::State& st) {
  run_vec(st, -10.0f, 10.0f, vsigmoid{}, "sigmoid 4096 f32");
}
void BM_simd_sigmoid_std(benchmark::State& st) {
  run_std(
      st, -10.0f, 10.0f, [](float x) { return 1.0f / (1.0f + std::exp(-x)); }, "sigmoid 4096 f32");
}
void BM_simd_silu_vec(benchmark::State& st) {
  run_vec(st, -10.0f, 10.0f, vsilu{}, "silu 4096 f32");
}
void BM_simd_silu_std(benchmark::State& st) {
  run_std(
      st, -10.0f, 10.0f, [](float x) { return x / (1.0f + std::exp(-x)); }, "silu 4096 f32");
}
void BM_simd_tanh_vec(benchmark::State& st) {
  run_vec(st, -5.0f, 5.0f, vtanh{}, "tanh 4096 f32");
}
void BM_simd_tanh_std(benchmark::State& st) {
  run_std(
      st, -5.0f, 5.0f, [](float x) { return std::tanh(x); }, "tanh 4096 f32");
}
void BM_simd_log_vec(benchmark::State& st) {
  run_vec(st, 1e-3f, 1e3f, vlog{}, "log 4096 f32");
}
void BM_simd_log_std(benchmark::State& st) {
  run_std(
      st, 1e-3f, 1e3f, [](float x) { return std::log(x); }, "log 4096 f32");
}
void BM_simd_exp_xsimd(benchmark::State& st) {  // xsimd's own exp, for reference
  run_vec(st, -10.0f, 10.0f, xexp{}, "exp 4096 f32, xsimd::exp");
}

}  // namespace

BENCHMARK(BM_simd_exp_vec);
BENCHMARK(BM_simd_exp_std);
BENCHMARK(BM_simd_exp_vec_scalar);
BENCHMARK(BM_simd_exp_xsimd);
BENCHMARK(BM_simd_softplus_vec);
BENCHMARK(BM_simd_softplus_std);
BENCHMARK(BM_simd_sigmoid_vec);
BENCHMARK(BM_simd_sigmoid_std);
BENCHMARK(BM_simd_silu_vec);
BENCHMARK(BM_simd_silu_std);
BENCHMARK(BM_simd_tanh_vec);
BENCHMARK(BM_simd_tanh_std);
BENCHMARK(BM_simd_log_vec);
BENCHMARK(BM_simd_log_std);

BENCHMARK_MAIN();
