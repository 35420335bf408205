// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/conv_simd.hpp: causal depthwise conv1d fast paths: vectorised over time for
// channel-first rows (L-stride 1), over channels for channel-last rows (D-stride 1), generic otherwise.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../../../core/backend.hpp"
#include "../../../runtime/parallel_for.hpp"
#include "../../../runtime/workspace.hpp"
#include "args.hpp"
#include "segments.hpp"
#include "vmath.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::detail::ssm {

template <class A>
SEQMIX_ALWAYS_INLINE fbatch<A> conv_act(fbatch<A> v, bool silu) noexcept {
  fbatch<A> r[1] = {v};
  if (silu) lockstep::silu<A, 1>(r);
  return r[0];
}

/// Channel-first float outputs of at least this many bytes (twice an L3) are written with streaming stores:
/// none of them would stay cached for the next layer, and an ordinary store first reads its line for
/// ownership. Smaller outputs use ordinary stores: streaming measured 3-4% slower at 8 and 16 MiB (also
/// for a layer reading them after), mixed at 32 MiB, 2-7% faster at 64 MiB. See docs/06-ssm-scans.md §4.
inline constexpr double conv_stream_min_bytes = 64.0 * (1 << 20);

/// Streaming store of one batch to a width-aligned address (ordinary aligned store where the ISA has none).
template <class A>
SEQMIX_ALWAYS_INLINE void stream_store(float* p, fbatch<A> v) noexcept {
#if defined(__AVX512F__)
  if constexpr (fbatch<A>::size == 16) {
    _mm512_stream_ps(p, v);
    return;
  }
#endif
#if defined(__AVX__)
  if constexpr (fbatch<A>::size == 8) {
    _mm256_stream_ps(p, v);
    return;
  }
#endif
#if defined(__SSE2__)
  if constexpr (fbatch<A>::size == 4) {
    _mm_stream_ps(p, v);
    return;
  }
#endif
  v.store_aligned(p);
}
/// Orders this thread's streaming stores before what follows (the task's end).
SEQMIX_ALWAYS_INLINE void stream_fence() noexcept {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

/// One channel row from token t to len: out[t..len) = act(bias + sum_k w[k] x[t - (W-1) + k]) for
/// t - (W-1) >= 0 (full batches, then the rest with masked loads and stores); returns len. Taps and the
/// activation are template parameters (Wc = 0: any W) and the loop state lives in locals: with the loop in
/// an out-of-line lambda capturing by reference, every vector store (a may_alias type) forced the captures
/// and the loop index back through memory. Several batches per step: silu is a long dependency chain, so
/// they run in lockstep (vmath.hpp).
template <class A, int Wc, bool Silu, bool Stream, class T>
SEQMIX_ALWAYS_INLINE index_t conv_row_body(const T* SEQMIX_RESTRICT x, T* SEQMIX_RESTRICT out, index_t t,
                                           index_t len, const float* w, index_t Wr, float bias) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t V = static_cast<index_t>(Bt::size);
  const index_t W = Wc > 0 ? Wc : Wr;
  Bt wv[Wc > 0 ? Wc : 1];
  if constexpr (Wc > 0)
    for (int k = 0; k < Wc; ++k) wv[k] = Bt(w[k]);
  const Bt bb(bias);
  const auto step = [&](auto nb) {  // nb batches from t on, silu in lockstep
    constexpr int NB = decltype(nb)::value;
    Bt acc[NB];
    for (int q = 0; q < NB; ++q) {
      const T* p = x + t + q * V - (W - 1);
      acc[q] = bb;
      if constexpr (Wc > 0) {
        for (int k = 0; k < Wc; ++k) acc[q] = xsimd::fma(wv[k], load_w<A>(p + k), acc[q]);
      } else {
        for (index_t k = 0; k < W; ++k) acc[q] = xsimd::fma(Bt(w[k]), load_w<A>(p + k), acc[q]);
      }
    }
    if constexpr (Silu) lockstep::silu<A, NB>(acc);
    for (int q = 0; q < NB; ++q) {
      if constexpr (Stream) stream_store<A>(out + t + q * V, acc[q]);
      else store_n<A>(out + t + q * V, acc[q], V);
    }
    t += NB * V;
  };
  // eight batches per step (silu's chain is ~80 cycles: eight in flight measured 7-15% faster than four
  // with the rows in L3)
  while (t + 8 * V <= len) step(std::integral_constant<int, 8>{});
  // the rest (< 8 batches, the last one partial: masked loads and stores) in one lockstep step; a row
  // ends here once per segment, so varlen calls pay this per sequence
  if (const index_t r = len - t; r > 0) {
    constexpr int NB = 8;
    const index_t nb = (r + V - 1) / V;
    Bt acc[NB];
    for (int q = 0; q < NB; ++q) {
      acc[q] = bb;
      if (q >= nb) continue;
      const index_t n = std::min(V, r - q * V);
      const T* p = x + t + q * V - (W - 1);
      for (index_t k = 0; k < W; ++k) acc[q] = xsimd::fma(Bt(w[k]), load_n<A>(p + k, n), acc[q]);
    }
    if constexpr (Silu) lockstep::silu<A, NB>(acc);
    for (index_t q = 0; q < nb; ++q) store_n<A>(out + t + q * V, acc[q], std::min(V, r - q * V));
    t = len;
  }
  return t;
}

/// One channel row (L-stride 1 in and out): out[t] = act(bias + sum_k w[k] xhat[t - (W-1) + k]).
/// `stream` (float rows only): streaming stores from the first width-aligned output on (the tokens before it
/// are one batch stored in part).
template <class A, class T>
inline void conv_row_contig(const T* x, T* out, index_t len, const float* w, index_t W, float bias,
                            const float* hist /* [W-1] */, bool silu, bool stream = false) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t V = static_cast<index_t>(Bt::size);
  auto xhat = [&](index_t j) -> float { return j >= 0 ? to_float(x[j]) : hist[W - 1 + j]; };
  index_t t = 0;
  if (W - 1 <= V) {  // tokens [0, min(len, V)) as one batch over [history | x]
    const index_t h = std::min(len, V);
    alignas(64) float tmp[2 * V];
    for (index_t i = 0; i < 2 * V; ++i)
      tmp[i] = i < W - 1 ? hist[i] : (i - (W - 1) < h ? to_float(x[i - (W - 1)]) : 0.0f);
    Bt acc[1] = {Bt(bias)};
    for (index_t k = 0; k < W; ++k) acc[0] = xsimd::fma(Bt(w[k]), Bt::load_unaligned(tmp + k), acc[0]);
    if (silu) lockstep::silu<A, 1>(acc);
    store_n<A>(out, acc[0], h);
    t = h;
  } else {
    for (; t < std::min(len, W - 1); ++t) {
      float acc = bias;
      for (index_t k = 0; k < W; ++k) acc += w[k] * xhat(t - (W - 1) + k);
      out[t] = from_float<T>(silu ? silu_scalar(acc) : acc);
    }
  }
  if constexpr (std::is_same_v<T, float>) {
    const auto mis = reinterpret_cast<std::uintptr_t>(out + t) % (V * sizeof(float));
    if (stream && mis % sizeof(float) == 0 && t + 2 * V <= len) {
      if (mis != 0) {  // tokens [t, t + n) up to the first aligned output: one batch, its first n lanes stored
        const index_t n = V - static_cast<index_t>(mis / sizeof(float));
        const T* p = x + t - (W - 1);
        Bt acc[1] = {Bt(bias)};
        for (index_t k = 0; k < W; ++k) acc[0] = xsimd::fma(Bt(w[k]), load_w<A>(p + k), acc[0]);
        if (silu) lockstep::silu<A, 1>(acc);
        store_n<A>(out + t, acc[0], n);
        t += n;
      }
      if (W == 4) {
        t = silu ? conv_row_body<A, 4, true, true>(x, out, t, len, w, W, bias)
                 : conv_row_body<A, 4, false, true>(x, out, t, len, w, W, bias);
      } else {
        t = silu ? conv_row_body<A, 0, true, true>(x, out, t, len, w, W, bias)
                 : conv_row_body<A, 0, false, true>(x, out, t, len, w, W, bias);
      }
      stream = false;
    }
  }
  if (W == 4) {
    t = silu ? conv_row_body<A, 4, true, false>(x, out, t, len, w, W, bias)
             : conv_row_body<A, 4, false, false>(x, out, t, len, w, W, bias);
  } else {
    t = silu ? conv_row_body<A, 0, true, false>(x, out, t, len, w, W, bias)
             : conv_row_body<A, 0, false, false>(x, out, t, len, w, W, bias);
  }
}

/// Channel-last, TT tokens per pass over whole rows (D-stride 1): out[t + j] = act(bias + sum_k w_k x[t + j -
/// (Wc-1) + k]) for j < TT, every tap inside the segment. The TT + Wc - 1 input rows of a channel batch are
/// loaded once for the TT outputs, and x and out are read and written row after row (whole rows: this machine
/// streams them far better than pieces of many rows).
template <class A, int Wc, int TT, bool Silu, class T>
SEQMIX_ALWAYS_INLINE void conv_cl_rows(const T* const* xr, T* const* orow, const float* wt, index_t Dp,
                                       const float* bias, index_t Dn) noexcept {
  using Bt = fbatch<A>;
  constexpr index_t V = static_cast<index_t>(Bt::size);
  constexpr int NX = TT + Wc - 1;
  index_t c = 0;
  for (; c < Dn; c += V) {
    const index_t m = std::min(V, Dn - c);
    Bt xv[NX], acc[TT];
    for (int r = 0; r < NX; ++r) xv[r] = m == V ? load_w<A>(xr[r] + c) : load_n<A>(xr[r] + c, m);
    const Bt b = Bt::load_unaligned(bias + c);
    for (int j = 0; j < TT; ++j) acc[j] = b;
    for (int k = 0; k < Wc; ++k) {
      const Bt wk = Bt::load_unaligned(wt + k * Dp + c);
      for (int j = 0; j < TT; ++j) acc[j] = xsimd::fma(wk, xv[j + k], acc[j]);
    }
    if constexpr (Silu) lockstep::silu<A, TT>(acc);
    for (int j = 0; j < TT; ++j) store_n<A>(orow[j] + c, acc[j], m);
  }
}

/// `stream_min_bytes`: outputs of at least this size use streaming stores (tests pass 0 or infinity).
template <class Arch, class T>
void causal_conv1d_impl(const causal_conv1d_args<T>& a, const causal_conv1d_options& o, simd<Arch>,
                        double stream_min_bytes = conv_stream_min_bytes) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t V = static_cast<index_t>(Bt::size);
  const index_t Bn = a.x.template extent<axis::B>(), Dn = a.x.template extent<axis::D>();
  const index_t L = a.x.template extent<axis::L>(), W = a.weight.template extent<axis::W>();
  const bool silu = o.activation == conv_activation::silu;
  const auto segs = make_segments(Bn, L, a.cu_seqlens);
  const index_t ns = static_cast<index_t>(segs.size());
  const int workers = std::max(1, o.run.workers());
  const any_executor ex = pick_executor(o.run, static_cast<double>(a.x.size()) * W);
  const bool row_contig = a.x.template stride<axis::L>() == 1 && a.out.template stride<axis::L>() == 1;
  const bool chan_last = !row_contig && a.x.template stride<axis::D>() == 1 && a.out.template stride<axis::D>() == 1;
  auto hist_at = [&](const segment& sg, index_t d, index_t i) -> float {  // xhat[-(W-1) + i]
    return (a.initial_states && sg.init >= 0) ? to_float(a.initial_states(sg.init, d, i)) : 0.0f;
  };

  if (!chan_last) {
    // per channel rows; blocks of 16 channels per task
    constexpr index_t DB = 16;
    const index_t nblk = (Dn + DB - 1) / DB;
    const bool stream = row_contig && std::is_same_v<T, float> &&
                        static_cast<double>(a.out.size()) * sizeof(T) >= stream_min_bytes;
    workspace& ws = o.run.scratch();
    ws.reserve(workers, 2 * arena_bytes<float>(W + V) + arena_bytes<float>(std::max<index_t>(L, 1) + 2 * V) * 2);
    // a task runs its channels through all segments of one batch row in order (varlen: B = 1, several
    // segments), so each channel row is read and written whole, front to back: segment-major tasks read
    // short pieces of every row at a time (19.4 vs 7.2 ms for 4 segments, D = 4096, L = 2048)
    std::vector<index_t> first_seg;
    for (index_t si = 0; si < ns; ++si)
      if (si == 0 || segs[static_cast<std::size_t>(si)].b != segs[static_cast<std::size_t>(si - 1)].b)
        first_seg.push_back(si);
    first_seg.push_back(ns);
    const index_t nrow = static_cast<index_t>(first_seg.size()) - 1;
    parallel_for(ex, grid{nrow, nblk}, [&](index_t ri, index_t blk, int worker) {
      arena ar(ws.get(worker), ws.bytes_per_worker());
      float* w = ar.alloc<float>(W + V);
      float* hist = ar.alloc<float>(W + V);
      float* xin = ar.alloc<float>(std::max<index_t>(L, 1) + 2 * V);
      float* xout = ar.alloc<float>(std::max<index_t>(L, 1) + 2 * V);
      for (index_t d = blk * DB; d < std::min(Dn, blk * DB + DB); ++d) {
        for (index_t k = 0; k < W; ++k) w[k] = to_float(a.weight(d, k));
        const index_t s0 = first_seg[static_cast<std::size_t>(ri)], s1 = first_seg[static_cast<std::size_t>(ri + 1)];
        for (index_t si = s0; si < s1; ++si) {
          const segment& sg = segs[static_cast<std::size_t>(si)];
          const index_t len = sg.t1 - sg.t0;
          for (index_t i = 0; i + 1 < W; ++i) hist[i] = hist_at(sg, d, i);
          const float bias = a.bias ? to_float(a.bias(d)) : 0.0f;
          if (row_contig) {
            conv_row_contig<A>(a.x.ptr(sg.b, d, sg.t0), a.out.ptr(sg.b, d, sg.t0), len, w, W, bias, hist, silu, stream);
          } else {  // any strides: through float rows
            for (index_t t = 0; t < len; ++t) xin[t] = to_float(a.x(sg.b, d, sg.t0 + t));
            conv_row_contig<A>(static_cast<const float*>(xin), xout, len, w, W, bias, hist, silu);
            for (index_t t = 0; t < len; ++t) a.out(sg.b, d, sg.t0 + t) = from_float<T>(xout[t]);
          }
          if (a.final_states && sg.fin >= 0)
            for (index_t i = 0; i + 1 < W; ++i) {
              const index_t j = len - (W - 1) + i;
              a.final_states(sg.fin, d, i) = j >= 0 ? a.x(sg.b, d, sg.t0 + j) : from_float<T>(hist[W - 1 + j]);
            }
        }
      }
      if (stream) stream_fence();
    });
    return;
  }

  // channel-last: vectorise over channels; tasks are blocks of TB tokens (rows of D contiguous values), so
  // memory is read and written in order. Weights transposed to [W][D], history rows [W-1][D] per segment.
  constexpr index_t TB = 16;
  const index_t Dp = (Dn + V - 1) / V * V;
  std::vector<float> wt(static_cast<std::size_t>(W * Dp), 0.0f), bias(static_cast<std::size_t>(Dp), 0.0f);
  std::vector<float> hist(static_cast<std::size_t>(ns * std::max<index_t>(W - 1, 1) * Dp), 0.0f);
  for (index_t d = 0; d < Dn; ++d) {
    for (index_t k = 0; k < W; ++k) wt[static_cast<std::size_t>(k * Dp + d)] = to_float(a.weight(d, k));
    if (a.bias) bias[static_cast<std::size_t>(d)] = to_float(a.bias(d));
  }
  for (index_t si = 0; si < ns; ++si)
    for (index_t i = 0; i + 1 < W; ++i)
      for (index_t d = 0; d < Dn; ++d)
        hist[static_cast<std::size_t>((si * (W - 1) + i) * Dp + d)] = hist_at(segs[static_cast<std::size_t>(si)], d, i);
  std::vector<index_t> task_seg, task_t0;  // (segment, first token) of each task
  for (index_t si = 0; si < ns; ++si)
    for (index_t t0 = segs[static_cast<std::size_t>(si)].t0; t0 < segs[static_cast<std::size_t>(si)].t1; t0 += TB) {
      task_seg.push_back(si);
      task_t0.push_back(t0);
    }
  const index_t sxl = a.x.template stride<axis::L>(), sol = a.out.template stride<axis::L>();
  parallel_for(ex, static_cast<index_t>(task_seg.size()), [&](index_t task) {
    const index_t si = task_seg[static_cast<std::size_t>(task)];
    const segment& sg = segs[static_cast<std::size_t>(si)];
    const index_t t0 = task_t0[static_cast<std::size_t>(task)], t1 = std::min(sg.t1, t0 + TB);
    const float* hs = hist.data() + si * (W - 1) * Dp;
    index_t tf = t0;  // tokens before tf run below, one at a time
    if (W <= 4) {
      // whole rows, 4 tokens per pass, from the first token whose taps all lie in the segment
      tf = std::max(t0, sg.t0 + W - 1);
      constexpr int TT = 4;
      auto pass = [&]<int Wc, int N>(index_t t) {
        const T* xr[N + Wc - 1];
        T* orow[N];
        for (int r = 0; r < N + Wc - 1; ++r) xr[r] = a.x.ptr(sg.b, 0, t - (Wc - 1) + r);
        for (int j = 0; j < N; ++j) orow[j] = a.out.ptr(sg.b, 0, t + j);
        if (silu) conv_cl_rows<A, Wc, N, true>(xr, orow, wt.data(), Dp, bias.data(), Dn);
        else conv_cl_rows<A, Wc, N, false>(xr, orow, wt.data(), Dp, bias.data(), Dn);
      };
      auto run = [&]<int Wc>() {
        index_t t = tf;
        for (; t + TT <= t1; t += TT) pass.template operator()<Wc, TT>(t);
        for (; t < t1; ++t) pass.template operator()<Wc, 1>(t);
      };
      if (tf < t1) {
        if (W == 4) run.template operator()<4>();
        else if (W == 3) run.template operator()<3>();
        else if (W == 2) run.template operator()<2>();
        else run.template operator()<1>();
      }
      tf = std::min(tf, t1);
    } else {
      tf = t1;
    }
    constexpr index_t CB = 256;  // channels per pass: x rows and weights of a pass stay in L1
    for (index_t cb = 0; cb < Dn; cb += CB)
    for (index_t t = t0; t < tf; ++t) {
      const index_t j0 = t - sg.t0 - (W - 1);  // x^ index of tap 0
      const index_t ce = std::min(Dn, cb + CB);
      T* orow = a.out.ptr(sg.b, 0, t);
      if (j0 >= 0) {
        const T* xr = a.x.ptr(sg.b, 0, sg.t0 + j0);
        index_t c = cb;
        for (; c + 4 * V <= ce; c += 4 * V) {  // four batches: silu in lockstep
          Bt acc[4];
          for (int q = 0; q < 4; ++q) {
            acc[q] = Bt::load_unaligned(bias.data() + c + q * V);
            for (index_t k = 0; k < W; ++k)
              acc[q] = xsimd::fma(Bt::load_unaligned(wt.data() + k * Dp + c + q * V), load_w<A>(xr + k * sxl + c + q * V), acc[q]);
          }
          if (silu) lockstep::silu<A, 4>(acc);
          for (int q = 0; q < 4; ++q) store_n<A>(orow + c + q * V, acc[q], V);
        }
        for (; c + V <= ce; c += V) {
          Bt acc = Bt::load_unaligned(bias.data() + c);
          for (index_t k = 0; k < W; ++k)
            acc = xsimd::fma(Bt::load_unaligned(wt.data() + k * Dp + c), load_w<A>(xr + k * sxl + c), acc);
          store_n<A>(orow + c, conv_act<A>(acc, silu), V);
        }
        if (c < ce) {
          const index_t m = ce - c;
          Bt acc = Bt::load_unaligned(bias.data() + c);
          for (index_t k = 0; k < W; ++k)
            acc = xsimd::fma(Bt::load_unaligned(wt.data() + k * Dp + c), load_n<A>(xr + k * sxl + c, m), acc);
          store_n<A>(orow + c, conv_act<A>(acc, silu), m);
        }
      } else {  // the first W-1 tokens of a segment read the history
        for (index_t c = cb; c < ce; c += V) {
          const index_t m = std::min(V, ce - c);
          Bt acc = Bt::load_unaligned(bias.data() + c);
          for (index_t k = 0; k < W; ++k) {
            const index_t j = j0 + k;
            const Bt xv = j >= 0 ? load_n<A>(a.x.ptr(sg.b, c, sg.t0 + j), m) : Bt::load_unaligned(hs + (W - 1 + j) * Dp + c);
            acc = xsimd::fma(Bt::load_unaligned(wt.data() + k * Dp + c), xv, acc);
          }
          store_n<A>(orow + c, conv_act<A>(acc, silu), m);
        }
      }
    }
    if (a.final_states && sg.fin >= 0 && t1 == sg.t1)
      for (index_t d = 0; d < Dn; ++d)
        for (index_t i = 0; i + 1 < W; ++i) {
          const index_t j = sg.t1 - sg.t0 - (W - 1) + i;
          a.final_states(sg.fin, d, i) = j >= 0 ? a.x(sg.b, d, sg.t0 + j) : from_float<T>(hs[(W - 1 + j) * Dp + d]);
        }
  });
  (void)sol;
}

/// Decode: per (row, channel) in float, W multiply-adds per token (activation vectorised per block of
/// channels); the state is updated in place.
template <class Arch, class T>
void causal_conv1d_update_impl(const causal_conv1d_update_args<T>& a, const causal_conv1d_options& o, simd<Arch>) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t V = static_cast<index_t>(Bt::size);
  const index_t Bn = a.x.template extent<axis::B>(), Dn = a.x.template extent<axis::D>();
  const index_t L = a.x.template extent<axis::L>(), W = a.weight.template extent<axis::W>();
  const index_t S = a.conv_state.template extent<axis::S>();
  const bool silu = o.activation == conv_activation::silu;
  constexpr index_t DB = 64;
  const index_t nblk = (Dn + DB - 1) / DB;
  // (D10240 W4, ~50 us on one thread, stays on the calling thread: two workers over 64-channel tasks took 84 us)
  const any_executor ex = pick_executor(o.run, static_cast<double>(a.x.size()) * W);
  // float, shift-register state of W - 1 taps, rows of unit stride: V channels at a time, state and weights
  // gathered, the shifted state scattered back
  const index_t ss = a.conv_state.template stride<axis::S>();
  const bool vec_path = std::is_same_v<T, float> && !a.cache_seqlens && S == W - 1 && W >= 2 && W <= 8 && ss == 1 &&
                        a.weight.template stride<axis::W>() == 1;
  using It = xsimd::batch<std::int32_t, A>;
  auto lanes = [&](index_t step) {
    alignas(64) std::int32_t v[V];
    for (index_t i = 0; i < V; ++i) v[i] = static_cast<std::int32_t>(i * step);
    return It::load_aligned(v);
  };
  const index_t sd = a.conv_state.template stride<axis::D>(), wd = a.weight.template stride<axis::D>();
  const index_t xd = a.x.template stride<axis::D>(), bd = a.bias ? a.bias.template stride<axis::D>() : 0;
  const index_t smax = std::max({sd < 0 ? -sd : sd, wd < 0 ? -wd : wd, xd < 0 ? -xd : xd, bd < 0 ? -bd : bd});
  const bool idx_fit = vec_path && (V - 1) * smax < (index_t{1} << 30);  // lane offsets as int32
  const It is = lanes(idx_fit ? sd : 0), iw = lanes(idx_fit ? wd : 0), ix = lanes(idx_fit ? xd : 0);
  const It ib = lanes(idx_fit ? bd : 0);
  parallel_for(ex, grid{Bn, nblk}, [&](index_t b, index_t blk) {
    const index_t slot = a.conv_state_indices ? a.conv_state_indices(b) : b;
    const index_t d0 = blk * DB, nd = std::min(DB, Dn - d0);
    alignas(64) float acc[DB + V];
    for (index_t t = 0; t < L; ++t) {
      index_t c0 = 0;
      if constexpr (std::is_same_v<T, float>) {
        if (idx_fit && slot >= 0)
          for (; c0 + V <= nd; c0 += V) {
            const index_t d = d0 + c0;
            float* st = a.conv_state.ptr(slot, d, 0);
            const float* wp = a.weight.ptr(d, 0);
            const float* xp = a.x.ptr(b, d, t);
            const Bt xv = xd == 1 ? Bt::load_unaligned(xp) : Bt::gather(xp, ix);
            Bt v(0.0f);
            if (a.bias) {
              const float* bp = a.bias.data() + d * bd;
              v = bd == 1 ? Bt::load_unaligned(bp) : Bt::gather(bp, ib);
            }
            v = xsimd::fma(Bt::gather(wp + (W - 1), iw), xv, v);
            Bt sv[8];
            for (index_t k = 0; k < S; ++k) {
              sv[k] = Bt::gather(st + k, is);
              v = xsimd::fma(Bt::gather(wp + k, iw), sv[k], v);
            }
            for (index_t k = 0; k + 1 < S; ++k) sv[k + 1].scatter(st + k, is);
            xv.scatter(st + (S - 1), is);
            v.store_aligned(acc + c0);
          }
      }
      for (index_t c = c0; c < nd; ++c) {
        const index_t d = d0 + c;
        if (slot < 0) {
          acc[c] = 0.0f;
          continue;
        }
        T* st = a.conv_state.ptr(slot, d, 0);
        const T xt = a.x(b, d, t);
        float v = (a.bias ? to_float(a.bias(d)) : 0.0f) + to_float(a.weight(d, W - 1)) * to_float(xt);
        if (a.cache_seqlens) {
          const index_t cpos = a.cache_seqlens(b) + t;
          index_t pos = ((cpos - 1) % S + S) % S;
          for (index_t i = 1; i < W; ++i) {
            v += to_float(a.weight(d, W - 1 - i)) * to_float(st[pos * ss]);
            pos = pos == 0 ? S - 1 : pos - 1;
          }
          st[((cpos % S + S) % S) * ss] = xt;
        } else {
          for (index_t i = 1; i < W; ++i) v += to_float(a.weight(d, W - 1 - i)) * to_float(st[(S - i) * ss]);
          for (index_t s = 0; s + 1 < S; ++s) st[s * ss] = st[(s + 1) * ss];
          if (S > 0) st[(S - 1) * ss] = xt;
        }
        acc[c] = v;
      }
      if (silu && slot >= 0)
        for (index_t c = 0; c < nd; c += V) vsilu<A>(Bt::load_aligned(acc + c)).store_aligned(acc + c);
      for (index_t c = 0; c < nd; ++c) a.out(b, d0 + c, t) = from_float<T>(acc[c]);
    }
  });
}

}  // namespace seqmix::detail::ssm
SEQMIX_DIAG_POP
