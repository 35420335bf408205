// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/reference.hpp: float64 naive softmax attention (prefill, varlen, decode over
// contiguous and paged caches), any stride, the same mask policies as the fast path: the yardstick.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "flash_attention.hpp"

namespace seqmix::detail::fa {

/// Score pipeline of SPEC §2.8 in float64 for one (already dotted) q.k value.
struct ref_scores {
  double scale = 1, softcap = 0;
  double operator()(double dot, double slope, index_t dist) const noexcept {
    double s = scale * dot;
    if (softcap > 0) s = softcap * std::tanh(s / softcap);
    return s - slope * static_cast<double>(dist < 0 ? -dist : dist);
  }
};

/// One query row against keys [0, tk) of one sequence: out (Dv doubles) and lse. NaN in a kept score
/// makes the whole row NaN; an empty row gives out = 0, lse = -inf (lse = sink with a sink).
template <mask_policy Mask, class KeyDot, class ValAt>
void reference_row(const Mask& mask, index_t i, index_t diag_off, index_t tk, index_t dv, const ref_scores& sc,
                   double slope, const double* sink, KeyDot kdot, ValAt vat, std::vector<double>& s,
                   double* out, double& lse) {
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  s.assign(static_cast<std::size_t>(tk), ninf);
  double m = ninf;
  bool nan = false, any = false;
  for (index_t j = 0; j < tk; ++j) {
    if (!mask.keep(i, j)) continue;
    const double x = sc(kdot(j), slope, i + diag_off - j);
    s[static_cast<std::size_t>(j)] = x;
    any = true;
    if (std::isnan(x)) nan = true;
    else m = std::max(m, x);
  }
  if (sink) m = std::max(m, *sink);
  for (index_t c = 0; c < dv; ++c) out[c] = 0;
  if (nan) {
    for (index_t c = 0; c < dv; ++c) out[c] = std::numeric_limits<double>::quiet_NaN();
    lse = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  if (!any && !sink) {
    lse = ninf;
    return;
  }
  double sum = sink ? std::exp(*sink - m) : 0.0;
  for (index_t j = 0; j < tk; ++j) {
    const double x = s[static_cast<std::size_t>(j)];
    if (x == ninf) continue;
    const double p = std::exp(x - m);
    sum += p;
    for (index_t c = 0; c < dv; ++c) out[c] += p * vat(j, c);
  }
  for (index_t c = 0; c < dv; ++c) out[c] /= sum;
  lse = m + std::log(sum);
}

template <class T>
void attention_impl(const attention_args<T>& a, const attention_options& o, reference) {
  const index_t B = a.q.template extent<axis::B>(), Hq = a.q.template extent<axis::H>();
  const index_t D = a.q.template extent<axis::D>(), Dv = a.v.template extent<axis::V>();
  const index_t Hkv = a.k.template extent<axis::H>(), G = Hq / Hkv;
  const ref_scores sc{resolve_scale(o.scale, D), o.softcap};
  const index_t nseg = a.cu_seqlens_q ? a.cu_seqlens_q.template extent<axis::I>() - 1 : B;
  std::vector<double> s, out(static_cast<std::size_t>(Dv));
  for (index_t n = 0; n < nseg; ++n) {
    const index_t b = a.cu_seqlens_q ? 0 : n;
    const index_t q0 = a.cu_seqlens_q ? a.cu_seqlens_q(n) : 0;
    const index_t k0 = a.cu_seqlens_q ? a.cu_seqlens_k(n) : 0;
    const index_t tq = a.cu_seqlens_q ? a.cu_seqlens_q(n + 1) - q0 : a.q.template extent<axis::T>();
    const index_t tk = a.cu_seqlens_q ? a.cu_seqlens_k(n + 1) - k0 : a.k.template extent<axis::T>();
    const causal_window_mask mask{tq, tk, o.causal, o.window_left, o.window_right};
    for (index_t h = 0; h < Hq; ++h) {
      const index_t hk = h / G;
      const double slope = a.alibi_slopes ? static_cast<double>(a.alibi_slopes(h)) : 0.0;
      const double sink_v = a.sinks ? static_cast<double>(a.sinks(h)) : 0.0;
      for (index_t i = 0; i < tq; ++i) {
        auto kdot = [&](index_t j) {
          double acc = 0;
          for (index_t d = 0; d < D; ++d) acc += to_double(a.q(b, q0 + i, h, d)) * to_double(a.k(b, k0 + j, hk, d));
          return acc;
        };
        auto vat = [&](index_t j, index_t c) { return to_double(a.v(b, k0 + j, hk, c)); };
        double lse = 0;
        reference_row(mask, i, tk - tq, tk, Dv, sc, slope, a.sinks ? &sink_v : nullptr, kdot, vat, s, out.data(), lse);
        for (index_t c = 0; c < Dv; ++c) {
          if constexpr (std::is_same_v<T, double>) a.o(b, q0 + i, h, c) = out[c];
          else a.o(b, q0 + i, h, c) = from_float<T>(static_cast<float>(out[c]));
        }
        if (a.lse) a.lse(b, h, q0 + i) = static_cast<float>(lse);
      }
    }
  }
}

template <class T, class Cache>
void attention_decode_impl(const attention_decode_args<T, Cache>& a, const attention_decode_options& o, reference) {
  const auto& kc = a.cache;
  const index_t B = a.q.template extent<axis::B>(), Tq = a.q.template extent<axis::T>();
  const index_t Hq = a.q.template extent<axis::H>(), D = a.q.template extent<axis::D>();
  const index_t Dv = kc.v.template extent<axis::V>(), Hkv = kc.k.template extent<axis::H>(), G = Hq / Hkv;
  const ref_scores sc{resolve_scale(o.scale, D), o.softcap};
  std::vector<double> s, out(static_cast<std::size_t>(Dv));
  for (index_t b = 0; b < B; ++b) {
    const index_t L = kc.seqlens(b);
    const causal_window_mask mask{Tq, L, true, o.window_left, -1};
    const index_t kds = kc.k.template stride<axis::D>(), vds = kc.v.template stride<axis::V>();
    for (index_t h = 0; h < Hq; ++h) {
      const index_t hk = h / G;
      const double slope = a.alibi_slopes ? static_cast<double>(a.alibi_slopes(h)) : 0.0;
      const double sink_v = a.sinks ? static_cast<double>(a.sinks(h)) : 0.0;
      for (index_t t = 0; t < Tq; ++t) {
        auto kdot = [&](index_t j) {
          const auto* kp = kc.k_row(b, j, hk);
          double acc = 0;
          for (index_t d = 0; d < D; ++d) acc += to_double(a.q(b, t, h, d)) * to_double(kp[d * kds]);
          return acc;
        };
        auto vat = [&](index_t j, index_t c) { return to_double(kc.v_row(b, j, hk)[c * vds]); };
        double lse = 0;
        reference_row(mask, t, L - Tq, L, Dv, sc, slope, a.sinks ? &sink_v : nullptr, kdot, vat, s, out.data(), lse);
        for (index_t c = 0; c < Dv; ++c) {
          if constexpr (std::is_same_v<T, double>) a.o(b, t, h, c) = out[c];
          else a.o(b, t, h, c) = from_float<T>(static_cast<float>(out[c]));
        }
        if (a.lse) a.lse(b, h, t) = static_cast<float>(lse);
      }
    }
  }
}

}  // namespace seqmix::detail::fa
