// SPDX-License-Identifier: Apache-2.0
// tests/ops/flash_attention/test_decode.cpp: attention_decode over contiguous and paged KV caches (float32,
// bf16, f16 storage), split-KV merge, speculative Tq > 1, options; decode == prefill; errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "support/flash_attention_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;

namespace {

struct dec_out {
  tensor<float, bthv> o;
  tensor<float, bht> lse;
  dec_out(index_t B, index_t Tq, index_t Hq, index_t Dv) {
    o = tensor<float, bthv>({B, Tq, Hq, Dv});  // [B,Tq,Hq,Dv]
    lse = tensor<float, bht>({B, Hq, Tq});     // [B,Hq,Tq]
    o.poison();
    lse.poison();
  }
};

template <class Backend, class Cache>
dec_out run_decode(const tensor<float, bthd>& q, const Cache& cache, index_t Dv, const attention_decode_options& o,
                   const tensor<float, flash_h>* slopes = nullptr, const tensor<float, flash_h>* sinks = nullptr) {
  const auto qv = q.cview();
  dec_out out(qv.extent<axis::B>(), qv.extent<axis::T>(), qv.extent<axis::H>(), Dv);
  attention_decode_args<float, Cache> a{qv, cache, out.o.view(), out.lse.view()};
  if (slopes) a.alibi_slopes = slopes->cview();
  if (sinks) a.sinks = sinks->cview();
  attention_decode(a, o, Backend{});
  return out;
}

template <class Cache>
void require_decode_matches(const tensor<float, bthd>& q, const Cache& cache, index_t Dv,
                            const attention_decode_options& o, double tol,
                            const tensor<float, flash_h>* slopes = nullptr,
                            const tensor<float, flash_h>* sinks = nullptr) {
  const auto f = run_decode<simd<>>(q, cache, Dv, o, slopes, sinks);
  const auto r = run_decode<reference>(q, cache, Dv, o, slopes, sinks);
  SEQMIX_REQUIRE_CLOSE(f.o.cview(), r.o.cview(), tol);
  SEQMIX_REQUIRE_CLOSE(f.lse.cview(), r.lse.cview(), tol);
}

/// Fills row b of a cache with `len` random tokens.
template <class Cache>
void fill_row(Cache& c, index_t b, index_t len, index_t Hkv, index_t D, index_t Dv, rng& r) {
  if (len == 0) return;
  tensor<float, bthd> k({1, len, Hkv, D});   // [1,len,Hkv,D]
  tensor<float, bthv> v({1, len, Hkv, Dv});  // [1,len,Hkv,Dv]
  k.normal(r);
  v.uniform(r);
  c.append(b, k.cview(), v.cview());
}

std::vector<std::int32_t> shuffled_pages(index_t n, std::uint64_t seed) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::shuffle(p.begin(), p.end(), std::mt19937_64(seed));
  return p;
}

}  // namespace

TEMPLATE_TEST_CASE("attention_decode: contiguous cache matches reference", "[decode]", float, bf16, f16) {
  const index_t B = 3, Hq = 8, Hkv = 2, D = 64, Dv = 64;
  const index_t lens[B] = {700, 1, 131};
  rng r(7);
  kv_cache<TestType> cache(B, 800, Hkv, D, Dv);
  for (index_t b = 0; b < B; ++b) fill_row(cache, b, lens[b], Hkv, D, Dv, r);
  for (index_t tq : {1, 3}) {
    tensor<float, bthd> q({B, tq, Hq, D});  // [B,Tq,Hq,D]
    q.normal(r);
    for (index_t splits : {0, 1, 3}) {
      attention_decode_options o;
      o.num_splits = splits;
      INFO("Tq " << tq << " splits " << splits);
      require_decode_matches(q, cache.view(), Dv, o, tolerance<TestType>(800));
    }
  }
}

TEMPLATE_TEST_CASE("attention_decode: paged cache, shuffled pages, partial last page", "[decode][paged]", float, bf16,
                   f16) {
  const index_t B = 4, Hq = 4, Hkv = 4, D = 40, Dv = 24, page = 16;
  const index_t lens[B] = {37, 100, 1, 0};
  rng r(9);
  paged_kv_cache<TestType> cache(B, 20, page, 8, Hkv, D, Dv, shuffled_pages(20, 3));
  for (index_t b = 0; b < B; ++b) fill_row(cache, b, lens[b], Hkv, D, Dv, r);
  tensor<float, bthd> q({B, 2, Hq, D});  // [B,2,Hq,D]
  q.normal(r);
  for (index_t splits : {0, 1, 2}) {
    attention_decode_options o;
    o.num_splits = splits;
    INFO("splits " << splits);
    require_decode_matches(q, cache.view(), Dv, o, tolerance<TestType>(100));
  }
  // the empty row gives o = 0, lse = -inf
  const auto f = run_decode<simd<>>(q, cache.view(), Dv, {});
  REQUIRE(f.lse.cview()(3, 0, 0) == -std::numeric_limits<float>::infinity());
  REQUIRE(f.o.cview()(3, 1, 2, 5) == 0.0f);
  // paged == contiguous holding the same tokens
  kv_cache<TestType> flat(B, 128, Hkv, D, Dv);
  rng r2(9);
  for (index_t b = 0; b < B; ++b) fill_row(flat, b, lens[b], Hkv, D, Dv, r2);
  const auto g = run_decode<simd<>>(q, flat.view(), Dv, {});
  SEQMIX_REQUIRE_CLOSE(f.o.cview(), g.o.cview(), tolerance<float>(100));
}

TEMPLATE_TEST_CASE("attention_decode: direct kernels: tile tails, group sizes, head dims", "[decode][direct]", float,
                   bf16, f16) {
  // lengths around the 48-key tile and the 3-key score blocks; G = 1, 3, 4, 8 (4-row groups and their
  // tails); head dims whose P V uses 24-, 16- and 8-wide column blocks; Tq = 1 and 2.
  struct dims {
    index_t G, D, Dv;
  };
  const dims shapes[] = {{4, 128, 128}, {1, 40, 40}, {3, 80, 80}, {8, 256, 256}, {4, 64, 16}, {2, 24, 56}};
  const index_t Hkv = 2, B = 5;
  const index_t lens[B] = {1, 47, 49, 97, 200};
  rng r(31);
  for (const dims& s : shapes) {
    const index_t Hq = s.G * Hkv;
    kv_cache<TestType> cache(B, 200, Hkv, s.D, s.Dv);
    for (index_t b = 0; b < B; ++b) fill_row(cache, b, lens[b], Hkv, s.D, s.Dv, r);
    paged_kv_cache<TestType> pc(B, 30, 16, 13, Hkv, s.D, s.Dv, shuffled_pages(30, 41));
    rng r2(32);
    for (index_t b = 0; b < B; ++b) fill_row(pc, b, std::min<index_t>(lens[b], 150), Hkv, s.D, s.Dv, r2);
    for (index_t tq : {1, 2}) {
      tensor<float, bthd> q({B, tq, Hq, s.D});  // [B,Tq,Hq,D]
      q.normal(r);
      for (index_t splits : {1, 2}) {
        attention_decode_options o;
        o.num_splits = splits;
        INFO("G " << s.G << " D " << s.D << " Dv " << s.Dv << " Tq " << tq << " splits " << splits);
        require_decode_matches(q, cache.view(), s.Dv, o, tolerance<TestType>(200));
        require_decode_matches(q, pc.view(), s.Dv, o, tolerance<TestType>(150));
      }
    }
  }
}

TEST_CASE("attention_decode: direct kernels: smaller chunks for wide float32 rows", "[decode][direct]") {
  // 192 KiB of K and V per chunk: Hkv 4 x (256 + 256) floats per key -> 24 keys, Hkv 8 -> 12 keys
  for (index_t Hkv : {4, 8}) {
    const index_t G = 2, Hq = G * Hkv, D = 256, Dv = 256, B = 4;
    const index_t lens[B] = {11, 25, 37, 100};
    rng r(43);
    kv_cache<float> cache(B, 100, Hkv, D, Dv);
    for (index_t b = 0; b < B; ++b) fill_row(cache, b, lens[b], Hkv, D, Dv, r);
    tensor<float, bthd> q({B, 1, Hq, D});  // [B,1,Hq,D]
    q.normal(r);
    for (index_t splits : {1, 3}) {
      attention_decode_options o;
      o.num_splits = splits;
      INFO("Hkv " << Hkv << " splits " << splits);
      require_decode_matches(q, cache.view(), Dv, o, tolerance<float>(100));
    }
  }
}

TEST_CASE("attention_decode: NaN stays in the heads whose inputs hold it", "[decode][nan]") {
  const index_t Hq = 8, Hkv = 2, D = 128, Dv = 128, L = 150;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  rng r(37);
  tensor<float, bthd> k({1, L, Hkv, D});   // [1,L,Hkv,D]
  tensor<float, bthv> v({1, L, Hkv, Dv});  // [1,L,Hkv,Dv]
  k.normal(r);
  v.uniform(r);
  v.view()(0, 60, 1, 5) = nan;  // every query head of kv head 1 reads it
  kv_cache<f16> cache(1, L, Hkv, D, Dv);
  cache.append(k.cview(), v.cview());
  tensor<float, bthd> q({1, 1, Hq, D});  // [1,1,Hq,D]
  q.normal(r);
  q.view()(0, 0, 2, 7) = nan;  // query head 2 (kv head 0) only
  for (index_t splits : {1, 2}) {
    attention_decode_options o;
    o.num_splits = splits;
    const auto f = run_decode<simd<>>(q, cache.view(), Dv, o);
    const auto g = run_decode<reference>(q, cache.view(), Dv, o);
    for (index_t h = 0; h < Hq; ++h) {
      INFO("splits " << splits << " head " << h);
      REQUIRE(std::isnan(f.o.cview()(0, 0, h, 0)) == (h == 2));  // the NaN query's whole row
      REQUIRE(std::isnan(f.o.cview()(0, 0, h, 5)) == (h == 2 || h >= 4));  // the NaN value's column
      REQUIRE(std::isnan(f.lse.cview()(0, h, 0)) == std::isnan(g.lse.cview()(0, h, 0)));
    }
  }
}

TEST_CASE("attention_decode: window, softcap, ALiBi and sinks", "[decode]") {
  const index_t B = 2, Hq = 8, Hkv = 1, D = 128, Dv = 128;
  rng r(11);
  paged_kv_cache<float> cache(B, 40, 32, 20, Hkv, D, Dv, shuffled_pages(40, 5));
  fill_row(cache, 0, 500, Hkv, D, Dv, r);
  fill_row(cache, 1, 77, Hkv, D, Dv, r);
  tensor<float, bthd> q({B, 1, Hq, D});  // [B,1,Hq,D]
  q.normal(r);
  tensor<float, flash_h> slopes{extents<flash_h>(Hq)}, sinks{extents<flash_h>(Hq)};  // [Hq]
  slopes.uniform(r, 0.01, 0.2);
  sinks.uniform(r, -1, 2);
  for (int mode = 0; mode < 4; ++mode) {
    attention_decode_options o;
    if (mode == 0) o.window_left = 100;
    if (mode == 1) o.softcap = 4.0;
    if (mode == 3) { o.window_left = 200; o.softcap = 2.0; o.scale = 0.2; }
    INFO("mode " << mode);
    require_decode_matches(q, cache.view(), Dv, o, tolerance<float>(500), mode >= 2 ? &slopes : nullptr,
                           mode >= 2 ? &sinks : nullptr);
  }
}

TEST_CASE("attention_decode: one long row split across threads", "[decode][split]") {
  const index_t Hq = 4, Hkv = 1, D = 64, Dv = 64, L = 5000;
  rng r(13);
  kv_cache<f16> cache(1, L, Hkv, D, Dv);
  fill_row(cache, 0, L, Hkv, D, Dv, r);
  tensor<float, bthd> q({1, 1, Hq, D});  // [1,1,Hq,D]
  q.normal(r);
  attention_decode_options o1, o2;
  o1.run.executor = seq;
  o1.num_splits = 1;
  o2.run.executor = par_t{2};
  const auto a = run_decode<simd<>>(q, cache.view(), Dv, o1);
  const auto b = run_decode<simd<>>(q, cache.view(), Dv, o2);
  SEQMIX_REQUIRE_CLOSE(a.o.cview(), b.o.cview(), tolerance<float>(L));
  SEQMIX_REQUIRE_CLOSE(a.lse.cview(), b.lse.cview(), tolerance<float>(L));
  require_decode_matches(q, cache.view(), Dv, o2, tolerance<f16>(L));
}

TEST_CASE("attention_decode: prefill of T tokens == prefill of T-1 + one decode step", "[decode][prefill]") {
  const index_t T = 150, Hq = 8, Hkv = 2, D = 64, Dv = 64;
  attn_problem<float> p({1, T, T, Hq, Hkv, D, Dv}, 17);
  attention_options po;
  po.causal = true;
  po.window_left = 100;
  attn_extras ex;
  ex.alibi = true;
  ex.sinks = true;
  const auto full = run_attention<simd<>>(p, po, ex);
  // prefill T-1, put every key in a paged cache, then decode token T-1
  for (int paged = 0; paged < 2; ++paged) {
    paged_kv_cache<float> pc(1, 12, 16, 12, Hkv, D, Dv, shuffled_pages(12, 23));
    kv_cache<float> cc(1, T, Hkv, D, Dv);
    const auto k = p.k.cview();
    const auto v = p.v.cview();
    if (paged) pc.append(k.slice<axis::T>(0, T - 1), v.slice<axis::T>(0, T - 1));
    else cc.append(k.slice<axis::T>(0, T - 1), v.slice<axis::T>(0, T - 1));
    if (paged) pc.append(k.slice<axis::T>(T - 1, T), v.slice<axis::T>(T - 1, T));
    else cc.append(k.slice<axis::T>(T - 1, T), v.slice<axis::T>(T - 1, T));
    tensor<float, bthd> q({1, 1, Hq, D});  // [1,1,Hq,D]
    auto qs = p.q.cview().slice<axis::T>(T - 1, T);
    for (index_t h = 0; h < Hq; ++h)
      for (index_t d = 0; d < D; ++d) q.view()(0, 0, h, d) = qs(0, 0, h, d);
    attention_decode_options o;
    o.window_left = 100;
    const auto dec = paged ? run_decode<simd<>>(q, pc.view(), Dv, o, &p.slopes, &p.sinks)
                           : run_decode<simd<>>(q, cc.view(), Dv, o, &p.slopes, &p.sinks);
    SEQMIX_REQUIRE_CLOSE(dec.o.cview(), full.o.cview().slice<axis::T>(T - 1, T), tolerance<float>(T));
    SEQMIX_REQUIRE_CLOSE(dec.lse.cview(), full.lse.cview().slice<axis::T>(T - 1, T), tolerance<float>(T));
  }
}

TEST_CASE("attention_decode: bad caches throw shape_error", "[decode][errors]") {
  const index_t Hq = 4, Hkv = 2, D = 16, Dv = 16;
  kv_cache<float> cache(2, 8, Hkv, D, Dv);
  tensor<float, bthd> q({2, 1, Hq, D});  // [2,1,Hq,D]
  dec_out out(2, 1, Hq, Dv);
  auto view = cache.view();
  std::vector<std::int32_t> lens{3, 9};
  view.seqlens = tensor_view<const std::int32_t, flash_b>(lens.data(), {2});
  attention_decode_args<float, kv_cache_view<float>> a{q.cview(), view, out.o.view(), out.lse.view()};
  REQUIRE_THROWS_MATCHES(attention_decode(a), shape_error,
                         message_contains("seqmix::attention_decode: cache_seqlens[1] = 9, expected a value in [0, 8]"));
  paged_kv_cache<float> pc(2, 4, 4, 2, Hkv, D, Dv);
  auto pv = pc.view();
  std::vector<std::int32_t> table{0, 7, 1, 2}, plens{6, 2};
  pv.block_table = tensor_view<const std::int32_t, bp>(table.data(), {2, 2});
  pv.seqlens = tensor_view<const std::int32_t, flash_b>(plens.data(), {2});
  attention_decode_args<float, paged_kv_cache_view<float>> b{q.cview(), pv, out.o.view(), out.lse.view()};
  REQUIRE_THROWS_MATCHES(attention_decode(b), shape_error, message_contains("block_table[0][1] = 7"));
  tensor<float, bthd> kn({2, 9, Hkv, D});   // [2,9,Hkv,D]
  tensor<float, bthv> vn({2, 9, Hkv, Dv});  // [2,9,Hkv,Dv]
  REQUIRE_THROWS_MATCHES(cache.append(kn.cview(), vn.cview()), shape_error, message_contains("exceeds Tmax = 8"));
  tensor<float, bthd> kb({2, 1, Hkv + 1, D});  // [2,1,Hkv+1,D]
  tensor<float, bthv> vb({2, 1, Hkv + 1, Dv});
  REQUIRE_THROWS_MATCHES(cache.append(kb.cview(), vb.cview()), shape_error, message_contains("k_new.extent(H) = 3"));
}
