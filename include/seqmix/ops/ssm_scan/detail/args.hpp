// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/detail/args.hpp: argument and option structs of the SSM family (included by
// ssm_scan.hpp, reference.hpp and simd.hpp; documented in ssm_scan.hpp).
#pragma once

#include <limits>

#include "../../../core/index_view.hpp"
#include "../../../core/layout.hpp"
#include "../../../core/tensor_view.hpp"
#include "../../../runtime/context.hpp"
#include "../policies.hpp"

namespace seqmix {

/// Mamba-1 selective scan (SPEC §3.2.1). B and C are per token ([B,G,N,L]) or fixed ([D,N]): give
/// exactly one of B / B_fixed and one of C / C_fixed. Optional views may be left empty.
/// With cu_seqlens (B = 1): one sequence per [cu[i], cu[i+1]), initial_state / last_state [Nseq,D,N].
template <class T>
struct selective_scan_args {
  const_view<T, bdl> u;                               ///< [B,D,L]
  const_view<T, bdl> delta;                           ///< [B,D,L]
  const_view<T, dn> A;                                ///< [D,N]
  const_view<T, bgnl> B;                              ///< [B,G,N,L] per-token input matrix
  const_view<T, bgnl> C;                              ///< [B,G,N,L] per-token output matrix
  const_view<T, dn> B_fixed;                          ///< [D,N] time-invariant B (instead of B)
  const_view<T, dn> C_fixed;                          ///< [D,N] time-invariant C (instead of C)
  const_view<T, ssm_layouts::d> D;                    ///< [D] skip (optional)
  const_view<T, bdl> z;                               ///< [B,D,L] gate, out *= silu(z) (optional)
  const_view<T, ssm_layouts::d> delta_bias;           ///< [D] (optional)
  const_view<float, bdn> initial_state;               ///< [B,D,N] (optional; zeros)
  index_view<ssm_layouts::i> cu_seqlens;  ///< [Nseq+1] varlen, B = 1 (optional)
  tensor_view<T, bdl> out;                            ///< [B,D,L]
  tensor_view<float, bdn> last_state;                 ///< [B,D,N] (optional)
};
struct selective_scan_options {
  bool delta_softplus = false;
  run_context run{};
};

/// Mamba-2 SSD (SPEC §3.2.2). D is [H,P]: pass a P-stride of 0 for the per-head [H] form.
template <class T>
struct ssd_args {
  const_view<T, bthp> x;                              ///< [B,L,H,P]
  const_view<T, bth> dt;                              ///< [B,L,H]
  const_view<T, ssm_layouts::h> A;                    ///< [H] (negative)
  const_view<T, btgn> B;                              ///< [B,L,G,N]
  const_view<T, btgn> C;                              ///< [B,L,G,N]
  const_view<T, hp> D;                                ///< [H,P] (optional; P-stride 0 for [H])
  const_view<T, bthp> z;                              ///< [B,L,H,P] (optional)
  const_view<T, ssm_layouts::h> dt_bias;              ///< [H] (optional)
  const_view<float, bhpn> initial_states;             ///< [B,H,P,N] ([Nseq,H,P,N] with cu_seqlens)
  index_view<bt> seq_idx;                ///< [B,L] (optional) state resets where it changes
  index_view<ssm_layouts::i> cu_seqlens;  ///< [Nseq+1] varlen, B = 1 (optional)
  tensor_view<T, bthp> out;                           ///< [B,L,H,P]
  tensor_view<float, bhpn> final_states;              ///< [B,H,P,N] (optional)
};
struct ssd_options {
  bool dt_softplus = false;
  double dt_min = 0.0;
  double dt_max = std::numeric_limits<double>::infinity();
  index_t chunk_size = 256;
  ssd_mode mode = ssd_mode::auto_select;
  run_context run{};
};

/// One decode step for Mamba-1 and Mamba-2 shapes: state [Bs,H,P,N] updated in place. The general form
/// takes dt [B,H,P], A [H,P,N], D and dt_bias [H,P]; Mamba-2's per-head tensors are views with stride 0
/// on P (and N), Mamba-1's [B,D,N] state is H = 1, P = D (see docs/06-ssm-scans.md).
template <class T>
struct selective_state_update_args {
  tensor_view<float, bhpn> state;                     ///< [Bs,H,P,N] in/out (Bs = B without slots)
  const_view<T, bhp> x;                               ///< [B,H,P]
  const_view<T, bhp> dt;                              ///< [B,H,P]
  const_view<T, ssm_layouts::hpn> A;                  ///< [H,P,N]
  const_view<T, bgn> B;                               ///< [B,G,N]
  const_view<T, bgn> C;                               ///< [B,G,N]
  const_view<T, hp> D;                                ///< [H,P] (optional)
  const_view<T, bhp> z;                               ///< [B,H,P] (optional)
  const_view<T, hp> dt_bias;                          ///< [H,P] (optional)
  index_view<ssm_layouts::b> state_batch_indices;  ///< [B] slot of each row (optional; < 0 skips)
  tensor_view<T, bhp> out;                            ///< [B,H,P]
};
struct selective_state_update_options {
  bool dt_softplus = false;
  double dt_min = 0.0;
  double dt_max = std::numeric_limits<double>::infinity();
  run_context run{};
};

/// Causal depthwise conv1d (SPEC §3.2.4). Channel-last input is a [B,D,L] view with D-stride 1.
/// With cu_seqlens (B = 1): initial_states / final_states are [Nseq,D,W-1].
template <class T>
struct causal_conv1d_args {
  const_view<T, bdl> x;                               ///< [B,D,L]
  const_view<T, dw> weight;                           ///< [D,W]
  const_view<T, ssm_layouts::d> bias;                 ///< [D] (optional)
  const_view<T, bdw> initial_states;                  ///< [B,D,W-1] (optional; zeros)
  index_view<ssm_layouts::i> cu_seqlens;  ///< [Nseq+1] varlen, B = 1 (optional)
  tensor_view<T, bdl> out;                            ///< [B,D,L]
  tensor_view<T, bdw> final_states;                   ///< [B,D,W-1] (optional)
};
struct causal_conv1d_options {
  conv_activation activation = conv_activation::none;
  run_context run{};
};

/// Decode form of causal_conv1d: L new tokens per row against a state of the last S >= W-1 inputs,
/// updated in place. Without cache_seqlens the state shifts left (newest at S-1); with cache_seqlens it is a
/// ring buffer whose next write position is cache_seqlens[b] % S (the caller advances cache_seqlens).
template <class T>
struct causal_conv1d_update_args {
  const_view<T, bdl> x;                               ///< [B,D,L]
  tensor_view<T, ssm_layouts::bds> conv_state;        ///< [Bs,D,S] in/out
  const_view<T, dw> weight;                           ///< [D,W]
  const_view<T, ssm_layouts::d> bias;                 ///< [D] (optional)
  index_view<ssm_layouts::b> cache_seqlens;       ///< [B] (optional: ring buffer)
  index_view<ssm_layouts::b> conv_state_indices;  ///< [B] (optional; < 0 skips the row)
  tensor_view<T, bdl> out;                            ///< [B,D,L]
};

}  // namespace seqmix
