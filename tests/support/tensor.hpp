// SPDX-License-Identifier: Apache-2.0
// tests/support/tensor.hpp: an owning tensor for tests (contiguous, padded or permuted storage) and
// random fills. Never zeros, never all-equal: fills draw from a seeded generator.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <seqmix/core/dtype.hpp>
#include <seqmix/core/tensor_view.hpp>

namespace seqmix::testing {

/// Seeded random source; every test names its seed so failures reproduce.
class rng {
 public:
  explicit rng(std::uint64_t seed = 1234) : g_(seed) {}
  double uniform(double lo = -1.0, double hi = 1.0) { return std::uniform_real_distribution<double>(lo, hi)(g_); }
  double normal(double mean = 0.0, double sd = 1.0) { return std::normal_distribution<double>(mean, sd)(g_); }
  index_t integer(index_t lo, index_t hi) { return std::uniform_int_distribution<index_t>(lo, hi)(g_); }
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

/// Owning tensor with a view; storage may be padded or in another axis order so views are strided.
template <class T, class Layout>
class tensor {
 public:
  using extents_type = extents<Layout>;

  tensor() = default;
  /// Contiguous row-major storage.
  explicit tensor(extents_type ext) : ext_(ext), str_(row_major_strides(ext)) {
    buf_.resize(static_cast<std::size_t>(count(ext)));
  }
  /// Padded storage: every axis gets `pad` extra slots, so no stride is the contiguous one.
  static tensor padded(extents_type ext, index_t pad = 1) {
    tensor t;
    t.ext_ = ext;
    extents_type big = ext;
    for (std::size_t i = 0; i < Layout::rank; ++i) big[i] += pad;
    t.str_ = row_major_strides(big);
    t.buf_.assign(static_cast<std::size_t>(count(big)), nan_value());
    return t;
  }
  /// Storage in the axis order of StorageLayout (e.g. [B,H,T,D] storage seen as [B,T,H,D]).
  template <class StorageLayout>
  static tensor permuted(extents_type ext) {
    tensor t;
    t.ext_ = ext;
    tensor_view<T, Layout> logical(nullptr, ext);
    auto sl = logical.template as<StorageLayout>();       // extents in storage order
    auto sstr = row_major_strides(sl.shape());             // contiguous in storage order
    tensor_view<T, StorageLayout> storage(nullptr, sl.shape(), sstr);
    auto back = storage.template as<Layout>();
    t.str_ = back.strides();
    t.buf_.resize(static_cast<std::size_t>(count(ext)));
    return t;
  }

  tensor_view<T, Layout> view() { return tensor_view<T, Layout>(buf_.data(), ext_, str_); }
  tensor_view<const T, Layout> view() const { return cview(); }
  tensor_view<const T, Layout> cview() const { return tensor_view<const T, Layout>(buf_.data(), ext_, str_); }
  const extents_type& shape() const { return ext_; }
  index_t size() const { return count(ext_); }
  std::vector<T>& storage() { return buf_; }

  /// Uniform in [lo, hi) (rounded to T).
  tensor& uniform(rng& r, double lo = -1.0, double hi = 1.0) {
    for_each([&](T& x) { x = from_double(r.uniform(lo, hi)); });
    return *this;
  }
  /// Normal(mean, sd) (rounded to T).
  tensor& normal(rng& r, double mean = 0.0, double sd = 1.0) {
    for_each([&](T& x) { x = from_double(r.normal(mean, sd)); });
    return *this;
  }
  /// Sets every element of the view to NaN, so elements an op fails to write are caught.
  tensor& poison() {
    for_each([&](T& x) { x = nan_value(); });
    return *this;
  }
  /// Applies f to every element of the logical view.
  template <class F>
  void for_each(F&& f) {
    T* p = buf_.data();
    visit(ext_, str_, str_, [&](index_t o, index_t) { f(p[o]); });
  }
  /// Element-wise copy into another tensor of the same extents (any storage, any T).
  template <class U>
  tensor<U, Layout> convert() const {
    tensor<U, Layout> out(ext_);
    auto src = cview();
    auto dst = out.view();
    visit(ext_, src.strides(), dst.strides(),
          [&](index_t so, index_t dO) { dst.data()[dO] = convert_value<U>(src.data()[so]); });
    return out;
  }
  /// Copy with the same extents into padded storage (a strided version of the same values).
  tensor padded_copy(index_t pad = 1) const {
    tensor out = padded(ext_, pad);
    auto src = cview();
    auto dst = out.view();
    visit(ext_, src.strides(), dst.strides(), [&](index_t so, index_t dO) { dst.data()[dO] = src.data()[so]; });
    return out;
  }

  /// Calls f(offset_a, offset_b) for every logical index of extents `ext` under two stride sets.
  template <class F>
  static void visit(const extents_type& ext, const extents_type& sa, const extents_type& sb, F&& f) {
    const index_t n = count(ext);
    for (index_t flat = 0; flat < n; ++flat) {
      index_t rem = flat, oa = 0, ob = 0;
      for (std::size_t k = Layout::rank; k-- > 0;) {
        const index_t i = rem % ext[k];
        rem /= ext[k];
        oa += i * sa[k];
        ob += i * sb[k];
      }
      f(oa, ob);
    }
  }

  static index_t count(const extents_type& e) {
    index_t n = 1;
    for (std::size_t i = 0; i < Layout::rank; ++i) n *= e[i];
    return n;
  }
  static T from_double(double d) {
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return T(static_cast<float>(d));
    else return static_cast<T>(d);
  }
  static T nan_value() {
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::quiet_NaN();
    else if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return T(std::numeric_limits<float>::quiet_NaN());
    else return T{};
  }
  template <class U, class S>
  static U convert_value(S s) {
    if constexpr (std::is_same_v<U, bf16> || std::is_same_v<U, f16>) return U(static_cast<float>(s));
    else if constexpr (std::is_same_v<S, bf16> || std::is_same_v<S, f16>) return static_cast<U>(static_cast<float>(s));
    else return static_cast<U>(s);
  }

 private:
  extents_type ext_{};
  extents_type str_{};
  std::vector<T> buf_;
};

}  // namespace seqmix::testing
