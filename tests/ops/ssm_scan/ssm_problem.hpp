// SPDX-License-Identifier: Apache-2.0
// tests/ops/ssm_scan/ssm_problem.hpp: random problems (owning tensors + args) for the SSM family tests.
#pragma once

#include <vector>

#include <seqmix/ops/ssm_scan/ssm_scan.hpp>

#include "support/support.hpp"

namespace seqmix::testing::ssm {

using vec_d = layout<axis::D>;
using vec_h = layout<axis::H>;
using vec_i = layout<axis::I>;

/// View of a [n] per-head vector as [H,P] with P-stride 0.
template <class T>
const_view<T, hp> per_head(const tensor<T, vec_h>& v, index_t P) {
  auto c = v.cview();
  return const_view<T, hp>(c.data(), {c.template extent<axis::H>(), P}, {c.template stride<axis::H>(), 0});
}

inline std::vector<ssm_index_t> cu_from_lengths(const std::vector<index_t>& lens) {
  std::vector<ssm_index_t> cu{0};
  for (auto l : lens) cu.push_back(cu.back() + l);
  return cu;
}
inline const_view<ssm_index_t, vec_i> cu_view(const std::vector<ssm_index_t>& cu) {
  return const_view<ssm_index_t, vec_i>(cu.data(), {static_cast<index_t>(cu.size())});
}

struct scan_flags {
  bool D = true, z = true, bias = true, softplus = true, init = true, fixed_B = false, fixed_C = false;
};

/// Mamba-1 selective scan problem.
template <class T>
struct scan_problem {
  index_t Bn, Dn, L, N, G;
  scan_flags f;
  tensor<T, bdl> u, delta, z;
  tensor<T, dn> A, Bf, Cf;
  tensor<T, bgnl> Bm, Cm;
  tensor<T, vec_d> Dv, bias;
  tensor<float, bdn> h0;

  scan_problem(index_t b, index_t d, index_t l, index_t n, index_t g, scan_flags fl, std::uint64_t seed)
      : Bn(b), Dn(d), L(l), N(n), G(g), f(fl), u({b, d, l}), delta({b, d, l}), z({b, d, l}), A({d, n}), Bf({d, n}),
        Cf({d, n}), Bm({b, g, n, l}), Cm({b, g, n, l}), Dv(extents<vec_d>{d}), bias(extents<vec_d>{d}), h0({b, d, n}) {
    rng r(seed);
    u.normal(r);
    if (f.softplus) delta.uniform(r, -3.0, 0.5);
    else delta.uniform(r, 0.001, 0.3);
    z.normal(r);
    A.uniform(r, -6.0, -0.1);
    Bf.normal(r);
    Cf.normal(r);
    Bm.normal(r);
    Cm.normal(r);
    Dv.normal(r);
    if (f.softplus) bias.uniform(r, -1.0, 0.5);
    else bias.uniform(r, 0.0, 0.2);  // keep delta > 0 without softplus
    h0.normal(r);
  }
  selective_scan_args<T> args(tensor_view<T, bdl> out, tensor_view<float, bdn> last) const {
    selective_scan_args<T> a;
    a.u = u.cview();
    a.delta = delta.cview();
    a.A = A.cview();
    if (f.fixed_B) a.B_fixed = Bf.cview();
    else a.B = Bm.cview();
    if (f.fixed_C) a.C_fixed = Cf.cview();
    else a.C = Cm.cview();
    if (f.D) a.D = Dv.cview();
    if (f.z) a.z = z.cview();
    if (f.bias) a.delta_bias = bias.cview();
    if (f.init) a.initial_state = h0.cview();
    a.out = out;
    a.last_state = last;
    return a;
  }
  selective_scan_options opts() const { return {.delta_softplus = f.softplus, .run = {}}; }
};

struct ssd_flags {
  bool D = true, D_hp = false, z = true, bias = true, softplus = true, init = true;
  double dt_min = 0.0, dt_max = 1e30;
};

/// Mamba-2 SSD problem.
template <class T>
struct ssd_problem {
  index_t Bn, L, H, P, G, N;
  ssd_flags f;
  tensor<T, bthp> x, z;
  tensor<T, bth> dt;
  tensor<T, vec_h> A, Dh, bias;
  tensor<T, hp> Dhp;
  tensor<T, btgn> Bm, Cm;
  tensor<float, bhpn> h0;

  ssd_problem(index_t b, index_t l, index_t h, index_t p, index_t g, index_t n, ssd_flags fl, std::uint64_t seed)
      : Bn(b), L(l), H(h), P(p), G(g), N(n), f(fl), x({b, l, h, p}), z({b, l, h, p}), dt({b, l, h}), A(extents<vec_h>{h}), Dh(extents<vec_h>{h}),
        bias(extents<vec_h>{h}), Dhp({h, p}), Bm({b, l, g, n}), Cm({b, l, g, n}), h0({b, h, p, n}) {
    rng r(seed);
    x.normal(r);
    z.normal(r);
    if (f.softplus) dt.uniform(r, -4.0, 0.0);
    else dt.uniform(r, 0.001, 0.2);
    A.uniform(r, -4.0, -0.2);
    Dh.normal(r);
    Dhp.normal(r);
    if (f.softplus) bias.uniform(r, -1.0, 0.5);
    else bias.uniform(r, 0.0, 0.2);
    Bm.normal(r, 0.0, 0.3);
    Cm.normal(r, 0.0, 0.3);
    h0.normal(r);
  }
  ssd_args<T> args(tensor_view<T, bthp> out, tensor_view<float, bhpn> fin) const {
    ssd_args<T> a;
    a.x = x.cview();
    a.dt = dt.cview();
    a.A = A.cview();
    a.B = Bm.cview();
    a.C = Cm.cview();
    if (f.D) a.D = f.D_hp ? Dhp.cview() : per_head(Dh, P);
    if (f.z) a.z = z.cview();
    if (f.bias) a.dt_bias = bias.cview();
    if (f.init) a.initial_states = h0.cview();
    a.out = out;
    a.final_states = fin;
    return a;
  }
  ssd_options opts(ssd_mode m, index_t chunk = 256) const {
    return {.dt_softplus = f.softplus, .dt_min = f.dt_min, .dt_max = f.dt_max, .chunk_size = chunk, .mode = m, .run = {}};
  }
};

/// causal_conv1d problem.
template <class T>
struct conv_problem {
  index_t Bn, Dn, L, W;
  tensor<T, bdl> x;
  tensor<T, dw> w;
  tensor<T, vec_d> bias;
  tensor<T, bdw> h0;
  conv_problem(index_t b, index_t d, index_t l, index_t wd, std::uint64_t seed, bool channel_last = false)
      : Bn(b), Dn(d), L(l), W(wd),
        x(channel_last ? tensor<T, bdl>::template permuted<layout<axis::B, axis::L, axis::D>>({b, d, l})
                       : tensor<T, bdl>({b, d, l})),
        w({d, wd}), bias(extents<vec_d>{d}), h0({b, d, wd - 1}) {
    rng r(seed);
    x.normal(r);
    w.normal(r, 0.0, 0.5);
    bias.normal(r);
    h0.normal(r);
  }
};

}  // namespace seqmix::testing::ssm
