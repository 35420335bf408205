// SPDX-License-Identifier: Apache-2.0
// seqmix/core/eigen_interop.hpp: rank-2 views as Eigen::Map (no copy) and Eigen matrices as views.
#pragma once

#include <type_traits>

#include <Eigen/Core>

#include "tensor_view.hpp"

namespace seqmix {

/// Eigen map type for a rank-2 view of element type T (const T gives a read-only map).
template <class T>
using eigen_map = Eigen::Map<
    std::conditional_t<std::is_const_v<T>,
                       const Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                       Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>,
    Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

/// A rank-2 view (rows = first axis, columns = second) as an Eigen::Map over the same memory.
template <class T, class A0, class A1>
eigen_map<T> as_eigen(const tensor_view<T, layout<A0, A1>>& v) noexcept {
  return eigen_map<T>(v.data(), v.extent(0), v.extent(1), Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(v.stride(0), v.stride(1)));
}

/// An Eigen matrix (or block, map, ref with direct access) as a rank-2 view with layout Layout.
template <class Layout, class Derived>
auto as_view(Eigen::PlainObjectBase<Derived>& m) noexcept {
  static_assert(Layout::rank == 2, "as_view: Eigen matrices become rank-2 views");
  using S = typename Derived::Scalar;
  return tensor_view<S, Layout>(m.data(), {m.rows(), m.cols()}, {m.rowStride(), m.colStride()});
}
template <class Layout, class Derived>
auto as_view(const Eigen::PlainObjectBase<Derived>& m) noexcept {
  static_assert(Layout::rank == 2, "as_view: Eigen matrices become rank-2 views");
  using S = typename Derived::Scalar;
  return tensor_view<const S, Layout>(m.data(), {m.rows(), m.cols()}, {m.rowStride(), m.colStride()});
}

}  // namespace seqmix
