// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/update_simd.hpp: selective_state_update fast path (one decode step), SIMD
// over the state size N; state rows updated in place.
#pragma once

#include <algorithm>
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "../../../core/backend.hpp"
#include "../../../runtime/parallel_for.hpp"
#include "../../../runtime/workspace.hpp"
#include "args.hpp"
#include "ssd_simd.hpp"
#include "vmath.hpp"

SEQMIX_DIAG_PUSH
namespace seqmix::detail::ssm {

template <class Arch, class T>
void selective_state_update_impl(const selective_state_update_args<T>& a, const selective_state_update_options& o,
                                 simd<Arch>) {
  using A = Arch;
  using Bt = fbatch<A>;
  constexpr index_t W = static_cast<index_t>(Bt::size);
  const index_t Bn = a.x.template extent<axis::B>(), H = a.x.template extent<axis::H>();
  const index_t P = a.x.template extent<axis::P>(), G = a.B.template extent<axis::G>();
  const index_t N = a.B.template extent<axis::N>(), Np = round_up_to(N, W), HG = H / G;
  const int workers = std::max(1, o.run.workers());
  workspace& ws = o.run.scratch();
  const index_t Pw = round_up_to(P, W);
  ws.reserve(workers, 4 * arena_bytes<float>(Np) + 3 * arena_bytes<float>(Pw));
  const float lo = static_cast<float>(o.dt_min), hi = static_cast<float>(o.dt_max);
  const index_t sAn = a.A.template stride<axis::N>(), ssn = a.state.template stride<axis::N>();
  const bool shared_a = sAn == 0 || N == 1;  // one decay per (h, p): Mamba-2
  // Mamba-2's dt, dt_bias and A do not vary over P: one softplus and one exp per head
  const bool dt_flat = a.dt.template stride<axis::P>() == 0 && (!a.dt_bias || a.dt_bias.template stride<axis::P>() == 0);
  const bool da_flat = dt_flat && shared_a && a.A.template stride<axis::P>() == 0;
  // Mamba-1 (A per state): an exp per state element, ~8 multiply-adds' worth (a one-thread D5120 N16 step took
  // ~100 us, far past the cost of waking a worker)
  const any_executor ex = pick_executor(o.run, static_cast<double>(Bn) * H * P * N * (shared_a ? 1 : 8));
  // Mamba-1 shapes (H = 1, P = D in the thousands) would be one task when the work is large enough to run in
  // parallel: split P into blocks of 512
  const index_t PB = P > 1024 ? 512 : P, npb = (P + PB - 1) / PB;
  auto step = [&](index_t b, index_t h, index_t pb, int worker) {
    const index_t p0 = pb * PB, p1 = std::min(P, p0 + PB);  // p0 % W == 0
    const index_t slot = a.state_batch_indices ? a.state_batch_indices(b) : b;
    if (slot < 0) {
      for (index_t p = p0; p < p1; ++p) a.out(b, h, p) = from_float<T>(0.0f);
      return;
    }
    const index_t g = h / HG;
    arena ar(ws.get(worker), ws.bytes_per_worker());
    float* Bf = ar.alloc<float>(Np);
    float* Cf = ar.alloc<float>(Np);
    float* Af = ar.alloc<float>(Np);
    float* Sr = ar.alloc<float>(Np);
    float* dtp = ar.alloc<float>(Pw);  // dt' per p
    float* dap = ar.alloc<float>(Pw);  // exp(dt' A[h,p,0]) per p (shared_a)
    float* yp = ar.alloc<float>(Pw);   // y per p
    std::fill(Bf + N, Bf + Np, 0.0f);
    std::fill(Cf + N, Cf + Np, 0.0f);
    std::fill(Af + N, Af + Np, 0.0f);
    std::fill(Sr + N, Sr + Np, 0.0f);
    read_row(a.B.ptr(b, g, 0), a.B.template stride<axis::N>(), N, Bf);
    read_row(a.C.ptr(b, g, 0), a.C.template stride<axis::N>(), N, Cf);
    // dt' = clamp(softplus?(dt + bias)) for every p, vectorised (or once when it does not vary over P)
    const index_t np = dt_flat ? 1 : p1 - p0;
    for (index_t p = p0; p < p0 + np; ++p)
      dtp[p] = to_float(a.dt(b, h, p)) + (a.dt_bias ? to_float(a.dt_bias(h, p)) : 0.0f);
    dt_transform<A>(dtp + p0, np, 0.0f, o.dt_softplus, lo, hi);
    if (dt_flat) std::fill(dtp + p0 + 1, dtp + Pw, dtp[p0]);
    if (shared_a) {
      const index_t na = da_flat ? 1 : p1 - p0;
      for (index_t p = p0; p < p0 + na; ++p) dap[p] = dtp[p] * to_float(a.A(h, p, 0));
      for (index_t p = p0; p < p0 + na; p += W) vexp<A>(Bt::load_aligned(dap + p)).store_aligned(dap + p);
      if (da_flat) std::fill(dap + p0 + 1, dap + Pw, dap[p0]);
    }
    for (index_t p = p0; p < p1; ++p) {
      const float dt = dtp[p];
      const float xf = to_float(a.x(b, h, p));
      const Bt xv(dt * xf), dtv(dt);
      const Bt dA0(shared_a ? dap[p] : 1.0f);
      // A rows of unit stride are read in place (vector loads), others staged
      const T* arow = a.A.ptr(h, p, 0);
      const bool a_direct = !shared_a && sAn == 1;
      if (!shared_a && !a_direct) read_row(arow, sAn, N, Af);
      float* srow = a.state.ptr(slot, h, p, 0);
      float* s = srow;
      if (ssn != 1) {
        for (index_t n = 0; n < N; ++n) Sr[n] = srow[n * ssn];
        s = Sr;
      }
      Bt y0(0.0f), y1(0.0f);
      index_t n = 0;
      for (; n + W <= N; n += W) {
        const Bt dA = shared_a ? dA0 : vexp<A>(dtv * (a_direct ? load_w<A>(arow + n) : Bt::load_aligned(Af + n)));
        const Bt sv = xsimd::fma(Bt::load_unaligned(s + n), dA, xv * Bt::load_aligned(Bf + n));
        sv.store_unaligned(s + n);
        ((n / W) % 2 == 0 ? y0 : y1) = xsimd::fma(sv, Bt::load_aligned(Cf + n), (n / W) % 2 == 0 ? y0 : y1);
      }
      if (n < N) {
        const index_t m = N - n;
        const Bt dA = shared_a ? dA0 : vexp<A>(dtv * (a_direct ? load_n<A>(arow + n, m) : Bt::load_aligned(Af + n)));
        const Bt sv = xsimd::fma(load_n<A>(s + n, m), dA, xv * Bt::load_aligned(Bf + n));
        store_n<A>(s + n, sv, m);
        y0 = xsimd::fma(sv, Bt::load_aligned(Cf + n), y0);  // Cf is zero beyond N
      }
      if (ssn != 1)
        for (index_t k = 0; k < N; ++k) srow[k * ssn] = Sr[k];
      yp[p] = xsimd::hadd(y0 + y1);
    }
    // y + D x, gate, store: vectorised over P
    alignas(64) float xb[W], zb[W], db[W];
    for (index_t p = p0; p < p1; p += W) {
      const index_t m = std::min(W, p1 - p);
      Bt y = load_n<A>(yp + p, m);
      if (a.D) {
        for (index_t i = 0; i < W; ++i) {
          xb[i] = i < m ? to_float(a.x(b, h, p + i)) : 0.0f;
          db[i] = i < m ? to_float(a.D(h, p + i)) : 0.0f;
        }
        y = xsimd::fma(Bt::load_aligned(db), Bt::load_aligned(xb), y);
      }
      if (a.z) {
        for (index_t i = 0; i < W; ++i) zb[i] = i < m ? to_float(a.z(b, h, p + i)) : 0.0f;
        y = y * vsilu<A>(Bt::load_aligned(zb));
      }
      y.store_aligned(xb);
      for (index_t i = 0; i < m; ++i) a.out(b, h, p + i) = from_float<T>(xb[i]);
    }
  };
  // Mamba-2 shapes: heads in contiguous groups per task (80 one-head tasks of ~1.5 us bounced the task counter)
  if (npb == 1) {
    parallel_for_groups(ex, Bn, H, [&](index_t b, index_t h, int worker) { step(b, h, 0, worker); });
  } else {
    parallel_for(ex, grid{Bn, H, npb}, step);
  }
}

}  // namespace seqmix::detail::ssm
SEQMIX_DIAG_POP
