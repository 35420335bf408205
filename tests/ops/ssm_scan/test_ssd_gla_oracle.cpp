// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_ssd_gla_oracle.cpp: SPEC §3.2.2's equivalence as an oracle: ssd == simple_gla
// with q = C, k = B, v = dt' x, g = dt' A, scale = 1, state transposed (h = S^T).
#include <cmath>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

TEST_CASE("ssd == simple_gla mapping (G = 1, no D, no z)", "[ssm][ssd][oracle]") {
  const index_t Bn = 2, L = 150, H = 3, P = 8, N = 16;
  ssd_flags f;
  f.D = false;
  f.z = false;
  ssd_problem<float> pr(Bn, L, H, P, 1, N, f, 71);
  tensor<float, bthp> out({Bn, L, H, P});
  tensor<float, bhpn> fin({Bn, H, P, N});
  ssd(pr.args(out.view(), fin.view()), pr.opts(ssd_mode::chunk, 64));

  // simple_gla inputs: v = dt' x, g = dt' A (dt' = softplus(dt + bias)), q = C, k = B broadcast over heads
  tensor<float, bthv> v({Bn, L, H, P});
  tensor<float, bth> g({Bn, L, H});
  for (index_t b = 0; b < Bn; ++b)
    for (index_t t = 0; t < L; ++t)
      for (index_t h = 0; h < H; ++h) {
        const double dt = std::log1p(std::exp(static_cast<double>(pr.dt.cview()(b, t, h)) + pr.bias.cview()(h)));
        g.view()(b, t, h) = static_cast<float>(dt * pr.A.cview()(h));
        for (index_t p = 0; p < P; ++p) v.view()(b, t, h, p) = static_cast<float>(dt * pr.x.cview()(b, t, h, p));
      }
  auto bc = [&](const tensor<float, btgn>& m) {
    auto c = m.cview();
    return const_view<float, bthk>(c.data(), {Bn, L, H, N}, {c.stride<axis::B>(), c.stride<axis::T>(), 0, c.stride<axis::N>()});
  };
  auto h0 = pr.h0.cview();  // [B,H,P,N] seen as [N,H,K,V] = (b, h, n, p)
  const_view<float, nhkv> s0(h0.data(), {Bn, H, N, P}, {h0.stride<axis::B>(), h0.stride<axis::H>(), h0.stride<axis::N>(), h0.stride<axis::P>()});
  tensor<float, bthv> o({Bn, L, H, P});
  tensor<float, nhkv> st({Bn, H, N, P});
  simple_gla_args<float> a{.q = bc(pr.Cm), .k = bc(pr.Bm), .v = v.cview(), .g = g.cview(), .g_gamma = {},
                           .initial_state = s0, .cu_seqlens = {}, .o = o.view(), .final_state = st.view()};
  simple_gla_options so{};
  so.scale = 1.0f;
  simple_gla(a, so);
  auto ov = out.cview();
  const const_view<float, bthv> out_v(ov.data(), {Bn, L, H, P}, {ov.stride<axis::B>(), ov.stride<axis::T>(), ov.stride<axis::H>(), ov.stride<axis::P>()});
  SEQMIX_REQUIRE_CLOSE(out_v, o.cview(), tolerance<float>(L));
  auto fv = fin.cview();
  const const_view<float, nhkv> fin_v(fv.data(), {Bn, H, N, P}, {fv.stride<axis::B>(), fv.stride<axis::H>(), fv.stride<axis::N>(), fv.stride<axis::P>()});
  SEQMIX_REQUIRE_CLOSE(fin_v, st.cview(), tolerance<float>(L));
}
