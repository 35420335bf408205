// SPDX-License-Identifier: Apache-2.0
// seqmix/core/backend.hpp: backends are tags (as xsimd arches are). Every op has one entry point whose
// last template parameter picks the backend: reference (float64) or simd<Arch> (xsimd kernels).
#pragma once

#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace seqmix {

/// Float64 accumulation, any stride: the yardstick every fast path is tested against.
struct reference {};

/// xsimd kernels for Arch (default: the best the compiler flags enable).
template <class Arch = xsimd::default_arch>
struct simd {
  using arch = Arch;
};

template <class B>
struct is_backend : std::false_type {};
template <>
struct is_backend<reference> : std::true_type {};
template <class A>
struct is_backend<simd<A>> : std::true_type {};

template <class B>
concept backend = is_backend<B>::value;

}  // namespace seqmix
