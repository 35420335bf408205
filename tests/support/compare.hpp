// SPDX-License-Identifier: Apache-2.0
// tests/support/compare.hpp: relative error of an output against the float64 reference (SPEC §6), with
// the NaN / infinity rules, and the REQUIRE macro that prints the details on failure.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include <seqmix/core/dtype.hpp>
#include <seqmix/core/tensor_view.hpp>

#include "catch.hpp"
#include "tolerance.hpp"

namespace seqmix::testing {

struct comparison {
  double rel = 0;        ///< ||out - ref|| / ||ref|| over finite reference positions
  double max_abs = 0;    ///< max |out - ref| over finite reference positions
  double ref_norm = 0;
  index_t count = 0;
  index_t bad_nan = 0;   ///< NaN in out where ref is not NaN (or the reverse)
  index_t bad_inf = 0;   ///< infinities that do not match the reference exactly
  index_t first_bad = -1;

  bool ok(double tol) const {
    if (bad_nan || bad_inf) return false;
    if (ref_norm == 0) return max_abs <= zero_ref_abs;
    return rel < tol;
  }
  std::string describe() const {
    std::ostringstream s;
    s << "rel " << rel << ", max_abs " << max_abs << ", |ref| " << ref_norm << ", n " << count
      << ", nan mismatches " << bad_nan << ", inf mismatches " << bad_inf << ", first bad flat index " << first_bad;
    return s.str();
  }
};

/// Compares any two views of the same layout and extents, element by element in logical order.
template <class A, class B, class Layout>
comparison compare(tensor_view<A, Layout> out, tensor_view<B, Layout> ref) {
  comparison c;
  for (std::size_t k = 0; k < Layout::rank; ++k) {
    if (out.extent(k) != ref.extent(k)) {
      c.bad_nan = 1;
      c.first_bad = -2;
      return c;
    }
  }
  const index_t n = out.size();
  double num = 0, den = 0;
  for (index_t flat = 0; flat < n; ++flat) {
    index_t rem = flat, oo = 0, ro = 0;
    for (std::size_t k = Layout::rank; k-- > 0;) {
      const index_t i = rem % out.extent(k);
      rem /= out.extent(k);
      oo += i * out.stride(k);
      ro += i * ref.stride(k);
    }
    const double o = to_double(out.data()[oo]);
    const double r = to_double(ref.data()[ro]);
    if (std::isnan(r) || std::isnan(o)) {
      if (std::isnan(r) != std::isnan(o)) {
        ++c.bad_nan;
        if (c.first_bad < 0) c.first_bad = flat;
      }
      continue;
    }
    if (std::isinf(r) || std::isinf(o)) {
      if (o != r) {
        ++c.bad_inf;
        if (c.first_bad < 0) c.first_bad = flat;
      }
      continue;
    }
    num += (o - r) * (o - r);
    den += r * r;
    c.max_abs = std::max(c.max_abs, std::fabs(o - r));
    ++c.count;
  }
  c.ref_norm = std::sqrt(den);
  c.rel = den > 0 ? std::sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
  return c;
}

}  // namespace seqmix::testing

/// REQUIRE that `out` matches `ref` within `tol` (SPEC §6 rules); prints the comparison on failure.
#define SEQMIX_REQUIRE_CLOSE(out, ref, tol)                                         \
  do {                                                                              \
    const auto seqmix_cmp_ = ::seqmix::testing::compare((out), (ref));              \
    INFO(#out " vs " #ref ": " << seqmix_cmp_.describe() << " (tol " << (tol) << ")"); \
    REQUIRE(seqmix_cmp_.ok(tol));                                                   \
  } while (0)
