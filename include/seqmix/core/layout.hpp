// SPDX-License-Identifier: Apache-2.0
// seqmix/core/layout.hpp: layout<Axes...> (axis order as a type), axis lookup, common aliases.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "axis.hpp"

namespace seqmix {

/// An axis order: layout<axis::B, axis::T, axis::H, axis::D> is [B,T,H,D]. Axes must be distinct.
template <class... Axes>
struct layout {
  static constexpr std::size_t rank = sizeof...(Axes);
};

namespace detail {
template <class A, class... Axes>
struct axis_index;
template <class A>
struct axis_index<A> {
  static constexpr std::size_t value = static_cast<std::size_t>(-1);
};
template <class A, class First, class... Rest>
struct axis_index<A, First, Rest...> {
  static constexpr std::size_t value =
      std::is_same_v<A, First>
          ? 0
          : (axis_index<A, Rest...>::value == static_cast<std::size_t>(-1)
                 ? static_cast<std::size_t>(-1)
                 : 1 + axis_index<A, Rest...>::value);
};

template <class... Axes>
constexpr bool all_distinct() {
  if constexpr (sizeof...(Axes) <= 1) {
    return true;
  } else {
    return []<class First, class... Rest>(layout<First, Rest...>*) {
      return !(std::is_same_v<First, Rest> || ...) && all_distinct<Rest...>();
    }(static_cast<layout<Axes...>*>(nullptr));
  }
}

template <class A, class Layout>
struct remove_axis;
template <class A, class... Axes>
struct remove_axis<A, layout<Axes...>> {
  template <class X>
  using keep = std::conditional_t<std::is_same_v<X, A>, layout<>, layout<X>>;
  template <class... Ls>
  struct cat;
  template <class... Xs>
  struct cat<layout<Xs...>> {
    using type = layout<Xs...>;
  };
  template <class... Xs, class... Ys, class... Rest>
  struct cat<layout<Xs...>, layout<Ys...>, Rest...> {
    using type = typename cat<layout<Xs..., Ys...>, Rest...>::type;
  };
  using type = typename cat<layout<>, keep<Axes>...>::type;
};
}  // namespace detail

template <class L>
struct is_layout : std::false_type {};
template <class... Axes>
struct is_layout<layout<Axes...>> : std::true_type {};

/// Position of axis A in Layout, or a compile error naming the problem.
template <class A, class Layout>
struct axis_position;
template <class A, class... Axes>
struct axis_position<A, layout<Axes...>> {
  static constexpr std::size_t value = detail::axis_index<A, Axes...>::value;
};

/// True when Layout contains axis A.
template <class A, class Layout>
inline constexpr bool has_axis = axis_position<A, Layout>::value != static_cast<std::size_t>(-1);

/// Layout with axis A removed (the layout of a view after selecting one index along A).
template <class A, class Layout>
using remove_axis_t = typename detail::remove_axis<A, Layout>::type;

/// "[B,T,H,D]" for layout<B,T,H,D>.
template <class... Axes>
std::string layout_name(layout<Axes...>) {
  std::string s = "[";
  bool first = true;
  ((s += (first ? "" : ","), s += Axes::name, first = false), ...);
  return s + "]";
}

/// True when L2 holds the same axes as L1 in any order.
template <class L1, class L2>
struct same_axes;
template <class... A1, class... A2>
struct same_axes<layout<A1...>, layout<A2...>>
    : std::bool_constant<sizeof...(A1) == sizeof...(A2) &&
                         (has_axis<A1, layout<A2...>> && ...)> {};

// Common layouts (SPEC §2). Names are the axis letters in order.
namespace layouts {
using bthd = layout<axis::B, axis::T, axis::H, axis::D>;
using bthk = layout<axis::B, axis::T, axis::H, axis::K>;
using bthv = layout<axis::B, axis::T, axis::H, axis::V>;
using bth = layout<axis::B, axis::T, axis::H>;
using btd = layout<axis::B, axis::T, axis::D>;
using bt = layout<axis::B, axis::T>;
using bhkv = layout<axis::B, axis::H, axis::K, axis::V>;
using nhkv = layout<axis::N, axis::H, axis::K, axis::V>;
using nhk = layout<axis::N, axis::H, axis::K>;
using nd = layout<axis::N, axis::D>;
using bd = layout<axis::B, axis::D>;
using bdl = layout<axis::B, axis::D, axis::L>;
using dn = layout<axis::D, axis::N>;
using bdn = layout<axis::B, axis::D, axis::N>;
using bgnl = layout<axis::B, axis::G, axis::N, axis::L>;
using bthp = layout<axis::B, axis::T, axis::H, axis::P>;
using btgn = layout<axis::B, axis::T, axis::G, axis::N>;
using bhpn = layout<axis::B, axis::H, axis::P, axis::N>;
using bhp = layout<axis::B, axis::H, axis::P>;
using bgn = layout<axis::B, axis::G, axis::N>;
using bh = layout<axis::B, axis::H>;
using bht = layout<axis::B, axis::H, axis::T>;
using dw = layout<axis::D, axis::W>;
using bdw = layout<axis::B, axis::D, axis::W>;
using hk = layout<axis::H, axis::K>;
using hp = layout<axis::H, axis::P>;
using ij = layout<axis::I, axis::J>;
using bp = layout<axis::B, axis::P>;
using sthd = layout<axis::S, axis::T, axis::H, axis::D>;  // paged cache [num_blocks, page, Hkv, D]
}  // namespace layouts
using namespace layouts;

}  // namespace seqmix
