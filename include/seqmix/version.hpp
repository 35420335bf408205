// SPDX-License-Identifier: Apache-2.0
// seqmix/version.hpp: library version.
#pragma once

#define SEQMIX_VERSION_MAJOR 0
#define SEQMIX_VERSION_MINOR 1
#define SEQMIX_VERSION_PATCH 0

namespace seqmix {
inline constexpr int version_major = SEQMIX_VERSION_MAJOR;
inline constexpr int version_minor = SEQMIX_VERSION_MINOR;
inline constexpr int version_patch = SEQMIX_VERSION_PATCH;
}  // namespace seqmix
