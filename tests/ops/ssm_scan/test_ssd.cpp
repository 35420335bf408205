// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/test_ssd.cpp: Mamba-2 SSD, chunked and recurrent simd forms vs the float64 reference;
// chunk == recurrent, state carry, seq_idx and cu_seqlens == separate calls, dt clamps, errors.
#include <cmath>
#include <limits>

#include "ssm_problem.hpp"

using namespace seqmix;
using namespace seqmix::testing;
using namespace seqmix::testing::ssm;

namespace {

template <class T>
void ssd_both(const ssd_problem<T>& pr, ssd_mode mode, index_t chunk, double tol) {
  tensor<T, bthp> out({pr.Bn, pr.L, pr.H, pr.P}), ref({pr.Bn, pr.L, pr.H, pr.P});
  tensor<float, bhpn> fin({pr.Bn, pr.H, pr.P, pr.N}), fin_ref({pr.Bn, pr.H, pr.P, pr.N});
  out.poison();
  fin.poison();
  ssd(pr.args(out.view(), fin.view()), pr.opts(mode, chunk), simd<>{});
  ssd(pr.args(ref.view(), fin_ref.view()), pr.opts(mode, chunk), reference{});
  SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tol);
  SEQMIX_REQUIRE_CLOSE(fin.cview(), fin_ref.cview(), tol);
}

template <class V>
V tslice(V v, index_t t0, index_t t1) {
  return v ? v.template slice<axis::T>(t0, t1) : v;
}

}  // namespace

TEST_CASE("ssd: chunked and recurrent simd match float64 reference", "[ssm][ssd]") {
  int k = 0;
  for (index_t L : {1, 3, 64, 255, 256, 257, 1000}) {
    for (index_t N : {16, 128}) {
      for (index_t G : {1, 2}) {
        if (L == 1000 && (N == 128 || G == 2)) continue;  // keep the suite fast
        ssd_flags f;
        f.D = k % 3 != 2;
        f.D_hp = k % 2 == 1;
        f.z = k % 4 < 2;
        f.bias = k % 5 != 1;
        f.softplus = k % 3 != 1;
        f.init = k % 2 == 0;
        ++k;
        const index_t H = 4, P = L > 256 ? 8 : 12;
        INFO("L " << L << " N " << N << " G " << G << " D " << f.D << " D_hp " << f.D_hp << " z " << f.z << " bias "
                  << f.bias << " softplus " << f.softplus << " init " << f.init);
        ssd_problem<float> pr(L > 64 ? 1 : 2, L, H, P, G, N, f, 200 + static_cast<std::uint64_t>(k));
        const index_t chunk = k % 2 ? 64 : 256;
        ssd_both(pr, ssd_mode::chunk, chunk, tolerance<float>(L));
        ssd_both(pr, ssd_mode::recurrent, chunk, tolerance<float>(L));
      }
    }
  }
}

TEST_CASE("ssd: chunk == recurrent at several chunk sizes, odd P and N", "[ssm][ssd]") {
  ssd_problem<float> pr(2, 150, 6, 5, 3, 7, {}, 9);
  tensor<float, bthp> rec({2, 150, 6, 5});
  tensor<float, bhpn> frec({2, 6, 5, 7});
  ssd(pr.args(rec.view(), frec.view()), pr.opts(ssd_mode::recurrent));
  for (index_t chunk : {1, 7, 16, 50, 256}) {
    tensor<float, bthp> out({2, 150, 6, 5});
    tensor<float, bhpn> fin({2, 6, 5, 7});
    ssd(pr.args(out.view(), fin.view()), pr.opts(ssd_mode::chunk, chunk));
    INFO("chunk " << chunk);
    SEQMIX_REQUIRE_CLOSE(out.cview(), rec.cview(), tolerance<float>(150));
    SEQMIX_REQUIRE_CLOSE(fin.cview(), frec.cview(), tolerance<float>(150));
  }
}

TEST_CASE("ssd: chunked head blocks, P = 64, odd P and N, block edges, 1 and 3 workers", "[ssm][ssd]") {
  // the chunked kernel passes the state every min(chunk, 48) tokens and splits a group's heads into blocks
  // (at most 16, one task per worker): H/G = 10 with 3 workers makes three head blocks, one partial (1
  // worker: one block; test_ssd_blocks.cpp has 16-head blocks); P = 64 pads the state rows, P = 12 and N = 20 / 7 leave GEMM tails, L = 47..97 puts block
  // edges on and next to the end
  struct shape {
    index_t Bn, L, H, P, G, N;
  };
  int k = 0;
  for (const shape sh : {shape{2, 97, 20, 64, 2, 20}, shape{1, 96, 9, 12, 1, 7}, shape{1, 47, 4, 64, 2, 128},
                         shape{2, 49, 3, 5, 1, 16}}) {
    ssd_flags f;
    f.D_hp = k % 2 == 0;
    f.init = k != 1;
    ssd_problem<float> pr(sh.Bn, sh.L, sh.H, sh.P, sh.G, sh.N, f, 40 + static_cast<std::uint64_t>(k++));
    tensor<float, bthp> ref({sh.Bn, sh.L, sh.H, sh.P});
    tensor<float, bhpn> fref({sh.Bn, sh.H, sh.P, sh.N});
    ssd(pr.args(ref.view(), fref.view()), pr.opts(ssd_mode::recurrent), reference{});
    for (index_t chunk : {256, 48, 49, 16}) {
      for (int threads : {1, 3}) {
        tensor<float, bthp> out({sh.Bn, sh.L, sh.H, sh.P});
        tensor<float, bhpn> fin({sh.Bn, sh.H, sh.P, sh.N});
        out.poison();
        fin.poison();
        auto o = pr.opts(ssd_mode::chunk, chunk);
        if (threads == 1) o.run.executor = seq;
        else o.run.executor = par_t{threads};
        ssd(pr.args(out.view(), fin.view()), o);
        INFO("L " << sh.L << " H " << sh.H << " P " << sh.P << " G " << sh.G << " N " << sh.N << " chunk " << chunk
                  << " threads " << threads);
        SEQMIX_REQUIRE_CLOSE(out.cview(), ref.cview(), tolerance<float>(sh.L));
        SEQMIX_REQUIRE_CLOSE(fin.cview(), fref.cview(), tolerance<float>(sh.L));
      }
    }
  }
}

TEST_CASE("ssd: auto mode (recurrent below 8 tokens per segment, chunked from 8) matches the reference", "[ssm][ssd]") {
  for (index_t L : {7, 8, 30}) {
    ssd_problem<float> pr(2, L, 4, 8, 2, 16, {}, 60 + static_cast<std::uint64_t>(L));
    ssd_both(pr, ssd_mode::auto_select, 256, tolerance<float>(L));
  }
}

TEST_CASE("ssd: dt_min / dt_max clamp after softplus; underflowing decays stay exact", "[ssm][ssd]") {
  ssd_flags f;
  f.dt_min = 0.05;
  f.dt_max = 0.5;
  ssd_problem<float> pr(1, 100, 4, 8, 1, 16, f, 13);
  ssd_both(pr, ssd_mode::chunk, 32, tolerance<float>(100));
  ssd_both(pr, ssd_mode::recurrent, 32, tolerance<float>(100));
  ssd_flags g;
  g.softplus = false;
  g.bias = false;
  ssd_problem<float> big(1, 100, 4, 8, 1, 16, g, 14);
  big.dt.for_each([](float& v) { v = 30.0f * (1.0f + v); });  // dt*A down to -250: exp underflows
  ssd_both(big, ssd_mode::chunk, 32, tolerance<float>(100));
  ssd_both(big, ssd_mode::recurrent, 32, tolerance<float>(100));
}

TEST_CASE("ssd: double, bf16 and f16 storage", "[ssm][ssd]") {
  ssd_problem<double> pd(1, 70, 4, 8, 2, 16, {}, 15);
  ssd_both(pd, ssd_mode::chunk, 32, tolerance<double>(70));
  ssd_problem<bf16> pb(1, 70, 4, 8, 1, 16, {}, 16);
  ssd_both(pb, ssd_mode::chunk, 32, tolerance<bf16>(70));
  ssd_both(pb, ssd_mode::recurrent, 32, tolerance<bf16>(70));
  ssd_problem<f16> ph(1, 30, 2, 8, 1, 16, {}, 17);
  ssd_both(ph, ssd_mode::chunk, 16, tolerance<f16>(30));
}

TEST_CASE("ssd: strided inputs ([B,H,T,P] storage, padded) == contiguous", "[ssm][ssd]") {
  ssd_problem<float> pr(2, 90, 4, 8, 2, 16, {}, 19);
  tensor<float, bthp> out({2, 90, 4, 8});
  tensor<float, bhpn> fin({2, 4, 8, 16});
  ssd(pr.args(out.view(), fin.view()), pr.opts(ssd_mode::chunk, 32));
  auto x2 = tensor<float, bthp>::permuted<layout<axis::B, axis::H, axis::T, axis::P>>({2, 90, 4, 8});
  {
    auto s = pr.x.cview();
    auto d = x2.view();
    for (index_t b = 0; b < 2; ++b)
      for (index_t t = 0; t < 90; ++t)
        for (index_t h = 0; h < 4; ++h)
          for (index_t p = 0; p < 8; ++p) d(b, t, h, p) = s(b, t, h, p);
  }
  auto B2 = pr.Bm.padded_copy(2);
  auto dt2 = pr.dt.padded_copy(1);
  for (ssd_mode m : {ssd_mode::chunk, ssd_mode::recurrent}) {
    auto out2 = tensor<float, bthp>::padded({2, 90, 4, 8}, 1);
    tensor<float, bhpn> fin2({2, 4, 8, 16});
    auto a = pr.args(out2.view(), fin2.view());
    a.x = x2.cview();
    a.B = B2.cview();
    a.dt = dt2.cview();
    ssd(a, pr.opts(m, 32));
    SEQMIX_REQUIRE_CLOSE(out2.cview(), out.cview(), tolerance<float>(90));
    SEQMIX_REQUIRE_CLOSE(fin2.cview(), fin.cview(), tolerance<float>(90));
  }
}

TEST_CASE("ssd: two halves carrying state == one pass", "[ssm][ssd][state]") {
  for (index_t L : {64, 257}) {
    ssd_problem<float> pr(2, L, 4, 8, 2, 16, {}, 23);
    tensor<float, bthp> whole({2, L, 4, 8}), split({2, L, 4, 8});
    tensor<float, bhpn> fw({2, 4, 8, 16}), mid({2, 4, 8, 16}), fs({2, 4, 8, 16});
    ssd(pr.args(whole.view(), fw.view()), pr.opts(ssd_mode::recurrent), reference{});
    const index_t h = L / 2 + 3;
    for (ssd_mode m : {ssd_mode::chunk, ssd_mode::recurrent}) {
      auto part = [&](index_t t0, index_t t1, tensor_view<float, bhpn> fin) {
        auto a = pr.args(split.view().slice<axis::T>(t0, t1), fin);
        a.x = tslice(a.x, t0, t1);
        a.dt = tslice(a.dt, t0, t1);
        a.B = tslice(a.B, t0, t1);
        a.C = tslice(a.C, t0, t1);
        a.z = tslice(a.z, t0, t1);
        return a;
      };
      ssd(part(0, h, mid.view()), pr.opts(m, 32));
      auto a2 = part(h, L, fs.view());
      a2.initial_states = mid.cview();
      ssd(a2, pr.opts(m, 32));
      SEQMIX_REQUIRE_CLOSE(split.cview(), whole.cview(), tolerance<float>(L));
      SEQMIX_REQUIRE_CLOSE(fs.cview(), fw.cview(), tolerance<float>(L));
    }
  }
}

TEST_CASE("ssd: seq_idx resets and cu_seqlens == separate calls", "[ssm][ssd][varlen]") {
  const std::vector<index_t> lens{40, 1, 0, 77, 9};
  const auto cu = cu_from_lengths(lens);
  const index_t total = cu.back(), ns = static_cast<index_t>(lens.size());
  ssd_problem<float> pr(1, total, 4, 8, 2, 16, {}, 29);
  tensor<float, bhpn> h0s({ns, 4, 8, 16});
  rng r(3);
  h0s.normal(r);
  // separate calls
  tensor<float, bthp> sep({1, total, 4, 8});
  tensor<float, bhpn> fsep({ns, 4, 8, 16});
  for (index_t s = 0; s < ns; ++s) {
    const index_t t0 = cu[static_cast<std::size_t>(s)], t1 = cu[static_cast<std::size_t>(s) + 1];
    auto a = pr.args(sep.view().slice<axis::T>(t0, t1), fsep.view().slice<axis::B>(s, s + 1));
    a.x = tslice(a.x, t0, t1);
    a.dt = tslice(a.dt, t0, t1);
    a.B = tslice(a.B, t0, t1);
    a.C = tslice(a.C, t0, t1);
    a.z = tslice(a.z, t0, t1);
    a.initial_states = h0s.cview().slice<axis::B>(s, s + 1);
    ssd(a, pr.opts(ssd_mode::recurrent), reference{});
  }
  for (ssd_mode m : {ssd_mode::chunk, ssd_mode::recurrent}) {
    tensor<float, bthp> out({1, total, 4, 8});
    tensor<float, bhpn> fin({ns, 4, 8, 16});
    out.poison();
    auto a = pr.args(out.view(), fin.view());
    a.cu_seqlens = cu_view(cu);
    a.initial_states = h0s.cview();
    ssd(a, pr.opts(m, 16));
    SEQMIX_REQUIRE_CLOSE(out.cview(), sep.cview(), tolerance<float>(total));
    SEQMIX_REQUIRE_CLOSE(fin.cview(), fsep.cview(), tolerance<float>(total));
  }
  // seq_idx: the same boundaries in one row; initial state only for the first run, final after the last
  std::vector<ssm_index_t> idx(static_cast<std::size_t>(total));
  for (index_t s = 0; s < ns; ++s)
    for (auto t = cu[static_cast<std::size_t>(s)]; t < cu[static_cast<std::size_t>(s) + 1]; ++t)
      idx[static_cast<std::size_t>(t)] = s;
  tensor<float, bthp> sep2({1, total, 4, 8});
  tensor<float, bhpn> f_last({1, 4, 8, 16}), junk({1, 4, 8, 16});
  for (index_t s = 0; s < ns; ++s) {
    const index_t t0 = cu[static_cast<std::size_t>(s)], t1 = cu[static_cast<std::size_t>(s) + 1];
    auto a = pr.args(sep2.view().slice<axis::T>(t0, t1), s == ns - 1 ? f_last.view() : junk.view());
    a.x = tslice(a.x, t0, t1);
    a.dt = tslice(a.dt, t0, t1);
    a.B = tslice(a.B, t0, t1);
    a.C = tslice(a.C, t0, t1);
    a.z = tslice(a.z, t0, t1);
    a.initial_states = s == 0 ? h0s.cview().slice<axis::B>(0, 1) : const_view<float, bhpn>{};
    ssd(a, pr.opts(ssd_mode::recurrent), reference{});
  }
  for (ssd_mode m : {ssd_mode::chunk, ssd_mode::recurrent}) {
    tensor<float, bthp> out({1, total, 4, 8});
    tensor<float, bhpn> fin({1, 4, 8, 16});
    auto a = pr.args(out.view(), fin.view());
    a.seq_idx = const_view<ssm_index_t, bt>(idx.data(), {1, total});
    a.initial_states = h0s.cview().slice<axis::B>(0, 1);
    ssd(a, pr.opts(m, 16));
    SEQMIX_REQUIRE_CLOSE(out.cview(), sep2.cview(), tolerance<float>(total));
    SEQMIX_REQUIRE_CLOSE(fin.cview(), f_last.cview(), tolerance<float>(total));
  }
}

TEST_CASE("ssd: shape and option errors", "[ssm][ssd][errors]") {
  ssd_problem<float> pr(2, 8, 4, 8, 2, 16, {}, 31);
  tensor<float, bthp> out({2, 8, 4, 8});
  tensor<float, bhpn> fin({2, 4, 8, 16});
  auto a = pr.args(out.view(), fin.view());
  auto bad = a;
  bad.dt = a.dt.slice<axis::T>(0, 7);
  REQUIRE_THROWS_MATCHES(ssd(bad), shape_error, message_is("seqmix::ssd: dt.extent(T) = 7, expected 8 (from x [B,T,H,P])"));
  bad = a;
  bad.C = a.C.slice<axis::N>(0, 15);
  REQUIRE_THROWS_MATCHES(ssd(bad), shape_error, message_contains("C.extent(N) = 15, expected 16"));
  bad = a;
  bad.B = a.B.slice<axis::G>(0, 1);  // G = 1 is fine for H = 4
  bad.C = a.C.slice<axis::G>(0, 1);
  REQUIRE_NOTHROW(ssd(bad));
  tensor<float, btgn> b3({2, 8, 3, 16});
  bad.B = b3.cview();
  bad.C = b3.cview();
  REQUIRE_THROWS_MATCHES(ssd(bad), shape_error, message_contains("x.extent(H) = 4, expected a multiple of B.extent(G) = 3"));
  auto o = pr.opts(ssd_mode::chunk, 0);
  REQUIRE_THROWS_MATCHES(ssd(a, o), shape_error, message_contains("option chunk_size = 0"));
  o = pr.opts(ssd_mode::chunk);
  o.dt_min = 1.0;
  o.dt_max = 0.5;
  REQUIRE_THROWS_MATCHES(ssd(a, o), shape_error, message_contains("expected dt_min <= dt_max"));
  bad = a;
  bad.final_states = fin.view().slice<axis::P>(0, 7);
  REQUIRE_THROWS_MATCHES(ssd(bad), shape_error, message_contains("final_states.extent(P) = 7, expected 8"));
}

TEST_CASE("ssd: NaN in x stays in its head and its own and later tokens", "[ssm][ssd][nan]") {
  // One NaN in x at token t0, head h0, channel p0 of row 0: out[0, t, h0, p0] is NaN exactly for t >= t0
  // (x_t0 enters y_t0 through the in-block term, later tokens through the state row p0); everything else is
  // finite, and row 1 and the earlier tokens match the float64 reference.
  const index_t L = 100, t0 = 37, h0 = 1, p0 = 3;
  ssd_problem<float> pr(2, L, 4, 8, 2, 16, {}, 73);
  pr.x.view()(0, t0, h0, p0) = std::numeric_limits<float>::quiet_NaN();
  for (ssd_mode m : {ssd_mode::chunk, ssd_mode::recurrent}) {
    for (index_t chunk : {16, 256}) {
      INFO((m == ssd_mode::chunk ? "chunk " : "recurrent ") << chunk);
      tensor<float, bthp> out({2, L, 4, 8}), ref({2, L, 4, 8});
      tensor<float, bhpn> fin({2, 4, 8, 16}), fref({2, 4, 8, 16});
      ssd(pr.args(out.view(), fin.view()), pr.opts(m, chunk));
      ssd(pr.args(ref.view(), fref.view()), pr.opts(ssd_mode::recurrent), reference{});
      for (index_t b = 0; b < 2; ++b)
        for (index_t t = 0; t < L; ++t)
          for (index_t h = 0; h < 4; ++h) {
            for (index_t p = 0; p < 8; ++p) {
              const float y = out.view()(b, t, h, p);
              if (b == 0 && h == h0 && p == p0 && t >= t0) {
                REQUIRE(std::isnan(y));
              } else {
                INFO("b " << b << " t " << t << " h " << h << " p " << p);
                REQUIRE(std::isfinite(y));
              }
            }
          }
      SEQMIX_REQUIRE_CLOSE(out.cview().slice<axis::B>(1, 2), ref.cview().slice<axis::B>(1, 2), tolerance<float>(L));
      SEQMIX_REQUIRE_CLOSE(out.cview().slice<axis::B>(0, 1).slice<axis::T>(0, t0),
                           ref.cview().slice<axis::B>(0, 1).slice<axis::T>(0, t0), tolerance<float>(L));
    }
  }
}
