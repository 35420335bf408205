// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/linear_io.hpp: what every linear-family op of the parity tool reads and writes the same way:
// mode, scale and chunk_size; the query, k, v, initial_state and cu_seqlens; o and final_state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "registry.hpp"

namespace seqmix::parity {

/// "mode": auto (default) | chunk | recurrent.
inline linear_mode linear_mode_option(case_context& ctx) {
  const std::string m = ctx.mode({"auto", "chunk", "recurrent"});
  return m == "chunk" ? linear_mode::chunk : m == "recurrent" ? linear_mode::recurrent : linear_mode::auto_;
}

/// "scale" (absent: the op's default 1/sqrt(K)).
inline std::optional<float> linear_scale_option(case_context& ctx) {
  if (!ctx.has_option("scale")) return std::nullopt;
  return static_cast<float>(ctx.option<double>("scale", 0.0));
}

/// The tensors the linear-family ops share. The heads of o and final_state follow v (GVA: HV >= H).
template <class T>
struct linear_io {
  const_view<T, bthk> q;           ///< q (or RWKV's r) [B,T,H,K]
  const_view<T, bthk> k;           ///< [B,T,H,K]
  const_view<T, bthv> v;           ///< [B,T,HV,V]
  const_state_view initial_state;  ///< [N,HV,K,V] or empty
  cu_seqlens_view cu_seqlens;      ///< [N+1] or empty
  tensor_view<T, bthv> o;          ///< [B,T,HV,V]
  state_view final_state;          ///< [N,HV,K,V], empty when the case does not ask for it

  /// An op's args struct with these tensors filled in (q goes to `r` for the RWKV ops); the caller sets
  /// the op's own tensors.
  template <class Args>
  Args make() const {
    Args a{};
    if constexpr (requires { a.r; })
      a.r = q;
    else
      a.q = q;
    a.k = k;
    a.v = v;
    a.initial_state = initial_state;
    a.cu_seqlens = cu_seqlens;
    a.o = o;
    a.final_state = final_state;
    return a;
  }
};

/// Reads `query` (q or r), k, v, [initial_state], [cu_seqlens] and makes o and (when wanted) final_state.
template <class T>
linear_io<T> read_linear_io(case_context& ctx, const std::string& query = "q") {
  linear_io<T> io;
  io.q = ctx.input<T, bthk>(query);                                                 // [B,T,H,K]
  io.k = ctx.input<T, bthk>("k");                                                   // [B,T,H,K]
  io.v = ctx.input<T, bthv>("v");                                                   // [B,T,HV,V]
  io.initial_state = ctx.optional_input<float, nhkv>("initial_state");              // [N,HV,K,V]
  io.cu_seqlens = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [N+1]
  const index_t B = io.q.template extent<axis::B>(), T_ = io.q.template extent<axis::T>(),
                K = io.q.template extent<axis::K>(), HV = io.v.template extent<axis::H>(),
                V = io.v.template extent<axis::V>();
  const index_t N = io.cu_seqlens ? io.cu_seqlens.template extent<axis::I>() - 1 : B;
  io.o = ctx.output<T, bthv>("o", {B, T_, HV, V});                                                       // [B,T,HV,V]
  if (ctx.wants("final_state")) io.final_state = ctx.output<float, nhkv>("final_state", {N, HV, K, V});  // [N,HV,K,V]
  return io;
}

}  // namespace seqmix::parity
