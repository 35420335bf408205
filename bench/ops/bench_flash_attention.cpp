// SPDX-License-Identifier: Apache-2.0
// bench/ops/bench_flash_attention.cpp: softmax attention benchmarks: causal prefill (T 512..16k, D 64/128,
// GQA 8:2), varlen prefill, decode over contiguous and paged f16/bf16/f32 caches (batch 1 and 8), and the
// float64 reference as the baseline. Threads 1 and 2.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <seqmix/ops/flash_attention/flash_attention.hpp>

#include "support/bench_common.hpp"

namespace {

using namespace seqmix;

struct prefill_data {
  index_t T, D;
  std::vector<float> q, k, v, o, lse;
  prefill_data(index_t t, index_t d, index_t hq, index_t hkv) : T(t), D(d) {
    q = bench::random_vector(static_cast<std::size_t>(t * hq * d), -1, 1, 1);
    k = bench::random_vector(static_cast<std::size_t>(t * hkv * d), -1, 1, 2);
    v = bench::random_vector(static_cast<std::size_t>(t * hkv * d), -1, 1, 3);
    o.resize(static_cast<std::size_t>(t * hq * d));
    lse.resize(static_cast<std::size_t>(hq * t));
  }
};

// B=1 causal fp32 prefill, Hq=8 Hkv=2 (GQA) or Hq=Hkv=16 (MHA); args: T, D, threads.
template <class Backend>
void BM_prefill(benchmark::State& st, index_t Hq = 8, index_t Hkv = 2) {
  const index_t T = st.range(0), D = st.range(1);
  const int threads = bench::threads_arg(st.range(2));
  prefill_data x(T, D, Hq, Hkv);
  attention_args<float> a{tensor_view<const float, bthd>(x.q.data(), {1, T, Hq, D}),   // [1,T,Hq,D]
                          tensor_view<const float, bthd>(x.k.data(), {1, T, Hkv, D}),  // [1,T,Hkv,D]
                          tensor_view<const float, bthv>(x.v.data(), {1, T, Hkv, D}),  // [1,T,Hkv,D]
                          tensor_view<float, bthv>(x.o.data(), {1, T, Hq, D}),         // [1,T,Hq,D]
                          tensor_view<float, bht>(x.lse.data(), {1, Hq, T})};          // [1,Hq,T]
  attention_options o;
  o.causal = true;
  o.run = bench::run_ctx(threads);
  for (auto _ : st) {
    attention(a, o, Backend{});
    benchmark::DoNotOptimize(x.o.data());
  }
  const double flops = 4.0 * Hq * static_cast<double>(T) * static_cast<double>(T) * static_cast<double>(D) / 2;
  bench::set_counters(st, flops, 0, static_cast<double>(T));
}
void BM_flash_attention_prefill(benchmark::State& st) { BM_prefill<simd<>>(st); }
void BM_flash_attention_prefill_reference(benchmark::State& st) { BM_prefill<reference>(st); }
void BM_flash_attention_prefill_mha(benchmark::State& st) { BM_prefill<simd<>>(st, 16, 16); }

BENCHMARK(BM_flash_attention_prefill)
    ->ArgNames({"T", "D", "threads"})
    ->ArgsProduct({{2048}, {128}, {1, 2}})
    ->ArgsProduct({{4096}, {64}, {1, 2}})
    ->ArgsProduct({{512, 1024, 8192}, {128}, {1, 2}})
    ->ArgsProduct({{16384}, {128}, {2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_flash_attention_prefill_mha)
    ->ArgNames({"T", "D", "threads"})
    ->ArgsProduct({{2048}, {128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_flash_attention_prefill_reference)
    ->ArgNames({"T", "D", "threads"})
    ->Args({256, 128, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Varlen prefill: 8 causal sequences of mixed lengths (total 4096), Hq=8 Hkv=2 D=128; args: threads.
void BM_flash_attention_varlen(benchmark::State& st) {
  const index_t Hq = 8, Hkv = 2, D = 128;
  const std::vector<std::int32_t> lens{1000, 17, 512, 300, 1500, 1, 700, 66};
  std::vector<std::int32_t> cu(lens.size() + 1, 0);
  std::partial_sum(lens.begin(), lens.end(), cu.begin() + 1);
  const index_t T = cu.back();
  prefill_data x(T, D, Hq, Hkv);
  const tensor_view<const std::int32_t, flash_i> cuv(cu.data(), {static_cast<index_t>(cu.size())});  // [N+1]
  attention_args<float> a{tensor_view<const float, bthd>(x.q.data(), {1, T, Hq, D}),   // [1,T,Hq,D]
                          tensor_view<const float, bthd>(x.k.data(), {1, T, Hkv, D}),  // [1,T,Hkv,D]
                          tensor_view<const float, bthv>(x.v.data(), {1, T, Hkv, D}),  // [1,T,Hkv,D]
                          tensor_view<float, bthv>(x.o.data(), {1, T, Hq, D}),         // [1,T,Hq,D]
                          tensor_view<float, bht>(x.lse.data(), {1, Hq, T}),           // [1,Hq,T]
                          {},
                          {},
                          cuv,
                          cuv};
  attention_options o;
  o.causal = true;
  o.run = bench::run_ctx(st.range(0));
  for (auto _ : st) {
    attention(a, o);
    benchmark::DoNotOptimize(x.o.data());
  }
  double flops = 0;
  for (auto l : lens) flops += 4.0 * Hq * static_cast<double>(l) * static_cast<double>(l) * D / 2;
  bench::set_counters(st, flops, 0, static_cast<double>(T));
}
BENCHMARK(BM_flash_attention_varlen)->ArgNames({"threads"})->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

template <class C>
std::vector<C> random_storage(std::size_t n, std::uint64_t seed) {
  const auto f = bench::random_vector(n, -1, 1, seed);
  std::vector<C> r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = from_float<C>(f[i]);
  return r;
}

// Decode, contiguous cache: B rows of Tkv tokens, Hq=32 Hkv=8 D=128, Tq new tokens per row (1, or a few for
// speculative decoding); args: B, Tkv, threads.
template <class C, index_t Tq = 1>
void BM_decode(benchmark::State& st) {
  const index_t B = st.range(0), L = st.range(1), Hq = 32, Hkv = 8, D = 128;
  const auto k = random_storage<C>(static_cast<std::size_t>(B * L * Hkv * D), 5);
  const auto v = random_storage<C>(static_cast<std::size_t>(B * L * Hkv * D), 6);
  const std::vector<std::int32_t> lens(static_cast<std::size_t>(B), static_cast<std::int32_t>(L));
  const auto q = bench::random_vector(static_cast<std::size_t>(B * Tq * Hq * D), -1, 1, 7);
  std::vector<float> out(static_cast<std::size_t>(B * Tq * Hq * D)), lse(static_cast<std::size_t>(B * Tq * Hq));
  kv_cache_view<C> cache{tensor_view<const C, bthd>(k.data(), {B, L, Hkv, D}),                // [B,L,Hkv,D]
                         tensor_view<const C, bthv>(v.data(), {B, L, Hkv, D}),                // [B,L,Hkv,D]
                         tensor_view<const std::int32_t, flash_b>(lens.data(), {B})};         // [B]
  attention_decode_args<float, kv_cache_view<C>> a{tensor_view<const float, bthd>(q.data(), {B, Tq, Hq, D}),  // [B,Tq,Hq,D]
                                                   cache,
                                                   tensor_view<float, bthv>(out.data(), {B, Tq, Hq, D}),  // [B,Tq,Hq,D]
                                                   tensor_view<float, bht>(lse.data(), {B, Hq, Tq})};     // [B,Hq,Tq]
  attention_decode_options o;
  o.run = bench::run_ctx(st.range(2));
  for (auto _ : st) {
    attention_decode(a, o);
    benchmark::DoNotOptimize(out.data());
  }
  const double bytes = 2.0 * static_cast<double>(B * L * Hkv * D) * sizeof(C);
  bench::set_counters(st, 4.0 * B * Tq * Hq * static_cast<double>(L) * D, bytes, static_cast<double>(B * Tq));
}
void BM_flash_attention_decode_f16(benchmark::State& st) { BM_decode<f16>(st); }
void BM_flash_attention_decode_bf16(benchmark::State& st) { BM_decode<bf16>(st); }
void BM_flash_attention_decode_f32(benchmark::State& st) { BM_decode<float>(st); }
void BM_flash_attention_decode_spec4_f16(benchmark::State& st) { BM_decode<f16, 4>(st); }
BENCHMARK(BM_flash_attention_decode_f16)
    ->ArgNames({"B", "Tkv", "threads"})
    ->ArgsProduct({{1}, {1024, 8192}, {1, 2}})
    ->ArgsProduct({{8}, {2048}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_flash_attention_decode_bf16)->ArgNames({"B", "Tkv", "threads"})->Args({1, 8192, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_flash_attention_decode_f32)->ArgNames({"B", "Tkv", "threads"})->ArgsProduct({{1}, {8192}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
// speculative decoding: Tq = 4 new tokens per row (causal among themselves)
BENCHMARK(BM_flash_attention_decode_spec4_f16)
    ->ArgNames({"B", "Tkv", "threads"})
    ->ArgsProduct({{1}, {8192}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Decode over a paged f16 cache (page 16, shuffled pages), batch 8 rows of mixed lengths around Tkv;
// args: Tkv, threads.
void BM_flash_attention_decode_paged(benchmark::State& st) {
  const index_t B = 8, Lmean = st.range(0), Hq = 32, Hkv = 8, D = 128, page = 16;
  std::vector<std::int32_t> lens(static_cast<std::size_t>(B));
  for (index_t b = 0; b < B; ++b) lens[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(Lmean / 2 + (Lmean * b) / (B - 1) - 3);
  index_t maxp = 0, total_pages = 0;
  for (auto l : lens) {
    maxp = std::max<index_t>(maxp, (l + page - 1) / page);
    total_pages += (l + page - 1) / page;
  }
  std::vector<std::int32_t> order(static_cast<std::size_t>(total_pages));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  std::vector<std::int32_t> table(static_cast<std::size_t>(B * maxp), 0);
  std::size_t next = 0;
  for (index_t b = 0; b < B; ++b)
    for (index_t p = 0; p * page < lens[static_cast<std::size_t>(b)]; ++p) table[static_cast<std::size_t>(b * maxp + p)] = order[next++];
  const auto k = random_storage<f16>(static_cast<std::size_t>(total_pages * page * Hkv * D), 8);
  const auto v = random_storage<f16>(static_cast<std::size_t>(total_pages * page * Hkv * D), 9);
  const auto q = bench::random_vector(static_cast<std::size_t>(B * Hq * D), -1, 1, 10);
  std::vector<float> out(static_cast<std::size_t>(B * Hq * D)), lse(static_cast<std::size_t>(B * Hq));
  paged_kv_cache_view<f16> cache{tensor_view<const f16, sthd>(k.data(), {total_pages, page, Hkv, D}),  // [S,page,Hkv,D]
                                 tensor_view<const f16, sthv>(v.data(), {total_pages, page, Hkv, D}),  // [S,page,Hkv,D]
                                 tensor_view<const std::int32_t, bp>(table.data(), {B, maxp}),         // [B,P]
                                 tensor_view<const std::int32_t, flash_b>(lens.data(), {B})};          // [B]
  attention_decode_args<float, paged_kv_cache_view<f16>> a{
      tensor_view<const float, bthd>(q.data(), {B, 1, Hq, D}), cache,  // [B,1,Hq,D]
      tensor_view<float, bthv>(out.data(), {B, 1, Hq, D}),             // [B,1,Hq,D]
      tensor_view<float, bht>(lse.data(), {B, Hq, 1})};                // [B,Hq,1]
  attention_decode_options o;
  o.run = bench::run_ctx(st.range(1));
  for (auto _ : st) {
    attention_decode(a, o);
    benchmark::DoNotOptimize(out.data());
  }
  double keys = 0;
  for (auto l : lens) keys += l;
  bench::set_counters(st, 4.0 * Hq * keys * D, 2.0 * keys * Hkv * D * sizeof(f16), static_cast<double>(B));
}
BENCHMARK(BM_flash_attention_decode_paged)
    ->ArgNames({"Tkv", "threads"})
    ->ArgsProduct({{2048}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
