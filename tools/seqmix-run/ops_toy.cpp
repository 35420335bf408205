// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/ops_toy.cpp: the foundation's own ops, so the tool is testable before any family lands:
// "ema" and "ema_update" (compose/toy_layer.hpp) and "identity" (a copy through the case's dtype, for testing the
// tool).
#include <algorithm>
#include <cstdint>
#include <vector>

#include <seqmix/compose/toy_layer.hpp>
#include <seqmix/core/check.hpp>
#include <seqmix/runtime/workspace.hpp>

#include "registry.hpp"

namespace {

using namespace seqmix;
using parity::case_context;

/// ema: x [B,T,D], decay [D] ([initial_state [B,D]]) -> y [B,T,D] (= x + h), final_state [B,D].
/// The layer computes in float32 for every dtype (it has no reference path); bf16/f16 cases round x first.
void run_ema(case_context& ctx) {
  ctx.dispatch([&]<class T, class Backend>() {
    auto x = ctx.input<T, btd>("x");                           // [B,T,D]
    auto decay = ctx.input<float, layout<axis::D>>("decay");   // [D]
    auto h0 = ctx.optional_input<float, bd>("initial_state");  // [B,D] or empty
    const index_t nb = x.template extent<axis::B>(), nd = x.template extent<axis::D>();
    const check c("ema");
    c.same_extent<axis::D>("decay", decay, "x", x);
    if (h0) {
      c.same_extent<axis::B>("initial_state", h0, "x", x);
      c.same_extent<axis::D>("initial_state", h0, "x", x);
    }
    std::vector<float> xs(static_cast<std::size_t>(x.size()));
    std::transform(x.data(), x.data() + x.size(), xs.begin(), [](T v) { return to_float(v); });
    const ema_layer layer(std::vector<float>(decay.data(), decay.data() + nd));
    auto y = ctx.output<float, btd>("y", x.shape());           // [B,T,D]
    auto ht = ctx.output<float, bd>("final_state", {nb, nd});  // [B,D]
    workspace ws;
    auto st = layer.make_state(nb, x.template extent<axis::T>());
    ctx.timed([&] {
      std::copy(xs.begin(), xs.end(), y.data());
      if (h0)
        std::copy(h0.data(), h0.data() + h0.size(), st.h.begin());
      else
        std::fill(st.h.begin(), st.h.end(), 0.0f);
      layer.forward(y, st, ws);
    });
    std::copy(st.h.begin(), st.h.end(), ht.data());
  });
}

/// ema_update: x [B,T,D], decay [D], state [B,D] -> y [B,T,D], state [B,D] (updated in place): the in/out
/// state form (as selective_state_update's), using ctx.inout so --time restores the state between runs.
void run_ema_update(case_context& ctx) {
  ctx.dispatch([&]<class T, class Backend>() {
    auto x = ctx.input<T, btd>("x");                          // [B,T,D]
    auto decay = ctx.input<float, layout<axis::D>>("decay");  // [D]
    auto state = ctx.inout<float, bd>("state", "state");      // [B,D] in/out
    const index_t nb = x.template extent<axis::B>(), nd = x.template extent<axis::D>();
    const check c("ema_update");
    c.same_extent<axis::D>("decay", decay, "x", x);
    c.same_extent<axis::B>("state", state, "x", x);
    c.same_extent<axis::D>("state", state, "x", x);
    std::vector<float> xs(static_cast<std::size_t>(x.size()));
    std::transform(x.data(), x.data() + x.size(), xs.begin(), [](T v) { return to_float(v); });
    const ema_layer layer(std::vector<float>(decay.data(), decay.data() + nd));
    auto y = ctx.output<float, btd>("y", x.shape());  // [B,T,D]
    workspace ws;
    auto st = layer.make_state(nb, x.template extent<axis::T>());
    ctx.timed([&] {
      std::copy(xs.begin(), xs.end(), y.data());
      std::copy(state.data(), state.data() + state.size(), st.h.begin());
      layer.forward(y, st, ws);
      std::copy(st.h.begin(), st.h.end(), state.data());
    });
  });
}

/// identity: x (any rank; float or integer file) -> y = sign * scale * x, passed through the case's dtype
/// (bf16/f16 round, float64 exact; integer files stay exact), sign = -1 when `negate`; optional idx (any rank,
/// read as int32: integer files, or float files holding integers) -> idx_out = idx + offset; option add (a list)
/// adds add[i % size] to y[i]. Modes
/// auto/chunk/recurrent all copy: the op exists to test the tool's reading, rounding, option and mode handling.
void run_identity(case_context& ctx) {
  ctx.mode({"auto", "chunk", "recurrent"});
  const double scale = ctx.option<double>("scale", 1.0) * (ctx.option<bool>("negate", false) ? -1.0 : 1.0);
  const auto offset = ctx.option<std::int64_t>("offset", 0);
  const auto add = ctx.option<std::vector<double>>("add", {});  // y[i] += add[i % add.size()]
  const std::vector<index_t> shape = ctx.input_shape("x");
  tensor_view<const std::int32_t, layout<axis::I>> idx;
  tensor_view<double, layout<axis::I>> idx_out;
  if (ctx.has_input("idx")) {
    idx = ctx.flat_input<std::int32_t>("idx");                             // [numel]
    idx_out = ctx.flat_output<double>("idx_out", ctx.input_shape("idx"));  // [numel]
  }
  auto added = [&](index_t i) { return add.empty() ? 0.0 : add[static_cast<std::size_t>(i) % add.size()]; };
  auto copy_idx = [&] {
    for (index_t i = 0; i < idx.size(); ++i) idx_out(i) = static_cast<double>(idx(i) + offset);
  };
  if (parity::npy_is_integer(ctx.input_file_dtype("x"))) {
    auto x = ctx.flat_input<std::int64_t>("x");    // [numel]
    auto y = ctx.flat_output<double>("y", shape);  // [numel]
    ctx.timed([&] {
      for (index_t i = 0; i < x.size(); ++i) y(i) = scale * static_cast<double>(x(i)) + added(i);
      copy_idx();
    });
    return;
  }
  ctx.dispatch([&]<class T, class Backend>() {
    auto x = ctx.flat_input<T>("x");               // [numel]
    auto y = ctx.flat_output<double>("y", shape);  // [numel]
    ctx.timed([&] {
      for (index_t i = 0; i < x.size(); ++i) y(i) = scale * to_double(x(i)) + added(i);
      copy_idx();
    });
  });
}

}  // namespace

SEQMIX_RUN_REGISTER("ema", &run_ema, "x [B,T,D], decay [D] ([initial_state [B,D]]) -> y [B,T,D], final_state [B,D]");
SEQMIX_RUN_REGISTER("ema_update", &run_ema_update,
                    "x [B,T,D], decay [D], state [B,D] -> y [B,T,D], state [B,D] (updated)");
SEQMIX_RUN_REGISTER(
    "identity", &run_identity,
    "x (any rank, any dtype) [idx (int32)] -> y = scale * x through the case dtype, idx_out = idx + offset "
    "(tool self-test; options: scale, negate, offset, add [list])");
