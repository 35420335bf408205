// SPDX-License-Identifier: Apache-2.0
// seqmix/seqmix.hpp: umbrella header (core, simd, runtime, every op family, compose).
#pragma once

#include "compose/compose.hpp"
#include "config.hpp"
#include "core/core.hpp"
#include "core/eigen_interop.hpp"
#include "runtime/runtime.hpp"
#include "version.hpp"
