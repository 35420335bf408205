// SPDX-License-Identifier: Apache-2.0
// tests/support/flash_attention_problem.hpp: random attention problems (q, k, v, per-head slopes and
// sinks) for the flash_attention tests, and a runner comparing the fast path with the float64 reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include <seqmix/ops/flash_attention/flash_attention.hpp>

#include "support.hpp"

namespace seqmix::testing {

struct attn_shape {
  index_t B = 1, Tq = 1, Tk = 1, Hq = 1, Hkv = 1, D = 8, Dv = 8;
};

/// Owning inputs of one attention problem in storage type T (optionally strided).
template <class T>
struct attn_problem {
  attn_shape sh;
  tensor<T, bthd> q, k;
  tensor<T, bthv> v;
  tensor<float, flash_h> slopes, sinks;

  attn_problem(const attn_shape& s, std::uint64_t seed, bool strided = false) : sh(s) {
    rng r(seed);
    if (strided) {
      q = tensor<T, bthd>::template permuted<layout<axis::B, axis::H, axis::T, axis::D>>({s.B, s.Tq, s.Hq, s.D});
      k = tensor<T, bthd>::padded({s.B, s.Tk, s.Hkv, s.D}, 2);
      v = tensor<T, bthv>::template permuted<layout<axis::B, axis::H, axis::T, axis::V>>({s.B, s.Tk, s.Hkv, s.Dv});
    } else {
      q = tensor<T, bthd>({s.B, s.Tq, s.Hq, s.D});     // [B,Tq,Hq,D]
      k = tensor<T, bthd>({s.B, s.Tk, s.Hkv, s.D});    // [B,Tk,Hkv,D]
      v = tensor<T, bthv>({s.B, s.Tk, s.Hkv, s.Dv});   // [B,Tk,Hkv,Dv]
    }
    q.normal(r);
    k.normal(r);
    v.uniform(r, -1.0, 1.0);
    slopes = tensor<float, flash_h>(extents<flash_h>(s.Hq));  // [Hq]
    slopes.uniform(r, 0.01, 0.3);
    sinks = tensor<float, flash_h>(extents<flash_h>(s.Hq));  // [Hq]
    sinks.uniform(r, -1.0, 2.0);
  }
};

/// Outputs of one run (poisoned before the call so unwritten elements show up as NaN).
template <class T>
struct attn_out {
  tensor<T, bthv> o;
  tensor<float, bht> lse;
  attn_out(const attn_shape& s, index_t tq_total) {
    o = tensor<T, bthv>({s.B, tq_total, s.Hq, s.Dv});  // [B,Tq,Hq,Dv]
    lse = tensor<float, bht>({s.B, s.Hq, tq_total});   // [B,Hq,Tq]
    o.poison();
    lse.poison();
  }
};

struct attn_extras {
  bool alibi = false, sinks = false;
  std::vector<std::int32_t> cu_q, cu_k;
};

template <class Backend, class T>
attn_out<T> run_attention(const attn_problem<T>& p, const attention_options& opt, const attn_extras& ex = {}) {
  attn_out<T> out(p.sh, p.sh.Tq);
  attention_args<T> a{p.q.cview(), p.k.cview(), p.v.cview(), out.o.view(), out.lse.view()};
  if (ex.alibi) a.alibi_slopes = p.slopes.cview();
  if (ex.sinks) a.sinks = p.sinks.cview();
  if (!ex.cu_q.empty()) {
    a.cu_seqlens_q = tensor_view<const std::int32_t, flash_i>(ex.cu_q.data(), {static_cast<index_t>(ex.cu_q.size())});
    a.cu_seqlens_k = tensor_view<const std::int32_t, flash_i>(ex.cu_k.data(), {static_cast<index_t>(ex.cu_k.size())});
  }
  attention(a, opt, Backend{});
  return out;
}

/// Runs simd and reference on the same problem and requires agreement (o and lse) within SPEC §6.
template <class T>
void require_attention_matches(const attn_problem<T>& p, const attention_options& opt, const attn_extras& ex = {}) {
  const auto fast = run_attention<simd<>>(p, opt, ex);
  const auto ref = run_attention<reference>(p, opt, ex);
  const double tol = tolerance<T>(std::max(p.sh.Tq, p.sh.Tk));
  SEQMIX_REQUIRE_CLOSE(fast.o.cview(), ref.o.cview(), tol);
  SEQMIX_REQUIRE_CLOSE(fast.lse.cview(), ref.lse.cview(), tol);
}

}  // namespace seqmix::testing
