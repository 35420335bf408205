// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_selective_scan.cpp: Mamba-1 selective scan, simd vs float64 reference; state
// carry, varlen, fixed B/C, strides, dtypes, underflow, NaN rows, shape errors; the row path's tails,
// clamped-tile selection and per-token math kernels.
#include <algorithm>
#include <cmath>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

namespace {

template <class T>
void run_both(const scan_problem<T>& pr, double tol) {
  tensor<T, bdl> out({pr.Bn, pr.Dn, pr.L}), ref({pr.Bn, pr.Dn, pr.L});
  tensor<float, bdn> last({pr.Bn, pr.Dn, pr.N}), last_ref({pr.Bn, pr.Dn, pr.N});
  out.poison();
  last.poison();
  selective_scan(pr.args(out.view(), last.view()), pr.opts(), simd<>{});
  selective_scan(pr.args(ref.view(), last_ref.view()), pr.opts(), reference{});
  SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tol);
  SEQMIX_REQUIRE_CLOSE(last.cview(), last_ref.cview(), tol);
}

}  // namespace

TEST_CASE("selective_scan: simd matches float64 reference over lengths, N, G and options", "[ssm][selective_scan]") {
  int k = 0;
  for (index_t L : {1, 3, 64, 255, 256, 257, 1000}) {
    for (index_t N : {16, 128}) {
      for (index_t G : {1, 2}) {
        if (L == 1000 && N == 128 && G == 2) continue;  // keep the suite fast
        scan_flags f;
        f.D = k % 2 == 0;
        f.z = k % 3 != 1;
        f.bias = k % 4 < 2;
        f.softplus = k % 5 != 2;
        f.init = k % 2 == 1;
        ++k;
        const index_t D = G == 2 ? 24 : 19;  // 24/2: groups straddle an 8-channel block; 19: channel tail
        INFO("L " << L << " N " << N << " G " << G << " D " << f.D << " z " << f.z << " bias " << f.bias
                  << " softplus " << f.softplus << " init " << f.init);
        scan_problem<float> pr(L > 256 ? 1 : 2, D, L, N, G, f, 100 + static_cast<std::uint64_t>(k));
        run_both(pr, tolerance<float>(L));
      }
    }
  }
}

TEST_CASE("selective_scan: fixed B and C [D,N]", "[ssm][selective_scan]") {
  for (int m = 0; m < 3; ++m) {
    scan_flags f;
    f.fixed_B = m != 1;
    f.fixed_C = m != 0;
    scan_problem<float> pr(2, 21, 70, 16, 1, f, 7 + static_cast<std::uint64_t>(m));
    run_both(pr, tolerance<float>(70));
  }
}

TEST_CASE("selective_scan: double and bf16 storage", "[ssm][selective_scan]") {
  scan_problem<double> pd(1, 16, 100, 16, 2, {}, 3);
  run_both(pd, tolerance<double>(100));
  scan_problem<bf16> pb(1, 16, 100, 16, 1, {}, 4);
  run_both(pb, tolerance<bf16>(100));
  scan_problem<f16> ph(1, 9, 40, 16, 1, {}, 5);
  run_both(ph, tolerance<f16>(40));
}

TEST_CASE("selective_scan: strided (channel-last, padded) inputs == contiguous", "[ssm][selective_scan]") {
  scan_problem<float> pr(2, 16, 77, 16, 2, {}, 11);
  tensor<float, bdl> out({2, 16, 77});
  tensor<float, bdn> last({2, 16, 16});
  selective_scan(pr.args(out.view(), last.view()), pr.opts());
  // same values in [B,L,D] storage and padded storage
  auto u2 = tensor<float, bdl>::permuted<layout<axis::B, axis::L, axis::D>>({2, 16, 77});
  auto d2 = pr.delta.padded_copy(3);
  auto z2 = pr.z.padded_copy(1);
  {
    auto src = pr.u.cview();
    auto dst = u2.view();
    for (index_t b = 0; b < 2; ++b)
      for (index_t d = 0; d < 16; ++d)
        for (index_t t = 0; t < 77; ++t) dst(b, d, t) = src(b, d, t);
  }
  auto out2 = tensor<float, bdl>::padded({2, 16, 77}, 2);
  tensor<float, bdn> last2({2, 16, 16});
  auto a = pr.args(out2.view(), last2.view());
  a.u = u2.cview();
  a.delta = d2.cview();
  a.z = z2.cview();
  selective_scan(a, pr.opts());
  SEQMIX_REQUIRE_CLOSE(out2.cview(), out.cview(), 1e-6);
  SEQMIX_REQUIRE_CLOSE(last2.cview(), last.cview(), 1e-6);
}

TEST_CASE("selective_scan: two halves carrying state == one pass", "[ssm][selective_scan][state]") {
  for (index_t L : {64, 257}) {
    scan_problem<float> pr(2, 24, L, 16, 2, {}, 21);
    tensor<float, bdl> whole({2, 24, L}), split({2, 24, L});
    tensor<float, bdn> last_w({2, 24, 16}), mid({2, 24, 16}), last_s({2, 24, 16});
    selective_scan(pr.args(whole.view(), last_w.view()), pr.opts(), reference{});
    const index_t h = L / 2 + 1;
    auto a1 = pr.args(split.view().slice<axis::L>(0, h), mid.view());
    a1.u = a1.u.slice<axis::L>(0, h);
    a1.delta = a1.delta.slice<axis::L>(0, h);
    a1.z = a1.z.slice<axis::L>(0, h);
    a1.B = a1.B.slice<axis::L>(0, h);
    a1.C = a1.C.slice<axis::L>(0, h);
    selective_scan(a1, pr.opts());
    auto a2 = pr.args(split.view().slice<axis::L>(h, L), last_s.view());
    a2.u = a2.u.slice<axis::L>(h, L);
    a2.delta = a2.delta.slice<axis::L>(h, L);
    a2.z = a2.z.slice<axis::L>(h, L);
    a2.B = a2.B.slice<axis::L>(h, L);
    a2.C = a2.C.slice<axis::L>(h, L);
    a2.initial_state = mid.cview();
    selective_scan(a2, pr.opts());
    SEQMIX_REQUIRE_CLOSE(split.cview(), whole.cview(), tolerance<float>(L));
    SEQMIX_REQUIRE_CLOSE(last_s.cview(), last_w.cview(), tolerance<float>(L));
  }
}

TEST_CASE("selective_scan: decode steps (L = 1) after a prefill == one longer prefill", "[ssm][selective_scan][state]") {
  const index_t L = 40, steps = 4;
  scan_problem<float> pr(1, 16, L, 16, 1, {}, 31);
  tensor<float, bdl> whole({1, 16, L}), part({1, 16, L});
  tensor<float, bdn> lw({1, 16, 16}), st({1, 16, 16});
  selective_scan(pr.args(whole.view(), lw.view()), pr.opts(), reference{});
  auto sub = [&](index_t t0, index_t t1, tensor_view<float, bdn> last, bool first) {
    auto a = pr.args(part.view().slice<axis::L>(t0, t1), last);
    a.u = a.u.slice<axis::L>(t0, t1);
    a.delta = a.delta.slice<axis::L>(t0, t1);
    a.z = a.z.slice<axis::L>(t0, t1);
    a.B = a.B.slice<axis::L>(t0, t1);
    a.C = a.C.slice<axis::L>(t0, t1);
    if (!first) a.initial_state = st.cview();
    return a;
  };
  tensor<float, bdn> tmp({1, 16, 16});
  selective_scan(sub(0, L - steps, st.view(), true), pr.opts());
  for (index_t t = L - steps; t < L; ++t) {
    selective_scan(sub(t, t + 1, tmp.view(), false), pr.opts());
    st = tmp;
  }
  SEQMIX_REQUIRE_CLOSE(part.cview(), whole.cview(), tolerance<float>(L));
  SEQMIX_REQUIRE_CLOSE(st.cview(), lw.cview(), tolerance<float>(L));
}

TEST_CASE("selective_scan: cu_seqlens == separate calls", "[ssm][selective_scan][varlen]") {
  const std::vector<index_t> lens{5, 0, 70, 1, 33};
  const auto cu = cu_from_lengths(lens);
  const index_t total = cu.back(), ns = static_cast<index_t>(lens.size());
  scan_problem<float> pr(1, 12, total, 16, 2, {}, 41);
  tensor<float, bdn> h0s({ns, 12, 16});
  rng r(5);
  h0s.normal(r);
  tensor<float, bdl> out({1, 12, total}), sep({1, 12, total});
  tensor<float, bdn> last({ns, 12, 16}), last_sep({ns, 12, 16});
  out.poison();
  auto a = pr.args(out.view(), last.view());
  a.cu_seqlens = cu_view(cu);
  a.initial_state = h0s.cview();
  selective_scan(a, pr.opts());
  for (index_t s = 0; s < ns; ++s) {
    const index_t t0 = cu[static_cast<std::size_t>(s)], t1 = cu[static_cast<std::size_t>(s) + 1];
    auto b = pr.args(sep.view().slice<axis::L>(t0, t1), last_sep.view().slice<axis::B>(s, s + 1));
    b.u = b.u.slice<axis::L>(t0, t1);
    b.delta = b.delta.slice<axis::L>(t0, t1);
    b.z = b.z.slice<axis::L>(t0, t1);
    b.B = b.B.slice<axis::L>(t0, t1);
    b.C = b.C.slice<axis::L>(t0, t1);
    b.initial_state = h0s.cview().slice<axis::B>(s, s + 1);
    selective_scan(b, pr.opts(), reference{});
  }
  SEQMIX_REQUIRE_CLOSE(out.cview(), sep.cview(), tolerance<float>(total));
  SEQMIX_REQUIRE_CLOSE(last.cview(), last_sep.cview(), tolerance<float>(total));
}

TEST_CASE("selective_scan: exp(delta A) underflow stays exact", "[ssm][selective_scan]") {
  scan_flags f;
  f.softplus = false;
  f.bias = false;
  scan_problem<float> pr(1, 16, 50, 16, 1, f, 51);
  pr.delta.for_each([](float& v) { v = 40.0f + v; });  // delta*A down to -240..-4: exp underflows for many n
  run_both(pr, tolerance<float>(50));
}

TEST_CASE("selective_scan: NaN in one channel stays in that channel", "[ssm][selective_scan]") {
  scan_problem<float> pr(1, 16, 30, 16, 1, {}, 61);
  pr.u.view()(0, 5, 10) = std::nanf("");
  tensor<float, bdl> out({1, 16, 30});
  tensor<float, bdn> last({1, 16, 16});
  selective_scan(pr.args(out.view(), last.view()), pr.opts());
  for (index_t d = 0; d < 16; ++d)
    for (index_t t = 0; t < 30; ++t) {
      const bool expect_nan = d == 5 && t >= 10;
      REQUIRE(std::isnan(out.cview()(0, d, t)) == expect_nan);
    }
}

TEST_CASE("selective_scan: shape errors name the tensor and axis", "[ssm][selective_scan][errors]") {
  scan_problem<float> pr(2, 16, 8, 16, 2, {}, 71);
  tensor<float, bdl> out({2, 16, 8});
  tensor<float, bdn> last({2, 16, 16});
  auto a = pr.args(out.view(), last.view());
  auto bad = a;
  bad.delta = a.delta.slice<axis::L>(0, 7);
  REQUIRE_THROWS_AS(selective_scan(bad), shape_error);
  REQUIRE_THROWS_MATCHES(selective_scan(bad), shape_error, message_is("seqmix::selective_scan: delta.extent(L) = 7, expected 8 (from u [B,D,L])"));
  bad = a;
  bad.B_fixed = pr.Bf.cview();
  REQUIRE_THROWS_MATCHES(selective_scan(bad), shape_error, message_contains("exactly one of B [B,G,N,L] and B_fixed [D,N]"));
  bad = a;
  bad.last_state = last.view().slice<axis::N>(0, 15);
  REQUIRE_THROWS_MATCHES(selective_scan(bad), shape_error, message_contains("last_state.extent(N) = 15, expected 16"));
  tensor<float, bgnl> b3({2, 3, 16, 8});
  bad = a;
  bad.B = b3.cview();
  bad.C = b3.cview();
  REQUIRE_THROWS_MATCHES(selective_scan(bad), shape_error, message_contains("u.extent(D) = 16, expected a multiple of B.extent(G) = 3"));
  std::vector<ssm_index_t> cu{0, 3, 9};
  bad = a;
  bad.cu_seqlens = cu_view(cu);
  REQUIRE_THROWS_MATCHES(selective_scan(bad), shape_error, message_contains("u.extent(B) = 2, expected 1 (from cu_seqlens)"));
}

TEST_CASE("selective_scan: odd N, channel and time tails on the row path", "[ssm][selective_scan]") {
  // N odd: the last state runs alone; D = 13: a 5-channel block; L = 130: a 2-token last tile
  for (index_t N : {1, 17}) {
    for (index_t L : {1, 65, 130}) {
      INFO("N " << N << " L " << L);
      scan_problem<float> pr(1, 13, L, N, 1, {}, 81 + static_cast<std::uint64_t>(N + L));
      run_both(pr, tolerance<float>(L));
    }
  }
}

TEST_CASE("selective_scan: one out-of-range token sends only its tile to the clamped exp", "[ssm][selective_scan]") {
  scan_flags f;
  f.softplus = false;
  f.bias = false;
  scan_problem<float> pr(1, 16, 200, 16, 1, f, 91);
  for (index_t d = 0; d < 16; d += 3) pr.delta.view()(0, d, 70) = 60.0f;  // delta*A down to -360: tile 64..127
  run_both(pr, tolerance<float>(200));
}

TEST_CASE("selective_scan: softplus over its whole range (x > 20 passes through, very negative x)", "[ssm][selective_scan]") {
  scan_flags f;
  f.bias = false;
  scan_problem<float> pr(1, 16, 100, 16, 1, f, 93);
  rng r(7);
  pr.delta.uniform(r, -100.0, 30.0);  // dt from ~0 (x < -87) to 30 (x > 20; dt*A to -180: clamped tiles too)
  run_both(pr, tolerance<float>(100));
}

TEST_CASE("selective_scan: slightly positive A (growing states) on the unclamped path", "[ssm][selective_scan]") {
  scan_problem<float> pr(1, 16, 40, 16, 1, {}, 95);
  rng r(9);
  pr.A.uniform(r, -1.0, 0.05);
  run_both(pr, tolerance<float>(40));
}

TEST_CASE("selective_scan: NaN delta stays in its channel (clamped tile)", "[ssm][selective_scan]") {
  scan_problem<float> pr(1, 16, 100, 16, 1, {}, 97);
  pr.delta.view()(0, 3, 70) = std::nanf("");
  tensor<float, bdl> out({1, 16, 100});
  tensor<float, bdn> last({1, 16, 16});
  selective_scan(pr.args(out.view(), last.view()), pr.opts());
  for (index_t d = 0; d < 16; ++d)
    for (index_t t = 0; t < 100; ++t) REQUIRE(std::isnan(out.cview()(0, d, t)) == (d == 3 && t >= 70));
}

TEST_CASE("selective_scan: per-token softplus, silu and exp2 kernels against float64", "[ssm][selective_scan][math]") {
  using A = xsimd::default_arch;
  using Bt = seqmix::detail::ssm::fbatch<A>;
  constexpr int W = static_cast<int>(Bt::size);
  double worst_sp = 0, worst_si = 0, worst_e = 0;
  for (double x0 = -86.5; x0 < 40.0; x0 += W * 7.3e-4) {
    alignas(64) float in[W], sp[W], si[W], ex[W];
    for (int i = 0; i < W; ++i) in[i] = static_cast<float>(x0 + i * 7.3e-4);
    Bt a[1] = {Bt::load_aligned(in)}, b[1] = {Bt::load_aligned(in)};
    seqmix::detail::ssm::lockstep::softplus<A, 1>(a);
    seqmix::detail::ssm::lockstep::silu<A, 1>(b);
    a[0].store_aligned(sp);
    b[0].store_aligned(si);
    seqmix::detail::ssm::vexp2_unchecked<A>(Bt::load_aligned(in), Bt(1.5f)).store_aligned(ex);  // 2^(1.5 x)
    for (int i = 0; i < W; ++i) {
      const double x = in[i];
      const double rsp = x > 20 ? x : std::log1p(std::exp(x)), rsi = x / (1 + std::exp(-x));
      worst_sp = std::max(worst_sp, std::abs(sp[i] - rsp) / rsp);
      if (rsi != 0) worst_si = std::max(worst_si, std::abs(si[i] - rsi) / std::abs(rsi));
      const double xa = 1.5 * x;  // the product is not rounded before the exp2
      if (std::abs(xa) <= 125) worst_e = std::max(worst_e, std::abs(ex[i] - std::exp2(xa)) / std::exp2(xa));
    }
  }
  INFO("softplus " << worst_sp << " silu " << worst_si << " exp2 " << worst_e);
  REQUIRE(worst_sp < 4e-7);
  REQUIRE(worst_si < 4e-7);
  REQUIRE(worst_e < 2e-7);
  float nan_in[W];
  for (int i = 0; i < W; ++i) nan_in[i] = std::nanf("");
  Bt a[1] = {Bt::load_unaligned(nan_in)}, b[1] = {Bt::load_unaligned(nan_in)};
  seqmix::detail::ssm::lockstep::softplus<A, 1>(a);
  seqmix::detail::ssm::lockstep::silu<A, 1>(b);
  a[0].store_unaligned(nan_in);
  REQUIRE(std::isnan(nan_in[0]));
  b[0].store_unaligned(nan_in);
  REQUIRE(std::isnan(nan_in[0]));
}
