// SPDX-License-Identifier: Apache-2.0
// tests/ops/flash_attention/test_index_types.cpp: cu_seqlens, cache_seqlens and block_table given as int64
// (SPEC §2.12) give the int32 result and the float64 reference's.
#include <cstdint>
#include <vector>

#include <support/flash_attention_problem.hpp>
#include <support/support.hpp>

using namespace seqmix;
using namespace seqmix::testing;

TEST_CASE("attention: int64 cu_seqlens == int32 cu_seqlens == reference", "[attention][varlen]") {
  const std::vector<std::int32_t> cq32{0, 1, 38, 45}, ck32{0, 3, 50, 61};
  const std::vector<std::int64_t> cq64(cq32.begin(), cq32.end()), ck64(ck32.begin(), ck32.end());
  attn_problem<float> p({1, 45, 61, 4, 2, 40, 24}, 61);
  attention_options o;
  o.causal = true;
  attn_out<float> o32(p.sh, 45), o64(p.sh, 45), ref(p.sh, 45);
  auto args = [&](attn_out<float>& out) {
    return attention_args<float>{p.q.cview(), p.k.cview(), p.v.cview(), out.o.view(), out.lse.view()};
  };
  auto a32 = args(o32);
  a32.cu_seqlens_q = const_view<std::int32_t, flash_i>(cq32.data(), {4});
  a32.cu_seqlens_k = const_view<std::int32_t, flash_i>(ck32.data(), {4});
  auto a64 = args(o64);
  a64.cu_seqlens_q = const_view<std::int64_t, flash_i>(cq64.data(), {4});
  a64.cu_seqlens_k = const_view<std::int64_t, flash_i>(ck64.data(), {4});
  auto ar = args(ref);
  ar.cu_seqlens_q = a64.cu_seqlens_q;
  ar.cu_seqlens_k = a32.cu_seqlens_k;
  attention(a32, o);
  attention(a64, o);
  attention(ar, o, reference{});
  REQUIRE(o32.o.storage() == o64.o.storage());
  REQUIRE(o32.lse.storage() == o64.lse.storage());
  SEQMIX_REQUIRE_CLOSE(o64.o.cview(), ref.o.cview(), tolerance<float>(61));
  SEQMIX_REQUIRE_CLOSE(o64.lse.cview(), ref.lse.cview(), tolerance<float>(61));
}

TEST_CASE("attention_decode: int64 cache_seqlens and block_table == reference", "[attention][decode][paged]") {
  const index_t B = 2, Hq = 4, Hkv = 2, D = 32, page = 16, blocks = 6;
  rng r(62);
  tensor<float, bthd> q({B, 1, Hq, D});  // [B,1,Hq,D]
  q.normal(r);
  tensor<float, sthd> k({blocks, page, Hkv, D});  // [blocks,page,Hkv,D]
  tensor<float, sthv> v({blocks, page, Hkv, D});  // [blocks,page,Hkv,Dv]
  k.normal(r);
  v.uniform(r, -1, 1);
  const std::vector<std::int64_t> table{4, 1, 0, 5, 2, 3}, lens{37, 20};  // [B,3], [B]
  const paged_kv_cache_view<float> cache{k.cview(), v.cview(), const_view<std::int64_t, bp>(table.data(), {B, 3}),
                                         const_view<std::int64_t, flash_b>(lens.data(), {B})};
  tensor<float, bthv> o({B, 1, Hq, D}), oref({B, 1, Hq, D});
  tensor<float, bht> lse({B, Hq, 1}), lref({B, Hq, 1});
  o.poison();
  lse.poison();
  attention_decode(attention_decode_args<float, paged_kv_cache_view<float>>{q.cview(), cache, o.view(), lse.view()});
  attention_decode(attention_decode_args<float, paged_kv_cache_view<float>>{q.cview(), cache, oref.view(), lref.view()},
                   {}, reference{});
  SEQMIX_REQUIRE_CLOSE(o.cview(), oref.cview(), tolerance<float>(37));
  SEQMIX_REQUIRE_CLOSE(lse.cview(), lref.cview(), tolerance<float>(37));
}
