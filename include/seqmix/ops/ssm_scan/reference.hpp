// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/reference.hpp: float64 token-recurrent references of the SSM family (any stride,
// any storage type): the yardstick the fast paths are tested against. Same arguments as simd.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/dtype.hpp"
#include "../../runtime/parallel_for.hpp"
#include "detail/args.hpp"
#include "detail/segments.hpp"
#include "detail/vmath.hpp"

namespace seqmix::detail::ssm {

/// Narrows a float64 result to storage type T (double stays double).
template <class T>
inline T store_as(double v) noexcept {
  if constexpr (std::is_same_v<T, double>) return v;
  else return from_float<T>(static_cast<float>(v));
}

inline double ref_softplus(double x) noexcept { return x > 20.0 ? x : std::log1p(std::exp(x)); }
inline double ref_silu(double x) noexcept { return x / (1.0 + std::exp(-x)); }
inline double ref_dt(double dt, bool softplus, double lo, double hi) noexcept {
  if (softplus) dt = ref_softplus(dt);
  return std::isnan(dt) ? dt : std::min(std::max(dt, lo), hi);
}

// ---- selective_scan ---------------------------------------------------------------------------------
template <class T>
void selective_scan_impl(const selective_scan_args<T>& a, const selective_scan_options& o, reference) {
  const index_t Bn = a.u.template extent<axis::B>(), Dn = a.u.template extent<axis::D>();
  const index_t L = a.u.template extent<axis::L>(), N = a.A.template extent<axis::N>();
  const index_t G = a.B ? a.B.template extent<axis::G>() : (a.C ? a.C.template extent<axis::G>() : 1);
  const auto segs = make_segments(Bn, L, a.cu_seqlens);
  const index_t ns = static_cast<index_t>(segs.size());
  parallel_for(o.run.executor, grid{ns, Dn}, [&](index_t si, index_t d) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b, g = d / (Dn / G);
    std::vector<double> x(static_cast<std::size_t>(N), 0.0);
    if (a.initial_state && sg.init >= 0)
      for (index_t n = 0; n < N; ++n) x[static_cast<std::size_t>(n)] = a.initial_state(sg.init, d, n);
    const double bias = a.delta_bias ? to_double(a.delta_bias(d)) : 0.0;
    for (index_t t = sg.t0; t < sg.t1; ++t) {
      double dt = to_double(a.delta(b, d, t)) + bias;
      if (o.delta_softplus) dt = ref_softplus(dt);
      const double uu = to_double(a.u(b, d, t));
      double y = 0;
      for (index_t n = 0; n < N; ++n) {
        const double bv = a.B ? to_double(a.B(b, g, n, t)) : to_double(a.B_fixed(d, n));
        const double cv = a.C ? to_double(a.C(b, g, n, t)) : to_double(a.C_fixed(d, n));
        double& xs = x[static_cast<std::size_t>(n)];
        xs = std::exp(dt * to_double(a.A(d, n))) * xs + dt * bv * uu;
        y += xs * cv;
      }
      if (a.D) y += to_double(a.D(d)) * uu;
      if (a.z) y *= ref_silu(to_double(a.z(b, d, t)));
      a.out(b, d, t) = store_as<T>(y);
    }
    if (a.last_state && sg.fin >= 0)
      for (index_t n = 0; n < N; ++n) a.last_state(sg.fin, d, n) = static_cast<float>(x[static_cast<std::size_t>(n)]);
  });
}

// ---- ssd (recurrent definition) ---------------------------------------------------------------------
template <class T>
void ssd_impl(const ssd_args<T>& a, const ssd_options& o, reference) {
  const index_t Bn = a.x.template extent<axis::B>(), L = a.x.template extent<axis::T>();
  const index_t H = a.x.template extent<axis::H>(), P = a.x.template extent<axis::P>();
  const index_t G = a.B.template extent<axis::G>(), N = a.B.template extent<axis::N>();
  const auto segs = make_segments(Bn, L, a.cu_seqlens, a.seq_idx);
  const index_t ns = static_cast<index_t>(segs.size());
  parallel_for(o.run.executor, grid{ns, H}, [&](index_t si, index_t h) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b, g = h / (H / G);
    std::vector<double> s(static_cast<std::size_t>(P * N), 0.0);  // [P,N]
    if (a.initial_states && sg.init >= 0)
      for (index_t p = 0; p < P; ++p)
        for (index_t n = 0; n < N; ++n) s[static_cast<std::size_t>(p * N + n)] = a.initial_states(sg.init, h, p, n);
    const double Ah = to_double(a.A(h));
    const double bias = a.dt_bias ? to_double(a.dt_bias(h)) : 0.0;
    for (index_t t = sg.t0; t < sg.t1; ++t) {
      const double dt = ref_dt(to_double(a.dt(b, t, h)) + bias, o.dt_softplus, o.dt_min, o.dt_max);
      const double dA = std::exp(dt * Ah);
      for (index_t p = 0; p < P; ++p) {
        const double xv = to_double(a.x(b, t, h, p));
        double y = 0;
        for (index_t n = 0; n < N; ++n) {
          double& sv = s[static_cast<std::size_t>(p * N + n)];
          sv = dA * sv + dt * xv * to_double(a.B(b, t, g, n));
          y += sv * to_double(a.C(b, t, g, n));
        }
        if (a.D) y += to_double(a.D(h, p)) * xv;
        if (a.z) y *= ref_silu(to_double(a.z(b, t, h, p)));
        a.out(b, t, h, p) = store_as<T>(y);
      }
    }
    if (a.final_states && sg.fin >= 0)
      for (index_t p = 0; p < P; ++p)
        for (index_t n = 0; n < N; ++n)
          a.final_states(sg.fin, h, p, n) = static_cast<float>(s[static_cast<std::size_t>(p * N + n)]);
  });
}

// ---- selective_state_update -------------------------------------------------------------------------
template <class T>
void selective_state_update_impl(const selective_state_update_args<T>& a, const selective_state_update_options& o,
                                 reference) {
  const index_t Bn = a.x.template extent<axis::B>(), H = a.x.template extent<axis::H>();
  const index_t P = a.x.template extent<axis::P>(), G = a.B.template extent<axis::G>();
  const index_t N = a.B.template extent<axis::N>();
  parallel_for(o.run.executor, grid{Bn, H}, [&](index_t b, index_t h) {
    const index_t slot = a.state_batch_indices ? a.state_batch_indices(b) : b;
    const index_t g = h / (H / G);
    for (index_t p = 0; p < P; ++p) {
      if (slot < 0) {
        a.out(b, h, p) = from_float<T>(0.0f);
        continue;
      }
      const double bias = a.dt_bias ? to_double(a.dt_bias(h, p)) : 0.0;
      const double dt = ref_dt(to_double(a.dt(b, h, p)) + bias, o.dt_softplus, o.dt_min, o.dt_max);
      const double xv = to_double(a.x(b, h, p));
      double y = 0;
      for (index_t n = 0; n < N; ++n) {
        float& sv = a.state(slot, h, p, n);
        const double s = std::exp(dt * to_double(a.A(h, p, n))) * sv + dt * xv * to_double(a.B(b, g, n));
        sv = static_cast<float>(s);
        y += s * to_double(a.C(b, g, n));
      }
      if (a.D) y += to_double(a.D(h, p)) * xv;
      if (a.z) y *= ref_silu(to_double(a.z(b, h, p)));
      a.out(b, h, p) = store_as<T>(y);
    }
  });
}

// ---- causal_conv1d ----------------------------------------------------------------------------------
template <class T>
void causal_conv1d_impl(const causal_conv1d_args<T>& a, const causal_conv1d_options& o, reference) {
  const index_t Bn = a.x.template extent<axis::B>(), Dn = a.x.template extent<axis::D>();
  const index_t L = a.x.template extent<axis::L>(), W = a.weight.template extent<axis::W>();
  const auto segs = make_segments(Bn, L, a.cu_seqlens);
  const index_t ns = static_cast<index_t>(segs.size());
  parallel_for(o.run.executor, grid{ns, Dn}, [&](index_t si, index_t d) {
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t b = sg.b, len = sg.t1 - sg.t0;
    auto xhat = [&](index_t j) -> double {  // j in [-(W-1), len)
      if (j >= 0) return to_double(a.x(b, d, sg.t0 + j));
      return (a.initial_states && sg.init >= 0) ? to_double(a.initial_states(sg.init, d, W - 1 + j)) : 0.0;
    };
    const double bias = a.bias ? to_double(a.bias(d)) : 0.0;
    for (index_t t = 0; t < len; ++t) {
      double acc = bias;
      for (index_t k = 0; k < W; ++k) acc += to_double(a.weight(d, k)) * xhat(t - (W - 1) + k);
      if (o.activation == conv_activation::silu) acc = ref_silu(acc);
      a.out(b, d, sg.t0 + t) = store_as<T>(acc);
    }
    if (a.final_states && sg.fin >= 0)
      for (index_t i = 0; i < W - 1; ++i) {
        a.final_states(sg.fin, d, i) = store_as<T>(xhat(len - (W - 1) + i));
      }
  });
}

// ---- causal_conv1d_update ---------------------------------------------------------------------------
template <class T>
void causal_conv1d_update_impl(const causal_conv1d_update_args<T>& a, const causal_conv1d_options& o, reference) {
  const index_t Bn = a.x.template extent<axis::B>(), Dn = a.x.template extent<axis::D>();
  const index_t L = a.x.template extent<axis::L>(), W = a.weight.template extent<axis::W>();
  const index_t S = a.conv_state.template extent<axis::S>();
  parallel_for(o.run.executor, grid{Bn, Dn}, [&](index_t b, index_t d) {
    const index_t slot = a.conv_state_indices ? a.conv_state_indices(b) : b;
    if (slot < 0) {
      for (index_t t = 0; t < L; ++t) a.out(b, d, t) = from_float<T>(0.0f);
      return;
    }
    const double bias = a.bias ? to_double(a.bias(d)) : 0.0;
    for (index_t t = 0; t < L; ++t) {
      const double xt = to_double(a.x(b, d, t));
      double acc = bias + to_double(a.weight(d, W - 1)) * xt;
      if (a.cache_seqlens) {
        const index_t c = a.cache_seqlens(b) + t;
        for (index_t i = 1; i < W; ++i)  // token i steps back
          acc += to_double(a.weight(d, W - 1 - i)) * to_double(a.conv_state(slot, d, ((c - i) % S + S) % S));
        a.conv_state(slot, d, (c % S + S) % S) = a.x(b, d, t);
      } else {
        for (index_t i = 1; i < W; ++i) acc += to_double(a.weight(d, W - 1 - i)) * to_double(a.conv_state(slot, d, S - i));
        for (index_t s = 0; s + 1 < S; ++s) a.conv_state(slot, d, s) = a.conv_state(slot, d, s + 1);
        if (S > 0) a.conv_state(slot, d, S - 1) = a.x(b, d, t);
      }
      if (o.activation == conv_activation::silu) acc = ref_silu(acc);
      a.out(b, d, t) = store_as<T>(acc);
    }
  });
}

}  // namespace seqmix::detail::ssm
