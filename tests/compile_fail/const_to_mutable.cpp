// SPDX-License-Identifier: Apache-2.0
// Must not compile: an input (const) view converted to an output (mutable) view.
#include <seqmix/core/tensor_view.hpp>

using namespace seqmix;

static void write(tensor_view<float, btd> y) { y(0, 0, 0) = 1.0f; }

int main() {
  float buf[8] = {};
#if defined(SEQMIX_CF_CONTROL)
  tensor_view<float, btd> x(buf, {1, 2, 4});
#else
  tensor_view<const float, btd> x(buf, {1, 2, 4});
#endif
  write(x);
  return 0;
}
