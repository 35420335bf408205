// SPDX-License-Identifier: Apache-2.0
// tests/ops/linear_attention/test_linear_gated.cpp: linear_attn, simple_gla, retention, gla and rwkv6:
// chunk and recurrent forms against the float64 reference, state carry, varlen, decode, dtypes,
// strong decay, strided input and error messages.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <support/linear_attention_gated.hpp>
#include <support/support.hpp>

using namespace seqmix;
using namespace seqmix::testing;

namespace {

template <class T>
struct outputs {
  tensor<T, bthv> o;
  tensor<float, nhkv> ht;
  outputs(index_t B, index_t T_, index_t H, index_t K, index_t V, index_t N) : o({B, T_, H, V}), ht({N, H, K, V}) {
    o.poison();
    ht.poison();
  }
};

constexpr linear_mode fast_modes[] = {linear_mode::recurrent, linear_mode::chunk, linear_mode::auto_};

std::string mode_name(linear_mode m) {
  return m == linear_mode::chunk ? "chunk" : m == linear_mode::recurrent ? "recurrent" : "auto";
}

/// Runs op on d through the float64 reference (ref_mode), then through the fast path in each of `modes`,
/// and compares o and ht with the reference (tolerance<T>(s.T)).
template <class T>
void check_fast_modes(gated_op op, const gated_data<T>& d, const gated_shape& s, const_state_view h0,
                      std::initializer_list<linear_mode> modes, linear_mode ref_mode = linear_mode::auto_) {
  outputs<T> ref(s.B, s.T, s.H, s.K, s.V, s.B);
  run_gated<reference>(op, d.inputs(), ref.o.view(), h0, ref.ht.view(), {}, ref_mode);
  for (linear_mode m : modes) {
    INFO(op_name(op) << " mode " << mode_name(m));
    outputs<T> out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<simd<>>(op, d.inputs(), out.o.view(), h0, out.ht.view(), {}, m);
    SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<T>(s.T));
    SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<T>(s.T));
  }
}

}  // namespace

TEST_CASE("gated linear ops: chunk and recurrent == float64 reference over awkward lengths", "[linear_attention]") {
  rng r(11);
  const index_t Ts[] = {1, 2, 15, 16, 17, 63, 64, 65, 300};
  for (gated_op op : all_gated_ops()) {
    for (index_t T : Ts) {
      const gated_shape s{2, T, 2, 12, 10};
      gated_data<float> d(s, r);
      d.for_op(op, r);
      const bool with_h0 = (T % 2) == 1;
      const_state_view h0 = with_h0 ? d.h0.cview() : const_state_view{};
      INFO("T=" << T << " h0 " << with_h0);
      check_fast_modes(op, d, s, h0, {linear_mode::recurrent, linear_mode::chunk, linear_mode::auto_});
    }
  }
}

TEST_CASE("gated linear ops: head dims 64 and 128, K != V", "[linear_attention]") {
  rng r(12);
  for (gated_op op : {gated_op::simple_gla, gated_op::gla, gated_op::rwkv6, gated_op::linear_attn}) {
    const gated_shape s{1, 130, 2, 64, 128};
    gated_data<float> d(s, r);
    d.for_op(op, r);
    outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B), out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    run_gated<simd<>>(op, d.inputs(), out.o.view(), d.h0.cview(), out.ht.view(), {}, linear_mode::chunk);
    INFO(op_name(op));
    SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
    SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
  }
}

TEST_CASE("gated linear ops: every allowed chunk size gives the reference result", "[linear_attention]") {
  rng r(13);
  for (gated_op op : all_gated_ops()) {
    const gated_shape s{1, 150, 3, 9, 17};
    gated_data<float> d(s, r);
    d.for_op(op, r);
    outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    for (index_t c : {16, 32, 64, 128}) {
      INFO(op_name(op) << " chunk " << c);
      outputs<float> out(s.B, s.T, s.H, s.K, s.V, s.B);
      run_gated<simd<>>(op, d.inputs(), out.o.view(), d.h0.cview(), out.ht.view(), {}, linear_mode::chunk, c);
      SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
      SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
    }
  }
}

TEST_CASE("gated linear ops: two halves passing the state == one pass", "[linear_attention][state]") {
  rng r(14);
  for (gated_op op : all_gated_ops()) {
    if (op == gated_op::linear_attn_norm) continue;  // z carry is tested below
    const gated_shape s{2, 157, 2, 12, 10};
    gated_data<float> d(s, r);
    d.for_op(op, r);
    const index_t cut = 70;
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
      INFO(op_name(op) << " " << mode_name(m));
      outputs<float> whole(s.B, s.T, s.H, s.K, s.V, s.B), split(s.B, s.T, s.H, s.K, s.V, s.B);
      tensor<float, nhkv> mid({s.B, s.H, s.K, s.V});
      run_gated<simd<>>(op, d.inputs(), whole.o.view(), d.h0.cview(), whole.ht.view(), {}, m);
      run_gated<simd<>>(op, d.inputs().slice_t(0, cut), split.o.view().slice<axis::T>(0, cut), d.h0.cview(),
                        mid.view(), {}, m);
      run_gated<simd<>>(op, d.inputs().slice_t(cut, s.T), split.o.view().slice<axis::T>(cut, s.T), mid.cview(),
                        split.ht.view(), {}, m);
      SEQMIX_REQUIRE_CLOSE(split.o.cview(), whole.o.cview(), tolerance<float>(s.T));
      SEQMIX_REQUIRE_CLOSE(split.ht.cview(), whole.ht.cview(), tolerance<float>(s.T));
    }
  }
}

TEST_CASE("linear_attn normalize: z carried through initial_z / final_z", "[linear_attention][state]") {
  rng r(15);
  const gated_shape s{1, 90, 2, 8, 6};
  gated_data<float> d(s, r);
  d.k.uniform(r, 0.1, 1.0);  // positive keys keep the denominator away from 0, as feature maps do
  d.q.uniform(r, 0.1, 1.0);
  tensor<float, nhk> z0({1, s.H, s.K}), zmid({1, s.H, s.K}), zend({1, s.H, s.K}), zref({1, s.H, s.K});
  z0.uniform(r, 0.5, 1.0);
  const auto in = d.inputs();
  outputs<float> ref(1, s.T, s.H, s.K, s.V, 1), out(1, s.T, s.H, s.K, s.V, 1);
  linear_attn(linear_attn_args<float>{.q = in.q, .k = in.k, .v = in.v, .initial_state = d.h0.cview(),
                                      .initial_z = z0.cview(), .o = ref.o.view(), .final_state = ref.ht.view(),
                                      .final_z = zref.view()},
              {.normalize = true}, reference{});
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
    const index_t cut = 33;
    const auto a = in.slice_t(0, cut), b = in.slice_t(cut, s.T);
    tensor<float, nhkv> mid({1, s.H, s.K, s.V});
    linear_attn(linear_attn_args<float>{.q = a.q, .k = a.k, .v = a.v, .initial_state = d.h0.cview(),
                                        .initial_z = z0.cview(), .o = out.o.view().slice<axis::T>(0, cut),
                                        .final_state = mid.view(), .final_z = zmid.view()},
                {.mode = m, .normalize = true});
    linear_attn(linear_attn_args<float>{.q = b.q, .k = b.k, .v = b.v, .initial_state = mid.cview(),
                                        .initial_z = zmid.cview(), .o = out.o.view().slice<axis::T>(cut, s.T),
                                        .final_state = out.ht.view(), .final_z = zend.view()},
                {.mode = m, .normalize = true});
    INFO(mode_name(m));
    SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
    SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
    SEQMIX_REQUIRE_CLOSE(zend.cview(), zref.cview(), tolerance<float>(s.T));
  }
}

TEST_CASE("gated linear ops: varlen == separate calls", "[linear_attention][varlen]") {
  rng r(16);
  const std::vector<std::int64_t> cu = {0, 1, 57, 200, 260};
  const index_t N = 4, T = 260;
  for (gated_op op : all_gated_ops()) {
    const gated_shape s{1, T, 2, 12, 10};
    gated_data<float> d(s, r);
    d.for_op(op, r);
    tensor<float, nhkv> h0({N, s.H, s.K, s.V});
    h0.uniform(r, -1, 1);
    const cu_seqlens_view cuv(cu.data(), {N + 1});
    for (linear_mode m : fast_modes) {
      INFO(op_name(op) << " " << mode_name(m));
      outputs<float> var(1, T, s.H, s.K, s.V, N), sep(1, T, s.H, s.K, s.V, N);
      run_gated<simd<>>(op, d.inputs(), var.o.view(), h0.cview(), var.ht.view(), cuv, m);
      for (index_t n = 0; n < N; ++n) {
        const index_t t0 = cu[static_cast<std::size_t>(n)], t1 = cu[static_cast<std::size_t>(n + 1)];
        run_gated<reference>(op, d.inputs().slice_t(t0, t1), sep.o.view().slice<axis::T>(t0, t1),
                             h0.cview().slice<axis::N>(n, n + 1), sep.ht.view().slice<axis::N>(n, n + 1), {}, m);
      }
      SEQMIX_REQUIRE_CLOSE(var.o.cview(), sep.o.cview(), tolerance<float>(200));
      SEQMIX_REQUIRE_CLOSE(var.ht.cview(), sep.ht.cview(), tolerance<float>(200));
    }
  }
}

TEST_CASE("gated linear ops: decode steps after a chunked prefill == one longer prefill", "[linear_attention][decode]") {
  rng r(17);
  for (gated_op op : all_gated_ops()) {
   for (index_t Vd : {10, 16}) {  // 16: the in-place path on the caller's state rows
    if (op == gated_op::linear_attn_norm) continue;
    const gated_shape s{3, 45, 2, 12, Vd};
    const index_t P = 40;
    gated_data<float> d(s, r);
    d.for_op(op, r);
    outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    // slots: batch row b lives in slot perm[b] of a 4-slot cache
    const std::vector<std::int64_t> perm = {2, 0, 3};
    tensor<float, nhkv> cache({4, s.H, s.K, s.V});
    cache.uniform(r, -1, 1);
    tensor<float, nhkv> pre({s.B, s.H, s.K, s.V});
    outputs<float> out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<simd<>>(op, d.inputs().slice_t(0, P), out.o.view().slice<axis::T>(0, P), d.h0.cview(), pre.view(), {},
                      linear_mode::chunk);
    for (index_t b = 0; b < s.B; ++b)
      for (index_t h = 0; h < s.H; ++h)
        for (index_t k = 0; k < s.K; ++k)
          for (index_t v = 0; v < s.V; ++v) cache.view()(perm[static_cast<std::size_t>(b)], h, k, v) = pre.view()(b, h, k, v);
    const state_indices_view idx(perm.data(), {s.B});
    for (index_t t = P; t < s.T; ++t) {
      run_gated_decode<simd<>>(op, d.inputs().slice_t(t, t + 1), out.o.view().slice<axis::T>(t, t + 1), cache.view(),
                               idx);
    }
    for (index_t b = 0; b < s.B; ++b)
      for (index_t h = 0; h < s.H; ++h)
        for (index_t k = 0; k < s.K; ++k)
          for (index_t v = 0; v < s.V; ++v) out.ht.view()(b, h, k, v) = cache.view()(perm[static_cast<std::size_t>(b)], h, k, v);
    INFO(op_name(op) << " V " << Vd);
    SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
    SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
   }
  }
}

TEST_CASE("gated linear ops: decode with state_indices -1 skips the row", "[linear_attention][decode]") {
  rng r(18);
  const gated_shape s{2, 1, 2, 8, 8};
  gated_data<float> d(s, r);
  tensor<float, nhkv> cache({2, s.H, s.K, s.V});
  cache.uniform(r, -1, 1);
  const std::vector<float> before = cache.storage();
  const std::vector<std::int64_t> idx = {-1, 0};
  tensor<float, bthv> o({s.B, 1, s.H, s.V});
  o.uniform(r, -1, 1);
  const std::vector<float> o_before = o.storage();
  run_gated_decode<simd<>>(gated_op::gla, d.inputs(), o.view(), cache.view(), state_indices_view(idx.data(), {2}));
  // slot 1 untouched; row 0 of o zeroed (one rule for every decode op); slot 0 updated from row 1
  for (index_t i = s.H * s.K * s.V; i < 2 * s.H * s.K * s.V; ++i) REQUIRE(cache.storage()[static_cast<std::size_t>(i)] == before[static_cast<std::size_t>(i)]);
  for (index_t i = 0; i < s.H * s.V; ++i) REQUIRE(o.storage()[static_cast<std::size_t>(i)] == 0.0f);
  REQUIRE(o_before[0] != 0.0f);  // the row held random values before the call
  tensor<float, nhkv> ref({1, s.H, s.K, s.V});
  tensor<float, bthv> oref({1, 1, s.H, s.V});
  run_gated<reference>(gated_op::gla, d.inputs().slice_b(1, 2), oref.view(),
                       tensor_view<const float, nhkv>(before.data(), {1, s.H, s.K, s.V}), ref.view(), {},
                       linear_mode::recurrent);
  SEQMIX_REQUIRE_CLOSE(cache.cview().slice<axis::N>(0, 1), ref.cview(), tolerance<float>(1));
  SEQMIX_REQUIRE_CLOSE(o.cview().slice<axis::B>(1, 2), oref.cview(), tolerance<float>(1));
}

TEMPLATE_TEST_CASE("gated linear ops: bf16 / f16 inputs, float32 state", "[linear_attention][dtype]", bf16, f16) {
  rng r(19);
  for (gated_op op : all_gated_ops()) {
    const gated_shape s{2, 100, 2, 16, 24};
    gated_data<TestType> d(s, r);
    d.for_op(op, r);
    check_fast_modes(op, d, s, d.h0.cview(), {linear_mode::chunk, linear_mode::recurrent});
  }
}

TEST_CASE("gated linear ops: double inputs compute in float32 and match", "[linear_attention][dtype]") {
  rng r(20);
  for (gated_op op : {gated_op::gla, gated_op::rwkv6, gated_op::simple_gla}) {
    const gated_shape s{1, 70, 2, 8, 8};
    gated_data<double> d(s, r);
    d.for_op(op, r);
    outputs<double> ref(s.B, s.T, s.H, s.K, s.V, s.B), out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    run_gated<simd<>>(op, d.inputs(), out.o.view(), d.h0.cview(), out.ht.view(), {}, linear_mode::chunk);
    SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<double>(s.T));
  }
}

TEST_CASE("gated linear ops: strong decay (g down to -30 per step) and zero gates stay finite and exact",
          "[linear_attention][stability]") {
  rng r(21);
  for (gated_op op : {gated_op::simple_gla, gated_op::gla, gated_op::rwkv6, gated_op::simple_gla_gamma}) {
    for (auto [lo, hi] : {std::pair{-30.0, -0.0}, std::pair{-30.0, -10.0}, std::pair{-2.0, 0.0}}) {
      const gated_shape s{1, 200, 2, 12, 10};
      gated_data<float> d(s, r, lo, hi);
      d.for_op(op, r);
      // a run of exact zeros and of tiny gates inside the strong ones
      for (index_t t = 50; t < 90; ++t)
        for (index_t h = 0; h < s.H; ++h) {
          d.g.view()(0, t, h) = 0.0f;
          for (index_t k = 0; k < s.K; ++k) d.gk.view()(0, t, h, k) = (k % 2) ? 0.0f : -1e-3f;
        }
      INFO("gates [" << lo << ", " << hi << "]");
      check_fast_modes(op, d, s, d.h0.cview(), {linear_mode::chunk, linear_mode::recurrent});
    }
  }
}

TEST_CASE("gated linear ops: isolated huge decays (g = -1e4, -inf) in the chunk form", "[linear_attention][stability]") {
  // One token's own gate beyond any factorisation range (e^{g} = 0): the chunk form runs that token as a
  // plain step instead of forming e^{+-g/2} (inf * 0 = NaN).
  rng r(27);
  for (gated_op op : {gated_op::simple_gla, gated_op::gla, gated_op::rwkv6}) {
    const gated_shape s{1, 150, 2, 12, 10};
    gated_data<float> d(s, r);
    d.for_op(op, r);
    for (index_t t : {0, 5, 63, 64, 100, 149})
      for (index_t h = 0; h < s.H; ++h) {
        const float g = t == 100 ? -std::numeric_limits<float>::infinity() : -1e4f;
        d.g.view()(0, t, h) = g;
        for (index_t k = 0; k < s.K; ++k) d.gk.view()(0, t, h, k) = (k + t) % 3 ? -0.05f : g;
      }
    check_fast_modes(op, d, s, d.h0.cview(), {linear_mode::chunk, linear_mode::recurrent}, linear_mode::recurrent);
  }
}

// The rescaled recurrence keeps S~ = S / P per key row and folds P back (the plain step with decay P d) when
// P would leave [2^-40, 2^40]: folds on either token of a pair, on the last token, runs of folds (g = -30,
// zeros), P drifting to the bound over many tokens, exact zero gates, decay factors of exactly 0 (g = -inf),
// blocks of 16 and 64 tokens, V on and off the in-place decode path, multi-token decode steps.
TEST_CASE("gated linear ops: rescaled recurrence folds exactly", "[linear_attention][stability][rescaled]") {
  rng r(26);
  const gated_op ops[] = {gated_op::gla, gated_op::rwkv6, gated_op::simple_gla, gated_op::simple_gla_gamma,
                          gated_op::retention, gated_op::linear_attn, gated_op::linear_attn_norm};
  for (gated_op op : ops) {
    for (int pattern = 0; pattern < 4; ++pattern) {
      for (index_t Vd : {10, 16}) {
        const gated_shape s{2, 203, 3, 12, Vd};
        // 0: mild gates with strong ones at scattered tokens and channels; 1: steady -0.9 (P reaches 2^-40
        // every ~31 tokens); 2: exact zeros with a few -30; 3: mild with decay factors of exactly 0 (g = -inf)
        const double lo = pattern == 1 ? -0.95 : -0.3, hi = pattern == 1 ? -0.85 : -0.01;
        gated_data<float> d(s, r, lo, hi);
        d.for_op(op, r);
        const float ninf = -std::numeric_limits<float>::infinity();
        for (index_t b = 0; b < s.B; ++b)
          for (index_t t = 0; t < s.T; ++t)
            for (index_t h = 0; h < s.H; ++h) {
              const bool hit = (t * 7 + h * 3 + b) % 23 == 0 || t == s.T - 1 || t == 64 || t == 65;
              if (pattern == 2) d.g.view()(b, t, h) = hit ? -30.0f : 0.0f;
              if (pattern == 0 && hit) d.g.view()(b, t, h) = -30.0f;
              if (pattern == 3 && hit) d.g.view()(b, t, h) = ninf;
              for (index_t k = 0; k < s.K; ++k) {
                float& x = d.gk.view()(b, t, h, k);
                if (pattern == 2) x = hit && k % 3 == 0 ? -30.0f : 0.0f;
                if (pattern == 0 && hit && k % 5 == 1) x = -30.0f;
                if (pattern == 3 && hit && k % 4 == 2) x = ninf;
              }
            }
        outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B);
        run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::recurrent);
        for (index_t chunk : {16, 64}) {
          INFO(op_name(op) << " pattern " << pattern << " V " << Vd << " block " << chunk);
          outputs<float> out(s.B, s.T, s.H, s.K, s.V, s.B);
          run_gated<simd<>>(op, d.inputs(), out.o.view(), d.h0.cview(), out.ht.view(), {}, linear_mode::recurrent,
                            chunk);
          SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
          SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
        }
        if (op == gated_op::linear_attn_norm) continue;  // decode does not carry z
        // decode in steps of 1, 3 and 13 tokens on a state cache (in place when V = 16)
        INFO(op_name(op) << " pattern " << pattern << " V " << Vd << " decode");
        tensor<float, nhkv> cache({s.B, s.H, s.K, s.V});
        cache.storage() = d.h0.storage();
        outputs<float> out(s.B, s.T, s.H, s.K, s.V, s.B);
        for (index_t t = 0, step = 1; t < s.T; t += step, step = step == 1 ? 3 : step == 3 ? 13 : 1) {
          const index_t t1 = std::min(s.T, t + step);
          run_gated_decode<simd<>>(op, d.inputs().slice_t(t, t1), out.o.view().slice<axis::T>(t, t1), cache.view(), {});
        }
        SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
        SEQMIX_REQUIRE_CLOSE(cache.cview(), ref.ht.cview(), tolerance<float>(s.T));
      }
    }
  }
}

TEST_CASE("gated linear ops: long sequence (T = 65536) stays finite and exact", "[linear_attention][stability]") {
  rng r(22);
  for (gated_op op : {gated_op::gla, gated_op::simple_gla, gated_op::rwkv6}) {
    const gated_shape s{1, 65536, 1, 8, 8};
    gated_data<float> d(s, r, -0.2, -0.001);
    d.for_op(op, r);
    outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B), out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
      run_gated<simd<>>(op, d.inputs(), out.o.view(), d.h0.cview(), out.ht.view(), {}, m);
      INFO(op_name(op) << " " << mode_name(m));
      SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(8192));
      SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(8192));
    }
  }
}

TEST_CASE("gated linear ops: strided [B,H,T,D] storage read without copies", "[linear_attention][strided]") {
  rng r(23);
  using bhtk = layout<axis::B, axis::H, axis::T, axis::K>;
  using bhtv = layout<axis::B, axis::H, axis::T, axis::V>;
  for (gated_op op : all_gated_ops()) {
    const gated_shape s{2, 77, 3, 12, 10};
    gated_data<float, bhtk, bhtv> d(s, r, -0.3, -0.01, true);
    d.for_op(op, r);
    REQUIRE(!d.q.cview().is_contiguous());
    auto o_str = tensor<float, bthv>::permuted<bhtv>({s.B, s.T, s.H, s.V});
    o_str.poison();
    outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B), out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
      INFO(op_name(op) << " " << mode_name(m));
      run_gated<simd<>>(op, d.inputs(), o_str.view(), d.h0.cview(), out.ht.view(), {}, m);
      SEQMIX_REQUIRE_CLOSE(o_str.cview(), ref.o.cview(), tolerance<float>(s.T));
      SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
    }
  }
}

TEST_CASE("gated linear ops: rows that start off a cache line (malloc'd buffers)", "[linear_attention][unaligned]") {
  // The rescaled recurrence prefetches one more line per row when rows start off a 64-byte boundary: rows
  // 16 bytes past one (a malloc'd buffer) and 4 bytes past one, K = 64 (the unrolled 256-byte rows) and
  // K = 24; one and two threads.
  rng r(27);
  for (gated_op op : {gated_op::gla, gated_op::rwkv6, gated_op::simple_gla}) {
    for (index_t Kd : {64, 24}) {
      for (index_t off : {4, 1}) {
        const gated_shape s{1, Kd == 64 ? 200 : 37, 3, Kd, Kd};  // K = 64: long enough for two workers
        gated_data<float> d(s, r);
        const auto n = static_cast<std::size_t>(s.B * s.T * s.H * Kd);
        std::vector<float> mem(5 * n + 64);
        float* base = mem.data() + (64 - reinterpret_cast<std::uintptr_t>(mem.data()) % 64) / 4 + off;
        const auto place = [&](int i, auto& t) {  // copy t's storage to base + i n, view it there
          float* p = base + i * n;
          std::copy(t.storage().begin(), t.storage().end(), p);
          return p;
        };
        const extents<bthk> ek{s.B, s.T, s.H, Kd};
        gated_inputs<float> in = d.inputs();
        in.q = make_view<bthk>(static_cast<const float*>(place(0, d.q)), ek);
        in.k = make_view<bthk>(static_cast<const float*>(place(1, d.k)), ek);
        in.gk = make_view<bthk>(static_cast<const float*>(place(2, d.gk)), ek);
        in.v = make_view<bthv>(static_cast<const float*>(place(3, d.v)), {s.B, s.T, s.H, Kd});
        const auto o = make_view<bthv>(base + 4 * n, {s.B, s.T, s.H, Kd});
        outputs<float> ref(s.B, s.T, s.H, Kd, Kd, s.B), out(s.B, s.T, s.H, Kd, Kd, s.B);
        run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
        for (int threads : {1, 2}) {
          INFO(op_name(op) << " K=" << Kd << " offset " << off << " floats, threads " << threads);
          std::fill(base + 4 * n, base + 5 * n, std::nanf(""));
          const linear_options lo{.mode = linear_mode::recurrent, .run = {.executor = par_t{threads}}};
          if (op == gated_op::gla) {
            gla(gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .gk = in.gk, .initial_state = d.h0.cview(), .o = o,
                                .final_state = out.ht.view()},
                lo);
          } else if (op == gated_op::rwkv6) {
            rwkv6(rwkv6_args<float>{.r = in.q, .k = in.k, .v = in.v, .w = in.gk, .u = in.u,
                                    .initial_state = d.h0.cview(), .o = o, .final_state = out.ht.view()},
                  lo);
          } else {
            simple_gla(simple_gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .g = in.g,
                                              .initial_state = d.h0.cview(), .o = o, .final_state = out.ht.view()},
                       lo);
          }
          std::copy(base + 4 * n, base + 5 * n, out.o.storage().begin());
          SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
          SEQMIX_REQUIRE_CLOSE(out.ht.cview(), ref.ht.cview(), tolerance<float>(s.T));
        }
      }
    }
  }
}

TEST_CASE("gated linear ops: two threads == one thread", "[linear_attention][threads]") {
  rng r(24);
  const gated_shape s{2, 130, 3, 16, 16};
  gated_data<float> d(s, r);
  outputs<float> one(s.B, s.T, s.H, s.K, s.V, s.B), two(s.B, s.T, s.H, s.K, s.V, s.B);
  const auto in = d.inputs();
  for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
    INFO(mode_name(m));
    gla(gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .gk = in.gk, .initial_state = d.h0.cview(),
                        .o = one.o.view(), .final_state = one.ht.view()},
        {.mode = m, .run = {.executor = seq}});
    gla(gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .gk = in.gk, .initial_state = d.h0.cview(),
                        .o = two.o.view(), .final_state = two.ht.view()},
        {.mode = m, .run = {.executor = par_t{2}}});
    REQUIRE(one.o.storage() == two.o.storage());
    REQUIRE(one.ht.storage() == two.ht.storage());
  }
}

TEST_CASE("gated linear ops: task grid (heads per task, items_per_task)", "[linear_attention][threads]") {
  // three equal sequences on two threads (6 tasks) == one thread, bit for bit
  rng r(28);
  const gated_shape s{3, 200, 4, 64, 64};
  gated_data<float> d(s, r);
  outputs<float> one(s.B, s.T, s.H, s.K, s.V, s.B), two(s.B, s.T, s.H, s.K, s.V, s.B);
  const auto in = d.inputs();
  for (auto [ex, out] : {std::pair{any_executor(seq), &one}, std::pair{any_executor(par_t{2}), &two}}) {
    rwkv6(rwkv6_args<float>{.r = in.q, .k = in.k, .v = in.v, .w = in.gk, .u = in.u, .initial_state = d.h0.cview(),
                            .o = out->o.view(), .final_state = out->ht.view()},
          {.mode = linear_mode::recurrent, .run = {.executor = ex}});
  }
  REQUIRE(one.o.storage() == two.o.storage());
  REQUIRE(one.ht.storage() == two.ht.storage());
}

TEST_CASE("gated linear ops: NaN in one head stays in that head", "[linear_attention][nan]") {
  rng r(25);
  for (gated_op op : {gated_op::gla, gated_op::rwkv6, gated_op::simple_gla}) {
    const gated_shape s{2, 80, 2, 8, 8};
    gated_data<float> d(s, r);
    d.for_op(op, r);
    d.v.view()(1, 37, 0, 3) = std::nanf("");
    outputs<float> ref(s.B, s.T, s.H, s.K, s.V, s.B), out(s.B, s.T, s.H, s.K, s.V, s.B);
    run_gated<reference>(op, d.inputs(), ref.o.view(), d.h0.cview(), ref.ht.view(), {}, linear_mode::auto_);
    for (linear_mode m : {linear_mode::chunk, linear_mode::recurrent}) {
      run_gated<simd<>>(op, d.inputs(), out.o.view(), d.h0.cview(), out.ht.view(), {}, m);
      INFO(op_name(op) << " " << mode_name(m));
      SEQMIX_REQUIRE_CLOSE(out.o.cview(), ref.o.cview(), tolerance<float>(s.T));
      REQUIRE(std::isfinite(out.o.view()(1, 36, 0, 3)));
      REQUIRE(std::isfinite(out.o.view()(1, 79, 1, 3)));
      REQUIRE(std::isfinite(out.o.view()(0, 79, 0, 3)));
    }
  }
}

TEST_CASE("gated linear ops: bad shapes and options throw shape_error naming the tensor", "[linear_attention][errors]") {
  rng r(26);
  const gated_shape s{1, 8, 2, 4, 4};
  gated_data<float> d(s, r);
  tensor<float, bthv> o({1, 8, 2, 4});
  tensor<float, bthk> gk_bad({1, 7, 2, 4});
  gk_bad.uniform(r);
  const auto in = d.inputs();
  REQUIRE_THROWS_MATCHES(gla(gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .gk = gk_bad.cview(), .o = o.view()}), shape_error, message_contains("seqmix::gla: gk.extent(T) = 7, expected 8 (from q [B,T,H,K])"));
  REQUIRE_THROWS_AS(gla(gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .gk = gk_bad.cview(), .o = o.view()}),
                    shape_error);
  REQUIRE_THROWS_MATCHES(simple_gla(simple_gla_args<float>{.q = in.q, .k = in.k, .v = in.v, .o = o.view()}), shape_error, message_contains("exactly one of g [B,T,H] and g_gamma [H]"));
  REQUIRE_THROWS_MATCHES(retention(retention_args<float>{.q = in.q, .k = in.k, .v = in.v, .o = o.view()},
                                {.chunk_size = 48}), shape_error, message_contains("option chunk_size = 48, expected one of {16, 32, 64, 128}"));
  tensor<float, nhkv> h_bad({1, 2, 4, 5});
  REQUIRE_THROWS_MATCHES(linear_attn(linear_attn_args<float>{.q = in.q, .k = in.k, .v = in.v,
                                                          .initial_state = h_bad.cview(), .o = o.view()}), shape_error, message_contains("initial_state.extent(V) = 5, expected 4"));
  const std::vector<std::int64_t> cu = {0, 5, 4, 8};
  REQUIRE_THROWS_MATCHES(linear_attn(linear_attn_args<float>{.q = in.q, .k = in.k, .v = in.v,
                                                          .cu_seqlens = cu_seqlens_view(cu.data(), {4}), .o = o.view()}), shape_error, message_contains("cu_seqlens[2] = 4 < cu_seqlens[1] = 5"));
  tensor<float, nhkv> cache({1, 2, 4, 4});
  const std::vector<std::int64_t> idx = {3};
  REQUIRE_THROWS_MATCHES(rwkv6_decode(rwkv6_args<float>{.r = in.q.slice<axis::T>(0, 1), .k = in.k.slice<axis::T>(0, 1),
                                                     .v = in.v.slice<axis::T>(0, 1), .w = in.gk.slice<axis::T>(0, 1),
                                                     .u = in.u, .o = o.view().slice<axis::T>(0, 1)},
                                   cache.view(), state_indices_view(idx.data(), {1})), shape_error, message_contains("state_indices[0] = 3"));
  tensor<float, hk> u_bad({3, 4});
  REQUIRE_THROWS_MATCHES(rwkv6(rwkv6_args<float>{.r = in.q, .k = in.k, .v = in.v, .w = in.gk,
                                              .u = u_bad.cview(), .o = o.view()}), shape_error, message_contains("u.extent(H) = 3, expected 2 (from r [B,T,H,K])"));
}
