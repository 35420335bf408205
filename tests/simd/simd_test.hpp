// SPDX-License-Identifier: Apache-2.0
// tests/simd/simd_test.hpp: what every simd/ test shares: the instruction sets each test runs on (the default
// one, and SSE2 as a second width on x86) and the float special values.
#pragma once

#include <limits>
#include <tuple>

#include <xsimd/xsimd.hpp>

namespace seqmix::testing {

#if defined(__SSE2__)
using simd_archs = std::tuple<xsimd::default_arch, xsimd::sse2>;
#else
using simd_archs = std::tuple<xsimd::default_arch>;
#endif
inline constexpr float fnan = std::numeric_limits<float>::quiet_NaN();
inline constexpr float finf = std::numeric_limits<float>::infinity();

}  // namespace seqmix::testing
