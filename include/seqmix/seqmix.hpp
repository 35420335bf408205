// SPDX-License-Identifier: Apache-2.0
// seqmix/seqmix.hpp: umbrella header (core, simd, runtime, every op family, compose).
#pragma once

#include "config.hpp"
#include "version.hpp"

#include "core/core.hpp"
#include "core/eigen_interop.hpp"
#include "simd/simd.hpp"
#include "runtime/runtime.hpp"

#include "ops/flash_attention/flash_attention.hpp"
#include "ops/linear_attention/linear_attention.hpp"
#include "ops/ssm_scan/ssm_scan.hpp"

#include "compose/compose.hpp"
