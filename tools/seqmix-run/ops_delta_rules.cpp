// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/ops_delta_rules.cpp: the delta-rule ops of the linear-attention family in the parity tool
// (SPEC §5.2): delta_rule, gated_delta_rule (GVA, KDA gk, in-kernel transforms), rwkv7, with "mode".
#include <cstdint>
#include <optional>
#include <string>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "linear_io.hpp"
#include "registry.hpp"

namespace {

using namespace seqmix;
using parity::case_context;
using parity::read_linear_io;

void run_delta_rule(case_context& ctx) {
  delta_rule_options opt{.scale = parity::linear_scale_option(ctx), .mode = parity::linear_mode_option(ctx)};
  opt.chunk_size = ctx.option<index_t>("chunk_size", 0);
  opt.use_qk_l2norm = ctx.option<bool>("use_qk_l2norm", false);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx);
    const bool per_value = ctx.has_input("beta") && ctx.input_shape("beta").size() == 4;
    auto beta = per_value ? const_view<T, bth>{} : ctx.input<T, bth>("beta");      // [B,T,H]
    auto beta_v = per_value ? ctx.input<T, bthv>("beta") : const_view<T, bthv>{};  // [B,T,H,V]
    auto args = io.template make<delta_rule_args<T>>();
    args.beta = beta;
    args.beta_v = beta_v;
    ctx.timed([&] { delta_rule<Backend>(args, opt); });
  });
}

void run_gated_delta_rule(case_context& ctx) {
  gated_delta_rule_options opt{.scale = parity::linear_scale_option(ctx), .mode = parity::linear_mode_option(ctx)};
  opt.chunk_size = ctx.option<index_t>("chunk_size", 0);
  opt.use_qk_l2norm = ctx.option<bool>("use_qk_l2norm", false);
  opt.beta_sigmoid = ctx.option<bool>("beta_sigmoid", false);
  opt.allow_neg_eigval = ctx.option<bool>("allow_neg_eigval", false);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx);
    auto g = ctx.optional_input<T, bth>("g");                          // [B,T,HV]
    auto gk = ctx.optional_input<T, bthk>("gk");                       // [B,T,HV,K] (KDA)
    auto beta = ctx.input<T, bth>("beta");                             // [B,T,HV]
    auto A_log = ctx.optional_input<float, layout<axis::H>>("A_log");  // [HV]
    const bool bias_k = ctx.has_input("dt_bias") && ctx.input_shape("dt_bias").size() == 2;
    auto dt_bias =
        bias_k ? const_view<float, layout<axis::H>>{} : ctx.optional_input<float, layout<axis::H>>("dt_bias");  // [HV]
    auto dt_bias_k = bias_k ? ctx.input<float, hk>("dt_bias") : const_view<float, hk>{};  // [HV,K]
    auto args = io.template make<gated_delta_rule_args<T>>();
    args.g = g;
    args.beta = beta;
    args.gk = gk;
    args.A_log = A_log;
    args.dt_bias = dt_bias;
    args.dt_bias_k = dt_bias_k;
    ctx.timed([&] { gated_delta_rule<Backend>(args, opt); });
  });
}

void run_rwkv7(case_context& ctx) {
  rwkv7_options opt{.scale = parity::linear_scale_option(ctx), .mode = parity::linear_mode_option(ctx)};
  opt.chunk_size = ctx.option<index_t>("chunk_size", 0);
  ctx.dispatch([&]<class T, class Backend>() {
    const auto io = read_linear_io<T>(ctx, "r");
    auto w = ctx.input<T, bthk>("w");  // [B,T,H,K]
    auto a = ctx.input<T, bthk>("a");  // [B,T,H,K]
    auto b = ctx.input<T, bthk>("b");  // [B,T,H,K]
    auto args = io.template make<rwkv7_args<T>>();
    args.w = w;
    args.a = a;
    args.b = b;
    ctx.timed([&] { rwkv7<Backend>(args, opt); });
  });
}

}  // namespace

SEQMIX_RUN_REGISTER("delta_rule", &run_delta_rule,
                    "q k [B,T,H,K], v [B,T,H,V], beta [B,T,H] or [B,T,H,V] ([initial_state [N,H,K,V]] [cu_seqlens]) "
                    "scale use_qk_l2norm chunk_size -> o, final_state");
SEQMIX_RUN_REGISTER("gated_delta_rule", &run_gated_delta_rule,
                    "q k [B,T,H,K], v [B,T,HV,V], g [B,T,HV] or gk [B,T,HV,K], beta [B,T,HV] ([A_log [HV]] "
                    "[dt_bias [HV] or [HV,K]] [initial_state [N,HV,K,V]] [cu_seqlens]) scale use_qk_l2norm "
                    "beta_sigmoid allow_neg_eigval chunk_size -> o, final_state");
SEQMIX_RUN_REGISTER("rwkv7", &run_rwkv7,
                    "r w k a b [B,T,H,K], v [B,T,H,V] ([initial_state [N,H,K,V]] [cu_seqlens]) scale chunk_size "
                    "-> o, final_state");
