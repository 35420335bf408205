// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/ops_ssm_scan.cpp: the SSM family in the parity tool (SPEC §5.2): selective_scan, ssd
// ("mode": auto | chunk | recurrent), selective_state_update, causal_conv1d, causal_conv1d_update.
#include <cstdint>
#include <string>

#include <seqmix/ops/ssm_scan/ssm_scan.hpp>

#include "registry.hpp"

namespace {

using namespace seqmix;
using parity::case_context;
using cu_view_t = const_view<std::int64_t, layout<axis::I>>;

/// Optional per-head input [H] seen as [H,P] (P-stride 0), or a full [H,P] input.
template <class T>
const_view<T, hp> per_head_or_hp(case_context& ctx, const std::string& name, index_t P) {
  if (!ctx.has_input(name)) return {};
  if (ctx.input_shape(name).size() == 1) {
    auto v = ctx.flat_input<T>(name);  // [H]
    return const_view<T, hp>(v.data(), {v.template extent<axis::I>(), P}, {1, 0});
  }
  return ctx.input<T, hp>(name);  // [H,P]
}

void run_selective_scan(case_context& ctx) {
  const bool softplus = ctx.option<bool>("delta_softplus", false);
  ctx.dispatch([&]<class T, class Backend>() {
    selective_scan_args<T> a;
    a.u = ctx.input<T, bdl>("u");          // [B,D,L]
    a.delta = ctx.input<T, bdl>("delta");  // [B,D,L]
    a.A = ctx.input<T, dn>("A");           // [D,N]
    if (ctx.input_shape("B").size() == 2) a.B_fixed = ctx.input<T, dn>("B");  // [D,N]
    else a.B = ctx.input<T, bgnl>("B");                                         // [B,G,N,L]
    if (ctx.input_shape("C").size() == 2) a.C_fixed = ctx.input<T, dn>("C");  // [D,N]
    else a.C = ctx.input<T, bgnl>("C");                                         // [B,G,N,L]
    a.D = ctx.optional_input<T, ssm_layouts::d>("D");                  // [D]
    a.z = ctx.optional_input<T, bdl>("z");                             // [B,D,L]
    a.delta_bias = ctx.optional_input<T, ssm_layouts::d>("delta_bias");  // [D]
    a.initial_state = ctx.optional_input<float, bdn>("initial_state");   // [B,D,N]
    a.cu_seqlens = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [Nseq+1]
    const index_t B = a.u.template extent<axis::B>(), D = a.u.template extent<axis::D>();
    const index_t L = a.u.template extent<axis::L>(), N = a.A.template extent<axis::N>();
    const index_t ns = a.cu_seqlens ? a.cu_seqlens.template extent<axis::I>() - 1 : B;
    a.out = ctx.output<T, bdl>("out", {B, D, L});  // [B,D,L]
    if (ctx.wants("last_state")) a.last_state = ctx.output<float, bdn>("last_state", {ns, D, N});  // [B,D,N]
    ctx.timed([&] { selective_scan<Backend>(a, {.delta_softplus = softplus, .run = {}}); });
  });
}

void run_ssd(case_context& ctx) {
  const std::string m = ctx.mode({"auto", "chunk", "recurrent"});
  ssd_options o;
  o.mode = m == "chunk" ? ssd_mode::chunk : m == "recurrent" ? ssd_mode::recurrent : ssd_mode::auto_select;
  o.dt_softplus = ctx.option<bool>("dt_softplus", false);
  o.dt_min = ctx.option<double>("dt_min", 0.0);
  if (ctx.has_option("dt_max")) o.dt_max = ctx.option<double>("dt_max", 0.0);
  o.chunk_size = ctx.option<index_t>("chunk_size", 256);
  ctx.dispatch([&]<class T, class Backend>() {
    ssd_args<T> a;
    a.x = ctx.input<T, bthp>("x");                      // [B,L,H,P]
    a.dt = ctx.input<T, bth>("dt");                     // [B,L,H]
    a.A = ctx.input<T, ssm_layouts::h>("A");            // [H]
    a.B = ctx.input<T, btgn>("B");                      // [B,L,G,N]
    a.C = ctx.input<T, btgn>("C");                      // [B,L,G,N]
    const index_t B = a.x.template extent<axis::B>(), L = a.x.template extent<axis::T>();
    const index_t H = a.x.template extent<axis::H>(), P = a.x.template extent<axis::P>();
    const index_t N = a.B.template extent<axis::N>();
    a.D = per_head_or_hp<T>(ctx, "D", P);            // [H] or [H,P]
    a.z = ctx.optional_input<T, bthp>("z");             // [B,L,H,P]
    a.dt_bias = ctx.optional_input<T, ssm_layouts::h>("dt_bias");               // [H]
    a.initial_states = ctx.optional_input<float, bhpn>("initial_states");       // [B,H,P,N]
    a.seq_idx = ctx.optional_input<std::int64_t, bt>("seq_idx");                // [B,L]
    a.cu_seqlens = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [Nseq+1]
    const index_t ns = a.cu_seqlens ? a.cu_seqlens.template extent<axis::I>() - 1 : B;
    a.out = ctx.output<T, bthp>("out", {B, L, H, P});  // [B,L,H,P]
    if (ctx.wants("final_states")) a.final_states = ctx.output<float, bhpn>("final_states", {ns, H, P, N});
    ctx.timed([&] { ssd<Backend>(a, o); });
  });
}

/// Mamba-2 shapes (state [B,H,P,N], x [B,H,P], dt [B,H], A [H], B, C [B,G,N], D, dt_bias [H]) or Mamba-1
/// shapes (state [B,D,N], x [B,D], dt [B,D], A [D,N], B, C [B,N], D, dt_bias [D]): the latter as H = 1, P = D.
void run_selective_state_update(case_context& ctx) {
  const bool softplus = ctx.option<bool>("dt_softplus", false);
  const bool mamba1 = ctx.input_shape("state").size() == 3;
  ctx.dispatch([&]<class T, class Backend>() {
    selective_state_update_args<T> a;
    a.state_batch_indices = ctx.optional_input<std::int64_t, ssm_layouts::b>("state_batch_indices");  // [B]
    if (!mamba1) {
      a.state = ctx.inout<float, bhpn>("state", "state");  // [Bs,H,P,N]
      a.x = ctx.input<T, bhp>("x");                        // [B,H,P]
      const index_t B = a.x.template extent<axis::B>(), H = a.x.template extent<axis::H>();
      const index_t P = a.x.template extent<axis::P>();
      auto dt = ctx.input<T, bh>("dt");  // [B,H]
      a.dt = const_view<T, bhp>(dt.data(), {dt.template extent<axis::B>(), dt.template extent<axis::H>(), P},
                                {dt.template stride<axis::B>(), dt.template stride<axis::H>(), 0});
      auto A = ctx.input<T, ssm_layouts::h>("A");  // [H]
      a.B = ctx.input<T, bgn>("B");                // [B,G,N]
      a.C = ctx.input<T, bgn>("C");                // [B,G,N]
      const index_t N = a.B.template extent<axis::N>();
      a.A = const_view<T, ssm_layouts::hpn>(A.data(), {A.template extent<axis::H>(), P, N}, {1, 0, 0});
      a.D = per_head_or_hp<T>(ctx, "D", P);
      a.dt_bias = per_head_or_hp<T>(ctx, "dt_bias", P);
      a.z = ctx.optional_input<T, bhp>("z");  // [B,H,P]
      a.out = ctx.output<T, bhp>("out", {B, H, P});
    } else {
      auto st = ctx.inout<float, bdn>("state", "state");  // [Bs,D,N]
      const index_t Bs = st.template extent<axis::B>(), D = st.template extent<axis::D>();
      const index_t N = st.template extent<axis::N>();
      a.state = tensor_view<float, bhpn>(st.data(), {Bs, 1, D, N}, {D * N, D * N, N, 1});
      auto as_bhp = [&](const_view<T, bd> v) {  // [B,D] -> [B,1,D]
        return const_view<T, bhp>(v.data(), {v.template extent<axis::B>(), 1, v.template extent<axis::D>()},
                                  {v.template stride<axis::B>(), 0, v.template stride<axis::D>()});
      };
      a.x = as_bhp(ctx.input<T, bd>("x"));    // [B,D]
      a.dt = as_bhp(ctx.input<T, bd>("dt"));  // [B,D]
      if (ctx.has_input("z")) a.z = as_bhp(ctx.input<T, bd>("z"));
      auto A = ctx.input<T, dn>("A");  // [D,N]
      a.A = const_view<T, ssm_layouts::hpn>(A.data(), {1, A.template extent<axis::D>(), A.template extent<axis::N>()},
                                            {0, A.template stride<axis::D>(), A.template stride<axis::N>()});
      auto as_bgn = [&](const_view<T, bd> v) {  // [B,N] -> [B,1,N]
        return const_view<T, bgn>(v.data(), {v.template extent<axis::B>(), 1, v.template extent<axis::D>()},
                                  {v.template stride<axis::B>(), 0, v.template stride<axis::D>()});
      };
      a.B = as_bgn(ctx.input<T, bd>("B"));  // [B,N]
      a.C = as_bgn(ctx.input<T, bd>("C"));  // [B,N]
      auto vec = [&](const std::string& name) -> const_view<T, hp> {  // [D] -> [1,D]
        if (!ctx.has_input(name)) return {};
        auto v = ctx.input<T, ssm_layouts::d>(name);
        return const_view<T, hp>(v.data(), {1, v.template extent<axis::D>()}, {0, v.template stride<axis::D>()});
      };
      a.D = vec("D");
      a.dt_bias = vec("dt_bias");
      const index_t B = a.x.template extent<axis::B>();
      auto out = ctx.output<T, bd>("out", {B, D});  // [B,D]
      a.out = tensor_view<T, bhp>(out.data(), {B, 1, D}, {D, 0, 1});
      (void)N;
    }
    ctx.timed([&] { selective_state_update<Backend>(a, {.dt_softplus = softplus, .run = {}}); });
  });
}

conv_activation parse_activation(case_context& ctx) {
  const std::string act = ctx.option<std::string>("activation", "none");
  if (act == "silu" || act == "swish") return conv_activation::silu;
  if (act != "none") throw parity::case_error("option activation = \"" + act + "\", expected \"none\" or \"silu\"");
  return conv_activation::none;
}

void run_causal_conv1d(case_context& ctx) {
  const conv_activation act = parse_activation(ctx);
  ctx.dispatch([&]<class T, class Backend>() {
    causal_conv1d_args<T> a;
    a.x = ctx.input<T, bdl>("x");                                        // [B,D,L]
    a.weight = ctx.input<T, dw>("weight");                               // [D,W]
    a.bias = ctx.optional_input<T, ssm_layouts::d>("bias");              // [D]
    a.initial_states = ctx.optional_input<T, bdw>("initial_states");     // [B,D,W-1]
    a.cu_seqlens = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [Nseq+1]
    const index_t B = a.x.template extent<axis::B>(), D = a.x.template extent<axis::D>();
    const index_t L = a.x.template extent<axis::L>(), W = a.weight.template extent<axis::W>();
    const index_t ns = a.cu_seqlens ? a.cu_seqlens.template extent<axis::I>() - 1 : B;
    a.out = ctx.output<T, bdl>("out", {B, D, L});  // [B,D,L]
    if (ctx.wants("final_states")) a.final_states = ctx.output<T, bdw>("final_states", {ns, D, std::max<index_t>(W - 1, 0)});
    ctx.timed([&] { causal_conv1d<Backend>(a, {.activation = act, .run = {}}); });
  });
}

void run_causal_conv1d_update(case_context& ctx) {
  const conv_activation act = parse_activation(ctx);
  ctx.dispatch([&]<class T, class Backend>() {
    causal_conv1d_update_args<T> a;
    a.x = ctx.input<T, bdl>("x");                                       // [B,D,L]
    a.conv_state = ctx.inout<T, ssm_layouts::bds>("conv_state", "conv_state");  // [Bs,D,S]
    a.weight = ctx.input<T, dw>("weight");                              // [D,W]
    a.bias = ctx.optional_input<T, ssm_layouts::d>("bias");             // [D]
    a.cache_seqlens = ctx.optional_input<std::int64_t, ssm_layouts::b>("cache_seqlens");            // [B]
    a.conv_state_indices = ctx.optional_input<std::int64_t, ssm_layouts::b>("conv_state_indices");  // [B]
    a.out = ctx.output<T, bdl>("out", a.x.shape());  // [B,D,L]
    ctx.timed([&] { causal_conv1d_update<Backend>(a, {.activation = act, .run = {}}); });
  });
}

}  // namespace

SEQMIX_RUN_REGISTER("selective_scan", &run_selective_scan,
                    "u delta [B,D,L], A [D,N], B C [B,G,N,L] or [D,N] ([D [D]] [z [B,D,L]] [delta_bias [D]] "
                    "[initial_state [B,D,N]] [cu_seqlens]) delta_softplus -> out [B,D,L], last_state [B,D,N]");
SEQMIX_RUN_REGISTER("ssd", &run_ssd,
                    "x [B,L,H,P], dt [B,L,H], A [H], B C [B,L,G,N] ([D [H] or [H,P]] [z] [dt_bias [H]] "
                    "[initial_states [B,H,P,N]] [seq_idx [B,L]] [cu_seqlens]) dt_softplus dt_min dt_max chunk_size "
                    "-> out [B,L,H,P], final_states [B,H,P,N]");
SEQMIX_RUN_REGISTER("selective_state_update", &run_selective_state_update,
                    "state [B,H,P,N], x [B,H,P], dt [B,H], A [H], B C [B,G,N] ([D [H]] [z] [dt_bias [H]] "
                    "[state_batch_indices [B]]) or Mamba-1 state [B,D,N], x dt [B,D], A [D,N], B C [B,N] "
                    "dt_softplus -> out, state");
SEQMIX_RUN_REGISTER("causal_conv1d", &run_causal_conv1d,
                    "x [B,D,L], weight [D,W] ([bias [D]] [initial_states [B,D,W-1]] [cu_seqlens]) activation "
                    "-> out [B,D,L], final_states [B,D,W-1]");
SEQMIX_RUN_REGISTER("causal_conv1d_update", &run_causal_conv1d_update,
                    "x [B,D,L], conv_state [Bs,D,S] ([bias [D]] [cache_seqlens [B]] [conv_state_indices [B]]) "
                    "activation -> out, conv_state");
