// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/ops_flash_attention.cpp: softmax attention in the parity tool (SPEC §5.2): `attention`
// (prefill, varlen) and `attention_decode` (contiguous or paged KV cache).
#include <cstdint>
#include <optional>
#include <string>

#include <seqmix/ops/flash_attention/flash_attention.hpp>

#include "registry.hpp"

namespace {

using namespace seqmix;
using parity::case_context;

std::optional<double> scale_option(case_context& ctx) {
  if (ctx.has_option("scale")) return ctx.option<double>("scale", 0.0);
  return std::nullopt;
}

void run_attention(case_context& ctx) {
  attention_options o;
  o.scale = scale_option(ctx);
  o.causal = ctx.option<bool>("causal", false);
  o.window_left = ctx.option<index_t>("window_left", -1);
  o.window_right = ctx.option<index_t>("window_right", -1);
  o.softcap = ctx.option<double>("softcap", 0.0);
  ctx.dispatch([&]<class T, class Backend>() {
    auto q = ctx.input<T, bthd>("q");                                                  // [B,Tq,Hq,D]
    auto k = ctx.input<T, bthd>("k");                                                  // [B,Tk,Hkv,D]
    auto v = ctx.input<T, bthv>("v");                                                  // [B,Tk,Hkv,Dv]
    auto slopes = ctx.optional_input<float, flash_h>("alibi_slopes");                  // [Hq]
    auto sinks = ctx.optional_input<float, flash_h>("sinks");                          // [Hq]
    auto cu_q = ctx.optional_input<std::int32_t, flash_i>("cu_seqlens_q");             // [N+1]
    auto cu_k = ctx.optional_input<std::int32_t, flash_i>("cu_seqlens_k");             // [N+1]
    const index_t B = q.template extent<axis::B>(), Tq = q.template extent<axis::T>();
    const index_t Hq = q.template extent<axis::H>(), Dv = v.template extent<axis::V>();
    auto out = ctx.output<T, bthv>("o", {B, Tq, Hq, Dv});                              // [B,Tq,Hq,Dv]
    tensor_view<float, bht> lse{};
    if (ctx.wants("lse")) lse = ctx.output<float, bht>("lse", {B, Hq, Tq});             // [B,Hq,Tq]
    const attention_args<T> a{q, k, v, out, lse, slopes, sinks, cu_q, cu_k};
    ctx.timed([&] { attention<Backend>(a, o); });
  });
}

void run_attention_decode(case_context& ctx) {
  attention_decode_options o;
  o.scale = scale_option(ctx);
  o.softcap = ctx.option<double>("softcap", 0.0);
  o.window_left = ctx.option<index_t>("window_left", -1);
  o.num_splits = ctx.option<index_t>("num_splits", 0);
  ctx.dispatch([&]<class T, class Backend>() {
    auto q = ctx.input<T, bthd>("q");                                                  // [B,Tq,Hq,D]
    auto lens = ctx.input<std::int32_t, flash_b>("cache_seqlens");                     // [B]
    auto slopes = ctx.optional_input<float, flash_h>("alibi_slopes");                  // [Hq]
    auto sinks = ctx.optional_input<float, flash_h>("sinks");                          // [Hq]
    const index_t B = q.template extent<axis::B>(), Tq = q.template extent<axis::T>();
    const index_t Hq = q.template extent<axis::H>();
    auto run = [&](auto cache, index_t Dv) {
      using Cache = decltype(cache);
      auto out = ctx.output<T, bthv>("o", {B, Tq, Hq, Dv});                            // [B,Tq,Hq,Dv]
      tensor_view<float, bht> lse{};
      if (ctx.wants("lse")) lse = ctx.output<float, bht>("lse", {B, Hq, Tq});           // [B,Hq,Tq]
      const attention_decode_args<T, Cache> a{q, cache, out, lse, slopes, sinks};
      ctx.timed([&] { attention_decode<Backend>(a, o); });
    };
    if (ctx.has_input("block_table")) {
      auto kc = ctx.input<T, sthd>("k_cache");                                         // [num_blocks,page,Hkv,D]
      auto vc = ctx.input<T, sthv>("v_cache");                                         // [num_blocks,page,Hkv,Dv]
      auto bt = ctx.input<std::int32_t, bp>("block_table");                            // [B,P]
      run(paged_kv_cache_view<T>{kc, vc, bt, lens}, vc.template extent<axis::V>());
    } else {
      auto kc = ctx.input<T, bthd>("k_cache");                                         // [B,Tmax,Hkv,D]
      auto vc = ctx.input<T, bthv>("v_cache");                                         // [B,Tmax,Hkv,Dv]
      run(kv_cache_view<T>{kc, vc, lens}, vc.template extent<axis::V>());
    }
  });
}

}  // namespace

SEQMIX_RUN_REGISTER("attention", &run_attention,
                    "q [B,Tq,Hq,D] k [B,Tk,Hkv,D] v [B,Tk,Hkv,Dv] ([alibi_slopes [Hq]] [sinks [Hq]] [cu_seqlens_q "
                    "cu_seqlens_k [N+1]]) {scale causal window_left window_right softcap} -> o [B,Tq,Hq,Dv], lse [B,Hq,Tq]");
SEQMIX_RUN_REGISTER("attention_decode", &run_attention_decode,
                    "q [B,Tq,Hq,D] k_cache v_cache [B,Tmax,Hkv,D|Dv] or [num_blocks,page,Hkv,D|Dv] with block_table "
                    "[B,P], cache_seqlens [B] ([alibi_slopes] [sinks]) {scale softcap window_left num_splits} -> o, lse");
