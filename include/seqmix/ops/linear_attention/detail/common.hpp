// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/linear_attention/detail/common.hpp: what the nine linear-attention ops share: options,
// the varlen / state / decode conventions, the (sequence x head) task grid, shared checks, and small
// chunk helpers (local inclusive cumsums, stable factor ranges). See docs/04-linear-attention.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../../config.hpp"
#include "../../../core/axis.hpp"
#include "../../../core/check.hpp"
#include "../../../core/dtype.hpp"
#include "../../../core/index_view.hpp"
#include "../../../core/layout.hpp"
#include "../../../core/tensor_view.hpp"
#include "../../../runtime/context.hpp"
#include "../../../runtime/parallel_for.hpp"
#include "../../../simd/load_store.hpp"

namespace seqmix {

/// Which form a linear-family op runs: `auto_` picks by length, `chunk` is the chunkwise-parallel
/// form, `recurrent` the token-by-token definition. All forms agree within SPEC §6 tolerances.
enum class linear_mode { auto_, chunk, recurrent };

/// Options shared by the linear-family ops. Op-specific options structs repeat these first three
/// fields in this order (scale, mode, chunk_size), then add their own, and end with `run`, so that
/// designated initializers read the same everywhere: {.scale = 1.f, .mode = linear_mode::chunk}.
struct linear_options {
  std::optional<float> scale{};            ///< default 1/sqrt(K)
  linear_mode mode = linear_mode::auto_;   ///< auto_ | chunk | recurrent
  index_t chunk_size = 0;                  ///< 0 = the op's default (64; RWKV-7 16)
  run_context run{};                       ///< executor + workspace
};

/// cu_seqlens [N+1] (int32 or int64) with B = 1: sequence n is tokens [cu[n], cu[n+1]).
using cu_seqlens_view = index_view<layout<axis::I>>;
/// state_indices [B] (int32 or int64) for decode: the state slot of batch row b; -1 skips the row.
using state_indices_view = index_view<layout<axis::B>>;
/// Linear-family state [N,H,K,V] (float32).
using state_view = tensor_view<float, nhkv>;
using const_state_view = const_view<float, nhkv>;

namespace linear_detail {

/// One sequence of a call: batch row b, tokens [t0, t1), state index n (initial/final_state row).
struct seq_desc {
  index_t b = 0, t0 = 0, t1 = 0, n = 0;
  index_t length() const noexcept { return t1 - t0; }
};

/// The sequences of a call: B batch rows of T tokens, or (cu_seqlens given, B = 1) N varlen sequences.
struct seq_plan {
  cu_seqlens_view cu{};
  index_t B = 0, T = 0;

  index_t count() const noexcept { return cu ? cu.extent<axis::I>() - 1 : B; }
  seq_desc operator[](index_t n) const noexcept {
    if (cu) return {0, static_cast<index_t>(cu(n)), static_cast<index_t>(cu(n + 1)), n};
    return {n, 0, T, n};
  }
};

/// Scale of q: the option or 1/sqrt(K).
template <class Opt>
float resolve_scale(const Opt& o, index_t K) noexcept {
  return o.scale ? *o.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(K > 0 ? K : 1)));
}
template <class Opt>
double resolve_scale_f64(const Opt& o, index_t K) noexcept {
  return o.scale ? static_cast<double>(*o.scale) : 1.0 / std::sqrt(static_cast<double>(K > 0 ? K : 1));
}
/// Chunk size: the option or the op default.
template <class Opt>
index_t resolve_chunk(const Opt& o, index_t dflt) noexcept {
  return o.chunk_size > 0 ? o.chunk_size : dflt;
}

/// Runs f(seq_desc, h, worker) for every sequence x head on the options' executor (dynamic schedule, so
/// uneven varlen sequences balance).
template <class F>
void for_each_seq_head(const run_context& run, const seq_plan& plan, index_t H, F&& f) {
  const index_t N = plan.count();
  parallel_for(run.executor, grid{N, H}, [&](index_t n, index_t h, int worker) { f(plan[n], h, worker); });
}

// ---------------------------------------------------------------- shared checks (entry points)

/// Checks cu_seqlens (if given): B == 1, values non-decreasing from 0 to T. Returns the plan.
template <class V>
seq_plan check_plan(const check& c, const V& x, cu_seqlens_view cu) {
  seq_plan p{cu, x.template extent<axis::B>(), x.template extent<axis::T>()};
  if (!cu) return p;
  c.extent_at_least<axis::I>("cu_seqlens", cu, 1);
  c.require(p.B == 1, "cu_seqlens given with B = " + std::to_string(p.B) + ", expected B = 1");
  const index_t n = cu.extent<axis::I>();
  c.require(cu(0) == 0, "cu_seqlens[0] = " + std::to_string(cu(0)) + ", expected 0");
  for (index_t i = 1; i < n; ++i) {
    if (cu(i) < cu(i - 1)) {
      c.fail("cu_seqlens[" + std::to_string(i) + "] = " + std::to_string(cu(i)) + " < cu_seqlens[" +
             std::to_string(i - 1) + "] = " + std::to_string(cu(i - 1)) + ", expected non-decreasing");
    }
  }
  c.require(cu(n - 1) == p.T, "cu_seqlens[" + std::to_string(n - 1) + "] = " + std::to_string(cu(n - 1)) +
                                  ", expected T = " + std::to_string(p.T));
  return p;
}

/// Checks an optional state [N,H,K,V] against the expected extents.
template <class S>
void check_state(const check& c, std::string_view name, const S& s, index_t N, index_t H, index_t K,
                 index_t V, std::string_view from) {
  if (!s) return;
  c.extent<axis::N>(name, s, N, "number of sequences");
  c.extent<axis::H>(name, s, H, from);
  c.extent<axis::K>(name, s, K, from);
  c.extent<axis::V>(name, s, V, from);
}

/// Common options check: finite scale, chunk size in `allowed` (0 = default always allowed).
template <class Opt>
void check_options(const check& c, const Opt& o, std::initializer_list<index_t> allowed) {
  if (o.scale) c.finite("scale", static_cast<double>(*o.scale));
  if (o.chunk_size == 0) return;
  bool ok = false;
  std::string list;
  for (index_t a : allowed) {
    ok = ok || a == o.chunk_size;
    list += (list.empty() ? "" : ", ") + std::to_string(a);
  }
  if (!ok) c.fail("option chunk_size = " + std::to_string(o.chunk_size) + ", expected one of {" + list + "}");
}

/// Checks decode state_indices [B] (if given): values in [-1, N).
inline void check_state_indices(const check& c, state_indices_view idx, index_t B, index_t N) {
  if (!idx) return;
  c.extent<axis::B>("state_indices", idx, B, "batch rows");
  for (index_t b = 0; b < B; ++b) {
    if (idx(b) < -1 || idx(b) >= N) {
      c.fail("state_indices[" + std::to_string(b) + "] = " + std::to_string(idx(b)) + ", expected -1 or a slot in [0, " +
             std::to_string(N) + ")");
    }
  }
  // Two rows on one slot would race on its state: rows run in parallel.
  std::vector<std::pair<std::int64_t, index_t>> used;  // (slot, row)
  for (index_t b = 0; b < B; ++b)
    if (idx(b) >= 0) used.emplace_back(idx(b), b);
  std::sort(used.begin(), used.end());
  for (std::size_t i = 1; i < used.size(); ++i) {
    if (used[i].first == used[i - 1].first) {
      c.fail("state_indices[" + std::to_string(used[i - 1].second) + "] = state_indices[" +
             std::to_string(used[i].second) + "] = " + std::to_string(used[i].first) +
             ", expected distinct slots (or -1)");
    }
  }
}

/// The decode state slots, one rule for every decode entry point of the family: row b runs on slot
/// state_indices[b] when given (check_state_indices), else on slot b with N = B (as initial_state has one
/// slot per sequence). rows names the batch rows' tensor, e.g. "q [B,T,H,K]"; throws e.g.
/// "seqmix::gla_decode: state.extent(N) = 3, expected 2 (from q [B,T,H,K] without state_indices)".
template <class S>
void check_decode_slots(const check& c, const S& state, state_indices_view idx, index_t B, std::string_view rows) {
  c.require(state.data() != nullptr, "state is required but was not given");
  if (idx) {
    check_state_indices(c, idx, B, state.template extent<axis::N>());
  } else {
    c.extent<axis::N>("state", state, B, std::string(rows) + " without state_indices");
  }
}

/// The output of a skipped decode row (state slot < 0), one rule for the family: zero, over tokens [t0, t1)
/// and heads [h0, h1) of [B,T,H,V] outputs (channels [h0, h1) of [B,T,D] ones).
template <class T, class L>
void zero_skipped(const tensor_view<T, L>& o, index_t b, index_t t0, index_t t1, index_t h0, index_t h1) {
  for (index_t t = t0; t < t1; ++t)
    for (index_t h = h0; h < h1; ++h) {
      if constexpr (L::rank == 4) {
        for (index_t y = 0; y < o.template extent<axis::V>(); ++y) *o.ptr(b, t, h, y) = from_float<T>(0.0f);
      } else {
        *o.ptr(b, t, h) = from_float<T>(0.0f);
      }
    }
}

// ---------------------------------------------------------------- state copies (kernels)

/// Copies state[n,h] (any strides) into a dense K x V row-major float array; zeros when absent.
template <class S>
SEQMIX_ALWAYS_INLINE void load_state(const S& s, index_t n, index_t h, index_t K, index_t V,
                                     float* SEQMIX_RESTRICT dst) noexcept {
  if (!s) {
    std::fill(dst, dst + K * V, 0.0f);
    return;
  }
  for (index_t k = 0; k < K; ++k) {
    const auto* row = s.ptr(n, h, k, 0);
    const index_t sv = s.template stride<axis::V>();
    for (index_t v = 0; v < V; ++v) dst[k * V + v] = row[v * sv];
  }
}
/// Copies a dense K x V array into state[n,h] (any strides); no-op when absent.
SEQMIX_ALWAYS_INLINE void store_state(const state_view& s, index_t n, index_t h, index_t K, index_t V,
                                      const float* SEQMIX_RESTRICT src) noexcept {
  if (!s) return;
  for (index_t k = 0; k < K; ++k) {
    float* row = s.ptr(n, h, k, 0);
    const index_t sv = s.stride<axis::V>();
    for (index_t v = 0; v < V; ++v) row[v * sv] = src[k * V + v];
  }
}

/// dst[i] = float(src[i * stride]) * mul for i < n, any storage type: vector loads for contiguous rows (bf16
/// and f16 widened in registers, vec::load), element by element otherwise.
template <class Arch, class T>
SEQMIX_ALWAYS_INLINE void load_row(const T* SEQMIX_RESTRICT src, index_t stride, index_t n, float* SEQMIX_RESTRICT dst,
                                   float mul = 1.0f) noexcept {
  index_t i = 0;
  if (stride == 1) {
    using F = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(F::size);
    const F m(mul);
    for (; i + W <= n; i += W) (vec::load<Arch>(src + i) * m).store_unaligned(dst + i);
  }
  for (; i < n; ++i) dst[i] = to_float(src[i * stride]) * mul;
}
/// Narrows a float64 result to storage type T (double stays double).
template <class T>
SEQMIX_ALWAYS_INLINE T from_double(double x) noexcept {
  if constexpr (std::is_same_v<T, double>) return x;
  else return from_float<T>(static_cast<float>(x));
}

/// dst[i * stride] = T(src[i]) for i < n: vector stores for contiguous rows (vec::store), element by element
/// otherwise.
template <class Arch, class T>
SEQMIX_ALWAYS_INLINE void store_row(T* SEQMIX_RESTRICT dst, index_t stride, index_t n,
                                    const float* SEQMIX_RESTRICT src) noexcept {
  index_t i = 0;
  if (stride == 1) {
    using F = xsimd::batch<float, Arch>;
    constexpr index_t W = static_cast<index_t>(F::size);
    for (; i + W <= n; i += W) vec::store<Arch>(dst + i, F::load_unaligned(src + i));
  }
  for (; i < n; ++i) dst[i * stride] = from_float<T>(src[i]);
}

// ---------------------------------------------------------------- chunk helpers (SPEC §3.1)
//
// The chunk scheduler: every op runs one task per (sequence, head) and walks its chunks in order,
// phase (c) (outputs from the chunk-start state S0 plus the masked intra-chunk term) fused with phase
// (a)+(b) (S_next from S0 and the chunk's local contributions). With N*H >= threads this keeps every
// core busy without a second pass; see docs/04-linear-attention.md for the three-phase form.

/// In place: rows of a C x K array (row stride ld) become their local inclusive cumsum along rows.
inline void cumsum_rows(float* g, index_t rows, index_t K, index_t ld) noexcept {
  for (index_t i = 1; i < rows; ++i) {
    float* SEQMIX_RESTRICT cur = g + i * ld;
    const float* SEQMIX_RESTRICT prev = g + (i - 1) * ld;
    for (index_t k = 0; k < K; ++k) cur[k] += prev[k];
  }
}

/// Stability rule (SPEC §3.1): a chunk may factor e^{G_i - G_j} = e^{G_i - R} e^{R - G_j} with the
/// reference R = (max + min) / 2 of the cumulative gates (0 included) only when max - min <= this
/// bound, so each factor stays <= e^{bound/2} (no overflow, products finite). Otherwise the chunk is
/// split (down to single tokens, which are the exact recurrent step).
inline constexpr float factor_range_limit = 60.0f;

}  // namespace linear_detail
}  // namespace seqmix
