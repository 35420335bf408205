// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/policies.hpp: the SSM family's small policy types: conv activation, SSD mode, and
// the index/layout vocabulary its arguments use.
#pragma once

#include <cstdint>

#include "../../core/axis.hpp"
#include "../../core/layout.hpp"

namespace seqmix {

/// Activation after causal_conv1d (SPEC §3.2.4).
enum class conv_activation { none, silu };

/// Which form ssd runs: the chunked form (masked GEMMs inside chunks, state passing between them), the
/// token-recurrent form, or auto (chunked for long inputs, recurrent for short ones).
enum class ssd_mode { auto_select, chunk, recurrent };

/// Integer tensors of the SSM family (cu_seqlens, seq_idx, slot indices) are int64.
using ssm_index_t = std::int64_t;

namespace ssm_layouts {
using i = layout<axis::I>;         ///< cu_seqlens [Nseq+1]
using b = layout<axis::B>;         ///< per-row indices [B]
using d = layout<axis::D>;         ///< per-channel vectors [D]
using h = layout<axis::H>;         ///< per-head vectors [H]
using hpn = layout<axis::H, axis::P, axis::N>;  ///< decode A [H,P,N] (Mamba-2: P, N strides 0)
using bds = layout<axis::B, axis::D, axis::S>;  ///< conv decode state [B,D,S], S >= W-1
}  // namespace ssm_layouts

}  // namespace seqmix
