// SPDX-License-Identifier: Apache-2.0
// seqmix/core/check.hpp: argument checks for public entry points; each failure throws shape_error
// with one message format: "seqmix::<op>: <tensor>.extent(<axis>) = <got>, expected <want> (from ...)".
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "error.hpp"
#include "tensor_view.hpp"

namespace seqmix {

/// Collects the op name so that every message starts with "seqmix::<op>: ".
class check {
 public:
  explicit check(std::string_view op) : op_(op) {}

  std::string_view op() const noexcept { return op_; }

  /// Throws shape_error("seqmix::<op>: <msg>").
  [[noreturn]] void fail(const std::string& msg) const {
    SEQMIX_THROW(shape_error("seqmix::" + std::string(op_) + ": " + msg));
  }
  void require(bool ok, const std::string& msg) const {
    if (!ok) fail(msg);
  }

  /// name.extent(A) == want; `from` says where `want` comes from ("q [B,T,H,K]", "option chunk_size").
  template <class A, class V>
  void extent(std::string_view name, const V& v, index_t want, std::string_view from) const {
    const index_t got = v.template extent<A>();
    if (got != want) {
      fail(std::string(name) + ".extent(" + A::name + ") = " + std::to_string(got) + ", expected " +
           std::to_string(want) + (from.empty() ? "" : " (from " + std::string(from) + ")"));
    }
  }
  /// name.extent(A) == ref.extent(RA), citing "ref_name [layout]" as the source.
  template <class A, class RA = A, class V, class R>
  void same_extent(std::string_view name, const V& v, std::string_view ref_name, const R& ref) const {
    extent<A>(name, v, ref.template extent<RA>(), describe(ref_name, ref));
  }
  /// name.extent(A) >= lo.
  template <class A, class V>
  void extent_at_least(std::string_view name, const V& v, index_t lo) const {
    const index_t got = v.template extent<A>();
    if (got < lo) {
      fail(std::string(name) + ".extent(" + A::name + ") = " + std::to_string(got) + ", expected >= " +
           std::to_string(lo));
    }
  }
  /// The view must be bound (non-null) when its extents are non-empty.
  template <class V>
  void present(std::string_view name, const V& v) const {
    if (v.data() == nullptr && v.size() != 0) fail(std::string(name) + " is required but was not given");
  }
  /// big.extent(A) must be a multiple of small.extent(SA) (GQA, GVA, groups).
  template <class A, class SA = A, class V, class W>
  void multiple_of(std::string_view big_name, const V& big, std::string_view small_name,
                   const W& small) const {
    const index_t b = big.template extent<A>();
    const index_t s = small.template extent<SA>();
    if (s <= 0 || b % s != 0) {
      fail(std::string(big_name) + ".extent(" + A::name + ") = " + std::to_string(b) +
           ", expected a multiple of " + std::string(small_name) + ".extent(" + SA::name + ") = " +
           std::to_string(s));
    }
  }
  /// The named option must be finite.
  void finite(std::string_view option, double x) const {
    if (!std::isfinite(x)) fail("option " + std::string(option) + " = " + std::to_string(x) + ", expected a finite value");
  }
  /// The named option must lie in [lo, hi].
  void in_range(std::string_view option, double x, double lo, double hi) const {
    if (!(x >= lo && x <= hi)) {
      fail("option " + std::string(option) + " = " + num(x) + ", expected a value in [" + num(lo) + ", " +
           num(hi) + "]");
    }
  }

  /// "q [B,T,H,K]".
  template <class V>
  static std::string describe(std::string_view name, const V& /*v*/) {
    return std::string(name) + " " + layout_name(typename V::layout_type{});
  }

 private:
  static std::string num(double x) {
    if (x == std::floor(x) && std::fabs(x) < 1e15) return std::to_string(static_cast<long long>(x));
    std::string s = std::to_string(x);
    return s;
  }
  std::string_view op_;
};

}  // namespace seqmix
