// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/ssm_scan.hpp: public entry points of the SSM family (SPEC §3.2): selective_scan
// (Mamba-1), ssd (Mamba-2, chunked and recurrent), selective_state_update, causal_conv1d and
// causal_conv1d_update; argument checks. See docs/06-ssm-scans.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/check.hpp"
#include "../../core/dtype.hpp"
#include "../../core/index_view.hpp"
#include "../../core/tensor_view.hpp"
#include "detail/args.hpp"
#include "policies.hpp"
#include "reference.hpp"
#include "simd.hpp"

namespace seqmix {

namespace detail::ssm {

/// cu_seqlens [Nseq+1]: starts at 0, non-decreasing, ends at `total`; the batch extent must be 1.
template <class V>
index_t check_cu_seqlens(const check& c, index_view<ssm_layouts::i> cu, const V& x,
                         std::string_view x_name, index_t total) {
  c.require(x.template extent<axis::B>() == 1,
            std::string(x_name) + ".extent(B) = " + std::to_string(x.template extent<axis::B>()) +
                ", expected 1 (from cu_seqlens)");
  const index_t n = cu.extent<axis::I>();
  c.require(n >= 1, "cu_seqlens.extent(I) = 0, expected >= 1");
  c.require(cu(0) == 0, "cu_seqlens[0] = " + std::to_string(cu(0)) + ", expected 0");
  for (index_t i = 1; i < n; ++i)
    c.require(cu(i) >= cu(i - 1), "cu_seqlens[" + std::to_string(i) + "] = " + std::to_string(cu(i)) +
                                       ", expected >= cu_seqlens[" + std::to_string(i - 1) + "] = " +
                                       std::to_string(cu(i - 1)));
  c.require(cu(n - 1) == total, "cu_seqlens[" + std::to_string(n - 1) + "] = " + std::to_string(cu(n - 1)) +
                                    ", expected " + std::to_string(total) + " (the total length)");
  return n - 1;
}

template <class V>
void check_indices(const check& c, std::string_view name, const V& idx, index_t batch, index_t slots,
                   bool allow_negative) {
  c.extent<axis::B>(name, idx, batch, "");
  for (index_t i = 0; i < batch; ++i) {
    const auto v = idx(i);
    c.require(v < slots && (allow_negative || v >= 0),
              std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v) + ", expected " +
                  (allow_negative ? "< " : "in [0, ") + std::to_string(slots) + (allow_negative ? "" : ")"));
  }
  // Two rows on one slot would race on its state: rows run in parallel.
  std::vector<std::pair<std::int64_t, index_t>> used;  // (slot, row)
  for (index_t i = 0; i < batch; ++i)
    if (idx(i) >= 0) used.emplace_back(idx(i), i);
  std::sort(used.begin(), used.end());
  for (std::size_t i = 1; i < used.size(); ++i) {
    c.require(used[i].first != used[i - 1].first,
              std::string(name) + "[" + std::to_string(used[i - 1].second) + "] = " + std::string(name) + "[" +
                  std::to_string(used[i].second) + "] = " + std::to_string(used[i].first) +
                  ", expected distinct slots (or < 0)");
  }
}

template <class T>
void check(const selective_scan_args<T>& a, const selective_scan_options&) {
  const seqmix::check c("selective_scan");
  c.present("u", a.u);
  c.present("delta", a.delta);
  c.present("A", a.A);
  c.present("out", a.out);
  const auto& u = a.u;
  const index_t Bn = u.template extent<axis::B>(), Dn = u.template extent<axis::D>(), L = u.template extent<axis::L>();
  c.same_extent<axis::B>("delta", a.delta, "u", u);
  c.same_extent<axis::D>("delta", a.delta, "u", u);
  c.same_extent<axis::L>("delta", a.delta, "u", u);
  c.same_extent<axis::D>("A", a.A, "u", u);
  const index_t N = a.A.template extent<axis::N>();
  c.require(N >= 1, "A.extent(N) = 0, expected >= 1");
  auto check_bc = [&](std::string_view name, std::string_view fixed_name, const_view<T, bgnl> tok, const_view<T, dn> fix) {
    c.require((tok.data() != nullptr) != (fix.data() != nullptr),
              std::string("exactly one of ") + std::string(name) + " [B,G,N,L] and " + std::string(fixed_name) +
                  " [D,N] must be given");
    if (tok) {
      c.same_extent<axis::B>(name, tok, "u", u);
      c.same_extent<axis::N>(name, tok, "A", a.A);
      c.same_extent<axis::L>(name, tok, "u", u);
      c.multiple_of<axis::D, axis::G>("u", u, name, tok);
    } else {
      c.same_extent<axis::D>(fixed_name, fix, "u", u);
      c.same_extent<axis::N>(fixed_name, fix, "A", a.A);
    }
  };
  check_bc("B", "B_fixed", a.B, a.B_fixed);
  check_bc("C", "C_fixed", a.C, a.C_fixed);
  if (a.B && a.C) c.same_extent<axis::G>("C", a.C, "B", a.B);
  if (a.D) c.same_extent<axis::D>("D", a.D, "u", u);
  if (a.delta_bias) c.same_extent<axis::D>("delta_bias", a.delta_bias, "u", u);
  if (a.z) {
    c.same_extent<axis::B>("z", a.z, "u", u);
    c.same_extent<axis::D>("z", a.z, "u", u);
    c.same_extent<axis::L>("z", a.z, "u", u);
  }
  c.same_extent<axis::B>("out", a.out, "u", u);
  c.same_extent<axis::D>("out", a.out, "u", u);
  c.same_extent<axis::L>("out", a.out, "u", u);
  index_t ns = Bn;
  std::string ns_from = check::describe("u", u);
  if (a.cu_seqlens) {
    ns = check_cu_seqlens(c, a.cu_seqlens, u, "u", L);
    ns_from = "cu_seqlens";
  }
  auto check_state = [&](std::string_view name, const auto& s) {
    c.extent<axis::B>(name, s, ns, ns_from);
    c.same_extent<axis::D>(name, s, "u", u);
    c.same_extent<axis::N>(name, s, "A", a.A);
  };
  if (a.initial_state) check_state("initial_state", a.initial_state);
  if (a.last_state) check_state("last_state", a.last_state);
  (void)Dn;
}

template <class T>
void check(const ssd_args<T>& a, const ssd_options& o) {
  const seqmix::check c("ssd");
  c.present("x", a.x);
  c.present("dt", a.dt);
  c.present("A", a.A);
  c.present("B", a.B);
  c.present("C", a.C);
  c.present("out", a.out);
  const auto& x = a.x;
  const index_t Bn = x.template extent<axis::B>(), L = x.template extent<axis::T>();
  c.same_extent<axis::B>("dt", a.dt, "x", x);
  c.same_extent<axis::T>("dt", a.dt, "x", x);
  c.same_extent<axis::H>("dt", a.dt, "x", x);
  c.same_extent<axis::H>("A", a.A, "x", x);
  c.same_extent<axis::B>("B", a.B, "x", x);
  c.same_extent<axis::T>("B", a.B, "x", x);
  c.multiple_of<axis::H, axis::G>("x", x, "B", a.B);
  c.require(a.B.template extent<axis::N>() >= 1, "B.extent(N) = 0, expected >= 1");
  c.same_extent<axis::B>("C", a.C, "x", x);
  c.same_extent<axis::T>("C", a.C, "x", x);
  c.same_extent<axis::G>("C", a.C, "B", a.B);
  c.same_extent<axis::N>("C", a.C, "B", a.B);
  if (a.D) {
    c.same_extent<axis::H>("D", a.D, "x", x);
    c.same_extent<axis::P>("D", a.D, "x", x);
  }
  if (a.z) {
    c.same_extent<axis::B>("z", a.z, "x", x);
    c.same_extent<axis::T>("z", a.z, "x", x);
    c.same_extent<axis::H>("z", a.z, "x", x);
    c.same_extent<axis::P>("z", a.z, "x", x);
  }
  if (a.dt_bias) c.same_extent<axis::H>("dt_bias", a.dt_bias, "x", x);
  c.same_extent<axis::B>("out", a.out, "x", x);
  c.same_extent<axis::T>("out", a.out, "x", x);
  c.same_extent<axis::H>("out", a.out, "x", x);
  c.same_extent<axis::P>("out", a.out, "x", x);
  c.require(!(a.seq_idx && a.cu_seqlens), "seq_idx and cu_seqlens cannot both be given");
  if (a.seq_idx) {
    c.same_extent<axis::B>("seq_idx", a.seq_idx, "x", x);
    c.same_extent<axis::T>("seq_idx", a.seq_idx, "x", x);
  }
  index_t ns = Bn;
  std::string ns_from = check::describe("x", x);
  if (a.cu_seqlens) {
    ns = check_cu_seqlens(c, a.cu_seqlens, x, "x", L);
    ns_from = "cu_seqlens";
  }
  auto check_state = [&](std::string_view name, const auto& s) {
    c.extent<axis::B>(name, s, ns, ns_from);
    c.same_extent<axis::H>(name, s, "x", x);
    c.same_extent<axis::P>(name, s, "x", x);
    c.same_extent<axis::N>(name, s, "B", a.B);
  };
  if (a.initial_states) check_state("initial_states", a.initial_states);
  if (a.final_states) check_state("final_states", a.final_states);
  c.require(o.chunk_size >= 1, "option chunk_size = " + std::to_string(o.chunk_size) + ", expected >= 1");
  c.require(!std::isnan(o.dt_min) && !std::isnan(o.dt_max) && o.dt_min <= o.dt_max,
            "options dt_min = " + std::to_string(o.dt_min) + ", dt_max = " + std::to_string(o.dt_max) +
                ", expected dt_min <= dt_max");
}

template <class T>
void check(const selective_state_update_args<T>& a, const selective_state_update_options& o) {
  const seqmix::check c("selective_state_update");
  c.present("state", a.state);
  c.present("x", a.x);
  c.present("dt", a.dt);
  c.present("A", a.A);
  c.present("B", a.B);
  c.present("C", a.C);
  c.present("out", a.out);
  const auto& x = a.x;
  const index_t Bn = x.template extent<axis::B>();
  c.same_extent<axis::B>("dt", a.dt, "x", x);
  c.same_extent<axis::H>("dt", a.dt, "x", x);
  c.same_extent<axis::P>("dt", a.dt, "x", x);
  c.same_extent<axis::H>("A", a.A, "x", x);
  c.same_extent<axis::P>("A", a.A, "x", x);
  c.same_extent<axis::B>("B", a.B, "x", x);
  c.multiple_of<axis::H, axis::G>("x", x, "B", a.B);
  c.same_extent<axis::N>("A", a.A, "B", a.B);
  c.require(a.B.template extent<axis::N>() >= 1, "B.extent(N) = 0, expected >= 1");
  c.same_extent<axis::B>("C", a.C, "x", x);
  c.same_extent<axis::G>("C", a.C, "B", a.B);
  c.same_extent<axis::N>("C", a.C, "B", a.B);
  if (a.D) {
    c.same_extent<axis::H>("D", a.D, "x", x);
    c.same_extent<axis::P>("D", a.D, "x", x);
  }
  if (a.dt_bias) {
    c.same_extent<axis::H>("dt_bias", a.dt_bias, "x", x);
    c.same_extent<axis::P>("dt_bias", a.dt_bias, "x", x);
  }
  if (a.z) {
    c.same_extent<axis::B>("z", a.z, "x", x);
    c.same_extent<axis::H>("z", a.z, "x", x);
    c.same_extent<axis::P>("z", a.z, "x", x);
  }
  c.same_extent<axis::B>("out", a.out, "x", x);
  c.same_extent<axis::H>("out", a.out, "x", x);
  c.same_extent<axis::P>("out", a.out, "x", x);
  c.same_extent<axis::H>("state", a.state, "x", x);
  c.same_extent<axis::P>("state", a.state, "x", x);
  c.same_extent<axis::N>("state", a.state, "B", a.B);
  if (a.state_batch_indices) {
    check_indices(c, "state_batch_indices", a.state_batch_indices, Bn, a.state.template extent<axis::B>(), true);
  } else {
    c.same_extent<axis::B>("state", a.state, "x", x);
  }
  c.require(!std::isnan(o.dt_min) && !std::isnan(o.dt_max) && o.dt_min <= o.dt_max,
            "options dt_min = " + std::to_string(o.dt_min) + ", dt_max = " + std::to_string(o.dt_max) +
                ", expected dt_min <= dt_max");
}

template <class T>
void check(const causal_conv1d_args<T>& a, const causal_conv1d_options&) {
  const seqmix::check c("causal_conv1d");
  c.present("x", a.x);
  c.present("weight", a.weight);
  c.present("out", a.out);
  const auto& x = a.x;
  c.same_extent<axis::D>("weight", a.weight, "x", x);
  const index_t W = a.weight.template extent<axis::W>();
  c.require(W >= 1, "weight.extent(W) = " + std::to_string(W) + ", expected >= 1");
  if (a.bias) c.same_extent<axis::D>("bias", a.bias, "x", x);
  c.same_extent<axis::B>("out", a.out, "x", x);
  c.same_extent<axis::D>("out", a.out, "x", x);
  c.same_extent<axis::L>("out", a.out, "x", x);
  index_t ns = x.template extent<axis::B>();
  std::string ns_from = check::describe("x", x);
  if (a.cu_seqlens) {
    ns = check_cu_seqlens(c, a.cu_seqlens, x, "x", x.template extent<axis::L>());
    ns_from = "cu_seqlens";
  }
  auto check_state = [&](std::string_view name, const auto& s) {
    c.extent<axis::B>(name, s, ns, ns_from);
    c.same_extent<axis::D>(name, s, "x", x);
    c.extent<axis::W>(name, s, W - 1, "weight [D,W]: W-1");
  };
  if (a.initial_states) check_state("initial_states", a.initial_states);
  if (a.final_states) check_state("final_states", a.final_states);
}

template <class T>
void check(const causal_conv1d_update_args<T>& a, const causal_conv1d_options&) {
  const seqmix::check c("causal_conv1d_update");
  c.present("x", a.x);
  c.present("conv_state", a.conv_state);
  c.present("weight", a.weight);
  c.present("out", a.out);
  const auto& x = a.x;
  const index_t Bn = x.template extent<axis::B>();
  c.same_extent<axis::D>("weight", a.weight, "x", x);
  const index_t W = a.weight.template extent<axis::W>();
  c.require(W >= 1, "weight.extent(W) = " + std::to_string(W) + ", expected >= 1");
  if (a.bias) c.same_extent<axis::D>("bias", a.bias, "x", x);
  c.same_extent<axis::D>("conv_state", a.conv_state, "x", x);
  c.extent_at_least<axis::S>("conv_state", a.conv_state, W - 1);
  c.require(a.conv_state.template extent<axis::S>() >= 1 || !a.cache_seqlens,
            "conv_state.extent(S) = 0, expected >= 1 with cache_seqlens");
  c.same_extent<axis::B>("out", a.out, "x", x);
  c.same_extent<axis::D>("out", a.out, "x", x);
  c.same_extent<axis::L>("out", a.out, "x", x);
  if (a.conv_state_indices) {
    check_indices(c, "conv_state_indices", a.conv_state_indices, Bn, a.conv_state.template extent<axis::B>(), true);
  } else {
    c.same_extent<axis::B>("conv_state", a.conv_state, "x", x);
  }
  if (a.cache_seqlens) {
    c.extent<axis::B>("cache_seqlens", a.cache_seqlens, Bn, check::describe("x", x));
    for (index_t i = 0; i < Bn; ++i)
      c.require(a.cache_seqlens(i) >= 0, "cache_seqlens[" + std::to_string(i) + "] = " +
                                             std::to_string(a.cache_seqlens(i)) + ", expected >= 0");
  }
}

}  // namespace detail::ssm

/// Mamba-1 selective scan: x_t = exp(Δ_t A) x_{t-1} + Δ_t B_t u_t, y_t = C_t·x_t + D u_t, gated by silu(z).
/// Shapes: u, delta, z, out [B,D,L]; A [D,N]; B, C [B,G,N,L] (D % G == 0) or B_fixed, C_fixed [D,N];
/// D, delta_bias [D]; initial_state, last_state [B,D,N] ([Nseq,D,N] with cu_seqlens [Nseq+1], B = 1).
/// Throws: seqmix::shape_error when extents disagree, a required tensor is missing or cu_seqlens is invalid.
template <class Backend = simd<>, class T>
void selective_scan(const selective_scan_args<T>& a, const selective_scan_options& o = {}, Backend be = {}) {
  detail::ssm::check(a, o);
  if (a.u.size() == 0 && !a.last_state) return;
  detail::ssm::selective_scan_impl(a, o, be);
}

/// Mamba-2 SSD: h_t = exp(dt'_t A_h) h_{t-1} + dt'_t x_t B_t^T, y_t = h_t C_t + D ⊙ x_t, gated by silu(z);
/// dt' = clamp(softplus?(dt + dt_bias), dt_min, dt_max). Chunked or recurrent form (options.mode).
/// Shapes: x, z, out [B,L,H,P]; dt [B,L,H]; A, dt_bias [H]; B, C [B,L,G,N] (H % G == 0); D [H,P];
/// initial_states, final_states [B,H,P,N] ([Nseq,H,P,N] with cu_seqlens, B = 1); seq_idx [B,L].
/// Throws: seqmix::shape_error when extents disagree, a required tensor is missing, cu_seqlens is invalid,
/// chunk_size < 1 or dt_min > dt_max.
template <class Backend = simd<>, class T>
void ssd(const ssd_args<T>& a, const ssd_options& o = {}, Backend be = {}) {
  detail::ssm::check(a, o);
  detail::ssm::ssd_impl(a, o, be);
}

/// One decode step of Mamba-1 or Mamba-2: state = state * exp(dt' A) + dt' x ⊗ B; out = state C + D x,
/// gated by silu(z). state_batch_indices picks each row's state slot (continuous batching; < 0 skips
/// the row and writes 0 to its out).
/// Shapes: state [Bs,H,P,N]; x, dt, z, out [B,H,P]; A [H,P,N]; B, C [B,G,N]; D, dt_bias [H,P];
/// state_batch_indices [B].
/// Throws: seqmix::shape_error when extents disagree, a required tensor is missing or an index is out of range.
template <class Backend = simd<>, class T>
void selective_state_update(const selective_state_update_args<T>& a, const selective_state_update_options& o = {},
                            Backend be = {}) {
  detail::ssm::check(a, o);
  detail::ssm::selective_state_update_impl(a, o, be);
}

/// Causal depthwise conv1d: out[b,d,t] = act(bias[d] + sum_j weight[d,j] x^[b,d,t+j]), x^ = [initial ; x];
/// final_states = the last W-1 columns of x^. Any W >= 1; channel-first or channel-last strides.
/// Shapes: x, out [B,D,L]; weight [D,W]; bias [D]; initial_states, final_states [B,D,W-1] ([Nseq,D,W-1]
/// with cu_seqlens [Nseq+1], B = 1).
/// Throws: seqmix::shape_error when extents disagree, a required tensor is missing or cu_seqlens is invalid.
template <class Backend = simd<>, class T>
void causal_conv1d(const causal_conv1d_args<T>& a, const causal_conv1d_options& o = {}, Backend be = {}) {
  detail::ssm::check(a, o);
  detail::ssm::causal_conv1d_impl(a, o, be);
}

/// Decode form of causal_conv1d: L new tokens per row against conv_state (shift buffer, or ring buffer
/// with cache_seqlens), updated in place; conv_state_indices picks the slot (< 0 skips the row, out = 0).
/// Shapes: x, out [B,D,L]; conv_state [Bs,D,S] with S >= W-1; weight [D,W]; bias [D]; cache_seqlens,
/// conv_state_indices [B].
/// Throws: seqmix::shape_error when extents disagree, a required tensor is missing or an index is out of range.
template <class Backend = simd<>, class T>
void causal_conv1d_update(const causal_conv1d_update_args<T>& a, const causal_conv1d_options& o = {},
                          Backend be = {}) {
  detail::ssm::check(a, o);
  detail::ssm::causal_conv1d_update_impl(a, o, be);
}

}  // namespace seqmix
