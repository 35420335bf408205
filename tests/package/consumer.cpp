// SPDX-License-Identifier: Apache-2.0
// A consumer outside the tree: makes a view over its own buffer and runs a parallel loop.
#include <seqmix/seqmix.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> buf(2 * 3 * 4 * 5, 1.0f);
  seqmix::tensor_view<const float, seqmix::bthd> q(buf.data(), {2, 3, 4, 5});  // [B,T,H,D]
  double sum = 0;
  for (seqmix::index_t b = 0; b < q.extent<seqmix::axis::B>(); ++b)
    for (seqmix::index_t t = 0; t < q.extent<seqmix::axis::T>(); ++t) sum += q(b, t, 3, 4);
  std::printf("seqmix %d.%d.%d: view [B,T,H,D] of %td elements, sum %g\n", seqmix::version_major,
              seqmix::version_minor, seqmix::version_patch, q.size(), sum);
  return sum == 6.0 ? 0 : 1;
}
