// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_index_types.cpp: cu_seqlens and seq_idx given as int32 (SPEC §2.12) give the int64
// result and the float64 reference's.
#include <cstdint>
#include <vector>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

TEST_CASE("ssd: int32 cu_seqlens and seq_idx == int64 == reference", "[ssm][ssd][varlen]") {
  const std::vector<std::int64_t> cu64{0, 21, 22, 70};
  const std::vector<std::int32_t> cu32(cu64.begin(), cu64.end());
  const index_t total = 70, ns = 3;
  ssd_problem<float> pr(1, total, 4, 8, 2, 16, {}, 71);
  tensor<float, bhpn> h0s({ns, 4, 8, 16});
  rng r(72);
  h0s.normal(r);
  std::vector<std::int32_t> idx32(static_cast<std::size_t>(total));
  for (index_t s = 0; s < ns; ++s)
    for (auto t = cu64[static_cast<std::size_t>(s)]; t < cu64[static_cast<std::size_t>(s) + 1]; ++t)
      idx32[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(s);
  const std::vector<std::int64_t> idx64(idx32.begin(), idx32.end());
  for (ssd_mode m : {ssd_mode::chunk, ssd_mode::recurrent}) {
    INFO((m == ssd_mode::chunk ? "chunk" : "recurrent"));
    tensor<float, bthp> o32({1, total, 4, 8}), o64({1, total, 4, 8}), oref({1, total, 4, 8});
    tensor<float, bhpn> f32({ns, 4, 8, 16}), f64({ns, 4, 8, 16}), fref({ns, 4, 8, 16});
    auto a = pr.args(o32.view(), f32.view());
    a.initial_states = h0s.cview();
    a.cu_seqlens = const_view<std::int32_t, ssm_layouts::i>(cu32.data(), {ns + 1});
    ssd(a, pr.opts(m, 16));
    a.out = o64.view();
    a.final_states = f64.view();
    a.cu_seqlens = const_view<std::int64_t, ssm_layouts::i>(cu64.data(), {ns + 1});
    ssd(a, pr.opts(m, 16));
    a.out = oref.view();
    a.final_states = fref.view();
    ssd(a, pr.opts(m, 16), reference{});
    REQUIRE(o32.storage() == o64.storage());
    REQUIRE(f32.storage() == f64.storage());
    SEQMIX_REQUIRE_CLOSE(o32.cview(), oref.cview(), tolerance<float>(total));
    SEQMIX_REQUIRE_CLOSE(f32.cview(), fref.cview(), tolerance<float>(total));
    // seq_idx in one row: same boundaries; int32 == int64 == reference on out
    tensor<float, bhpn> g({1, 4, 8, 16}), gref({1, 4, 8, 16});
    auto b = pr.args(o32.view(), g.view());
    b.initial_states = h0s.cview().slice<axis::B>(0, 1);
    b.seq_idx = const_view<std::int32_t, bt>(idx32.data(), {1, total});
    ssd(b, pr.opts(m, 16));
    b.out = oref.view();
    b.final_states = gref.view();
    b.seq_idx = const_view<std::int64_t, bt>(idx64.data(), {1, total});
    ssd(b, pr.opts(m, 16), reference{});
    SEQMIX_REQUIRE_CLOSE(o32.cview(), oref.cview(), tolerance<float>(total));
    SEQMIX_REQUIRE_CLOSE(g.cview(), gref.cview(), tolerance<float>(total));
  }
}
