// SPDX-License-Identifier: Apache-2.0
// bench/ops/bench_ssm_scan.cpp: SSM family benchmarks (Mamba-1 selective scan, Mamba-2 SSD chunked and
// recurrent, causal conv1d, decode steps) at real model shapes; args include the thread count.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include <seqmix/ops/ssm_scan/ssm_scan.hpp>

#include "support/bench_common.hpp"

using namespace seqmix;

namespace {

std::vector<float> rv(std::size_t n, float lo, float hi, std::uint64_t seed) { return bench::random_vector(n, lo, hi, seed); }

// Mamba-1: u, delta, z [1,D,T]; A [D,N]; B, C [1,1,N,T]; D, delta_bias [D]; softplus.
template <class Backend>
void BM_ssm_scan_selective_scan(benchmark::State& st) {
  const index_t D = st.range(0), N = st.range(1), T = st.range(2);
  const auto threads = st.range(3);
  auto u = rv(D * T, -1, 1, 1), dl = rv(D * T, -4, 0, 2), z = rv(D * T, -1, 1, 3), A = rv(D * N, -8, -0.5f, 4);
  auto Bm = rv(N * T, -1, 1, 5), Cm = rv(N * T, -1, 1, 6), Dv = rv(D, -1, 1, 7), bias = rv(D, -1, 0, 8);
  std::vector<float> out(static_cast<std::size_t>(D * T)), last(static_cast<std::size_t>(D * N));
  selective_scan_args<float> a;
  a.u = make_view<bdl>(static_cast<const float*>(u.data()), {1, D, T});
  a.delta = make_view<bdl>(static_cast<const float*>(dl.data()), {1, D, T});
  a.z = make_view<bdl>(static_cast<const float*>(z.data()), {1, D, T});
  a.A = make_view<dn>(static_cast<const float*>(A.data()), {D, N});
  a.B = make_view<bgnl>(static_cast<const float*>(Bm.data()), {1, 1, N, T});
  a.C = make_view<bgnl>(static_cast<const float*>(Cm.data()), {1, 1, N, T});
  a.D = make_view<ssm_layouts::d>(static_cast<const float*>(Dv.data()), {D});
  a.delta_bias = make_view<ssm_layouts::d>(static_cast<const float*>(bias.data()), {D});
  a.out = make_view<bdl>(out.data(), {1, D, T});
  a.last_state = make_view<bdn>(last.data(), {1, D, N});
  const selective_scan_options o{.delta_softplus = true, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    selective_scan(a, o, Backend{});
    benchmark::DoNotOptimize(out.data());
  }
  bench::set_counters(st, 9.0 * D * N * T, 4.0 * (4 * D * T + 2 * N * T), static_cast<double>(T));
}

// Mamba-2 SSD: x [1,T,H,P]; dt [1,T,H]; A, dt_bias [H]; B, C [1,T,1,N]; D [H]; z; softplus.
template <class Backend>
void BM_ssm_scan_ssd(benchmark::State& st, ssd_mode mode) {
  const index_t H = st.range(0), P = st.range(1), N = st.range(2), T = st.range(3), Q = st.range(4);
  const auto threads = st.range(5);
  auto x = rv(T * H * P, -1, 1, 1), z = rv(T * H * P, -1, 1, 2), dt = rv(T * H, -4, 0, 3), A = rv(H, -8, -1, 4);
  auto Bm = rv(T * N, -1, 1, 5), Cm = rv(T * N, -1, 1, 6), Dv = rv(H, -1, 1, 7), bias = rv(H, -1, 0, 8);
  std::vector<float> out(static_cast<std::size_t>(T * H * P)), fin(static_cast<std::size_t>(H * P * N));
  ssd_args<float> a;
  a.x = make_view<bthp>(static_cast<const float*>(x.data()), {1, T, H, P});
  a.z = make_view<bthp>(static_cast<const float*>(z.data()), {1, T, H, P});
  a.dt = make_view<bth>(static_cast<const float*>(dt.data()), {1, T, H});
  a.A = make_view<ssm_layouts::h>(static_cast<const float*>(A.data()), {H});
  a.dt_bias = make_view<ssm_layouts::h>(static_cast<const float*>(bias.data()), {H});
  a.B = make_view<btgn>(static_cast<const float*>(Bm.data()), {1, T, 1, N});
  a.C = make_view<btgn>(static_cast<const float*>(Cm.data()), {1, T, 1, N});
  a.D = make_view<hp>(static_cast<const float*>(Dv.data()), {H, P}, {1, 0});
  a.out = make_view<bthp>(out.data(), {1, T, H, P});
  a.final_states = make_view<bhpn>(fin.data(), {1, H, P, N});
  const ssd_options o{.dt_softplus = true, .chunk_size = Q, .mode = mode, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    ssd(a, o, Backend{});
    benchmark::DoNotOptimize(out.data());
  }
  bench::set_counters(st, 4.0 * H * T * N * P, 4.0 * (3 * T * H * P + 2 * T * N), static_cast<double>(T));
}
void BM_ssm_scan_ssd_chunk(benchmark::State& st) { BM_ssm_scan_ssd<simd<>>(st, ssd_mode::chunk); }
void BM_ssm_scan_ssd_recurrent(benchmark::State& st) { BM_ssm_scan_ssd<simd<>>(st, ssd_mode::recurrent); }

// causal conv1d: x [1,D,T] (channel-first) or channel-last; weight [D,W]; bias; silu.
void BM_ssm_scan_causal_conv1d(benchmark::State& st) {
  const index_t D = st.range(0), W = st.range(1), T = st.range(2);
  const bool channel_last = st.range(3) != 0;
  const auto threads = st.range(4);
  auto x = rv(D * T, -1, 1, 1), w = rv(D * W, -1, 1, 2), bias = rv(D, -1, 1, 3);
  std::vector<float> out(static_cast<std::size_t>(D * T)), fin(static_cast<std::size_t>(D * (W - 1) + 1));
  causal_conv1d_args<float> a;
  const extents<bdl> ext{1, D, T};
  const extents<bdl> str = channel_last ? extents<bdl>{D * T, 1, D} : extents<bdl>{D * T, T, 1};
  a.x = make_view<bdl>(static_cast<const float*>(x.data()), ext, str);
  a.out = make_view<bdl>(out.data(), ext, str);
  a.weight = make_view<dw>(static_cast<const float*>(w.data()), {D, W});
  a.bias = make_view<ssm_layouts::d>(static_cast<const float*>(bias.data()), {D});
  a.final_states = make_view<bdw>(fin.data(), {1, D, W - 1});
  const causal_conv1d_options o{.activation = conv_activation::silu, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    causal_conv1d(a, o);
    benchmark::DoNotOptimize(out.data());
  }
  bench::set_counters(st, 2.0 * D * W * T, 8.0 * D * T, static_cast<double>(T));
}

// Decode steps per layer: Mamba-2 (H P N) state update and Mamba-1 (D N) state update; conv update.
void BM_ssm_scan_state_update(benchmark::State& st) {
  const index_t H = st.range(0), P = st.range(1), N = st.range(2);
  const bool mamba1 = st.range(3) != 0;
  const auto threads = st.range(4);
  auto state = rv(H * P * N, -1, 1, 1), x = rv(H * P, -1, 1, 2), dt = rv(H * P, -4, 0, 3);
  auto A = rv(H * P * N, -8, -1, 4), Bm = rv(N, -1, 1, 5), Cm = rv(N, -1, 1, 6), Dv = rv(H * P, -1, 1, 7);
  std::vector<float> out(static_cast<std::size_t>(H * P));
  selective_state_update_args<float> a;
  a.state = make_view<bhpn>(state.data(), {1, H, P, N});
  a.x = make_view<bhp>(static_cast<const float*>(x.data()), {1, H, P});
  a.out = make_view<bhp>(out.data(), {1, H, P});
  a.B = make_view<bgn>(static_cast<const float*>(Bm.data()), {1, 1, N});
  a.C = make_view<bgn>(static_cast<const float*>(Cm.data()), {1, 1, N});
  if (mamba1) {  // H = 1, P = D: per-channel dt and A [D,N]
    a.dt = make_view<bhp>(static_cast<const float*>(dt.data()), {1, H, P});
    a.A = make_view<ssm_layouts::hpn>(static_cast<const float*>(A.data()), {H, P, N});
    a.D = make_view<hp>(static_cast<const float*>(Dv.data()), {H, P});
  } else {  // per-head dt, A, D: P (and N) strides 0
    a.dt = make_view<bhp>(static_cast<const float*>(dt.data()), {1, H, P}, {H, 1, 0});
    a.A = make_view<ssm_layouts::hpn>(static_cast<const float*>(A.data()), {H, P, N}, {1, 0, 0});
    a.D = make_view<hp>(static_cast<const float*>(Dv.data()), {H, P}, {1, 0});
  }
  const selective_state_update_options o{.dt_softplus = true, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    selective_state_update(a, o);
    benchmark::DoNotOptimize(out.data());
  }
  bench::set_counters(st, 5.0 * H * P * N, 8.0 * H * P * N);
}

void BM_ssm_scan_conv1d_update(benchmark::State& st) {
  const index_t D = st.range(0), W = st.range(1);
  const auto threads = st.range(2);
  auto x = rv(D, -1, 1, 1), w = rv(D * W, -1, 1, 2), bias = rv(D, -1, 1, 3), state = rv(D * (W - 1), -1, 1, 4);
  std::vector<float> out(static_cast<std::size_t>(D));
  causal_conv1d_update_args<float> a;
  a.x = make_view<bdl>(static_cast<const float*>(x.data()), {1, D, 1});
  a.conv_state = make_view<ssm_layouts::bds>(state.data(), {1, D, W - 1});
  a.weight = make_view<dw>(static_cast<const float*>(w.data()), {D, W});
  a.bias = make_view<ssm_layouts::d>(static_cast<const float*>(bias.data()), {D});
  a.out = make_view<bdl>(out.data(), {1, D, 1});
  const causal_conv1d_options o{.activation = conv_activation::silu, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    causal_conv1d_update(a, o);
    benchmark::DoNotOptimize(out.data());
  }
  bench::set_counters(st, 2.0 * D * W, 4.0 * D * (W + 1));
}

}  // namespace

BENCHMARK_TEMPLATE(BM_ssm_scan_selective_scan, simd<>)
    ->ArgNames({"D", "N", "T", "threads"})
    ->ArgsProduct({{2048}, {16}, {2048}, {1, 2}})
    ->Args({5120, 16, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// T sweep: the cost per token should stay flat (the scan streams u, delta, z, out once)
BENCHMARK_TEMPLATE(BM_ssm_scan_selective_scan, simd<>)
    ->ArgNames({"D", "N", "T", "threads"})
    ->ArgsProduct({{2048}, {16}, {512, 1024, 4096, 8192}, {1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ssm_scan_selective_scan, reference)
    ->ArgNames({"D", "N", "T", "threads"})
    ->Args({2048, 16, 256, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ssm_scan_ssd_chunk)
    ->ArgNames({"H", "P", "N", "T", "chunk", "threads"})
    ->ArgsProduct({{32}, {64}, {128}, {2048}, {64, 128, 256}, {1, 2}})
    ->Args({32, 64, 128, 4, 64, 1})
    ->Args({32, 64, 128, 8, 64, 1})
    ->Args({32, 64, 128, 16, 64, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// T sweep at the SPEC default chunk (cost per token should stay flat)
BENCHMARK(BM_ssm_scan_ssd_chunk)
    ->Name("BM_ssm_scan_ssd_chunk_tsweep")
    ->ArgNames({"H", "P", "N", "T", "chunk", "threads"})
    ->ArgsProduct({{32}, {64}, {128}, {512, 1024, 2048, 4096, 8192}, {256}, {1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ssm_scan_ssd_recurrent)
    ->ArgNames({"H", "P", "N", "T", "chunk", "threads"})
    ->ArgsProduct({{32}, {64}, {128}, {2048}, {256}, {1, 2}})
    ->Args({32, 64, 128, 4, 256, 1})
    ->Args({32, 64, 128, 8, 256, 1})
    ->Args({32, 64, 128, 16, 256, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ssm_scan_causal_conv1d)
    ->ArgNames({"D", "W", "T", "chlast", "threads"})
    ->ArgsProduct({{4096}, {4}, {2048}, {0, 1}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ssm_scan_state_update)
    ->ArgNames({"H", "P", "N", "mamba1", "threads"})
    ->Args({80, 64, 128, 0, 1})
    ->Args({80, 64, 128, 0, 2})
    ->Args({1, 5120, 16, 1, 1})
    ->Args({1, 5120, 16, 1, 2})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_ssm_scan_conv1d_update)
    ->ArgNames({"D", "W", "threads"})
    ->Args({10240, 4, 1})
    ->Args({10240, 4, 2})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

BENCHMARK_MAIN();
