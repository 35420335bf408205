// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/rwkv7.hpp: public entry points of RWKV-7 (SPEC §3.1.9, the generalized
// delta rule): rwkv7 (prefill; chunk, recurrent or auto; varlen) and rwkv7_decode (state slots, in place).
#pragma once

#include <optional>
#include <string>
#include <type_traits>

#include "../../../core/backend.hpp"
#include "gated_delta_rule_run.hpp"
#include "rwkv7_kernels.hpp"

namespace seqmix {

/// Inputs and outputs of rwkv7. Optional tensors are empty views.
template <class T>
struct rwkv7_args {
  const_view<T, bthk> r;             ///< [B,T,H,K] receptance (the query)
  const_view<T, bthk> w;             ///< [B,T,H,K] log decay
  const_view<T, bthk> k;             ///< [B,T,H,K]
  const_view<T, bthv> v;             ///< [B,T,H,V]
  const_view<T, bthk> a;             ///< [B,T,H,K] (layers pass -kk)
  const_view<T, bthk> b;             ///< [B,T,H,K] (layers pass kk * a)
  tensor_view<T, bthv> o;            ///< [B,T,H,V] output
  const_state_view initial_state{};  ///< [N,H,K,V] optional
  state_view final_state{};          ///< [N,H,K,V] optional
  cu_seqlens_view cu_seqlens{};      ///< [N+1] optional, B = 1
};

/// Options of rwkv7 and rwkv7_decode.
struct rwkv7_options {
  std::optional<float> scale{};           ///< default 1/sqrt(K); RWKV models use 1
  linear_mode mode = linear_mode::auto_;  ///< auto_ | chunk | recurrent
  index_t chunk_size = 0;                 ///< 0 = 16; allowed {16, 32, 64}
  run_context run{};                      ///< executor + workspace
};

/// Inputs and outputs of rwkv7_decode: T new tokens (usually 1) per batch row on state slots.
template <class T>
struct rwkv7_decode_args {
  const_view<T, bthk> r, w, k;         ///< [B,T,H,K]
  const_view<T, bthv> v;               ///< [B,T,H,V]
  const_view<T, bthk> a, b;            ///< [B,T,H,K]
  tensor_view<T, bthv> o;              ///< [B,T,H,V]
  state_view state;                    ///< [N,H,K,V] in/out
  state_indices_view state_indices{};  ///< [B] slot per row (-1 skips); absent: slot b, N = B
};

namespace delta_detail {

inline constexpr index_t rwkv7_default_chunk = 16;
/// auto_ runs the chunk form for sequences at least this long with states above auto_chunk_min_state
/// (docs/04b-delta-rules.md).
inline constexpr index_t rwkv7_auto_chunk_min = 64;

template <class T>
rwkv7_problem<T> rwkv7_check_inputs(const check& c, const_view<T, bthk> r, const_view<T, bthk> w,
                                    const_view<T, bthk> k, const_view<T, bthv> v, const_view<T, bthk> a,
                                    const_view<T, bthk> b, tensor_view<T, bthv> o, const std::optional<float>& scale) {
  c.require(static_cast<bool>(r), "r is required but was not given");
  const std::pair<const char*, const_view<T, bthk>> ks[] = {{"w", w}, {"k", k}, {"a", a}, {"b", b}};
  for (const auto& [name, x] : ks) {
    c.require(static_cast<bool>(x), std::string(name) + " is required but was not given");
    c.same_extent<axis::B>(name, x, "r", r);
    c.same_extent<axis::T>(name, x, "r", r);
    c.same_extent<axis::H>(name, x, "r", r);
    c.same_extent<axis::K>(name, x, "r", r);
  }
  c.require(static_cast<bool>(v), "v is required but was not given");
  c.require(static_cast<bool>(o), "o is required but was not given");
  c.same_extent<axis::B>("v", v, "r", r);
  c.same_extent<axis::T>("v", v, "r", r);
  c.same_extent<axis::H>("v", v, "r", r);
  c.same_extent<axis::B>("o", o, "v", v);
  c.same_extent<axis::T>("o", o, "v", v);
  c.same_extent<axis::H>("o", o, "v", v);
  c.same_extent<axis::V>("o", o, "v", v);
  if (scale) c.finite("scale", static_cast<double>(*scale));
  rwkv7_problem<T> p;
  p.r = r;
  p.w = w;
  p.k = k;
  p.v = v;
  p.a = a;
  p.b = b;
  p.o = o;
  p.H = r.template extent<axis::H>();
  p.K = r.template extent<axis::K>();
  p.V = v.template extent<axis::V>();
  p.scale = scale ? static_cast<double>(*scale) : 1.0 / std::sqrt(static_cast<double>(p.K > 0 ? p.K : 1));
  return p;
}

template <class Backend, class T>
void rwkv7_run(const rwkv7_problem<T>& p, const linear_detail::seq_plan& plan, const_state_view h0, state_view ht,
               linear_mode mode, index_t C, const run_context& run) {
  if constexpr (std::is_same_v<Backend, reference>) {
    (void)mode;
    (void)C;
    linear_detail::for_each_seq_head(run, plan, p.H, [&](const linear_detail::seq_desc& s, index_t h, int) {
      rwkv7_reference_job(p, s, h, h0, s.n, ht, s.n);
    });
  } else {
    for_each_head_group(
        run, plan, p.H, p.K, p.V, [&](index_t G) { return rwkv7_group_bytes(C, p.K, p.V, G); },
        [&](const linear_detail::seq_desc& s, index_t j0, index_t j1, std::byte* mem) {
          const bool chunked = use_chunk(mode, s.length(), rwkv7_auto_chunk_min, p.K, p.V);
          rwkv7_fast_group<typename Backend::arch>(p, s, j0, j1, h0, s.n, ht, s.n, chunked, C, mem);
        });
  }
}

}  // namespace delta_detail

/// RWKV-7 (SPEC §3.1.9): S_t = diag(e^{w_t}) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T; o_t = S_t^T r~_t.
/// Shapes: r, w, k, a, b [B,T,H,K]; v, o [B,T,H,V]; initial_state, final_state [N,H,K,V] (N = B, or the
/// number of sequences with cu_seqlens [N+1] and B = 1).
/// Throws: seqmix::shape_error on mismatched extents, a chunk_size outside {16, 32, 64}, bad cu_seqlens or a
/// non-finite scale.
template <class Backend = simd<>, class T>
void rwkv7(const rwkv7_args<T>& x, const rwkv7_options& o = {}, Backend = {}) {
  const check c("rwkv7");
  auto p = delta_detail::rwkv7_check_inputs<T>(c, x.r, x.w, x.k, x.v, x.a, x.b, x.o, o.scale);
  linear_detail::check_options(c, o, {16, 32, 64});
  const auto plan = linear_detail::check_plan(c, x.r, x.cu_seqlens);
  linear_detail::check_state(c, "initial_state", x.initial_state, plan.count(), p.H, p.K, p.V, "r [B,T,H,K]");
  linear_detail::check_state(c, "final_state", x.final_state, plan.count(), p.H, p.K, p.V, "r [B,T,H,K]");
  delta_detail::rwkv7_run<Backend>(p, plan, x.initial_state, x.final_state, o.mode,
                                   linear_detail::resolve_chunk(o, delta_detail::rwkv7_default_chunk), o.run);
}

/// RWKV-7 decode: runs the T (usually 1) new tokens of each batch row on its state slot, in place.
/// Shapes: r, w, k, a, b [B,T,H,K]; v, o [B,T,H,V]; state [N,H,K,V]; state_indices [B] (-1 skips the row and
/// zeroes its output; other slots must not repeat); without state_indices N = B.
/// Throws: seqmix::shape_error on mismatched extents or a state index outside [-1, N).
template <class Backend = simd<>, class T>
void rwkv7_decode(const rwkv7_decode_args<T>& x, const rwkv7_options& o = {}, Backend = {}) {
  const check c("rwkv7_decode");
  auto p = delta_detail::rwkv7_check_inputs<T>(c, x.r, x.w, x.k, x.v, x.a, x.b, x.o, o.scale);
  const index_t B = x.r.template extent<axis::B>(), Tn = x.r.template extent<axis::T>();
  linear_detail::check_decode_slots(c, x.state, x.state_indices, B, "r [B,T,H,K]");
  linear_detail::check_state(c, "state", x.state, x.state.template extent<axis::N>(), p.H, p.K, p.V, "r [B,T,H,K]");
  workspace& ws = o.run.scratch();
  if constexpr (!std::is_same_v<Backend, reference>) ws.reserve(o.run.workers(), delta_detail::rwkv7_group_bytes(Tn, p.K, p.V, 1));
  const double work = static_cast<double>(B * Tn) * static_cast<double>(p.H * p.K * p.V);
  parallel_for_groups(delta_detail::pick_executor(o.run, work), B, p.H, [&](index_t b, index_t h, int worker) {
    const index_t slot = x.state_indices ? static_cast<index_t>(x.state_indices(b)) : b;
    if (slot < 0) return linear_detail::zero_skipped(p.o, b, 0, Tn, h, h + 1);
    const linear_detail::seq_desc s{b, 0, Tn, slot};
    if constexpr (std::is_same_v<Backend, reference>) {
      (void)worker;
      delta_detail::rwkv7_reference_job(p, s, h, x.state, slot, x.state, slot);
    } else {
      delta_detail::rwkv7_fast_job<typename Backend::arch>(p, s, h, x.state, slot, x.state, slot, false, Tn,
                                                           ws.get(worker));
    }
  });
}

}  // namespace seqmix
