// SPDX-License-Identifier: Apache-2.0
// Must not compile: asking a [B,T,D] view for the extent of an axis it does not have.
#include <seqmix/core/tensor_view.hpp>

using namespace seqmix;

int main() {
  float buf[8] = {};
  tensor_view<const float, btd> x(buf, {1, 2, 4});
#if defined(SEQMIX_CF_CONTROL)
  return static_cast<int>(x.extent<axis::D>() - 4);
#else
  return static_cast<int>(x.extent<axis::H>());
#endif
}
