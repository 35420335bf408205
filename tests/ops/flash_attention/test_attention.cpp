// SPDX-License-Identifier: Apache-2.0
// tests/ops/flash_attention/test_attention.cpp: prefill and varlen attention, simd vs the float64
// reference: awkward shapes, masks, softcap, ALiBi, sinks, dtypes, strides, empty rows, NaN, errors.
#include <cmath>
#include <limits>

#include "support/flash_attention_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;

namespace {

const attn_shape shapes[] = {
    {1, 1, 1, 1, 1, 8, 8},          // T = 1
    {2, 37, 53, 4, 2, 64, 64},      // Tq < Tk, GQA 4:2, tiles not full
    {1, 70, 45, 2, 1, 128, 128},    // Tq > Tk, MQA
    {1, 130, 130, 8, 2, 40, 40},    // GQA 8:2, D = 40, T not a multiple of 64
    {1, 67, 67, 8, 1, 80, 80},      // GQA 8:1, D = 80
    {1, 65, 129, 2, 2, 256, 256},   // D = 256
    {2, 33, 33, 2, 1, 64, 48},      // Dv != D
    {1, 20, 31, 3, 3, 12, 20},      // D, Dv not multiples of 8 (12 < 20)
};

}  // namespace

TEST_CASE("attention: simd matches reference over shapes and masks", "[attention]") {
  std::uint64_t seed = 1;
  for (const auto& sh : shapes) {
    attn_problem<float> p(sh, seed++);
    for (int mode = 0; mode < 6; ++mode) {
      attention_options o;
      if (mode == 1) o.causal = true;
      if (mode == 2) o.window_left = 17;                                    // left only
      if (mode == 3) { o.window_left = 9; o.window_right = 5; }            // both sides
      if (mode == 4) { o.causal = true; o.window_left = 40; }              // causal + window
      if (mode == 5) { o.window_left = 0; o.window_right = 70; o.scale = 0.3; }
      INFO("B " << sh.B << " Tq " << sh.Tq << " Tk " << sh.Tk << " Hq " << sh.Hq << " Hkv " << sh.Hkv << " D " << sh.D
                << " Dv " << sh.Dv << " mode " << mode);
      require_attention_matches(p, o);
    }
  }
}

TEST_CASE("attention: softcap, ALiBi and sinks", "[attention]") {
  attn_problem<float> p({1, 90, 150, 4, 2, 64, 64}, 11);
  for (int mode = 0; mode < 4; ++mode) {
    attention_options o;
    o.causal = mode % 2 == 0;
    attn_extras ex;
    if (mode == 0) o.softcap = 5.0;
    if (mode == 1) ex.alibi = true;
    if (mode == 2) ex.sinks = true;
    if (mode == 3) { o.softcap = 2.0; ex.alibi = true; ex.sinks = true; o.window_left = 30; }
    INFO("mode " << mode);
    require_attention_matches(p, o, ex);
  }
}

TEST_CASE("attention: long sequence, causal, fast path head dims", "[attention]") {
  for (index_t d : {64, 128}) {
    attn_problem<float> p({1, 300, 300, 2, 1, d, d}, 21 + static_cast<std::uint64_t>(d));
    attention_options o;
    o.causal = true;
    require_attention_matches(p, o);
  }
}

TEST_CASE("attention: strided inputs equal contiguous", "[attention][strides]") {
  const attn_shape sh{2, 41, 77, 4, 2, 24, 16};
  attn_problem<float> s(sh, 31, true);
  attention_options o;
  o.causal = true;
  require_attention_matches(s, o);
  // same values in contiguous storage give the same result
  attn_problem<float> c(sh, 31, false);
  auto qc = s.q.convert<float>();
  auto kc = s.k.convert<float>();
  auto vc = s.v.convert<float>();
  c.q = qc;
  c.k = kc;
  c.v = vc;
  const auto a = run_attention<simd<>>(s, o);
  const auto b = run_attention<simd<>>(c, o);
  SEQMIX_REQUIRE_CLOSE(a.o.cview(), b.o.cview(), tolerance<float>(77));
}

TEMPLATE_TEST_CASE("attention: storage dtypes", "[attention][dtype]", double, bf16, f16) {
  attn_problem<TestType> p({1, 50, 80, 4, 2, 64, 64}, 41);
  attention_options o;
  o.causal = true;
  require_attention_matches(p, o);
  attn_extras ex;
  ex.alibi = true;
  o.softcap = 3.0;
  require_attention_matches(p, o, ex);
}

TEST_CASE("attention: varlen with sequences of different lengths", "[attention][varlen]") {
  // 4 sequences, lengths q: 1, 37, 70, 5; k: 1, 50, 70, 9 (each its own causal frame).
  const std::vector<std::int32_t> cu_q{0, 1, 38, 108, 113}, cu_k{0, 1, 51, 121, 130};
  attn_problem<float> p({1, 113, 130, 4, 2, 64, 64}, 51);
  for (int mode = 0; mode < 3; ++mode) {
    attention_options o;
    o.causal = mode != 1;
    if (mode == 2) o.window_left = 20;
    attn_extras ex;
    ex.cu_q = cu_q;
    ex.cu_k = cu_k;
    ex.sinks = mode == 2;
    INFO("mode " << mode);
    require_attention_matches(p, o, ex);
  }
  // varlen == separate calls, sequence 2
  attention_options o;
  o.causal = true;
  attn_extras ex;
  ex.cu_q = cu_q;
  ex.cu_k = cu_k;
  const auto all = run_attention<simd<>>(p, o, ex);
  attn_out<float> sep({1, 70, 121, 4, 2, 64, 64}, 70);
  attention_args<float> one{p.q.cview().slice<axis::T>(38, 108), p.k.cview().slice<axis::T>(51, 121),
                            p.v.cview().slice<axis::T>(51, 121), sep.o.view(), sep.lse.view()};
  attention(one, o);
  SEQMIX_REQUIRE_CLOSE(all.o.cview().slice<axis::T>(38, 108), sep.o.cview(), tolerance<float>(70));
  SEQMIX_REQUIRE_CLOSE(all.lse.cview().slice<axis::T>(38, 108), sep.lse.cview(), tolerance<float>(70));
}

TEST_CASE("attention: fully masked rows give o = 0 and lse = -inf", "[attention][empty]") {
  // causal with Tq > Tk: rows i < Tq - Tk see no key. Window (0, 0) with a shifted frame: all rows keep one.
  attn_problem<float> p({1, 100, 30, 2, 1, 32, 32}, 61);
  attention_options o;
  o.causal = true;
  const auto f = run_attention<simd<>>(p, o);
  require_attention_matches(p, o);
  for (index_t i = 0; i < 70; ++i)
    for (index_t h = 0; h < 2; ++h) {
      REQUIRE(f.lse.cview()(0, h, i) == -std::numeric_limits<float>::infinity());
      for (index_t c = 0; c < 32; ++c) REQUIRE(f.o.cview()(0, i, h, c) == 0.0f);
    }
  REQUIRE(std::isfinite(f.lse.cview()(0, 0, 70)));
  // with sinks an empty row gives o = 0 and lse = sink
  attn_extras ex;
  ex.sinks = true;
  const auto g = run_attention<simd<>>(p, o, ex);
  REQUIRE(g.lse.cview()(0, 1, 3) == p.sinks.cview()(1));
  REQUIRE(g.o.cview()(0, 3, 1, 5) == 0.0f);
  require_attention_matches(p, o, ex);
}

TEST_CASE("attention: scale 100 keeps huge logits finite", "[attention][stability]") {
  attn_problem<float> p({1, 70, 90, 2, 2, 64, 64}, 71);
  attention_options o;
  o.scale = 100.0;
  o.causal = true;
  auto f = run_attention<simd<>>(p, o);
  for (float x : f.o.storage()) REQUIRE(std::isfinite(x));
  for (float x : f.lse.storage()) REQUIRE(std::isfinite(x));
  require_attention_matches(p, o);
}

TEST_CASE("attention: NaN stays in the rows whose inputs hold it", "[attention][nan]") {
  attn_problem<float> p({1, 100, 100, 2, 1, 32, 32}, 81);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  p.q.view()(0, 10, 1, 3) = nan;  // query row 10, head 1
  p.v.view()(0, 80, 0, 7) = nan;  // value of key 80: under causal, rows >= 80 read it
  attention_options o;
  o.causal = true;
  const auto f = run_attention<simd<>>(p, o);
  require_attention_matches(p, o);  // NaN positions must match the reference exactly
  REQUIRE(std::isnan(f.o.cview()(0, 10, 1, 0)));
  REQUIRE(!std::isnan(f.o.cview()(0, 10, 0, 0)));
  REQUIRE(!std::isnan(f.o.cview()(0, 79, 0, 7)));  // same tile as key 80, masked
  REQUIRE(std::isnan(f.o.cview()(0, 80, 0, 7)));
  REQUIRE(!std::isnan(f.o.cview()(0, 50, 1, 0)));
}

TEST_CASE("attention: threads and sequential give the same result", "[attention][threads]") {
  attn_problem<float> p({2, 150, 150, 4, 2, 64, 64}, 91);
  attention_options o1, o2;
  o1.causal = o2.causal = true;
  o1.run.executor = seq;
  o2.run.executor = par_t{2};
  const auto a = run_attention<simd<>>(p, o1);
  const auto b = run_attention<simd<>>(p, o2);
  REQUIRE(compare(a.o.cview(), b.o.cview()).max_abs == 0.0);
}

TEST_CASE("attention: bad shapes and options throw shape_error with a clear message", "[attention][errors]") {
  attn_problem<float> p({1, 8, 8, 4, 2, 16, 16}, 101);
  attn_out<float> out(p.sh, 8);
  attention_args<float> a{p.q.cview(), p.k.cview(), p.v.cview(), out.o.view(), out.lse.view()};
  attn_problem<float> bad({1, 8, 8, 3, 3, 16, 16}, 102);
  auto a2 = a;
  a2.k = bad.k.cview();
  a2.v = bad.v.cview();
  REQUIRE_THROWS_MATCHES(attention(a2), shape_error, message_contains("seqmix::attention: q.extent(H) = 4, expected a multiple of k.extent(H) = 3"));
  attn_problem<float> d({1, 8, 8, 4, 2, 8, 16}, 103);
  auto a3 = a;
  a3.k = d.k.cview();
  REQUIRE_THROWS_AS(attention(a3), shape_error);
  REQUIRE_THROWS_MATCHES(attention(a3), shape_error, message_contains("k.extent(D) = 8, expected 16"));
  attention_options o;
  o.window_left = -3;
  REQUIRE_THROWS_MATCHES(attention(a, o), shape_error, message_contains("window_left = -3"));
  o = {};
  o.softcap = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_MATCHES(attention(a, o), shape_error, message_contains("softcap"));
  std::vector<std::int32_t> cq{0, 5, 4}, ck{0, 4, 8};
  auto a4 = a;
  a4.cu_seqlens_q = tensor_view<const std::int32_t, flash_i>(cq.data(), {3});
  a4.cu_seqlens_k = tensor_view<const std::int32_t, flash_i>(ck.data(), {3});
  REQUIRE_THROWS_MATCHES(attention(a4), shape_error, message_contains("cu_seqlens_q[2] = 4, expected >= 5"));
}
