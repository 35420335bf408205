// SPDX-License-Identifier: Apache-2.0
// bench/ops/bench_delta_rules.cpp: delta-rule family benchmarks (Gated DeltaNet, DeltaNet, RWKV-7) in chunk,
// recurrent and decode forms at real model shapes; args include the thread count.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "support/bench_common.hpp"

using namespace seqmix;

namespace {

std::vector<float> rv(index_t n, float lo, float hi, std::uint64_t seed) {
  return bench::random_vector(static_cast<std::size_t>(n), lo, hi, seed);
}

/// Unit-norm rows of length K (keys after l2norm, RWKV-7's kk).
std::vector<float> unit_rows(index_t rows, index_t K, std::uint64_t seed) {
  auto x = rv(rows * K, -1, 1, seed);
  for (index_t r = 0; r < rows; ++r) {
    float n = 0;
    for (index_t k = 0; k < K; ++k) n += x[static_cast<std::size_t>(r * K + k)] * x[static_cast<std::size_t>(r * K + k)];
    n = 1.0f / std::sqrt(n);
    for (index_t k = 0; k < K; ++k) x[static_cast<std::size_t>(r * K + k)] *= n;
  }
  return x;
}

// Gated DeltaNet: q, k [1,T,H,K]; v [1,T,HV,V]; g = logsigmoid-like in [-0.1, 0); beta in (0,1); l2norm.
void BM_delta_rules_gdn(benchmark::State& st, linear_mode mode, delta_detail::gdr_tuning tuning = {}) {
  const index_t H = st.range(0), HV = st.range(1), K = st.range(2), V = st.range(2), T = st.range(3);
  const auto threads = st.range(4);
  auto q = rv(T * H * K, -1, 1, 1), k = rv(T * H * K, -1, 1, 2), v = rv(T * HV * V, -1, 1, 3);
  auto g = rv(T * HV, -0.1f, -0.001f, 4), beta = rv(T * HV, 0.05f, 0.95f, 5);
  std::vector<float> o(static_cast<std::size_t>(T * HV * V)), ht(static_cast<std::size_t>(HV * K * V));
  gated_delta_rule_args<float> a{.q = make_view<bthk>(static_cast<const float*>(q.data()), {1, T, H, K}),
                                 .k = make_view<bthk>(static_cast<const float*>(k.data()), {1, T, H, K}),
                                 .v = make_view<bthv>(static_cast<const float*>(v.data()), {1, T, HV, V}),
                                 .g = make_view<bth>(static_cast<const float*>(g.data()), {1, T, HV}),
                                 .beta = make_view<bth>(static_cast<const float*>(beta.data()), {1, T, HV}),
                                 .o = make_view<bthv>(o.data(), {1, T, HV, V})};
  a.final_state = make_view<nhkv>(ht.data(), {1, HV, K, V});
  const gated_delta_rule_options opt{.mode = mode, .use_qk_l2norm = true, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    delta_detail::gated_delta_rule_tuned(a, opt, tuning);
    benchmark::DoNotOptimize(o.data());
  }
  bench::describe(st, mode == linear_mode::chunk ? "chunk" : "recurrent", T, static_cast<int>(threads),
                  "H=" + std::to_string(H) + " HV=" + std::to_string(HV) + " K=V=" + std::to_string(K));
  bench::set_counters(st, 4.0 * HV * T * K * V, 4.0 * (2 * T * H * K + 2 * T * HV * V + 2 * T * HV),
                      static_cast<double>(T));
}

void BM_delta_rules_gdn_perkey(benchmark::State& st, linear_mode mode) {
  BM_delta_rules_gdn(st, mode, {.per_key_recurrence = true});
}

// DeltaNet: H heads, K = V, beta in (0,1), l2norm.
void BM_delta_rules_delta_rule(benchmark::State& st, linear_mode mode) {
  const index_t H = st.range(0), K = st.range(1), V = st.range(1), T = st.range(2);
  const auto threads = st.range(3);
  auto q = rv(T * H * K, -1, 1, 1), k = rv(T * H * K, -1, 1, 2), v = rv(T * H * V, -1, 1, 3);
  auto beta = rv(T * H, 0.05f, 0.95f, 5);
  std::vector<float> o(static_cast<std::size_t>(T * H * V));
  delta_rule_args<float> a{.q = make_view<bthk>(static_cast<const float*>(q.data()), {1, T, H, K}),
                           .k = make_view<bthk>(static_cast<const float*>(k.data()), {1, T, H, K}),
                           .v = make_view<bthv>(static_cast<const float*>(v.data()), {1, T, H, V}),
                           .beta = make_view<bth>(static_cast<const float*>(beta.data()), {1, T, H}),
                           .o = make_view<bthv>(o.data(), {1, T, H, V})};
  const delta_rule_options opt{.mode = mode, .use_qk_l2norm = true, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    delta_rule(a, opt);
    benchmark::DoNotOptimize(o.data());
  }
  bench::describe(st, mode == linear_mode::chunk ? "chunk" : "recurrent", T, static_cast<int>(threads),
                  "H=" + std::to_string(H) + " K=V=" + std::to_string(K));
  bench::set_counters(st, 4.0 * H * T * K * V, 4.0 * (2 * T * H * K + 2 * T * H * V + T * H), static_cast<double>(T));
}

// RWKV-7: r, w, k, a, b [1,T,H,K]; w in [-0.6065, 0); a = -kk, b = kk * alpha; scale 1.
void BM_delta_rules_rwkv7(benchmark::State& st, linear_mode mode) {
  const index_t H = st.range(0), K = st.range(1), V = st.range(1), T = st.range(2);
  const auto threads = st.range(3);
  auto r = rv(T * H * K, -1, 1, 1), w = rv(T * H * K, -0.6065f, -0.01f, 2), k = rv(T * H * K, -1, 1, 3);
  auto v = rv(T * H * V, -1, 1, 4), kk = unit_rows(T * H, K, 5), alpha = rv(T * H * K, 0.1f, 1.0f, 6);
  std::vector<float> a(kk.size()), b(kk.size());
  for (std::size_t i = 0; i < kk.size(); ++i) {
    a[i] = -kk[i];
    b[i] = kk[i] * alpha[i];
  }
  std::vector<float> o(static_cast<std::size_t>(T * H * V));
  auto kv = [&](const std::vector<float>& x) { return make_view<bthk>(x.data(), {1, T, H, K}); };
  rwkv7_args<float> x{.r = kv(r), .w = kv(w), .k = kv(k),
                      .v = make_view<bthv>(static_cast<const float*>(v.data()), {1, T, H, V}),
                      .a = kv(a), .b = kv(b), .o = make_view<bthv>(o.data(), {1, T, H, V})};
  const rwkv7_options opt{.scale = 1.0f, .mode = mode, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    rwkv7(x, opt);
    benchmark::DoNotOptimize(o.data());
  }
  bench::describe(st, mode == linear_mode::chunk ? "chunk" : "recurrent", T, static_cast<int>(threads),
                  "H=" + std::to_string(H) + " K=V=" + std::to_string(K));
  bench::set_counters(st, 4.0 * H * T * K * V, 4.0 * (5 * T * H * K + 2 * T * H * V), static_cast<double>(T));
}

// Decode steps: one token per batch row against a [B,HV,K,V] state (Qwen3-Next GDN: H=16, HV=32, K=V=128).
void BM_delta_rules_gdn_decode(benchmark::State& st) {
  const index_t B = st.range(0), H = st.range(1), HV = st.range(2), K = st.range(3), V = st.range(3);
  const auto threads = st.range(4);
  auto q = rv(B * H * K, -1, 1, 1), k = rv(B * H * K, -1, 1, 2), v = rv(B * HV * V, -1, 1, 3);
  auto g = rv(B * HV, -0.1f, -0.001f, 4), beta = rv(B * HV, 0.05f, 0.95f, 5);
  auto state = rv(B * HV * K * V, -0.1f, 0.1f, 6);
  std::vector<float> o(static_cast<std::size_t>(B * HV * V));
  gated_delta_rule_decode_args<float> a{.q = make_view<bthk>(static_cast<const float*>(q.data()), {B, 1, H, K}),
                                        .k = make_view<bthk>(static_cast<const float*>(k.data()), {B, 1, H, K}),
                                        .v = make_view<bthv>(static_cast<const float*>(v.data()), {B, 1, HV, V}),
                                        .g = make_view<bth>(static_cast<const float*>(g.data()), {B, 1, HV}),
                                        .beta = make_view<bth>(static_cast<const float*>(beta.data()), {B, 1, HV}),
                                        .o = make_view<bthv>(o.data(), {B, 1, HV, V}),
                                        .state = make_view<nhkv>(state.data(), {B, HV, K, V})};
  const gated_delta_rule_options opt{.use_qk_l2norm = true, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    gated_delta_rule_decode(a, opt);
    benchmark::DoNotOptimize(o.data());
  }
  st.counters["us/token/layer"] = benchmark::Counter(1e6 / static_cast<double>(B), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  bench::describe(st, "decode", 1, static_cast<int>(threads),
                  "B=" + std::to_string(B) + " H=" + std::to_string(H) + " HV=" + std::to_string(HV) + " K=V=" + std::to_string(K));
  bench::set_counters(st, 4.0 * B * HV * K * V, 8.0 * B * HV * K * V, static_cast<double>(B));
}

void BM_delta_rules_rwkv7_decode(benchmark::State& st) {
  const index_t B = st.range(0), H = st.range(1), K = st.range(2), V = st.range(2);
  const auto threads = st.range(3);
  auto r = rv(B * H * K, -1, 1, 1), w = rv(B * H * K, -0.6065f, -0.01f, 2), k = rv(B * H * K, -1, 1, 3);
  auto v = rv(B * H * V, -1, 1, 4), kk = unit_rows(B * H, K, 5);
  std::vector<float> a(kk.size()), b(kk.size());
  for (std::size_t i = 0; i < kk.size(); ++i) {
    a[i] = -kk[i];
    b[i] = 0.5f * kk[i];
  }
  auto state = rv(B * H * K * V, -0.1f, 0.1f, 6);
  std::vector<float> o(static_cast<std::size_t>(B * H * V));
  auto kv = [&](const std::vector<float>& x) { return make_view<bthk>(x.data(), {B, 1, H, K}); };
  rwkv7_decode_args<float> x{.r = kv(r), .w = kv(w), .k = kv(k),
                             .v = make_view<bthv>(static_cast<const float*>(v.data()), {B, 1, H, V}),
                             .a = kv(a), .b = kv(b), .o = make_view<bthv>(o.data(), {B, 1, H, V}),
                             .state = make_view<nhkv>(state.data(), {B, H, K, V})};
  const rwkv7_options opt{.scale = 1.0f, .run = bench::run_ctx(threads)};
  for (auto _ : st) {
    rwkv7_decode(x, opt);
    benchmark::DoNotOptimize(o.data());
  }
  st.counters["us/token/layer"] = benchmark::Counter(1e6 / static_cast<double>(B), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  bench::describe(st, "decode", 1, static_cast<int>(threads), "B=" + std::to_string(B) + " H=" + std::to_string(H) + " K=V=" + std::to_string(K));
  bench::set_counters(st, 4.0 * B * H * K * V, 8.0 * B * H * K * V, static_cast<double>(B));
}

void shapes_gdn(benchmark::internal::Benchmark* b, std::int64_t tmax) {
  b->ArgNames({"H", "HV", "K", "T", "threads"});
  for (auto t : bench::t_sweep(256, tmax))
    for (auto th : bench::thread_sweep()) b->Args({16, 16, 128, t, th});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}
void shapes_hk(benchmark::internal::Benchmark* b, std::int64_t H, std::int64_t K, std::int64_t tmax) {
  b->ArgNames({"H", "K", "T", "threads"});
  for (auto t : bench::t_sweep(256, tmax))
    for (auto th : bench::thread_sweep()) b->Args({H, K, t, th});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK_CAPTURE(BM_delta_rules_gdn, chunk, linear_mode::chunk)->Apply([](auto* b) { shapes_gdn(b, 65536); });
BENCHMARK_CAPTURE(BM_delta_rules_gdn, recurrent, linear_mode::recurrent)->Apply([](auto* b) { shapes_gdn(b, 4096); });
// Qwen3-Next's GVA (HV = 2 H) at T = 2048, and the per-key-gate recurrence run on scalar gates (A/B of the
// scalar path, docs/04b §4).
BENCHMARK_CAPTURE(BM_delta_rules_gdn, recurrent, linear_mode::recurrent)
    ->ArgNames({"H", "HV", "K", "T", "threads"})
    ->ArgsProduct({{16}, {32}, {128}, {2048}, bench::thread_sweep()})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_delta_rules_gdn_perkey, recurrent_perkey_path, linear_mode::recurrent)
    ->ArgNames({"H", "HV", "K", "T", "threads"})
    ->ArgsProduct({{16}, {16, 32}, {128}, {2048}, bench::thread_sweep()})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_delta_rules_delta_rule, chunk, linear_mode::chunk)->Apply([](auto* b) { shapes_hk(b, 16, 128, 8192); });
BENCHMARK_CAPTURE(BM_delta_rules_delta_rule, recurrent, linear_mode::recurrent)->Apply([](auto* b) { shapes_hk(b, 16, 128, 2048); });
BENCHMARK_CAPTURE(BM_delta_rules_rwkv7, chunk, linear_mode::chunk)->Apply([](auto* b) { shapes_hk(b, 32, 64, 65536); });
BENCHMARK_CAPTURE(BM_delta_rules_rwkv7, recurrent, linear_mode::recurrent)->Apply([](auto* b) { shapes_hk(b, 32, 64, 4096); });
BENCHMARK(BM_delta_rules_gdn_decode)
    ->ArgNames({"B", "H", "HV", "K", "threads"})
    ->ArgsProduct({{1, 8}, {16}, {32}, {128}, bench::thread_sweep()})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_delta_rules_rwkv7_decode)
    ->ArgNames({"B", "H", "K", "threads"})
    ->ArgsProduct({{1, 8}, {32}, {64}, bench::thread_sweep()})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
