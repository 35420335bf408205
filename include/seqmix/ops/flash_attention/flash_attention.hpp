// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/flash_attention.hpp: softmax attention (SPEC §3.3): argument structs,
// options, shape checks and the public entry points `attention` (prefill, varlen) and `attention_decode`
// (contiguous or paged KV cache). See docs/03-flash-attention.md.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "../../config.hpp"
#include "../../core/backend.hpp"
#include "../../core/check.hpp"
#include "../../core/dtype.hpp"
#include "../../core/index_view.hpp"
#include "../../core/layout.hpp"
#include "../../core/tensor_view.hpp"
#include "../../runtime/context.hpp"
#include "policies.hpp"

namespace seqmix {

using flash_h = layout<axis::H>;     ///< [Hq] per-head parameters (ALiBi slopes, sinks)
using flash_i = layout<axis::I>;     ///< [N+1] cu_seqlens
using flash_b = layout<axis::B>;     ///< [B] cache_seqlens
using sthv = layout<axis::S, axis::T, axis::H, axis::V>;  ///< paged value cache [num_blocks,page,Hkv,Dv]

/// Inputs and outputs of `attention` (prefill). Optional tensors are empty views when absent.
template <class T>
struct attention_args {
  tensor_view<const T, bthd> q;                         // [B,Tq,Hq,D]
  tensor_view<const T, bthd> k;                         // [B,Tk,Hkv,D]
  tensor_view<const T, bthv> v;                         // [B,Tk,Hkv,Dv]
  tensor_view<T, bthv> o;                               // [B,Tq,Hq,Dv]
  tensor_view<float, bht> lse{};                        // [B,Hq,Tq] (optional)
  tensor_view<const float, flash_h> alibi_slopes{};     // [Hq] (optional)
  tensor_view<const float, flash_h> sinks{};            // [Hq] (optional; proposed in SPEC §3.3.1)
  index_view<flash_i> cu_seqlens_q{};                   // [N+1] int32 or int64 (optional, with B = 1)
  index_view<flash_i> cu_seqlens_k{};                   // [N+1]
};

/// Options of `attention`. scale defaults to 1/sqrt(D); window sides -1 = unbounded; softcap 0 = off.
struct attention_options {
  std::optional<double> scale{};
  bool causal = false;
  index_t window_left = -1;
  index_t window_right = -1;
  double softcap = 0.0;
  run_context run{};
};

/// A contiguous KV cache as views: row b holds seqlens[b] valid positions.
template <class C>
struct kv_cache_view {
  static constexpr bool paged = false;
  using storage_type = C;
  tensor_view<const C, bthd> k;                          // [B,Tmax,Hkv,D]
  tensor_view<const C, bthv> v;                          // [B,Tmax,Hkv,Dv]
  index_view<flash_b> seqlens;                           // [B] int32 or int64

  /// Key j / value j of batch row b, head h (first element of the row).
  const C* k_row(index_t b, index_t j, index_t h) const noexcept { return k.ptr(b, j, h, 0); }
  const C* v_row(index_t b, index_t j, index_t h) const noexcept { return v.ptr(b, j, h, 0); }
};

/// A paged KV cache as views: key j of row b lives in page block_table[b][j / page], slot j % page.
template <class C>
struct paged_kv_cache_view {
  static constexpr bool paged = true;
  using storage_type = C;
  tensor_view<const C, sthd> k;                          // [num_blocks,page,Hkv,D]
  tensor_view<const C, sthv> v;                          // [num_blocks,page,Hkv,Dv]
  index_view<bp> block_table;                            // [B,P] int32 or int64
  index_view<flash_b> seqlens;                           // [B] int32 or int64

  /// Key j / value j of batch row b, head h (first element of the row), through the block table.
  const C* k_row(index_t b, index_t j, index_t h) const noexcept {
    const index_t page = k.template extent<axis::T>();
    return k.ptr(block_table(b, j / page), j % page, h, 0);
  }
  const C* v_row(index_t b, index_t j, index_t h) const noexcept {
    const index_t page = v.template extent<axis::T>();
    return v.ptr(block_table(b, j / page), j % page, h, 0);
  }
};

template <class X>
struct is_kv_cache_view : std::false_type {};
template <class C>
struct is_kv_cache_view<kv_cache_view<C>> : std::true_type {};
template <class C>
struct is_kv_cache_view<paged_kv_cache_view<C>> : std::true_type {};

/// Inputs and outputs of `attention_decode`: Tq new tokens per row (1, or a few for speculative
/// decoding), already appended to the cache.
template <class T, class Cache>
struct attention_decode_args {
  static_assert(is_kv_cache_view<Cache>::value,
                "attention_decode_args: Cache must be kv_cache_view<C> or paged_kv_cache_view<C>");
  tensor_view<const T, bthd> q;                          // [B,Tq,Hq,D]
  Cache cache;
  tensor_view<T, bthv> o;                                // [B,Tq,Hq,Dv]
  tensor_view<float, bht> lse{};                         // [B,Hq,Tq] (optional)
  tensor_view<const float, flash_h> alibi_slopes{};      // [Hq] (optional)
  tensor_view<const float, flash_h> sinks{};             // [Hq] (optional)
};

/// Options of `attention_decode`. num_splits 0 = automatic split-KV (flash-decoding).
struct attention_decode_options {
  std::optional<double> scale{};
  double softcap = 0.0;
  index_t window_left = -1;
  index_t num_splits = 0;
  run_context run{};
};

namespace detail::fa {

inline void check_options(const check& c, const std::optional<double>& scale, double softcap, index_t wl,
                          index_t wr) {
  if (scale) c.finite("scale", *scale);
  c.finite("softcap", softcap);
  if (softcap < 0) c.fail("option softcap = " + std::to_string(softcap) + ", expected >= 0");
  if (wl < -1) c.fail("option window_left = " + std::to_string(wl) + ", expected >= -1");
  if (wr < -1) c.fail("option window_right = " + std::to_string(wr) + ", expected >= -1");
}

template <class Q>
void check_per_head(const check& c, const tensor_view<const float, flash_h>& x, const char* name, const Q& q) {
  if (x) c.same_extent<axis::H>(name, x, "q", q);
}

template <class T>
void check_outputs(const check& c, const tensor_view<const T, bthd>& q, const tensor_view<T, bthv>& o,
                   const tensor_view<float, bht>& lse, index_t dv) {
  c.present("o", o);
  c.same_extent<axis::B>("o", o, "q", q);
  c.same_extent<axis::T>("o", o, "q", q);
  c.same_extent<axis::H>("o", o, "q", q);
  c.extent<axis::V>("o", o, dv, "v [B,T,H,V]");
  if (lse) {
    c.same_extent<axis::B>("lse", lse, "q", q);
    c.same_extent<axis::H>("lse", lse, "q", q);
    c.same_extent<axis::T>("lse", lse, "q", q);
  }
}

inline void check_cu(const check& c, const index_view<flash_i>& cu, const char* name,
                     index_t total) {
  if (cu.extent<axis::I>() < 1) c.fail(std::string(name) + ".extent(I) = 0, expected >= 1");
  if (cu(0) != 0) c.fail(std::string(name) + "[0] = " + std::to_string(cu(0)) + ", expected 0");
  const index_t n = cu.extent<axis::I>();
  for (index_t i = 1; i < n; ++i) {
    if (cu(i) < cu(i - 1)) {
      c.fail(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(cu(i)) +
             ", expected >= " + std::to_string(cu(i - 1)) + " (non-decreasing)");
    }
  }
  if (cu(n - 1) != total) {
    c.fail(std::string(name) + "[" + std::to_string(n - 1) + "] = " + std::to_string(cu(n - 1)) +
           ", expected " + std::to_string(total) + " (the total length)");
  }
}

template <class T>
void check_attention(const attention_args<T>& a, const attention_options& o) {
  const check c("attention");
  c.present("q", a.q);
  c.present("k", a.k);
  c.present("v", a.v);
  c.same_extent<axis::B>("k", a.k, "q", a.q);
  c.same_extent<axis::D>("k", a.k, "q", a.q);
  c.same_extent<axis::B>("v", a.v, "k", a.k);
  c.same_extent<axis::T>("v", a.v, "k", a.k);
  c.same_extent<axis::H>("v", a.v, "k", a.k);
  c.extent_at_least<axis::H>("k", a.k, 1);
  c.multiple_of<axis::H>("q", a.q, "k", a.k);
  c.extent_at_least<axis::D>("q", a.q, 1);
  c.extent_at_least<axis::V>("v", a.v, 1);
  check_outputs(c, a.q, a.o, a.lse, a.v.template extent<axis::V>());
  check_per_head(c, a.alibi_slopes, "alibi_slopes", a.q);
  check_per_head(c, a.sinks, "sinks", a.q);
  check_options(c, o.scale, o.softcap, o.window_left, o.window_right);
  if (static_cast<bool>(a.cu_seqlens_q) != static_cast<bool>(a.cu_seqlens_k)) {
    c.fail("cu_seqlens_q and cu_seqlens_k must be given together");
  }
  if (a.cu_seqlens_q) {
    c.extent<axis::B>("q", a.q, 1, "cu_seqlens (varlen needs B = 1)");
    c.same_extent<axis::I>("cu_seqlens_k", a.cu_seqlens_k, "cu_seqlens_q", a.cu_seqlens_q);
    check_cu(c, a.cu_seqlens_q, "cu_seqlens_q", a.q.template extent<axis::T>());
    check_cu(c, a.cu_seqlens_k, "cu_seqlens_k", a.k.template extent<axis::T>());
  }
}

template <class T, class Cache>
void check_decode(const attention_decode_args<T, Cache>& a, const attention_decode_options& o) {
  const check c("attention_decode");
  const auto& kc = a.cache;
  c.present("q", a.q);
  c.present("k_cache", kc.k);
  c.present("v_cache", kc.v);
  c.present("cache_seqlens", kc.seqlens);
  c.same_extent<axis::D>("k_cache", kc.k, "q", a.q);
  c.same_extent<axis::T>("v_cache", kc.v, "k_cache", kc.k);
  c.same_extent<axis::H>("v_cache", kc.v, "k_cache", kc.k);
  c.extent_at_least<axis::H>("k_cache", kc.k, 1);
  c.multiple_of<axis::H>("q", a.q, "k_cache", kc.k);
  c.extent_at_least<axis::D>("q", a.q, 1);
  c.extent_at_least<axis::V>("v_cache", kc.v, 1);
  c.extent<axis::B>("cache_seqlens", kc.seqlens, a.q.template extent<axis::B>(), "q [B,T,H,D]");
  check_outputs(c, a.q, a.o, a.lse, kc.v.template extent<axis::V>());
  check_per_head(c, a.alibi_slopes, "alibi_slopes", a.q);
  check_per_head(c, a.sinks, "sinks", a.q);
  check_options(c, o.scale, o.softcap, o.window_left, -1);
  if (o.num_splits < 0) c.fail("option num_splits = " + std::to_string(o.num_splits) + ", expected >= 0");
  const index_t B = a.q.template extent<axis::B>();
  index_t cap = 0;
  if constexpr (!Cache::paged) {
    c.same_extent<axis::B>("k_cache", kc.k, "q", a.q);
    c.same_extent<axis::B>("v_cache", kc.v, "q", a.q);
    cap = kc.k.template extent<axis::T>();
  } else {
    c.same_extent<axis::S>("v_cache", kc.v, "k_cache", kc.k);
    c.present("block_table", kc.block_table);
    c.extent<axis::B>("block_table", kc.block_table, B, "q [B,T,H,D]");
    cap = kc.k.template extent<axis::T>() * kc.block_table.template extent<axis::P>();
  }
  for (index_t b = 0; b < B; ++b) {
    const index_t L = kc.seqlens(b);
    if (L < 0 || L > cap) {
      c.fail("cache_seqlens[" + std::to_string(b) + "] = " + std::to_string(L) + ", expected a value in [0, " +
             std::to_string(cap) + "]");
    }
    if constexpr (Cache::paged) {
      const index_t page = kc.k.template extent<axis::T>();
      const index_t nb = kc.k.template extent<axis::S>();
      for (index_t p = 0; p * page < L; ++p) {
        const index_t blk = kc.block_table(b, p);
        if (blk < 0 || blk >= nb) {
          c.fail("block_table[" + std::to_string(b) + "][" + std::to_string(p) + "] = " + std::to_string(blk) +
                 ", expected a value in [0, " + std::to_string(nb) + ") (k_cache [S,T,H,D] blocks)");
        }
      }
    }
  }
}

/// The scale an options struct asks for.
inline double resolve_scale(const std::optional<double>& s, index_t d) {
  return s ? *s : 1.0 / std::sqrt(static_cast<double>(d));
}

}  // namespace detail::fa

// Implementations (reference.hpp and simd.hpp provide the overloads).
namespace detail::fa {
template <class T>
void attention_impl(const attention_args<T>& a, const attention_options& o, reference);
template <class A, class T>
void attention_impl(const attention_args<T>& a, const attention_options& o, simd<A>);
template <class T, class Cache>
void attention_decode_impl(const attention_decode_args<T, Cache>& a, const attention_decode_options& o, reference);
template <class A, class T, class Cache>
void attention_decode_impl(const attention_decode_args<T, Cache>& a, const attention_decode_options& o, simd<A>);
}  // namespace detail::fa

/// Softmax attention, flash-style (prefill and varlen): o = softmax(mask(scores)) v per SPEC §3.3.1, with
/// scale, bottom-right causal, window (wl, wr), softcap, ALiBi, sinks, GQA/MQA and any strides.
/// Shapes: q [B,Tq,Hq,D]; k [B,Tk,Hkv,D]; v [B,Tk,Hkv,Dv]; o [B,Tq,Hq,Dv]; lse [B,Hq,Tq]; alibi_slopes,
/// sinks [Hq]; cu_seqlens_q/k [N+1] with B = 1; Hq % Hkv == 0.
/// Throws: seqmix::shape_error naming the tensor, axis and expected extent, or the bad option.
template <class Backend = simd<>, class T>
void attention(const attention_args<T>& a, const attention_options& o = {}, Backend be = {}) {
  static_assert(backend<Backend>, "attention: Backend must be seqmix::reference or seqmix::simd<Arch>");
  static_assert(storage_type<T>, "attention: T must be float, double, bf16 or f16");
  detail::fa::check_attention(a, o);
  detail::fa::attention_impl(a, o, be);
}

/// Decode attention over a KV cache (SPEC §3.3.2): the Tq new tokens of row b (already in the cache) see
/// keys [0, cache_seqlens[b]), bottom-right causal among themselves, optional window_left. Long rows are
/// split across threads and merged exactly by log-sum-exp (flash-decoding).
/// Shapes: q [B,Tq,Hq,D]; contiguous cache k [B,Tmax,Hkv,D], v [B,Tmax,Hkv,Dv]; paged cache
/// k [num_blocks,page,Hkv,D], v [num_blocks,page,Hkv,Dv], block_table [B,P]; seqlens [B]; o [B,Tq,Hq,Dv];
/// lse [B,Hq,Tq].
/// Throws: seqmix::shape_error naming the tensor, axis and expected extent, or a bad seqlen / page index.
template <class Backend = simd<>, class T, class Cache>
void attention_decode(const attention_decode_args<T, Cache>& a, const attention_decode_options& o = {},
                      Backend be = {}) {
  static_assert(backend<Backend>, "attention_decode: Backend must be seqmix::reference or seqmix::simd<Arch>");
  static_assert(storage_type<T>, "attention_decode: T must be float, double, bf16 or f16");
  detail::fa::check_decode(a, o);
  detail::fa::attention_decode_impl(a, o, be);
}

}  // namespace seqmix

#include "reference.hpp"
#include "simd.hpp"
#include "kv_cache.hpp"
