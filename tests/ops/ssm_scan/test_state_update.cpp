// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_state_update.cpp: selective_state_update (Mamba-2 and Mamba-1 shapes, slots)
// against the float64 reference; == ssd with L = 1; prefill then decode steps == a longer prefill.
#include <cmath>
#include <tuple>
#include <vector>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

namespace {

using hpn = ssm_layouts::hpn;

/// Mamba-2 decode arguments from one token t of an ssd problem (per-head tensors as stride-0 views).
template <class T>
selective_state_update_args<T> decode_args(const ssd_problem<T>& pr, index_t t, tensor_view<float, bhpn> state,
                                           tensor_view<T, bhp> out) {
  selective_state_update_args<T> a;
  const index_t H = pr.H, P = pr.P, N = pr.N;
  a.state = state;
  auto x = pr.x.cview().template at<axis::T>(t);  // [B,H,P]
  a.x = x;
  auto dt = pr.dt.cview().template at<axis::T>(t);  // [B,H]
  a.dt = const_view<T, bhp>(dt.data(), {pr.Bn, H, P}, {dt.template stride<axis::B>(), dt.template stride<axis::H>(), 0});
  a.A = const_view<T, hpn>(pr.A.cview().data(), {H, P, N}, {1, 0, 0});
  a.B = pr.Bm.cview().template at<axis::T>(t);  // [B,G,N]
  a.C = pr.Cm.cview().template at<axis::T>(t);
  if (pr.f.D) a.D = pr.f.D_hp ? pr.Dhp.cview() : per_head(pr.Dh, P);
  if (pr.f.z) a.z = pr.z.cview().template at<axis::T>(t);
  if (pr.f.bias) a.dt_bias = per_head(pr.bias, P);
  a.out = out;
  return a;
}

selective_state_update_options decode_opts(const ssd_flags& f) {
  return {.dt_softplus = f.softplus, .dt_min = f.dt_min, .dt_max = f.dt_max, .run = {}};
}

}  // namespace

TEST_CASE("selective_state_update: Mamba-2 shapes, simd == reference, with slots", "[ssm][state_update]") {
  for (index_t N : {16, 128, 13}) {
    for (int m = 0; m < 2; ++m) {
      ssd_flags f;
      f.z = m == 0;
      f.D_hp = m == 1;
      ssd_problem<float> pr(3, 1, 4, 12, 2, N, f, 400 + static_cast<std::uint64_t>(N + m));
      tensor<float, bhpn> st({5, 4, 12, N});
      rng r(9);
      st.normal(r);
      auto st_ref = st;
      std::vector<ssm_index_t> idx{3, -1, 0};
      tensor<float, bhp> out({3, 4, 12}), ref({3, 4, 12});
      out.poison();
      auto a = decode_args(pr, 0, st.view(), out.view());
      a.state_batch_indices = const_view<ssm_index_t, ssm_layouts::b>(idx.data(), {3});
      selective_state_update(a, decode_opts(f));
      auto b = decode_args(pr, 0, st_ref.view(), ref.view());
      b.state_batch_indices = a.state_batch_indices;
      selective_state_update(b, decode_opts(f), reference{});
      INFO("N " << N << " m " << m);
      SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(1));
      SEQMIX_REQUIRE_CLOSE(st.cview(), st_ref.cview(), tolerance<float>(1));
      for (index_t h = 0; h < 4; ++h)
        for (index_t p = 0; p < 12; ++p) REQUIRE(out.cview()(1, h, p) == 0.0f);
    }
  }
}

TEST_CASE("selective_state_update: equals ssd with L = 1", "[ssm][state_update]") {
  ssd_problem<float> pr(2, 1, 4, 8, 2, 16, {}, 41);
  tensor<float, bthp> out_ssd({2, 1, 4, 8});
  tensor<float, bhpn> fin({2, 4, 8, 16});
  ssd(pr.args(out_ssd.view(), fin.view()), pr.opts(ssd_mode::recurrent), reference{});
  tensor<float, bhpn> st = pr.h0;
  tensor<float, bhp> out({2, 4, 8});
  selective_state_update(decode_args(pr, 0, st.view(), out.view()), decode_opts(pr.f));
  SEQMIX_REQUIRE_CLOSE(out.cview(), out_ssd.cview().at<axis::T>(0), tolerance<float>(1));
  SEQMIX_REQUIRE_CLOSE(st.cview(), fin.cview(), tolerance<float>(1));
}

TEST_CASE("ssd prefill then selective_state_update decode steps == one longer prefill", "[ssm][state_update][state]") {
  const index_t L = 70, steps = 5;
  ssd_problem<float> pr(2, L, 4, 8, 1, 16, {}, 43);
  tensor<float, bthp> whole({2, L, 4, 8}), part({2, L, 4, 8});
  tensor<float, bhpn> fw({2, 4, 8, 16}), st({2, 4, 8, 16});
  ssd(pr.args(whole.view(), fw.view()), pr.opts(ssd_mode::recurrent), reference{});
  auto a = pr.args(part.view().slice<axis::T>(0, L - steps), st.view());
  a.x = a.x.slice<axis::T>(0, L - steps);
  a.dt = a.dt.slice<axis::T>(0, L - steps);
  a.B = a.B.slice<axis::T>(0, L - steps);
  a.C = a.C.slice<axis::T>(0, L - steps);
  a.z = a.z.slice<axis::T>(0, L - steps);
  ssd(a, pr.opts(ssd_mode::chunk, 32));
  for (index_t t = L - steps; t < L; ++t)
    selective_state_update(decode_args(pr, t, st.view(), part.view().at<axis::T>(t)), decode_opts(pr.f));
  SEQMIX_REQUIRE_CLOSE(part.cview(), whole.cview(), tolerance<float>(L));
  SEQMIX_REQUIRE_CLOSE(st.cview(), fw.cview(), tolerance<float>(L));
}

TEST_CASE("Mamba-1: selective_scan prefill then selective_state_update (H = 1, P = D) == longer scan",
          "[ssm][state_update][state]") {
  const index_t L = 40, steps = 3;
  // 1100: the decode splits P into blocks of 512, 512 and 76; N = 12: a part batch of A read in place; A
  // transposed in memory (N-stride D): staged rows
  for (const auto& cfg : {std::tuple<index_t, index_t, bool>{20, 16, false}, {1100, 16, false}, {20, 12, false},
                          {1100, 12, true}, {20, 16, true}}) {
    const index_t D = std::get<0>(cfg), N = std::get<1>(cfg);  // (not a structured binding: lambdas use D)
    const bool a_t = std::get<2>(cfg);
    INFO("D " << D << " N " << N << " A transposed " << a_t);
    scan_problem<float> pr(1, D, L, N, 1, {}, 47);
    std::vector<float> At(static_cast<std::size_t>(D * N));
    for (index_t d = 0; d < D; ++d)
      for (index_t n = 0; n < N; ++n) At[static_cast<std::size_t>(n * D + d)] = pr.A.cview()(d, n);
    tensor<float, bdl> whole({1, D, L}), part({1, D, L});
    tensor<float, bdn> lw({1, D, N}), st({1, D, N});
    selective_scan(pr.args(whole.view(), lw.view()), pr.opts(), reference{});
    auto a = pr.args(part.view().slice<axis::L>(0, L - steps), st.view());
    a.u = a.u.slice<axis::L>(0, L - steps);
    a.delta = a.delta.slice<axis::L>(0, L - steps);
    a.z = a.z.slice<axis::L>(0, L - steps);
    a.B = a.B.slice<axis::L>(0, L - steps);
    a.C = a.C.slice<axis::L>(0, L - steps);
    selective_scan(a, pr.opts());
    for (index_t t = L - steps; t < L; ++t) {
      // state [B,D,N] seen as [B,1,D,N]; x, dt, z [B,D,L] at t as [B,1,D]; A [D,N] as [1,D,N]; B, C [B,1,N]
      auto sv = st.view();
      selective_state_update_args<float> u;
      u.state = tensor_view<float, bhpn>(sv.data(), {1, 1, D, N}, {D * N, D * N, N, 1});
      auto col = [&](const tensor<float, bdl>& v) {
        auto c = v.cview();
        return const_view<float, bhp>(c.ptr(0, 0, t), {1, 1, D}, {c.stride<axis::B>(), 0, c.stride<axis::D>()});
      };
      u.x = col(pr.u);
      u.dt = col(pr.delta);
      u.z = col(pr.z);
      u.A = a_t ? const_view<float, hpn>(At.data(), {1, D, N}, {0, 1, D})
                : const_view<float, hpn>(pr.A.cview().data(), {1, D, N}, {0, N, 1});
      auto bm = pr.Bm.cview(), cm = pr.Cm.cview();
      u.B = const_view<float, bgn>(bm.ptr(0, 0, 0, t), {1, 1, N}, {bm.stride<axis::B>(), bm.stride<axis::G>(), bm.stride<axis::N>()});
      u.C = const_view<float, bgn>(cm.ptr(0, 0, 0, t), {1, 1, N}, {cm.stride<axis::B>(), cm.stride<axis::G>(), cm.stride<axis::N>()});
      u.D = const_view<float, hp>(pr.Dv.cview().data(), {1, D}, {0, 1});
      u.dt_bias = const_view<float, hp>(pr.bias.cview().data(), {1, D}, {0, 1});
      auto pv = part.view();
      u.out = tensor_view<float, bhp>(pv.ptr(0, 0, t), {1, 1, D}, {pv.stride<axis::B>(), 0, pv.stride<axis::D>()});
      run_context rc;
      if (D > 1024) rc.executor = par_t{2};
      selective_state_update(u, {.dt_softplus = true, .run = rc});
    }
    SEQMIX_REQUIRE_CLOSE(part.cview(), whole.cview(), tolerance<float>(L));
    SEQMIX_REQUIRE_CLOSE(st.cview(), lw.cview(), tolerance<float>(L));
  }
}

TEST_CASE("selective_state_update: bf16 inputs and shape errors", "[ssm][state_update][errors]") {
  ssd_problem<bf16> pb(2, 1, 4, 8, 1, 16, {}, 53);
  tensor<float, bhpn> st = pb.h0, st_ref = pb.h0;
  tensor<bf16, bhp> out({2, 4, 8}), ref({2, 4, 8});
  selective_state_update(decode_args(pb, 0, st.view(), out.view()), decode_opts(pb.f));
  selective_state_update(decode_args(pb, 0, st_ref.view(), ref.view()), decode_opts(pb.f), reference{});
  SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<bf16>(1));
  SEQMIX_REQUIRE_CLOSE(st.cview(), st_ref.cview(), tolerance<bf16>(1));

  ssd_problem<float> pr(2, 1, 4, 8, 1, 16, {}, 59);
  tensor<float, bhpn> s({2, 4, 8, 16});
  tensor<float, bhp> o({2, 4, 8});
  auto a = decode_args(pr, 0, s.view(), o.view());
  auto bad = a;
  bad.state = s.view().slice<axis::N>(0, 15);
  REQUIRE_THROWS_MATCHES(selective_state_update(bad), shape_error,
                         message_is("seqmix::selective_state_update: state.extent(N) = 15, expected 16 (from B [B,G,N])"));
  std::vector<ssm_index_t> idx{0, 2};
  bad = a;
  bad.state_batch_indices = const_view<ssm_index_t, ssm_layouts::b>(idx.data(), {2});
  REQUIRE_THROWS_MATCHES(selective_state_update(bad), shape_error,
                         message_contains("state_batch_indices[1] = 2, expected < 2"));
  const std::vector<std::int32_t> dup{1, 1};  // int32 slots are accepted too; two rows on one slot are not
  bad = a;
  bad.state_batch_indices = const_view<std::int32_t, ssm_layouts::b>(dup.data(), {2});
  REQUIRE_THROWS_MATCHES(selective_state_update(bad), shape_error,
                         message_contains("state_batch_indices[0] = state_batch_indices[1] = 1, expected distinct slots"));
  bad = a;
  bad.state = s.view().slice<axis::B>(0, 1);
  REQUIRE_THROWS_MATCHES(selective_state_update(bad), shape_error, message_contains("state.extent(B) = 1, expected 2"));
}
