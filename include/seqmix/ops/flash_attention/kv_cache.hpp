// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/flash_attention/kv_cache.hpp: owning KV caches for attention_decode: contiguous (per batch row,
// with seqlens) and paged (fixed page size, a block table per row, pages in any order); float32, bf16 or
// f16 storage; append of one or many tokens.
#pragma once

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "flash_attention.hpp"

namespace seqmix {

namespace detail::fa {
template <class C, class T>
inline C to_storage(T x) noexcept {
  if constexpr (std::is_same_v<C, T>) return x;
  else if constexpr (std::is_same_v<C, double>) return to_double(x);
  else return from_float<C>(to_float(x));
}

/// Checks k_new / v_new of an append against the cache geometry; returns the token count.
template <class T>
index_t check_append(const check& c, const tensor_view<const T, bthd>& k, const tensor_view<const T, bthv>& v,
                     index_t rows, index_t hkv, index_t d, index_t dv) {
  c.present("k_new", k);
  c.present("v_new", v);
  c.extent<axis::B>("k_new", k, rows, "the cache rows");
  c.extent<axis::H>("k_new", k, hkv, "the cache's Hkv");
  c.extent<axis::D>("k_new", k, d, "the cache's D");
  c.same_extent<axis::B>("v_new", v, "k_new", k);
  c.same_extent<axis::T>("v_new", v, "k_new", k);
  c.extent<axis::H>("v_new", v, hkv, "the cache's Hkv");
  c.extent<axis::V>("v_new", v, dv, "the cache's Dv");
  return k.template extent<axis::T>();
}
}  // namespace detail::fa

/// Contiguous KV cache: k [B,Tmax,Hkv,D], v [B,Tmax,Hkv,Dv] in storage type C, seqlens [B].
template <class C = float>
class kv_cache {
  static_assert(std::is_same_v<C, float> || std::is_same_v<C, bf16> || std::is_same_v<C, f16>,
                "kv_cache: storage must be float, bf16 or f16");

 public:
  /// Shapes: the cache holds batch rows of up to max_t tokens, hkv heads, head dims d (keys) and dv.
  /// Throws: seqmix::shape_error when a size is not positive.
  kv_cache(index_t batch, index_t max_t, index_t hkv, index_t d, index_t dv)
      : b_(batch), tmax_(max_t), hkv_(hkv), d_(d), dv_(dv) {
    const check c("kv_cache");
    c.require(batch > 0 && max_t > 0 && hkv > 0 && d > 0 && dv > 0, "every size must be positive");
    k_.resize(static_cast<std::size_t>(batch * max_t * hkv * d));
    v_.resize(static_cast<std::size_t>(batch * max_t * hkv * dv));
    len_.assign(static_cast<std::size_t>(batch), 0);
  }

  /// Appends Tn tokens to every row.
  /// Shapes: k_new [B,Tn,Hkv,D], v_new [B,Tn,Hkv,Dv].
  /// Throws: seqmix::shape_error on a shape mismatch or when a row would exceed Tmax.
  template <class T>
  void append(tensor_view<const T, bthd> k_new, tensor_view<const T, bthv> v_new) {
    const check c("kv_cache::append");
    const index_t tn = detail::fa::check_append(c, k_new, v_new, b_, hkv_, d_, dv_);
    for (index_t b = 0; b < b_; ++b) room(c, b, tn);
    for (index_t b = 0; b < b_; ++b) write(b, b, k_new, v_new, tn);
  }
  /// Appends Tn tokens to row `row` only.
  /// Shapes: k_new [1,Tn,Hkv,D], v_new [1,Tn,Hkv,Dv].
  /// Throws: seqmix::shape_error on a shape mismatch, a bad row, or when the row would exceed Tmax.
  template <class T>
  void append(index_t row, tensor_view<const T, bthd> k_new, tensor_view<const T, bthv> v_new) {
    const check c("kv_cache::append");
    const index_t tn = detail::fa::check_append(c, k_new, v_new, 1, hkv_, d_, dv_);
    c.require(row >= 0 && row < b_, "row " + std::to_string(row) + " out of range [0, " + std::to_string(b_) + ")");
    room(c, row, tn);
    write(row, 0, k_new, v_new, tn);
  }
  /// Empties every row.
  void clear() noexcept { std::fill(len_.begin(), len_.end(), 0); }

  kv_cache_view<C> view() const noexcept {
    return {tensor_view<const C, bthd>(k_.data(), {b_, tmax_, hkv_, d_}),     // [B,Tmax,Hkv,D]
            tensor_view<const C, bthv>(v_.data(), {b_, tmax_, hkv_, dv_}),    // [B,Tmax,Hkv,Dv]
            tensor_view<const std::int32_t, flash_b>(len_.data(), {b_})};     // [B]
  }
  index_t seqlen(index_t b) const noexcept { return len_[static_cast<std::size_t>(b)]; }
  index_t capacity() const noexcept { return tmax_; }

 private:
  void room(const check& c, index_t b, index_t tn) const {
    if (seqlen(b) + tn > tmax_) {
      c.fail("row " + std::to_string(b) + " holds " + std::to_string(seqlen(b)) + " tokens; appending " +
             std::to_string(tn) + " exceeds Tmax = " + std::to_string(tmax_));
    }
  }
  template <class T>
  void write(index_t b, index_t src_b, const tensor_view<const T, bthd>& kn, const tensor_view<const T, bthv>& vn,
             index_t tn) {
    const index_t L = seqlen(b);
    for (index_t t = 0; t < tn; ++t)
      for (index_t h = 0; h < hkv_; ++h) {
        C* kp = k_.data() + ((b * tmax_ + L + t) * hkv_ + h) * d_;
        C* vp = v_.data() + ((b * tmax_ + L + t) * hkv_ + h) * dv_;
        for (index_t d = 0; d < d_; ++d) kp[d] = detail::fa::to_storage<C>(kn(src_b, t, h, d));
        for (index_t d = 0; d < dv_; ++d) vp[d] = detail::fa::to_storage<C>(vn(src_b, t, h, d));
      }
    len_[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(L + tn);
  }

  index_t b_, tmax_, hkv_, d_, dv_;
  std::vector<C> k_, v_;
  std::vector<std::int32_t> len_;
};

/// Paged KV cache: a pool of num_blocks pages of page_size tokens, k [num_blocks,page,Hkv,D],
/// v [num_blocks,page,Hkv,Dv]; each row owns up to max_pages pages listed in its block table. Pages are
/// handed out in `page_order` (default 0, 1, 2, ...), so any order can be exercised.
template <class C = float>
class paged_kv_cache {
  static_assert(std::is_same_v<C, float> || std::is_same_v<C, bf16> || std::is_same_v<C, f16>,
                "paged_kv_cache: storage must be float, bf16 or f16");

 public:
  /// Shapes: batch rows, num_blocks pages of page_size tokens, block table [batch, max_pages].
  /// Throws: seqmix::shape_error when a size is not positive or page_order is not a permutation.
  paged_kv_cache(index_t batch, index_t num_blocks, index_t page_size, index_t max_pages, index_t hkv, index_t d,
                 index_t dv, std::vector<std::int32_t> page_order = {})
      : b_(batch), nb_(num_blocks), page_(page_size), maxp_(max_pages), hkv_(hkv), d_(d), dv_(dv) {
    const check c("paged_kv_cache");
    c.require(batch > 0 && num_blocks > 0 && page_size > 0 && max_pages > 0 && hkv > 0 && d > 0 && dv > 0,
              "every size must be positive");
    k_.resize(static_cast<std::size_t>(num_blocks * page_size * hkv * d));
    v_.resize(static_cast<std::size_t>(num_blocks * page_size * hkv * dv));
    table_.assign(static_cast<std::size_t>(batch * max_pages), -1);
    len_.assign(static_cast<std::size_t>(batch), 0);
    if (page_order.empty()) {
      page_order.resize(static_cast<std::size_t>(num_blocks));
      std::iota(page_order.begin(), page_order.end(), 0);
    }
    std::vector<char> seen(static_cast<std::size_t>(num_blocks), 0);
    c.require(static_cast<index_t>(page_order.size()) == num_blocks, "page_order must list every page once");
    for (auto p : page_order) {
      c.require(p >= 0 && p < num_blocks && !seen[static_cast<std::size_t>(p)], "page_order must list every page once");
      seen[static_cast<std::size_t>(p)] = 1;
    }
    free_.assign(page_order.rbegin(), page_order.rend());  // pop_back hands out page_order[0] first
  }

  /// Appends Tn tokens to every row, taking new pages as needed.
  /// Shapes: k_new [B,Tn,Hkv,D], v_new [B,Tn,Hkv,Dv].
  /// Throws: seqmix::shape_error on a shape mismatch, or when pages or block-table slots run out.
  template <class T>
  void append(tensor_view<const T, bthd> k_new, tensor_view<const T, bthv> v_new) {
    const check c("paged_kv_cache::append");
    const index_t tn = detail::fa::check_append(c, k_new, v_new, b_, hkv_, d_, dv_);
    index_t need = 0;
    for (index_t b = 0; b < b_; ++b) need += pages_needed(c, b, tn);
    c.require(need <= static_cast<index_t>(free_.size()), "out of pages: need " + std::to_string(need) + ", " +
                                                             std::to_string(free_.size()) + " free");
    for (index_t b = 0; b < b_; ++b) write(b, b, k_new, v_new, tn);
  }
  /// Appends Tn tokens to row `row` only.
  /// Shapes: k_new [1,Tn,Hkv,D], v_new [1,Tn,Hkv,Dv].
  /// Throws: seqmix::shape_error on a shape mismatch, a bad row, or when pages run out.
  template <class T>
  void append(index_t row, tensor_view<const T, bthd> k_new, tensor_view<const T, bthv> v_new) {
    const check c("paged_kv_cache::append");
    const index_t tn = detail::fa::check_append(c, k_new, v_new, 1, hkv_, d_, dv_);
    c.require(row >= 0 && row < b_, "row " + std::to_string(row) + " out of range [0, " + std::to_string(b_) + ")");
    const index_t need = pages_needed(c, row, tn);
    c.require(need <= static_cast<index_t>(free_.size()), "out of pages: need " + std::to_string(need) + ", " +
                                                             std::to_string(free_.size()) + " free");
    write(row, 0, k_new, v_new, tn);
  }

  paged_kv_cache_view<C> view() const noexcept {
    return {tensor_view<const C, sthd>(k_.data(), {nb_, page_, hkv_, d_}),      // [S,page,Hkv,D]
            tensor_view<const C, sthv>(v_.data(), {nb_, page_, hkv_, dv_}),     // [S,page,Hkv,Dv]
            tensor_view<const std::int32_t, bp>(table_.data(), {b_, maxp_}),     // [B,P]
            tensor_view<const std::int32_t, flash_b>(len_.data(), {b_})};       // [B]
  }
  index_t seqlen(index_t b) const noexcept { return len_[static_cast<std::size_t>(b)]; }
  index_t page_size() const noexcept { return page_; }
  index_t free_pages() const noexcept { return static_cast<index_t>(free_.size()); }

 private:
  index_t pages_needed(const check& c, index_t b, index_t tn) const {
    const index_t have = (seqlen(b) + page_ - 1) / page_, want = (seqlen(b) + tn + page_ - 1) / page_;
    if (want > maxp_) {
      c.fail("row " + std::to_string(b) + " would need " + std::to_string(want) + " pages, block table holds " +
             std::to_string(maxp_));
    }
    return want - have;
  }
  template <class T>
  void write(index_t b, index_t src_b, const tensor_view<const T, bthd>& kn, const tensor_view<const T, bthv>& vn,
             index_t tn) {
    const index_t L = seqlen(b);
    for (index_t t = 0; t < tn; ++t) {
      const index_t j = L + t, p = j / page_, slot = j % page_;
      std::int32_t& blk = table_[static_cast<std::size_t>(b * maxp_ + p)];
      if (blk < 0) {
        blk = free_.back();
        free_.pop_back();
      }
      for (index_t h = 0; h < hkv_; ++h) {
        C* kp = k_.data() + ((blk * page_ + slot) * hkv_ + h) * d_;
        C* vp = v_.data() + ((blk * page_ + slot) * hkv_ + h) * dv_;
        for (index_t d = 0; d < d_; ++d) kp[d] = detail::fa::to_storage<C>(kn(src_b, t, h, d));
        for (index_t d = 0; d < dv_; ++d) vp[d] = detail::fa::to_storage<C>(vn(src_b, t, h, d));
      }
    }
    len_[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(L + tn);
  }

  index_t b_, nb_, page_, maxp_, hkv_, d_, dv_;
  std::vector<C> k_, v_;
  std::vector<std::int32_t> table_, len_;
  std::vector<std::int32_t> free_;
};

}  // namespace seqmix
