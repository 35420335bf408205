// SPDX-License-Identifier: Apache-2.0
// seqmix/core/tensor_view.hpp: the one non-owning strided view; axis order in the type, extents and
// strides (in elements) at run time. See docs/01-tensor-views.md.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "../config.hpp"
#include "layout.hpp"

namespace seqmix {

/// Extents or strides of a view with layout Layout: one index_t per axis, in layout order.
template <class Layout>
struct extents {
  static constexpr std::size_t rank = Layout::rank;
  std::array<index_t, rank> v{};

  constexpr extents() = default;
  template <class... I>
    requires(sizeof...(I) == rank && (std::is_integral_v<I> && ...))
  constexpr extents(I... i) noexcept : v{static_cast<index_t>(i)...} {}
  constexpr index_t& operator[](std::size_t i) noexcept { return v[i]; }
  constexpr index_t operator[](std::size_t i) const noexcept { return v[i]; }
  friend constexpr bool operator==(const extents&, const extents&) = default;
};

/// Row-major (last axis fastest) strides for the given extents.
template <class Layout>
constexpr extents<Layout> row_major_strides(const extents<Layout>& ext) noexcept {
  extents<Layout> s;
  index_t acc = 1;
  for (std::size_t i = Layout::rank; i-- > 0;) {
    s[i] = acc;
    acc *= ext[i];
  }
  return s;
}

template <class T, class Layout>
class tensor_view;

namespace detail {
template <class V>
struct is_tensor_view : std::false_type {};
template <class T, class L>
struct is_tensor_view<tensor_view<T, L>> : std::true_type {};
}  // namespace detail

/// Non-owning strided view: axis order in the type; extents and strides (elements) at run time.
/// Inputs are tensor_view<const T, L>; a mutable view converts to const, never back.
/// Strides may be any value, including 0 (broadcast) for inputs.
template <class T, class Layout>
class tensor_view {
  static_assert(is_layout<Layout>::value, "tensor_view: Layout must be seqmix::layout<Axes...>");

 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using layout_type = Layout;
  using extents_type = extents<Layout>;
  static constexpr std::size_t rank = Layout::rank;

  constexpr tensor_view() noexcept = default;
  /// Contiguous row-major view.
  constexpr tensor_view(T* p, extents_type ext) noexcept
      : p_(p), ext_(ext), str_(row_major_strides(ext)) {}
  /// View with explicit strides, in elements.
  constexpr tensor_view(T* p, extents_type ext, extents_type str) noexcept
      : p_(p), ext_(ext), str_(str) {}

  /// Mutable to const, never back.
  template <class U = T>
    requires(!std::is_const_v<U>)
  constexpr operator tensor_view<const U, Layout>() const noexcept {
    return tensor_view<const U, Layout>(p_, ext_, str_);
  }

  constexpr T* data() const noexcept { return p_; }
  constexpr bool empty_view() const noexcept { return p_ == nullptr; }
  explicit constexpr operator bool() const noexcept { return p_ != nullptr; }
  constexpr const extents_type& shape() const noexcept { return ext_; }
  constexpr const extents_type& strides() const noexcept { return str_; }

  template <class A>
  static constexpr std::size_t pos() noexcept {
    static_assert(has_axis<A, Layout>, "tensor_view: this layout has no such axis");
    return axis_position<A, Layout>::value;
  }
  template <class A>
  constexpr index_t extent() const noexcept { return ext_[pos<A>()]; }
  template <class A>
  constexpr index_t stride() const noexcept { return str_[pos<A>()]; }
  constexpr index_t extent(std::size_t i) const noexcept { return ext_[i]; }
  constexpr index_t stride(std::size_t i) const noexcept { return str_[i]; }

  /// Number of elements.
  constexpr index_t size() const noexcept {
    index_t n = 1;
    for (std::size_t i = 0; i < rank; ++i) n *= ext_[i];
    return n;
  }
  /// True when the strides are row-major for the extents (axes of extent 1 are ignored).
  constexpr bool is_contiguous() const noexcept {
    index_t acc = 1;
    for (std::size_t i = rank; i-- > 0;) {
      if (ext_[i] != 1 && str_[i] != acc) return false;
      acc *= ext_[i];
    }
    return true;
  }

  /// Element at indices given in layout order.
  template <class... I>
    requires(sizeof...(I) == rank)
  SEQMIX_ALWAYS_INLINE constexpr T& operator()(I... idx) const noexcept {
    return p_[offset(idx...)];
  }
  template <class... I>
    requires(sizeof...(I) == rank)
  SEQMIX_ALWAYS_INLINE constexpr index_t offset(I... idx) const noexcept {
    index_t off = 0;
    std::size_t k = 0;
    ((off += static_cast<index_t>(idx) * str_[k++]), ...);
    return off;
  }
  /// Pointer to the element at the given indices.
  template <class... I>
    requires(sizeof...(I) == rank)
  SEQMIX_ALWAYS_INLINE constexpr T* ptr(I... idx) const noexcept {
    return p_ + offset(idx...);
  }

  /// Indices [begin, end) along axis A; same layout.
  template <class A>
  constexpr tensor_view slice(index_t begin, index_t end) const noexcept {
    constexpr std::size_t k = pos<A>();
    SEQMIX_ASSERT(0 <= begin && begin <= end && end <= ext_[k]);
    extents_type e = ext_;
    e[k] = end - begin;
    return tensor_view(p_ + begin * str_[k], e, str_);
  }

  /// Index i along axis A, dropping that axis.
  template <class A>
  constexpr tensor_view<T, remove_axis_t<A, Layout>> at(index_t i) const noexcept {
    constexpr std::size_t k = pos<A>();
    SEQMIX_ASSERT(0 <= i && i < ext_[k]);
    using R = remove_axis_t<A, Layout>;
    extents<R> e, s;
    std::size_t j = 0;
    for (std::size_t a = 0; a < rank; ++a) {
      if (a == k) continue;
      e[j] = ext_[a];
      s[j] = str_[a];
      ++j;
    }
    return tensor_view<T, R>(p_ + i * str_[k], e, s);
  }

  /// The same data seen with its axes in another order: v.as<layout<B,H,T,D>>() of a [B,T,H,D] view.
  template <class NewLayout>
  constexpr tensor_view<T, NewLayout> as() const noexcept {
    static_assert(same_axes<Layout, NewLayout>::value,
                  "tensor_view::as: the new layout must hold the same axes in another order");
    extents<NewLayout> e, s;
    permute_into(e, s, static_cast<NewLayout*>(nullptr));
    return tensor_view<T, NewLayout>(p_, e, s);
  }

 private:
  template <class NL, class... Axes>
  constexpr void permute_into(extents<NL>& e, extents<NL>& s, layout<Axes...>*) const noexcept {
    std::size_t j = 0;
    ((e[j] = ext_[pos<Axes>()], s[j] = str_[pos<Axes>()], ++j), ...);
  }

  T* p_ = nullptr;
  extents_type ext_{};
  extents_type str_{};
};

/// Contiguous view over a buffer: make_view<bthd>(ptr, {B, T, H, D}).
template <class Layout, class T>
constexpr tensor_view<T, Layout> make_view(T* p, extents<Layout> ext) noexcept {
  return tensor_view<T, Layout>(p, ext);
}
/// Strided view over a buffer.
template <class Layout, class T>
constexpr tensor_view<T, Layout> make_view(T* p, extents<Layout> ext, extents<Layout> str) noexcept {
  return tensor_view<T, Layout>(p, ext, str);
}

/// A view whose element type is const: the inputs of every op.
template <class T, class Layout>
using const_view = tensor_view<const T, Layout>;

template <class V>
concept any_tensor_view = detail::is_tensor_view<std::remove_cvref_t<V>>::value;

/// A view of exactly layout Layout (any element type). Used in concepts beside entry points.
template <class V, class Layout>
concept view_of = any_tensor_view<V> && std::is_same_v<typename std::remove_cvref_t<V>::layout_type, Layout>;

}  // namespace seqmix
