// SPDX-License-Identifier: Apache-2.0
// tests/ops/linear_attention/test_hgrn.cpp: hgrn recurrent and chunked scans against the float64
// reference: lengths, state carry, varlen, decode, dtypes, strong decay, strided input, errors.
#include <cmath>
#include <string>
#include <vector>

#include <seqmix/ops/linear_attention/linear_attention.hpp>
#include <support/support.hpp>

using namespace seqmix;
using namespace seqmix::testing;

namespace {

template <class T>
struct hgrn_data {
  tensor<T, btd> x, g;
  tensor<float, nd> h0;
  hgrn_data(index_t B, index_t T_, index_t D, rng& r, double lo = -0.5, double hi = -0.01)
      : x({B, T_, D}), g({B, T_, D}), h0({B, D}) {
    x.uniform(r, -1, 1);
    g.uniform(r, lo, hi);
    h0.uniform(r, -1, 1);
  }
};

template <class Backend, class T>
void run(const_view<T, btd> x, const_view<T, btd> g, tensor_view<T, btd> o, const_view<float, nd> h0,
         tensor_view<float, nd> ht, linear_mode m, index_t chunk = 0, cu_seqlens_view cu = {}) {
  hgrn(hgrn_args<T>{.x = x, .g = g, .initial_state = h0, .cu_seqlens = cu, .o = o, .final_state = ht},
       {.mode = m, .chunk_size = chunk}, Backend{});
}

}  // namespace

TEST_CASE("hgrn: chunk and recurrent == float64 reference", "[hgrn]") {
  rng r(31);
  for (index_t T : {1, 2, 15, 16, 17, 63, 64, 65, 300}) {
    for (index_t D : {7, 64, 200}) {
      hgrn_data<float> d(2, T, D, r);
      tensor<float, btd> ref({2, T, D});
      tensor<float, nd> href({2, D});
      run<reference, float>(d.x.cview(), d.g.cview(), ref.view(), d.h0.cview(), href.view(), linear_mode::auto_);
      for (auto m : {linear_mode::chunk, linear_mode::recurrent, linear_mode::auto_}) {
        for (index_t c : {0, 16, 5}) {
          INFO("T " << T << " D " << D << " chunk " << c);
          tensor<float, btd> o({2, T, D});
          tensor<float, nd> ht({2, D});
          o.poison();
          ht.poison();
          run<simd<>, float>(d.x.cview(), d.g.cview(), o.view(), d.h0.cview(), ht.view(), m, c);
          SEQMIX_REQUIRE_CLOSE(o.cview(), ref.cview(), tolerance<float>(T));
          SEQMIX_REQUIRE_CLOSE(ht.cview(), href.cview(), tolerance<float>(T));
        }
      }
    }
  }
}

TEST_CASE("hgrn: state carry, varlen and decode", "[hgrn][state]") {
  rng r(32);
  const index_t T = 150, D = 40;
  hgrn_data<float> d(1, T, D, r);
  tensor<float, btd> ref({1, T, D});
  tensor<float, nd> href({1, D});
  run<reference, float>(d.x.cview(), d.g.cview(), ref.view(), d.h0.cview(), href.view(), linear_mode::auto_);
  for (auto m : {linear_mode::chunk, linear_mode::recurrent}) {
    tensor<float, btd> o({1, T, D});
    tensor<float, nd> mid({1, D}), ht({1, D});
    run<simd<>, float>(d.x.cview().slice<axis::T>(0, 61), d.g.cview().slice<axis::T>(0, 61),
                       o.view().slice<axis::T>(0, 61), d.h0.cview(), mid.view(), m);
    run<simd<>, float>(d.x.cview().slice<axis::T>(61, T), d.g.cview().slice<axis::T>(61, T),
                       o.view().slice<axis::T>(61, T), mid.cview(), ht.view(), m);
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.cview(), tolerance<float>(T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), href.cview(), tolerance<float>(T));
  }
  // decode: prefill 140 then 10 single steps in slot 2 of a 3-slot cache
  {
    tensor<float, btd> o({1, T, D});
    tensor<float, nd> cache({3, D}), pre({1, D});
    cache.uniform(r, -1, 1);
    run<simd<>, float>(d.x.cview().slice<axis::T>(0, 140), d.g.cview().slice<axis::T>(0, 140),
                       o.view().slice<axis::T>(0, 140), d.h0.cview(), pre.view(), linear_mode::chunk);
    for (index_t i = 0; i < D; ++i) cache.view()(2, i) = pre.view()(0, i);
    const std::vector<std::int64_t> idx = {2};
    for (index_t t = 140; t < T; ++t) {
      hgrn_decode(hgrn_args<float>{.x = d.x.cview().slice<axis::T>(t, t + 1), .g = d.g.cview().slice<axis::T>(t, t + 1),
                                   .o = o.view().slice<axis::T>(t, t + 1)},
                  cache.view(), state_indices_view(idx.data(), {1}));
    }
    SEQMIX_REQUIRE_CLOSE(o.cview(), ref.cview(), tolerance<float>(T));
    SEQMIX_REQUIRE_CLOSE(cache.cview().slice<axis::N>(2, 3), href.cview(), tolerance<float>(T));
  }
  // varlen
  const std::vector<std::int64_t> cu = {0, 3, 3, 100, 150};
  tensor<float, nd> h0s({4, D});
  h0s.uniform(r, -1, 1);
  tensor<float, btd> sep({1, T, D});
  tensor<float, nd> hsep({4, D});
  for (index_t n = 0; n < 4; ++n) {
    const index_t t0 = cu[static_cast<std::size_t>(n)], t1 = cu[static_cast<std::size_t>(n + 1)];
    run<reference, float>(d.x.cview().slice<axis::T>(t0, t1), d.g.cview().slice<axis::T>(t0, t1),
                          sep.view().slice<axis::T>(t0, t1), h0s.cview().slice<axis::N>(n, n + 1),
                          hsep.view().slice<axis::N>(n, n + 1), linear_mode::auto_);
  }
  for (auto m : {linear_mode::chunk, linear_mode::recurrent}) {
    tensor<float, btd> o({1, T, D});
    tensor<float, nd> ht({4, D});
    run<simd<>, float>(d.x.cview(), d.g.cview(), o.view(), h0s.cview(), ht.view(), m, 16,
                       cu_seqlens_view(cu.data(), {5}));
    SEQMIX_REQUIRE_CLOSE(o.cview(), sep.cview(), tolerance<float>(T));
    SEQMIX_REQUIRE_CLOSE(ht.cview(), hsep.cview(), tolerance<float>(T));
  }
}

TEMPLATE_TEST_CASE("hgrn: bf16 / f16 inputs, strong decay, strided input", "[hgrn][dtype]", bf16, f16) {
  rng r(33);
  for (auto [lo, hi] : {std::pair{-0.5, -0.01}, std::pair{-30.0, 0.0}}) {
    hgrn_data<TestType> d(2, 90, 33, r, lo, hi);
    tensor<TestType, btd> ref({2, 90, 33}), o({2, 90, 33});
    tensor<float, nd> href({2, 33}), ht({2, 33});
    run<reference, TestType>(d.x.cview(), d.g.cview(), ref.view(), d.h0.cview(), href.view(), linear_mode::auto_);
    for (auto m : {linear_mode::chunk, linear_mode::recurrent}) {
      run<simd<>, TestType>(d.x.cview(), d.g.cview(), o.view(), d.h0.cview(), ht.view(), m);
      SEQMIX_REQUIRE_CLOSE(o.cview(), ref.cview(), tolerance<TestType>(90));
      SEQMIX_REQUIRE_CLOSE(ht.cview(), href.cview(), tolerance<TestType>(90));
    }
  }
  // strided float input (padded storage)
  hgrn_data<float> d(2, 50, 20, r);
  auto xp = d.x.padded_copy(3);
  auto gp = d.g.padded_copy(2);
  tensor<float, btd> ref({2, 50, 20}), o({2, 50, 20});
  tensor<float, nd> href({2, 20}), ht({2, 20});
  run<reference, float>(d.x.cview(), d.g.cview(), ref.view(), d.h0.cview(), href.view(), linear_mode::auto_);
  run<simd<>, float>(xp.cview(), gp.cview(), o.view(), d.h0.cview(), ht.view(), linear_mode::chunk);
  SEQMIX_REQUIRE_CLOSE(o.cview(), ref.cview(), tolerance<float>(50));
}

TEST_CASE("hgrn: bad shapes throw shape_error", "[hgrn][errors]") {
  rng r(34);
  hgrn_data<float> d(1, 8, 4, r);
  tensor<float, btd> o({1, 8, 5});
  REQUIRE_THROWS_MATCHES(hgrn(hgrn_args<float>{.x = d.x.cview(), .g = d.g.cview(), .o = o.view()}), shape_error,
                         message_contains("seqmix::hgrn: o.extent(D) = 5, expected 4 (from x [B,T,D])"));
  tensor<float, btd> o2({1, 8, 4});
  tensor<float, nd> h_bad({2, 4});
  REQUIRE_THROWS_MATCHES(hgrn(hgrn_args<float>{.x = d.x.cview(), .g = d.g.cview(), .initial_state = h_bad.cview(),
                                               .o = o2.view()}),
                         shape_error, message_contains("initial_state.extent(N) = 2, expected 1"));
}

TEMPLATE_TEST_CASE("hgrn: decode with state_indices -1 skips the row and zeroes its output", "[hgrn][decode]",
                   simd<>, reference) {
  rng r(37);
  const index_t D = 40;
  hgrn_data<float> d(2, 1, D, r);
  tensor<float, nd> cache({2, D});
  cache.uniform(r, -1, 1);
  const std::vector<float> before = cache.storage();
  tensor<float, btd> o({2, 1, D});
  o.uniform(r, -1, 1);
  const std::vector<std::int64_t> idx = {-1, 0};
  hgrn_decode(hgrn_args<float>{.x = d.x.cview(), .g = d.g.cview(), .o = o.view()}, cache.view(),
              state_indices_view(idx.data(), {2}), {}, TestType{});
  for (index_t i = 0; i < D; ++i) {
    REQUIRE(o.cview()(0, 0, i) == 0.0f);                                              // skipped row
    REQUIRE(cache.cview()(1, i) == before[static_cast<std::size_t>(D + i)]);          // unused slot
    const double h = std::exp(static_cast<double>(d.g.cview()(1, 0, i))) * before[static_cast<std::size_t>(i)] +
                     d.x.cview()(1, 0, i);                                            // row 1 on slot 0
    REQUIRE(std::abs(o.cview()(1, 0, i) - h) <= 1e-6 * (1 + std::abs(h)));
    REQUIRE(std::abs(cache.cview()(0, i) - h) <= 1e-6 * (1 + std::abs(h)));
  }
}

TEMPLATE_TEST_CASE("hgrn: wide rows split into channel blocks (D above one block, 1 and 2 threads)", "[hgrn][blocks]",
                   float, bf16) {
  rng r(37);
  // one block per worker but at least 8 KiB of a row: D = 4100 floats is two blocks at two threads (the
  // second ends off the width), D = 8200 two blocks at one thread (the cap is 8192)
  for (index_t D : {4100, 8200}) {
    hgrn_data<TestType> d(2, 21, D, r);
    tensor<TestType, btd> ref({2, 21, D});
    tensor<float, nd> href({2, D});
    run<reference, TestType>(d.x.cview(), d.g.cview(), ref.view(), d.h0.cview(), href.view(), linear_mode::auto_);
    for (int threads : {1, 2}) {
      for (auto m : {linear_mode::chunk, linear_mode::recurrent}) {
        INFO("D " << D << " threads " << threads);
        tensor<TestType, btd> o({2, 21, D});
        tensor<float, nd> ht({2, D});
        o.poison();
        ht.poison();
        run_context rc;
        if (threads == 1) rc.executor = seq;
        else rc.executor = par_t{threads};
        hgrn(hgrn_args<TestType>{.x = d.x.cview(), .g = d.g.cview(), .initial_state = d.h0.cview(), .o = o.view(),
                                 .final_state = ht.view()},
             {.mode = m, .run = rc});
        SEQMIX_REQUIRE_CLOSE(o.cview(), ref.cview(), tolerance<TestType>(21));
        SEQMIX_REQUIRE_CLOSE(ht.cview(), href.cview(), tolerance<TestType>(21));
      }
    }
  }
}
