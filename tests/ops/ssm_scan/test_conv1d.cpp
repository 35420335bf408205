// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_conv1d.cpp: causal_conv1d (widths 1, 2, 4, 7; channel-first and channel-last;
// states; varlen) and causal_conv1d_update (shift and ring buffers, slots) against the float64 reference.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

namespace {

template <class T>
causal_conv1d_args<T> conv_args(const conv_problem<T>& pr, tensor_view<T, bdl> out, tensor_view<T, bdw> fin,
                                bool bias, bool init) {
  causal_conv1d_args<T> a;
  a.x = pr.x.cview();
  a.weight = pr.w.cview();
  if (bias) a.bias = pr.bias.cview();
  if (init) a.initial_states = pr.h0.cview();
  a.out = out;
  a.final_states = fin;
  return a;
}

/// One causal_conv1d_update call (silu) on random x, weight, bias and a slot cache of S taps, against the float64
/// reference: outputs, the updated slots, and zeros for rows whose slot is -1.
void check_conv_update(rng& r, index_t D, index_t W, index_t L, index_t S, index_t slots,
                       const std::vector<ssm_index_t>& idx, const std::vector<ssm_index_t>* seqlens, bool with_bias) {
  const index_t Bn = static_cast<index_t>(idx.size());
  tensor<float, bdl> x({Bn, D, L});
  tensor<float, dw> w({D, W});
  tensor<float, ssm_layouts::d> bias(extents<ssm_layouts::d>{D});
  tensor<float, ssm_layouts::bds> st({slots, D, S});
  x.normal(r);
  w.normal(r);
  bias.normal(r);
  st.normal(r);
  auto st_ref = st;
  // L = 3 calls read the bias with D-stride 2 (gathered), the others in place
  std::vector<float> bias2(static_cast<std::size_t>(2 * D));
  for (index_t d = 0; d < D; ++d) bias2[static_cast<std::size_t>(2 * d)] = bias.cview()(d);
  const auto bv = L == 3 ? const_view<float, ssm_layouts::d>(bias2.data(), {D}, {2}) : bias.cview();
  tensor<float, bdl> out({Bn, D, L}), ref({Bn, D, L});
  out.poison();
  auto make = [&](tensor<float, ssm_layouts::bds>& s, tensor<float, bdl>& o) {
    causal_conv1d_update_args<float> a;
    a.x = x.cview();
    a.conv_state = s.view();
    a.weight = w.cview();
    if (with_bias) a.bias = bv;
    a.conv_state_indices = const_view<ssm_index_t, ssm_layouts::b>(idx.data(), {Bn});
    if (seqlens) a.cache_seqlens = const_view<ssm_index_t, ssm_layouts::b>(seqlens->data(), {Bn});
    a.out = o.view();
    return a;
  };
  const causal_conv1d_options o{.activation = conv_activation::silu, .run = {}};
  causal_conv1d_update(make(st, out), o);
  causal_conv1d_update(make(st_ref, ref), o, reference{});
  SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(L));
  SEQMIX_REQUIRE_CLOSE(st.cview(), st_ref.cview(), 1e-12);
  for (index_t b = 0; b < Bn; ++b)
    if (idx[static_cast<std::size_t>(b)] < 0)
      for (index_t d = 0; d < D; ++d)
        for (index_t l = 0; l < L; ++l) REQUIRE(out.cview()(b, d, l) == 0.0f);  // skipped row
}

}  // namespace

TEST_CASE("causal_conv1d: simd matches float64 reference (widths, lengths, layouts, options)", "[ssm][conv1d]") {
  int k = 0;
  // W = 9 and 12: the first W-1 tokens as one batch at the AVX2 width edge, and element by element
  for (index_t W : {1, 2, 4, 7, 9, 12}) {
    for (index_t L : {1, 3, 64, 255, 256, 257, 1000}) {
      for (bool chlast : {false, true}) {
        const bool bias = k % 2 == 0, init = k % 3 != 2;
        const auto act = k % 4 < 2 ? conv_activation::silu : conv_activation::none;
        ++k;
        INFO("W " << W << " L " << L << " channel_last " << chlast << " bias " << bias << " init " << init);
        conv_problem<float> pr(2, 21, L, W, 300 + static_cast<std::uint64_t>(k), chlast);
        tensor<float, bdl> out = chlast ? tensor<float, bdl>::permuted<layout<axis::B, axis::L, axis::D>>({2, 21, L})
                                        : tensor<float, bdl>({2, 21, L});
        tensor<float, bdl> ref({2, 21, L});
        tensor<float, bdw> fin({2, 21, W - 1}), fin_ref({2, 21, W - 1});
        out.poison();
        fin.poison();
        const causal_conv1d_options o{.activation = act, .run = {}};
        causal_conv1d(conv_args(pr, out.view(), fin.view(), bias, init), o);
        causal_conv1d(conv_args(pr, ref.view(), fin_ref.view(), bias, init), o, reference{});
        SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(L));
        SEQMIX_REQUIRE_CLOSE(fin.cview(), fin_ref.cview(), 1e-12);
      }
    }
  }
}

TEST_CASE("causal_conv1d: padded strides, double, bf16 and f16", "[ssm][conv1d]") {
  conv_problem<float> pr(2, 10, 50, 4, 7);
  auto xp = pr.x.padded_copy(2);
  auto out = tensor<float, bdl>::padded({2, 10, 50}, 1);
  tensor<float, bdl> ref({2, 10, 50});
  tensor<float, bdw> fin({2, 10, 3}), fin_ref({2, 10, 3});
  auto a = conv_args(pr, out.view(), fin.view(), true, true);
  a.x = xp.cview();
  causal_conv1d(a, {.activation = conv_activation::silu, .run = {}});
  causal_conv1d(conv_args(pr, ref.view(), fin_ref.view(), true, true), {.activation = conv_activation::silu, .run = {}},
                reference{});
  SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(50));
  SEQMIX_REQUIRE_CLOSE(fin.cview(), fin_ref.cview(), 1e-12);
  auto typed = [](auto tag, bool chlast) {
    using T = decltype(tag);
    conv_problem<T> p(1, 13, 40, 4, 8, chlast);
    tensor<T, bdl> o({1, 13, 40}), r({1, 13, 40});
    tensor<T, bdw> f({1, 13, 3}), fr({1, 13, 3});
    causal_conv1d(conv_args(p, o.view(), f.view(), true, true), {.activation = conv_activation::silu, .run = {}});
    causal_conv1d(conv_args(p, r.view(), fr.view(), true, true), {.activation = conv_activation::silu, .run = {}},
                  reference{});
    SEQMIX_REQUIRE_CLOSE(o.cview(), r.cview(), tolerance<T>(40));
    SEQMIX_REQUIRE_CLOSE(f.cview(), fr.cview(), 1e-12);
  };
  typed(double{}, false);
  typed(bf16{}, false);
  typed(bf16{}, true);
  typed(f16{}, true);
}

TEST_CASE("causal_conv1d: two halves carrying state == one pass; decode steps == prefill", "[ssm][conv1d][state]") {
  for (index_t W : {1, 2, 4, 7}) {
    const index_t L = 30, h = 13;
    conv_problem<float> pr(2, 9, L, W, 11);
    tensor<float, bdl> whole({2, 9, L}), split({2, 9, L});
    tensor<float, bdw> fw({2, 9, W - 1}), mid({2, 9, W - 1}), fs({2, 9, W - 1});
    causal_conv1d(conv_args(pr, whole.view(), fw.view(), true, true), {}, reference{});
    auto a1 = conv_args(pr, split.view().slice<axis::L>(0, h), mid.view(), true, true);
    a1.x = a1.x.slice<axis::L>(0, h);
    causal_conv1d(a1);
    auto a2 = conv_args(pr, split.view().slice<axis::L>(h, L), fs.view(), true, false);
    a2.x = a2.x.slice<axis::L>(h, L);
    a2.initial_states = mid.cview();
    causal_conv1d(a2);
    SEQMIX_REQUIRE_CLOSE(split.cview(), whole.cview(), tolerance<float>(L));
    SEQMIX_REQUIRE_CLOSE(fs.cview(), fw.cview(), 1e-12);

    // prefill [0, h), then decode token by token with causal_conv1d_update (shift buffer and ring buffer)
    for (bool ring : {false, true}) {
      const index_t S = ring ? W + 2 : std::max<index_t>(W - 1, 0);
      tensor<float, ssm_layouts::bds> st({2, 9, S});
      tensor<float, bdl> dec({2, 9, L});
      std::vector<ssm_index_t> seqlens{0, 0};
      // state = the last S inputs [x^ of the prefill], with the ring write position at h % S
      auto pre = conv_args(pr, dec.view().slice<axis::L>(0, h), {}, true, true);
      pre.x = pre.x.slice<axis::L>(0, h);
      causal_conv1d(pre);
      for (index_t b = 0; b < 2; ++b)
        for (index_t d = 0; d < 9; ++d)
          for (index_t s = 0; s < S; ++s) {
            const index_t j = ring ? h - 1 - ((h - 1 - s) % S + S) % S : h - S + s;  // token held at slot s
            const float v = j >= 0 ? pr.x.cview()(b, d, j) : (j >= -(W - 1) ? pr.h0.cview()(b, d, W - 1 + j) : 0.0f);
            st.view()(b, d, s) = v;
          }
      for (index_t t = h; t < L; ++t) {
        causal_conv1d_update_args<float> u;
        u.x = pr.x.cview().slice<axis::L>(t, t + 1);
        u.conv_state = st.view();
        u.weight = pr.w.cview();
        u.bias = pr.bias.cview();
        seqlens = {t, t};
        if (ring) u.cache_seqlens = const_view<ssm_index_t, ssm_layouts::b>(seqlens.data(), {2});
        u.out = dec.view().slice<axis::L>(t, t + 1);
        causal_conv1d_update(u);
      }
      INFO("W " << W << " ring " << ring);
      SEQMIX_REQUIRE_CLOSE(dec.cview(), whole.cview(), tolerance<float>(L));
    }
  }
}

TEST_CASE("causal_conv1d_update: simd == reference with slots, L > 1, ring and shift buffers", "[ssm][conv1d]") {
  rng r(17);
  const std::vector<ssm_index_t> idx{4, -1, 1}, seqlens{7, 0, 2};
  for (bool ring : {false, true}) {
    for (index_t W : {2, 4, 7}) {
      INFO("W " << W << " ring " << ring);
      check_conv_update(r, 11, W, 3, W + 1, 5, idx, ring ? &seqlens : nullptr, true);
    }
  }
}

TEST_CASE("causal_conv1d_update: shift buffers of W - 1 taps, V channels at a time (gathers) == reference",
          "[ssm][conv1d]") {
  // D = 19: two batches and a 3-channel tail; L = 1 reads x rows in place (D-stride 1), L = 3 gathers them;
  // W = 8 is the widest gathered kernel, W = 9 takes the scalar loop; slot -1 skips a row
  rng r(23);
  const std::vector<ssm_index_t> idx{2, -1, 0};
  for (index_t W : {2, 3, 4, 8, 9}) {
    for (index_t L : {1, 3}) {
      for (bool with_bias : {true, false}) {
        INFO("W " << W << " L " << L << " bias " << with_bias);
        check_conv_update(r, 19, W, L, W - 1, 4, idx, nullptr, with_bias);
      }
    }
  }
}

TEST_CASE("causal_conv1d: cu_seqlens == separate calls", "[ssm][conv1d][varlen]") {
  const std::vector<index_t> lens{1, 20, 0, 2, 37};
  const auto cu = cu_from_lengths(lens);
  const index_t total = cu.back(), ns = static_cast<index_t>(lens.size());
  for (bool chlast : {false, true}) {
    conv_problem<float> pr(1, 12, total, 4, 19, chlast);
    tensor<float, bdw> h0s({ns, 12, 3});
    rng r(2);
    h0s.normal(r);
    tensor<float, bdl> out({1, 12, total}), sep({1, 12, total});
    tensor<float, bdw> fin({ns, 12, 3}), fsep({ns, 12, 3});
    auto a = conv_args(pr, out.view(), fin.view(), true, false);
    a.initial_states = h0s.cview();
    a.cu_seqlens = cu_view(cu);
    causal_conv1d(a, {.activation = conv_activation::silu, .run = {}});
    for (index_t s = 0; s < ns; ++s) {
      const index_t t0 = cu[static_cast<std::size_t>(s)], t1 = cu[static_cast<std::size_t>(s) + 1];
      auto b = conv_args(pr, sep.view().slice<axis::L>(t0, t1), fsep.view().slice<axis::B>(s, s + 1), true, false);
      b.x = b.x.slice<axis::L>(t0, t1);
      b.initial_states = h0s.cview().slice<axis::B>(s, s + 1);
      causal_conv1d(b, {.activation = conv_activation::silu, .run = {}}, reference{});
    }
    SEQMIX_REQUIRE_CLOSE(out.cview(), sep.cview(), tolerance<float>(total));
    SEQMIX_REQUIRE_CLOSE(fin.cview(), fsep.cview(), 1e-12);
  }
}

TEST_CASE("causal_conv1d: shape errors", "[ssm][conv1d][errors]") {
  conv_problem<float> pr(2, 8, 10, 4, 23);
  tensor<float, bdl> out({2, 8, 10});
  tensor<float, bdw> fin({2, 8, 3});
  auto a = conv_args(pr, out.view(), fin.view(), true, true);
  auto bad = a;
  bad.weight = a.weight.slice<axis::D>(0, 7);
  REQUIRE_THROWS_MATCHES(causal_conv1d(bad), shape_error,
                         message_is("seqmix::causal_conv1d: weight.extent(D) = 7, expected 8 (from x [B,D,L])"));
  bad = a;
  bad.final_states = fin.view().slice<axis::W>(0, 2);
  REQUIRE_THROWS_MATCHES(causal_conv1d(bad), shape_error, message_contains("final_states.extent(W) = 2, expected 3"));
  tensor<float, ssm_layouts::bds> st({2, 8, 2});
  causal_conv1d_update_args<float> u;
  u.x = pr.x.cview().slice<axis::L>(0, 1);
  u.conv_state = st.view();
  u.weight = pr.w.cview();
  u.out = out.view().slice<axis::L>(0, 1);
  REQUIRE_THROWS_MATCHES(causal_conv1d_update(u), shape_error,
                         message_contains("conv_state.extent(S) = 2, expected >= 3"));
  tensor<float, ssm_layouts::bds> st3({2, 8, 3});
  u.conv_state = st3.view();
  std::vector<ssm_index_t> idx{0, 2};
  u.conv_state_indices = const_view<ssm_index_t, ssm_layouts::b>(idx.data(), {2});
  REQUIRE_THROWS_MATCHES(causal_conv1d_update(u), shape_error,
                         message_contains("conv_state_indices[1] = 2, expected < 2"));
}

TEST_CASE("causal_conv1d: silu four batches at a time (wide channel blocks, long rows, tails)", "[ssm][conv1d]") {
  // channel-last D = 77: four-batch steps, single batches and a 5-channel tail per token; channel-first
  // L = 70: four-batch steps, then single batches and a scalar tail per row
  for (index_t W : {3, 4}) {
    for (bool chlast : {false, true}) {
      const index_t D = chlast ? 77 : 5, L = chlast ? 9 : 70;
      INFO("W " << W << " channel_last " << chlast);
      conv_problem<float> pr(1, D, L, W, 400 + static_cast<std::uint64_t>(W), chlast);
      pr.x.for_each([](float& v) { v *= 8.0f; });  // silu over a wide range, both signs
      tensor<float, bdl> out = chlast ? tensor<float, bdl>::permuted<layout<axis::B, axis::L, axis::D>>({1, D, L})
                                      : tensor<float, bdl>({1, D, L});
      tensor<float, bdl> ref({1, D, L});
      tensor<float, bdw> fin({1, D, W - 1}), fin_ref({1, D, W - 1});
      out.poison();
      const causal_conv1d_options o{.activation = conv_activation::silu, .run = {}};
      causal_conv1d(conv_args(pr, out.view(), fin.view(), true, true), o);
      causal_conv1d(conv_args(pr, ref.view(), fin_ref.view(), true, true), o, reference{});
      SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(L));
    }
  }
}

TEST_CASE("causal_conv1d: streaming stores (outputs past the threshold) == ordinary stores == reference",
          "[ssm][conv1d][stream]") {
  // The threshold is passed in: 0 streams every float channel-first output (bytes >= 0), infinity none.
  // Rows of odd L start off the vector width (the part-stored first batch), L < 2 widths keeps ordinary
  // stores, an output buffer 4 bytes past a line misaligns every row; W 4 (unrolled taps) and 7; one and
  // two threads (each task fences its streaming stores).
  const double always = 0.0, never = std::numeric_limits<double>::infinity();
  int k = 0;
  for (index_t W : {4, 7}) {
    for (index_t L : {5, 16, 17, 40, 203, 1000}) {
      for (index_t off : {0, 1}) {
        const index_t B = 2, D = 21;
        const auto act = k % 2 == 0 ? conv_activation::silu : conv_activation::none;
        const int threads = 1 + k % 2;
        ++k;
        INFO("W " << W << " L " << L << " output offset " << off << " floats, threads " << threads);
        conv_problem<float> pr(B, D, L, W, 500 + static_cast<std::uint64_t>(k));
        pr.x.for_each([](float& v) { v *= 4.0f; });
        tensor<float, bdl> ref({B, D, L});
        tensor<float, bdw> fin({B, D, W - 1}), fin_ref({B, D, W - 1});
        causal_conv1d(conv_args(pr, ref.view(), fin_ref.view(), true, true), {.activation = act, .run = {}},
                      reference{});
        const auto n = static_cast<std::size_t>(B * D * L);
        std::vector<float> mem_s(n + 32), mem_o(n + 32);
        const auto place = [&](std::vector<float>& m) {  // 64-byte aligned base, then off floats further
          float* p = m.data() + (64 - reinterpret_cast<std::uintptr_t>(m.data()) % 64) / 4 + off;
          std::fill(p, p + n, std::nanf(""));
          return make_view<bdl>(p, {B, D, L});
        };
        const auto out_s = place(mem_s), out_o = place(mem_o);
        const causal_conv1d_options o{.activation = act, .run = {.executor = par_t{threads}}};
        seqmix::detail::ssm::causal_conv1d_impl(conv_args(pr, out_s, fin.view(), true, true), o, simd<>{}, always);
        SEQMIX_REQUIRE_CLOSE(fin.cview(), fin_ref.cview(), 1e-12);
        seqmix::detail::ssm::causal_conv1d_impl(conv_args(pr, out_o, fin.view(), true, true), o, simd<>{}, never);
        // (not bitwise equal: the streaming path's part-stored first batch moves which tokens take the scalar tail)
        tensor<float, bdl> got_s({B, D, L}), got_o({B, D, L});
        for (index_t b = 0; b < B; ++b)
          for (index_t d = 0; d < D; ++d)
            for (index_t t = 0; t < L; ++t) {
              got_s.view()(b, d, t) = out_s(b, d, t);
              got_o.view()(b, d, t) = out_o(b, d, t);
            }
        SEQMIX_REQUIRE_CLOSE(got_s.cview(), ref.cview(), tolerance<float>(L));
        SEQMIX_REQUIRE_CLOSE(got_o.cview(), ref.cview(), tolerance<float>(L));
      }
    }
  }
}

TEST_CASE("causal_conv1d: NaN and infinities in x follow the float64 reference (silu(-inf) = NaN)",
          "[ssm][conv1d][nan]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (bool chlast : {false, true}) {
    for (auto act : {conv_activation::silu, conv_activation::none}) {
      conv_problem<float> pr(1, 12, 77, 4, 23, chlast);
      // +-inf at the start, in the body and in the tail of rows (the weights' signs give both signs of inf
      // before the activation), NaN in another row; other rows stay finite
      auto xv = pr.x.view();
      xv(0, 1, 0) = inf;
      xv(0, 2, 40) = -inf;
      xv(0, 3, 75) = inf;
      xv(0, 4, 9) = nan;
      tensor<float, bdl> out({1, 12, 77}), ref({1, 12, 77});
      tensor<float, bdw> fin({1, 12, 3}), fin_ref({1, 12, 3});
      const causal_conv1d_options o{.activation = act, .run = {}};
      causal_conv1d(conv_args(pr, out.view(), fin.view(), true, true), o);
      causal_conv1d(conv_args(pr, ref.view(), fin_ref.view(), true, true), o, reference{});
      INFO("channel_last " << chlast << " silu " << (act == conv_activation::silu));
      SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(77));
      SEQMIX_REQUIRE_CLOSE(fin.cview(), fin_ref.cview(), 1e-12);
    }
  }
}
