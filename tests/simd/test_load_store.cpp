// SPDX-License-Identifier: Apache-2.0
// tests/simd/test_load_store.cpp: vec::load/store for float, double, bf16, f16 against the scalar
// conversions of core/dtype.hpp (exhaustive over 16-bit patterns, dense float sweeps for rounding), tails of
// every length 0..width next to a PROT_NONE guard page (a read or write past the end faults), and gathers.
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <seqmix/simd/load_store.hpp>

#include "simd_test.hpp"
#include "support/support.hpp"

using namespace seqmix;

namespace {

/// n elements of T whose last element ends exactly where a PROT_NONE page begins.
template <class T>
class guarded {
 public:
  explicit guarded(std::size_t n) {
    const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = n * sizeof(T);
    len_ = ((bytes + page - 1) / page + 1) * page;
    base_ = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(base_ != MAP_FAILED);
    char* guard = static_cast<char*>(base_) + len_ - page;
    REQUIRE(mprotect(guard, page, PROT_NONE) == 0);
    p_ = reinterpret_cast<T*>(guard - bytes);
  }
  guarded(const guarded&) = delete;
  guarded& operator=(const guarded&) = delete;
  ~guarded() { munmap(base_, len_); }
  T* data() const { return p_; }

 private:
  void* base_ = nullptr;
  std::size_t len_ = 0;
  T* p_ = nullptr;
};

std::uint32_t bits(float x) {
  return std::bit_cast<std::uint32_t>(x);
}
bool same(float a, float b) {
  return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b));
}

template <class T>
bool same_storage(T a, T b) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    return a.bits == b.bits;
  } else {
    return std::memcmp(&a, &b, sizeof(T)) == 0 || (std::isnan(a) && std::isnan(b));
  }
}

/// Random values of T with some specials mixed in (never all zero, never all equal).
template <class T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed) {
  testing::rng r(seed);
  std::vector<T> v(n);
  const float specials[] = {0.0f,
                            -0.0f,
                            1e-40f,
                            -std::numeric_limits<float>::infinity(),
                            65504.0f,
                            1e30f,
                            std::numeric_limits<float>::quiet_NaN()};
  for (std::size_t i = 0; i < n; ++i) {
    const double x = (i % 11 == 5) ? static_cast<double>(specials[i % 7]) : r.normal(0.0, 3.0);
    if constexpr (std::is_same_v<T, double>)
      v[i] = (i % 13 == 7) ? x * 1e300 : x;  // also beyond float range
    else
      v[i] = T(static_cast<float>(x));
  }
  return v;
}

using archs = testing::simd_archs;

template <class A, class T>
void check_load_full(const std::vector<T>& v) {
  constexpr index_t w = vec::width<A>;
  std::size_t fails = 0;
  for (std::size_t i = 0; i + w <= v.size(); i += static_cast<std::size_t>(w)) {
    const auto b = vec::load<A>(v.data() + i);
    for (index_t l = 0; l < w; ++l)
      fails += !same(b.get(static_cast<std::size_t>(l)), to_float(v[i + static_cast<std::size_t>(l)]));
  }
  REQUIRE(fails == 0);
}

template <class A, class T>
void check_store_full(const std::vector<float>& xs) {
  constexpr auto w = static_cast<std::size_t>(vec::width<A>);
  std::vector<T> out(xs.size());
  for (std::size_t i = 0; i + w <= xs.size(); i += w) vec::store(out.data() + i, vec::load<A>(xs.data() + i));
  std::size_t fails = 0;
  std::string first;
  for (std::size_t i = 0; i + w <= xs.size(); ++i) {
    if (!same_storage(out[i], from_float<T>(xs[i])) && fails++ == 0) first = std::to_string(bits(xs[i]));
  }
  INFO("first mismatch at float bits " << first);
  REQUIRE(fails == 0);
}

template <class A, class T>
void check_tails() {
  constexpr index_t w = vec::width<A>;
  for (index_t n = 0; n <= w; ++n) {
    const auto vals = random_values<T>(static_cast<std::size_t>(w), 100 + static_cast<std::uint64_t>(n));
    guarded<T> in(static_cast<std::size_t>(n));
    std::copy(vals.begin(), vals.begin() + n, in.data());
    const auto b = vec::load_tail<A>(in.data(), n);  // faults if it reads p[n]
    for (index_t l = 0; l < w; ++l) {
      INFO("n = " << n << ", lane " << l);
      if (l < n)
        REQUIRE(same(b.get(static_cast<std::size_t>(l)), to_float(vals[static_cast<std::size_t>(l)])));
      else
        REQUIRE(bits(b.get(static_cast<std::size_t>(l))) == 0u);
    }
    guarded<T> out(static_cast<std::size_t>(n));
    const auto src =
        vec::load<A>(random_values<float>(static_cast<std::size_t>(w), 200 + static_cast<std::uint64_t>(n)).data());
    vec::store_tail(out.data(), src, n);  // faults if it writes p[n]
    for (index_t l = 0; l < n; ++l) {
      INFO("n = " << n << ", lane " << l);
      REQUIRE(same_storage(out.data()[l], from_float<T>(src.get(static_cast<std::size_t>(l)))));
    }
    // a tail store into a larger buffer leaves everything past n untouched
    std::vector<T> big(static_cast<std::size_t>(2 * w), T(7.0f));
    vec::store_tail(big.data(), src, n);
    for (index_t l = n; l < 2 * w; ++l) REQUIRE(same_storage(big[static_cast<std::size_t>(l)], T(7.0f)));
  }
}

template <class A, class T>
void check_strided() {
  constexpr index_t w = vec::width<A>;
  for (index_t stride : {1, 2, 3, 7, 4099, 0, -1, -5}) {
    const index_t span = (w - 1) * (stride < 0 ? -stride : stride) + 1;
    const auto vals = random_values<T>(static_cast<std::size_t>(span), 300 + static_cast<std::uint64_t>(stride + 10));
    guarded<T> in(static_cast<std::size_t>(span));
    std::copy(vals.begin(), vals.end(), in.data());
    const T* p = stride < 0 ? in.data() + span - 1 : in.data();
    const auto b = vec::load_strided<A>(p, stride);
    for (index_t l = 0; l < w; ++l) {
      INFO("stride " << stride << ", lane " << l);
      REQUIRE(same(b.get(static_cast<std::size_t>(l)), to_float(p[l * stride])));
    }
    for (index_t n = 0; n <= w; ++n) {
      const index_t tspan = n == 0 ? 0 : (n - 1) * (stride < 0 ? -stride : stride) + 1;
      guarded<T> tin(static_cast<std::size_t>(tspan));
      std::copy(vals.begin(), vals.begin() + tspan, tin.data());
      const T* tp = stride < 0 ? tin.data() + tspan - 1 : tin.data();
      const auto t = vec::load_strided_tail<A>(tp, stride, n);
      for (index_t l = 0; l < w; ++l) {
        INFO("stride " << stride << ", n " << n << ", lane " << l);
        if (l < n)
          REQUIRE(same(t.get(static_cast<std::size_t>(l)), to_float(tp[l * stride])));
        else
          REQUIRE(bits(t.get(static_cast<std::size_t>(l))) == 0u);
      }
      if (stride == 0) continue;
      guarded<T> tout(static_cast<std::size_t>(tspan));
      T* op = stride < 0 ? tout.data() + tspan - 1 : tout.data();
      vec::store_strided(op, stride, b, n);
      for (index_t l = 0; l < n; ++l)
        REQUIRE(same_storage(op[l * stride], from_float<T>(b.get(static_cast<std::size_t>(l)))));
    }
  }
}

template <class T, class... As>
void for_archs(std::tuple<As...>, const std::vector<T>& v) {
  (check_load_full<As>(v), ...);
  (check_tails<As, T>(), ...);
  (check_strided<As, T>(), ...);
}

/// All float bit patterns, stride 977 (NaNs, infinities, subnormals, both signs), plus every exact midpoint
/// of bf16 and f16 neighbours (the ties).
std::vector<float> float_sweep() {
  std::vector<float> xs;
  for (std::uint64_t b = 0; b < (1ull << 32); b += 977)
    xs.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(b)));
  for (std::uint32_t h = 0; h < 0x7f80u; ++h) {  // bf16 midpoints: bf16 bits << 16 | 0x8000
    xs.push_back(std::bit_cast<float>((h << 16) | 0x8000u));
    xs.push_back(std::bit_cast<float>((h << 16) | 0x8000u | 0x80000000u));
  }
  for (std::uint32_t h = 0; h < 0x7c00u; ++h) {  // f16 midpoints
    const float a = to_float(f16::from_bits(static_cast<std::uint16_t>(h)));
    const float b = h + 1 < 0x7c00u ? to_float(f16::from_bits(static_cast<std::uint16_t>(h + 1))) : 65536.0f;
    xs.push_back((a + b) / 2);
    xs.push_back(-(a + b) / 2);
  }
  while (xs.size() % 64 != 0) xs.push_back(1.0f);
  return xs;
}

}  // namespace

TEMPLATE_TEST_CASE("vec::load, load_tail, load_strided, store_tail: every dtype, every tail length", "[simd][load]",
                   float, double, bf16, f16) {
  using T = TestType;
  std::vector<T> v;
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    for (std::uint32_t h = 0; h < 65536; ++h) v.push_back(T::from_bits(static_cast<std::uint16_t>(h)));  // exhaustive
  } else {
    v = random_values<T>(4096, 1);
  }
  for_archs<T>(archs{}, v);
}

TEMPLATE_TEST_CASE("vec::store rounds like from_float on dense float sweeps", "[simd][store]", float, double, bf16,
                   f16) {
  const auto xs = float_sweep();
  check_store_full<xsimd::default_arch, TestType>(xs);
#if defined(__SSE2__)
  const std::vector<float> thin(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(xs.size() / 8 / 64 * 64));
  check_store_full<xsimd::sse2, TestType>(thin);  // the generic lane-by-lane path: a thinner sweep suffices
#endif
}

TEST_CASE("vec width helpers", "[simd][load]") {
  using A = xsimd::default_arch;
  constexpr index_t w = vec::width<A>;
  REQUIRE(w == static_cast<index_t>(xsimd::batch<float, A>::size));
  REQUIRE(vec::round_down<A>(3 * w + 1) == 3 * w);
  REQUIRE(vec::round_down<A>(w - 1) == 0);
  REQUIRE(vec::round_up<A>(3 * w + 1) == 4 * w);
  REQUIRE(vec::round_up<A>(0) == 0);
}
