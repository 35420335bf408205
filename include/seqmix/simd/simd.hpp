// SPDX-License-Identifier: Apache-2.0
// seqmix/simd/simd.hpp: umbrella for seqmix::vec (batch aliases, math, reductions, converting loads/stores,
// small-GEMM micro-kernels, software prefetch).
#pragma once

#include "arch.hpp"
#include "gemm.hpp"
#include "load_store.hpp"
#include "math.hpp"
#include "prefetch.hpp"
#include "reduce.hpp"
#include "transpose.hpp"
