// SPDX-License-Identifier: Apache-2.0
// seqmix/ops/ssm_scan/simd.hpp: xsimd fast paths of the SSM family (selective_scan, ssd chunked and
// recurrent, selective_state_update, causal_conv1d and its decode update).
#pragma once

#include "detail/conv_simd.hpp"
#include "detail/scan_simd.hpp"
#include "detail/ssd_simd.hpp"
#include "detail/update_simd.hpp"
