// SPDX-License-Identifier: Apache-2.0
// examples/02_attention_decode.cpp: a Llama-style attention layer (Hq=8, Hkv=2, D=128) prefills a 512-token
// prompt with causal flash attention, stores K/V in a paged f16 KV cache, then decodes 32 tokens one at a
// time against the cache; the last decode step is checked against one full causal pass.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <seqmix/ops/flash_attention/flash_attention.hpp>

using namespace seqmix;
using clock_type = std::chrono::steady_clock;

namespace {
double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}
void fill(std::vector<float>& v, std::mt19937& g) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (auto& x : v) x = n(g);
}
}  // namespace

int main() {
  const auto start = clock_type::now();
  const index_t Hq = 8, Hkv = 2, D = 128, prompt = 512, steps = 32, page = 16;
  const index_t total = prompt + steps;
  std::mt19937 g(7);

  // K and V of every token, in the order a model would produce them (kept here only for the final check).
  std::vector<float> k_all(static_cast<std::size_t>(total * Hkv * D)), v_all(k_all.size());
  std::vector<float> q_all(static_cast<std::size_t>(total * Hq * D));
  fill(k_all, g);
  fill(v_all, g);
  fill(q_all, g);
  auto k_view = [&](index_t t0, index_t t1) {  // [1,t1-t0,Hkv,D]
    return tensor_view<const float, bthd>(k_all.data() + t0 * Hkv * D, {1, t1 - t0, Hkv, D});
  };
  auto v_view = [&](index_t t0, index_t t1) {  // [1,t1-t0,Hkv,D]
    return tensor_view<const float, bthv>(v_all.data() + t0 * Hkv * D, {1, t1 - t0, Hkv, D});
  };
  auto q_view = [&](index_t t0, index_t t1) {  // [1,t1-t0,Hq,D]
    return tensor_view<const float, bthd>(q_all.data() + t0 * Hq * D, {1, t1 - t0, Hq, D});
  };

  // 1. Prefill: causal attention over the prompt.
  std::vector<float> o_prefill(static_cast<std::size_t>(prompt * Hq * D));
  tensor_view<float, bthv> o_p(o_prefill.data(), {1, prompt, Hq, D});  // [1,T,Hq,D]
  auto t0 = clock_type::now();
  attention(attention_args<float>{.q = q_view(0, prompt), .k = k_view(0, prompt), .v = v_view(0, prompt), .o = o_p},
            attention_options{.causal = true});
  const double prefill_ms = ms_since(t0);
  std::printf("prefill: causal attention, T=%td, Hq=%td, Hkv=%td, D=%td: %.2f ms (%.1f GFLOP/s)\n", prompt, Hq, Hkv,
              D, prefill_ms, 2.0 * Hq * prompt * prompt * D / (prefill_ms * 1e6));

  // 2. The prompt's K/V go into a paged f16 cache: pages of 16 tokens, handed out in a scrambled order as an
  //    engine's allocator would after some churn.
  const index_t num_blocks = (total + page - 1) / page + 4;
  std::vector<std::int32_t> order(static_cast<std::size_t>(num_blocks));
  for (index_t i = 0; i < num_blocks; ++i) order[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7) % num_blocks);
  paged_kv_cache<f16> cache(1, num_blocks, page, num_blocks, Hkv, D, D, order);
  cache.append(k_view(0, prompt), v_view(0, prompt));
  std::printf("paged KV cache: f16, %td pages of %td tokens, %td used after the prompt\n", num_blocks, page,
              num_blocks - cache.free_pages());

  // 3. Decode: each step appends the new token's K/V and attends over the whole cache.
  std::vector<float> o_step(static_cast<std::size_t>(Hq * D));
  tensor_view<float, bthv> o_s(o_step.data(), {1, 1, Hq, D});  // [1,1,Hq,D]
  t0 = clock_type::now();
  for (index_t t = prompt; t < total; ++t) {
    cache.append(k_view(t, t + 1), v_view(t, t + 1));
    attention_decode(attention_decode_args<float, paged_kv_cache_view<f16>>{.q = q_view(t, t + 1), .cache = cache.view(), .o = o_s});
  }
  const double decode_ms = ms_since(t0);
  std::printf("decode: %td steps against %td..%td cached tokens: %.3f ms per token\n", steps, prompt + 1, total,
              decode_ms / static_cast<double>(steps));

  // 4. Check: the last step equals one causal pass of the last query over every token's (f16-rounded) K/V.
  std::vector<float> k_r(k_all), v_r(v_all);
  for (auto& x : k_r) x = to_float(from_float<f16>(x));
  for (auto& x : v_r) x = to_float(from_float<f16>(x));
  std::vector<float> o_ref(o_step.size());
  attention(attention_args<float>{.q = q_view(total - 1, total),
                                  .k = tensor_view<const float, bthd>(k_r.data(), {1, total, Hkv, D}),
                                  .v = tensor_view<const float, bthv>(v_r.data(), {1, total, Hkv, D}),
                                  .o = tensor_view<float, bthv>(o_ref.data(), {1, 1, Hq, D})},
            attention_options{.causal = true});
  double err = 0;
  for (std::size_t i = 0; i < o_ref.size(); ++i) err = std::max(err, std::abs(static_cast<double>(o_ref[i] - o_step[i])));
  std::printf("last decode step vs one full causal pass over %td tokens: max |diff| = %.2e\n", total, err);
  std::printf("02_attention_decode: done in %.1f ms\n", ms_since(start));
  return err < 1e-4 ? 0 : 1;
}
