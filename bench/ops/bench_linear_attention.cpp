// SPDX-License-Identifier: Apache-2.0
// bench/ops/bench_linear_attention.cpp: linear-family ops (linear_attn, simple_gla, retention, gla, rwkv6,
// hgrn): chunk vs recurrent prefill over T, decode step, 1 and 2 threads. FLOPs: 4 B H T K V (PERF.md).
#include <cmath>
#include <string>
#include <vector>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "support/bench_common.hpp"

using namespace seqmix;

namespace {

enum class op_kind { linear_attn, simple_gla, retention, gla, rwkv6 };

struct problem {
  index_t B, T, H, K, V;
  std::vector<float> q, k, v, g, gk, u, o, h0, ht;
  problem(op_kind op, index_t B_, index_t T_, index_t H_, index_t K_, index_t V_)
      : B(B_), T(T_), H(H_), K(K_), V(V_) {
    const auto nk = static_cast<std::size_t>(B * T * H * K), nv = static_cast<std::size_t>(B * T * H * V);
    q = bench::random_vector(nk, -1, 1, 1);
    k = bench::random_vector(nk, -1, 1, 2);
    v = bench::random_vector(nv, -1, 1, 3);
    g = bench::random_vector(static_cast<std::size_t>(B * T * H), -3, 3, 4);
    for (auto& x : g) x = -std::log1p(std::exp(-x)) / 16.0f;  // logsigmoid(x) / 16 (GLA layers)
    gk = bench::random_vector(nk, -3, 3, 5);
    if (op == op_kind::rwkv6) {
      for (auto& x : gk) x = -std::exp(-3.5f + 0.8f * x);  // RWKV-6: w = -exp(w_raw), w_raw in [-6, -1]
    } else {
      for (auto& x : gk) x = -std::log1p(std::exp(-x)) / 16.0f;
    }
    u = bench::random_vector(static_cast<std::size_t>(H * K), -1, 1, 6);
    o.resize(nv);
    h0 = bench::random_vector(static_cast<std::size_t>(B * H * K * V), -1, 1, 7);
    ht.resize(h0.size());
  }
  const_view<float, bthk> vk(const std::vector<float>& x) const { return make_view<bthk>(x.data(), {B, T, H, K}); }
  const_view<float, bthv> vv(const std::vector<float>& x) const { return make_view<bthv>(x.data(), {B, T, H, V}); }

  void run(op_kind op, linear_mode mode, const run_context& rc, bool decode = false) {
    const linear_options lo{.mode = mode, .run = rc};
    const auto ov = make_view<bthv>(o.data(), {B, T, H, V});
    const auto s0 = make_view<nhkv>(static_cast<const float*>(h0.data()), {B, H, K, V});
    const auto sv = make_view<nhkv>(ht.data(), {B, H, K, V});
    switch (op) {
      case op_kind::linear_attn: {
        linear_attn_args<float> a{.q = vk(q), .k = vk(k), .v = vv(v), .o = ov};
        if (decode) return linear_attn_decode(a, sv, {}, {.run = rc});
        a.initial_state = s0;
        a.final_state = sv;
        return linear_attn(a, {.mode = mode, .run = rc});
      }
      case op_kind::simple_gla: {
        simple_gla_args<float> a{.q = vk(q), .k = vk(k), .v = vv(v), .g = make_view<bth>(g.data(), {B, T, H}), .o = ov};
        if (decode) return simple_gla_decode(a, sv, {}, lo);
        a.initial_state = s0;
        a.final_state = sv;
        return simple_gla(a, lo);
      }
      case op_kind::retention: {
        retention_args<float> a{.q = vk(q), .k = vk(k), .v = vv(v), .o = ov};
        if (decode) return retention_decode(a, sv, {}, lo);
        a.initial_state = s0;
        a.final_state = sv;
        return retention(a, lo);
      }
      case op_kind::gla: {
        gla_args<float> a{.q = vk(q), .k = vk(k), .v = vv(v), .gk = vk(gk), .o = ov};
        if (decode) return gla_decode(a, sv, {}, lo);
        a.initial_state = s0;
        a.final_state = sv;
        return gla(a, lo);
      }
      default: {
        rwkv6_args<float> a{.r = vk(q), .k = vk(k), .v = vv(v), .w = vk(gk),
                            .u = make_view<hk>(static_cast<const float*>(u.data()), {H, K}), .o = ov};
        if (decode) return rwkv6_decode(a, sv, {}, lo);
        a.initial_state = s0;
        a.final_state = sv;
        return rwkv6(a, lo);
      }
    }
  }
};

const char* op_label(op_kind op) {
  switch (op) {
    case op_kind::linear_attn: return "linear_attn";
    case op_kind::simple_gla: return "simple_gla";
    case op_kind::retention: return "retention";
    case op_kind::gla: return "gla";
    default: return "rwkv6";
  }
}

void bench_prefill(benchmark::State& st, op_kind op, linear_mode mode, index_t H, index_t K, index_t V) {
  const index_t T = st.range(0);
  const int threads = bench::threads_arg(st.range(1));
  problem p(op, 1, T, H, K, V);
  workspace ws;
  const run_context rc = bench::run_ctx(threads, &ws);
  for (auto _ : st) {
    p.run(op, mode, rc);
    benchmark::DoNotOptimize(p.o.data());
    benchmark::ClobberMemory();
  }
  const double flops = 4.0 * static_cast<double>(H * T * K * V);
  const double bytes = 4.0 * static_cast<double>(T * H * (3 * K + 2 * V));
  bench::set_counters(st, flops, bytes, static_cast<double>(T));
  bench::describe(st, mode == linear_mode::chunk ? "chunk" : "recurrent", T, threads,
                  std::string(op_label(op)) + " H=" + std::to_string(H) + " K=" + std::to_string(K) +
                      " V=" + std::to_string(V));
}

/// One decode step (T = 1) for B = 1 sequences: per token per layer.
void bench_decode(benchmark::State& st, op_kind op, index_t H, index_t K, index_t V) {
  const int threads = bench::threads_arg(st.range(0));
  problem p(op, 1, 1, H, K, V);
  p.ht = p.h0;
  workspace ws;
  const run_context rc = bench::run_ctx(threads, &ws);
  for (auto _ : st) {
    p.run(op, linear_mode::recurrent, rc, true);
    benchmark::DoNotOptimize(p.ht.data());
    benchmark::ClobberMemory();
    for (std::size_t i = 0; i < 4; ++i) p.ht[i] = p.h0[i];  // keep the state bounded
  }
  bench::set_counters(st, 4.0 * static_cast<double>(H * K * V), 8.0 * static_cast<double>(H * K * V), 1);
  bench::describe(st, "decode", 1, threads,
                  std::string(op_label(op)) + " H=" + std::to_string(H) + " K=" + std::to_string(K));
}

void args_main(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "threads"})->ArgsProduct({{2048, 16384}, bench::thread_sweep()});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}
void args_sweep(benchmark::internal::Benchmark* b) { bench::sweep_range(b, 256, 65536); }
void args_rec(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "threads"})->ArgsProduct({{256, 2048, 16384}, bench::thread_sweep()});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}
void args_decode(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->ArgsProduct({bench::thread_sweep()});
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

// GLA B=1 H=16 T=2048 K=V=64 (target <= 10 ms on one thread)
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_gla_chunk, op_kind::gla, linear_mode::chunk, 16, 64, 64)
    ->Apply(args_sweep);
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_gla_recurrent, op_kind::gla, linear_mode::recurrent, 16, 64, 64)
    ->Apply(args_rec);
// RWKV-6 H=32 T=2048 head 64 (target <= 20 ms)
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_rwkv6_chunk, op_kind::rwkv6, linear_mode::chunk, 32, 64, 64)
    ->Apply(args_main);
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_rwkv6_recurrent, op_kind::rwkv6, linear_mode::recurrent, 32, 64,
                  64)
    ->Apply(args_rec);
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_simple_gla_chunk, op_kind::simple_gla, linear_mode::chunk, 16, 64,
                  64)
    ->Apply(args_main);
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_simple_gla_recurrent, op_kind::simple_gla,
                  linear_mode::recurrent, 16, 64, 64)
    ->Apply(args_rec);
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_retention_chunk, op_kind::retention, linear_mode::chunk, 16, 64, 64)
    ->Apply(args_main);
BENCHMARK_CAPTURE(bench_prefill, BM_linear_attention_linear_attn_chunk, op_kind::linear_attn, linear_mode::chunk, 16,
                  64, 64)
    ->Apply(args_main);
// decode step, per token per layer
BENCHMARK_CAPTURE(bench_decode, BM_linear_attention_gla_decode, op_kind::gla, 16, 64, 64)->Apply(args_decode);
BENCHMARK_CAPTURE(bench_decode, BM_linear_attention_rwkv6_decode, op_kind::rwkv6, 32, 64, 64)->Apply(args_decode);
BENCHMARK_CAPTURE(bench_decode, BM_linear_attention_simple_gla_decode, op_kind::simple_gla, 16, 64, 64)
    ->Apply(args_decode);

// HGRN d=2048 (x, g [1,T,D]); memory-bound: GB/s of x, g, o
namespace {
void bench_hgrn(benchmark::State& st, linear_mode mode) {
  const index_t T = st.range(0), D = 2048;
  const int threads = bench::threads_arg(st.range(1));
  auto x = bench::random_vector(static_cast<std::size_t>(T * D), -1, 1, 8);
  auto g = bench::random_vector(static_cast<std::size_t>(T * D), -3, 3, 9);
  for (auto& e : g) e = -std::log1p(std::exp(-e));
  std::vector<float> o(x.size()), ht(static_cast<std::size_t>(D));
  workspace ws;
  const run_context rc = bench::run_ctx(threads, &ws);
  for (auto _ : st) {
    hgrn(hgrn_args<float>{.x = make_view<btd>(static_cast<const float*>(x.data()), {1, T, D}),
                          .g = make_view<btd>(static_cast<const float*>(g.data()), {1, T, D}),
                          .o = make_view<btd>(o.data(), {1, T, D}), .final_state = make_view<nd>(ht.data(), {1, D})},
         {.mode = mode, .run = rc});
    benchmark::DoNotOptimize(o.data());
  }
  bench::set_counters(st, 3.0 * static_cast<double>(T * D), 12.0 * static_cast<double>(T * D), static_cast<double>(T));
  bench::describe(st, mode == linear_mode::chunk ? "chunk" : "recurrent", T, threads, "hgrn D=2048");
}
}  // namespace
BENCHMARK_CAPTURE(bench_hgrn, BM_linear_attention_hgrn_recurrent, linear_mode::recurrent)->Apply(args_main);
BENCHMARK_CAPTURE(bench_hgrn, BM_linear_attention_hgrn_chunk, linear_mode::chunk)->Apply(args_main);

BENCHMARK_MAIN();
