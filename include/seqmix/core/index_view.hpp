// SPDX-License-Identifier: Apache-2.0
// seqmix/core/index_view.hpp: integer index tensors (cu_seqlens, seq_idx, cache lengths, slots, page tables)
// stored as int32 or int64, as SPEC §2.12 allows: one of two const tensor_views, read as std::int64_t.
#pragma once

#include <cstdint>

#include "tensor_view.hpp"

namespace seqmix {

/// Read-only index tensor of layout Layout whose elements are int32 (FlashAttention's, vLLM's) or int64
/// (PyTorch's LongTensor, fla's). Converts implicitly from a view of either type, so an args struct field
/// `index_view<layout<axis::I>> cu_seqlens` takes both; elements read as std::int64_t. Empty by default.
template <class Layout>
class index_view {
 public:
  using layout_type = Layout;
  using extents_type = extents<Layout>;
  using value_type = std::int64_t;
  static constexpr std::size_t rank = Layout::rank;

  constexpr index_view() noexcept = default;
  constexpr index_view(const_view<std::int32_t, Layout> v) noexcept : v32_(v) {}
  constexpr index_view(const_view<std::int64_t, Layout> v) noexcept : v64_(v) {}
  constexpr index_view(tensor_view<std::int32_t, Layout> v) noexcept : v32_(v) {}
  constexpr index_view(tensor_view<std::int64_t, Layout> v) noexcept : v64_(v) {}
  /// Contiguous row-major, or strided, over a buffer (as tensor_view's constructors).
  constexpr index_view(const std::int32_t* p, extents_type ext) noexcept : v32_(p, ext) {}
  constexpr index_view(const std::int64_t* p, extents_type ext) noexcept : v64_(p, ext) {}
  constexpr index_view(const std::int32_t* p, extents_type ext, extents_type str) noexcept : v32_(p, ext, str) {}
  constexpr index_view(const std::int64_t* p, extents_type ext, extents_type str) noexcept : v64_(p, ext, str) {}

  explicit constexpr operator bool() const noexcept { return v32_ || v64_; }
  constexpr bool empty_view() const noexcept { return !*this; }
  /// The first element's address (int32 or int64 storage: see is_int64()); null when empty.
  constexpr const void* data() const noexcept {
    return v64_ ? static_cast<const void*>(v64_.data()) : static_cast<const void*>(v32_.data());
  }
  /// True when the storage is int64.
  constexpr bool is_int64() const noexcept { return static_cast<bool>(v64_); }

  constexpr const extents_type& shape() const noexcept { return v64_ ? v64_.shape() : v32_.shape(); }
  template <class A>
  constexpr index_t extent() const noexcept {
    return v64_ ? v64_.template extent<A>() : v32_.template extent<A>();
  }
  template <class A>
  constexpr index_t stride() const noexcept {
    return v64_ ? v64_.template stride<A>() : v32_.template stride<A>();
  }
  constexpr index_t size() const noexcept { return v64_ ? v64_.size() : v32_.size(); }

  /// Element at indices given in layout order, widened to int64.
  template <class... I>
    requires(sizeof...(I) == rank)
  SEQMIX_ALWAYS_INLINE constexpr std::int64_t operator()(I... idx) const noexcept {
    return v64_ ? v64_(idx...) : static_cast<std::int64_t>(v32_(idx...));
  }

 private:
  const_view<std::int32_t, Layout> v32_{};
  const_view<std::int64_t, Layout> v64_{};
};

}  // namespace seqmix
