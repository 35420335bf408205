// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_ssd_blocks.cpp: the chunked SSD kernel's block machinery at the benchmark's
// layout: 16-head tasks staged token-major, rows read and written in place, the next block's prefetch
// cursor, S updated 16 columns at a time (P = 40: a partial panel); and a NaN state whose decay
// underflows to 0 (multiplied by 0 explicitly, so it stays NaN as in the reference).
#include <cmath>
#include <limits>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

TEST_CASE("ssd: 16-head blocks, rows in place, partial panels, 1 and 2 workers == reference", "[ssm][ssd]") {
  struct shape {
    index_t L, H, P, N;
  };
  int k = 0;
  for (const shape sh : {shape{150, 32, 64, 32}, shape{61, 17, 40, 24}}) {
    ssd_flags f;
    f.D_hp = k == 1;
    f.init = k == 0;
    ssd_problem<float> pr(1, sh.L, sh.H, sh.P, 1, sh.N, f, 500 + static_cast<std::uint64_t>(k++));
    tensor<float, bthp> ref({1, sh.L, sh.H, sh.P});
    tensor<float, bhpn> fref({1, sh.H, sh.P, sh.N});
    ssd(pr.args(ref.view(), fref.view()), pr.opts(ssd_mode::recurrent), reference{});
    for (int threads : {1, 2}) {
      tensor<float, bthp> out({1, sh.L, sh.H, sh.P});
      tensor<float, bhpn> fin({1, sh.H, sh.P, sh.N});
      out.poison();
      fin.poison();
      auto o = pr.opts(ssd_mode::chunk, 256);
      if (threads == 1) o.run.executor = seq;
      else o.run.executor = par_t{threads};
      ssd(pr.args(out.view(), fin.view()), o);
      INFO("L " << sh.L << " H " << sh.H << " P " << sh.P << " N " << sh.N << " threads " << threads);
      SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(sh.L));
      SEQMIX_REQUIRE_CLOSE(fin.cview(), fref.cview(), tolerance<float>(sh.L));
    }
  }
}

TEST_CASE("ssd: a NaN state whose decay underflows stays NaN (chunked == reference)", "[ssm][ssd][nan]") {
  // x is NaN at token t0 of head h0, channel p0; from t1 on head h0's dt makes every block's decay
  // underflow to 0 in float: the state row p0 is 0 * NaN = NaN, so out(t, h0, p0) is NaN for every t >= t0
  // in the reference too; the other heads and channels stay finite and close.
  const index_t L = 120, H = 4, P = 8, N = 16, t0 = 30, t1 = 50, h0 = 2, p0 = 5;
  ssd_flags f;
  f.softplus = false;
  f.bias = false;
  ssd_problem<float> pr(1, L, H, P, 1, N, f, 77);
  pr.x.view()(0, t0, h0, p0) = std::numeric_limits<float>::quiet_NaN();
  for (index_t t = t1; t < L; ++t) pr.dt.view()(0, t, h0) = 60.0f;  // dt A <= -12 per token
  tensor<float, bthp> ref({1, L, H, P});
  tensor<float, bhpn> fref({1, H, P, N});
  ssd(pr.args(ref.view(), fref.view()), pr.opts(ssd_mode::recurrent), reference{});
  for (index_t chunk : {16, 256}) {
    tensor<float, bthp> out({1, L, H, P});
    tensor<float, bhpn> fin({1, H, P, N});
    ssd(pr.args(out.view(), fin.view()), pr.opts(ssd_mode::chunk, chunk));
    INFO("chunk " << chunk);
    for (index_t t = 0; t < L; ++t)
      for (index_t h = 0; h < H; ++h)
        for (index_t p = 0; p < P; ++p) {
          INFO("t " << t << " h " << h << " p " << p);
          REQUIRE(std::isnan(out.view()(0, t, h, p)) == (h == h0 && p == p0 && t >= t0));
          REQUIRE(std::isnan(ref.view()(0, t, h, p)) == (h == h0 && p == p0 && t >= t0));
        }
    for (index_t h = 0; h < H; ++h)
      if (h != h0)
        SEQMIX_REQUIRE_CLOSE(out.cview().slice<axis::H>(h, h + 1), ref.cview().slice<axis::H>(h, h + 1),
                             tolerance<float>(L));
    for (index_t p = 0; p < P; ++p)
      if (p != p0)
        SEQMIX_REQUIRE_CLOSE(fin.cview().slice<axis::P>(p, p + 1), fref.cview().slice<axis::P>(p, p + 1),
                             tolerance<float>(L));
  }
}
