// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/ops_linear_attention.cpp: the linear-attention family in the parity tool (SPEC §5.2):
// linear_attn, simple_gla, retention, gla, rwkv6, hgrn, with "mode": auto | chunk | recurrent.
#include <cstdint>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "linear_io.hpp"
#include "registry.hpp"

namespace {

using namespace seqmix;
using parity::case_context;
using parity::read_linear_io;

/// scale (optional, default 1/sqrt(K)), chunk_size (optional), mode.
linear_options common_options(case_context& ctx) {
  linear_options o;
  o.scale = parity::linear_scale_option(ctx);
  o.chunk_size = ctx.option<index_t>("chunk_size", 0);
  o.mode = parity::linear_mode_option(ctx);
  return o;
}

void run_linear_attn(case_context& ctx) {
  const linear_options lo = common_options(ctx);
  const bool normalize = ctx.option<bool>("normalize", false);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx);
    auto args = io.template make<linear_attn_args<T>>();
    ctx.timed([&] {
      linear_attn<Backend>(args,
                           {.scale = lo.scale, .mode = lo.mode, .chunk_size = lo.chunk_size, .normalize = normalize});
    });
  });
}

void run_simple_gla(case_context& ctx) {
  const linear_options lo = common_options(ctx);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx);
    auto g = ctx.optional_input<T, bth>("g");                         // [B,T,H]
    auto gg = ctx.optional_input<float, layout<axis::H>>("g_gamma");  // [H]
    auto args = io.template make<simple_gla_args<T>>();
    args.g = g;
    args.g_gamma = gg;
    ctx.timed([&] { simple_gla<Backend>(args, lo); });
  });
}

void run_retention(case_context& ctx) {
  const linear_options lo = common_options(ctx);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx);
    auto args = io.template make<retention_args<T>>();
    ctx.timed([&] { retention<Backend>(args, lo); });
  });
}

void run_gla(case_context& ctx) {
  const linear_options lo = common_options(ctx);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx);
    auto gk = ctx.input<T, bthk>("gk");           // [B,T,H,K]
    auto gv = ctx.optional_input<T, bthv>("gv");  // [B,T,H,V]
    auto args = io.template make<gla_args<T>>();
    args.gk = gk;
    args.gv = gv;
    ctx.timed([&] { gla<Backend>(args, lo); });
  });
}

void run_rwkv6(case_context& ctx) {
  const linear_options lo = common_options(ctx);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx, "r");
    auto w = ctx.input<T, bthk>("w");  // [B,T,H,K]
    auto u = ctx.input<T, hk>("u");    // [H,K]
    auto args = io.template make<rwkv6_args<T>>();
    args.w = w;
    args.u = u;
    ctx.timed([&] { rwkv6<Backend>(args, lo); });
  });
}

void run_hgrn(case_context& ctx) {
  const linear_mode mode = parity::linear_mode_option(ctx);
  const index_t chunk = ctx.option<index_t>("chunk_size", 0);
  ctx.dispatch([&]<class T, class Backend>() {
    auto x = ctx.input<T, btd>("x");                                            // [B,T,D]
    auto g = ctx.input<T, btd>("g");                                            // [B,T,D]
    auto h0 = ctx.optional_input<float, nd>("initial_state");                   // [N,D]
    auto cu = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [N+1]
    const index_t B = x.template extent<axis::B>(), D = x.template extent<axis::D>();
    const index_t N = cu ? cu.extent<axis::I>() - 1 : B;
    auto o = ctx.output<T, btd>("o", x.shape());  // [B,T,D]
    tensor_view<float, nd> ht{};
    if (ctx.wants("final_state")) ht = ctx.output<float, nd>("final_state", {N, D});  // [N,D]
    ctx.timed([&] {
      hgrn<Backend>(hgrn_args<T>{.x = x, .g = g, .initial_state = h0, .cu_seqlens = cu, .o = o, .final_state = ht},
                    {.mode = mode, .chunk_size = chunk});
    });
  });
}

}  // namespace

SEQMIX_RUN_REGISTER("linear_attn", &run_linear_attn,
                    "q k [B,T,H,K], v [B,T,H,V] ([initial_state [N,H,K,V]] [cu_seqlens]) scale normalize chunk_size "
                    "-> o, final_state");
SEQMIX_RUN_REGISTER(
    "simple_gla", &run_simple_gla,
    "q k v, g [B,T,H] or g_gamma [H] ([initial_state] [cu_seqlens]) scale chunk_size -> o, final_state");
SEQMIX_RUN_REGISTER("retention", &run_retention,
                    "q k v ([initial_state] [cu_seqlens]) scale chunk_size -> o, final_state");
SEQMIX_RUN_REGISTER("gla", &run_gla,
                    "q k v, gk [B,T,H,K] ([gv [B,T,H,V]] [initial_state] [cu_seqlens]) scale chunk_size -> o, "
                    "final_state");
SEQMIX_RUN_REGISTER("rwkv6", &run_rwkv6,
                    "r k [B,T,H,K], v [B,T,H,V], w [B,T,H,K], u [H,K] ([initial_state] [cu_seqlens]) scale chunk_size "
                    "-> o, final_state");
SEQMIX_RUN_REGISTER("hgrn", &run_hgrn, "x g [B,T,D] ([initial_state [N,D]] [cu_seqlens]) chunk_size -> o, final_state");
