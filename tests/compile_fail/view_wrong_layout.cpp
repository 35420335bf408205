// SPDX-License-Identifier: Apache-2.0
// Must not compile: a [B,H,T,D] view passed where [B,T,H,D] is expected (swapped axes are a type error).
#include <seqmix/core/tensor_view.hpp>

using namespace seqmix;
using bhtd = layout<axis::B, axis::H, axis::T, axis::D>;

static float sum_first(tensor_view<const float, bthd> q) { return q(0, 0, 0, 0); }

int main() {
  float buf[16] = {1.0f};
#if defined(SEQMIX_CF_CONTROL)
  tensor_view<const float, bthd> q(buf, {1, 2, 2, 4});
#else
  tensor_view<const float, bhtd> q(buf, {1, 2, 2, 4});
#endif
  return static_cast<int>(sum_first(q));
}
