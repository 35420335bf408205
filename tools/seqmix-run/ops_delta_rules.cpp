// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/ops_delta_rules.cpp: the delta-rule ops of the linear-attention family in the parity tool
// (SPEC §5.2): delta_rule, gated_delta_rule (GVA, KDA gk, in-kernel transforms), rwkv7, with "mode".
#include <cstdint>
#include <optional>
#include <string>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "registry.hpp"

namespace {

using namespace seqmix;
using parity::case_context;

linear_mode delta_mode(case_context& ctx) {
  const std::string m = ctx.mode({"auto", "chunk", "recurrent"});
  return m == "chunk" ? linear_mode::chunk : m == "recurrent" ? linear_mode::recurrent : linear_mode::auto_;
}

std::optional<float> delta_scale(case_context& ctx) {
  if (!ctx.has_option("scale")) return std::nullopt;
  return static_cast<float>(ctx.option<double>("scale", 0.0));
}

/// o [B,T,HV,V] and (when the case names it) final_state [N,HV,K,V].
template <class T>
auto delta_outputs(case_context& ctx, index_t B, index_t T_, index_t HV, index_t K, index_t V, cu_seqlens_view cu) {
  const index_t N = cu ? cu.extent<axis::I>() - 1 : B;
  auto o = ctx.output<T, bthv>("o", {B, T_, HV, V});  // [B,T,HV,V]
  state_view ht{};
  if (ctx.wants("final_state")) ht = ctx.output<float, nhkv>("final_state", {N, HV, K, V});  // [N,HV,K,V]
  return std::pair{o, ht};
}

void run_delta_rule(case_context& ctx) {
  delta_rule_options opt{.scale = delta_scale(ctx), .mode = delta_mode(ctx)};
  opt.chunk_size = ctx.option<index_t>("chunk_size", 0);
  opt.use_qk_l2norm = ctx.option<bool>("use_qk_l2norm", false);
  ctx.dispatch([&]<class T, class Backend>() {
    auto q = ctx.input<T, bthk>("q");                                           // [B,T,H,K]
    auto k = ctx.input<T, bthk>("k");                                           // [B,T,H,K]
    auto v = ctx.input<T, bthv>("v");                                           // [B,T,H,V]
    const bool per_value = ctx.has_input("beta") && ctx.input_shape("beta").size() == 4;
    auto beta = per_value ? const_view<T, bth>{} : ctx.input<T, bth>("beta");   // [B,T,H]
    auto beta_v = per_value ? ctx.input<T, bthv>("beta") : const_view<T, bthv>{};  // [B,T,H,V]
    auto h0 = ctx.optional_input<float, nhkv>("initial_state");                 // [N,H,K,V]
    auto cu = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [N+1]
    auto outs = delta_outputs<T>(ctx, q.template extent<axis::B>(), q.template extent<axis::T>(),
                                    v.template extent<axis::H>(), q.template extent<axis::K>(),
                                    v.template extent<axis::V>(), cu);
    auto o = outs.first;    // [B,T,HV,V]
    auto ht = outs.second;  // [N,HV,K,V]
    ctx.timed([&] {
      delta_rule<Backend>(delta_rule_args<T>{.q = q, .k = k, .v = v, .beta = beta, .o = o, .initial_state = h0,
                                             .final_state = ht, .cu_seqlens = cu, .beta_v = beta_v},
                          opt);
    });
  });
}

void run_gated_delta_rule(case_context& ctx) {
  gated_delta_rule_options opt{.scale = delta_scale(ctx), .mode = delta_mode(ctx)};
  opt.chunk_size = ctx.option<index_t>("chunk_size", 0);
  opt.use_qk_l2norm = ctx.option<bool>("use_qk_l2norm", false);
  opt.beta_sigmoid = ctx.option<bool>("beta_sigmoid", false);
  opt.allow_neg_eigval = ctx.option<bool>("allow_neg_eigval", false);
  ctx.dispatch([&]<class T, class Backend>() {
    auto q = ctx.input<T, bthk>("q");                                           // [B,T,H,K]
    auto k = ctx.input<T, bthk>("k");                                           // [B,T,H,K]
    auto v = ctx.input<T, bthv>("v");                                           // [B,T,HV,V]
    auto g = ctx.optional_input<T, bth>("g");                                   // [B,T,HV]
    auto gk = ctx.optional_input<T, bthk>("gk");                                // [B,T,HV,K] (KDA)
    auto beta = ctx.input<T, bth>("beta");                                      // [B,T,HV]
    auto A_log = ctx.optional_input<float, layout<axis::H>>("A_log");           // [HV]
    const bool bias_k = ctx.has_input("dt_bias") && ctx.input_shape("dt_bias").size() == 2;
    auto dt_bias = bias_k ? const_view<float, layout<axis::H>>{}
                          : ctx.optional_input<float, layout<axis::H>>("dt_bias");  // [HV]
    auto dt_bias_k = bias_k ? ctx.input<float, hk>("dt_bias") : const_view<float, hk>{};  // [HV,K]
    auto h0 = ctx.optional_input<float, nhkv>("initial_state");                 // [N,HV,K,V]
    auto cu = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [N+1]
    auto outs = delta_outputs<T>(ctx, q.template extent<axis::B>(), q.template extent<axis::T>(),
                                    v.template extent<axis::H>(), q.template extent<axis::K>(),
                                    v.template extent<axis::V>(), cu);
    auto o = outs.first;    // [B,T,HV,V]
    auto ht = outs.second;  // [N,HV,K,V]
    ctx.timed([&] {
      gated_delta_rule<Backend>(gated_delta_rule_args<T>{.q = q, .k = k, .v = v, .g = g, .beta = beta, .o = o,
                                                         .initial_state = h0, .final_state = ht, .cu_seqlens = cu,
                                                         .gk = gk, .A_log = A_log, .dt_bias = dt_bias,
                                                         .dt_bias_k = dt_bias_k},
                                opt);
    });
  });
}

void run_rwkv7(case_context& ctx) {
  rwkv7_options opt{.scale = delta_scale(ctx), .mode = delta_mode(ctx)};
  opt.chunk_size = ctx.option<index_t>("chunk_size", 0);
  ctx.dispatch([&]<class T, class Backend>() {
    auto r = ctx.input<T, bthk>("r");                                           // [B,T,H,K]
    auto w = ctx.input<T, bthk>("w");                                           // [B,T,H,K]
    auto k = ctx.input<T, bthk>("k");                                           // [B,T,H,K]
    auto v = ctx.input<T, bthv>("v");                                           // [B,T,H,V]
    auto a = ctx.input<T, bthk>("a");                                           // [B,T,H,K]
    auto b = ctx.input<T, bthk>("b");                                           // [B,T,H,K]
    auto h0 = ctx.optional_input<float, nhkv>("initial_state");                 // [N,H,K,V]
    auto cu = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [N+1]
    auto outs = delta_outputs<T>(ctx, r.template extent<axis::B>(), r.template extent<axis::T>(),
                                    v.template extent<axis::H>(), r.template extent<axis::K>(),
                                    v.template extent<axis::V>(), cu);
    auto o = outs.first;    // [B,T,HV,V]
    auto ht = outs.second;  // [N,HV,K,V]
    ctx.timed([&] {
      rwkv7<Backend>(rwkv7_args<T>{.r = r, .w = w, .k = k, .v = v, .a = a, .b = b, .o = o, .initial_state = h0,
                                   .final_state = ht, .cu_seqlens = cu},
                     opt);
    });
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
