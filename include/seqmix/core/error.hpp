// SPDX-License-Identifier: Apache-2.0
// seqmix/core/error.hpp: the one error type of the library.
#pragma once

#include <stdexcept>
#include <string>

namespace seqmix {

/// Thrown by every public entry point on bad input: shapes, strides, options, index tensors.
/// The message names the op, the tensor, the axis, what was found and what was expected, e.g.
/// "seqmix::gla: g.extent(T) = 7, expected 8 (from q [B,T,H,K])".
class shape_error : public std::invalid_argument {
 public:
  explicit shape_error(const std::string& what) : std::invalid_argument(what) {}
};

}  // namespace seqmix
