// SPDX-License-Identifier: Apache-2.0
// seqmix/core/axis.hpp: axis tags; each names itself for error messages.
#pragma once

namespace seqmix::axis {

#define SEQMIX_DEFINE_AXIS(X)                  \
  struct X {                                   \
    static constexpr const char* name = #X;    \
  }

SEQMIX_DEFINE_AXIS(B);  ///< batch
SEQMIX_DEFINE_AXIS(T);  ///< time (sequence position; SSM ops' L)
SEQMIX_DEFINE_AXIS(L);  ///< time in channel-first SSM layouts ([B,D,L])
SEQMIX_DEFINE_AXIS(H);  ///< heads
SEQMIX_DEFINE_AXIS(D);  ///< head dim (attention) or channels (Mamba-1, conv, HGRN)
SEQMIX_DEFINE_AXIS(K);  ///< key/query head dim
SEQMIX_DEFINE_AXIS(V);  ///< value head dim
SEQMIX_DEFINE_AXIS(N);  ///< SSM state size, or sequences in linear-family state shapes
SEQMIX_DEFINE_AXIS(G);  ///< groups
SEQMIX_DEFINE_AXIS(P);  ///< SSD head dim, or pages in a block table
SEQMIX_DEFINE_AXIS(W);  ///< convolution width
SEQMIX_DEFINE_AXIS(E);  ///< experts
SEQMIX_DEFINE_AXIS(S);  ///< slots (pages, cache positions)
SEQMIX_DEFINE_AXIS(I);  ///< generic index (rows of a matrix, cu_seqlens entries)
SEQMIX_DEFINE_AXIS(J);  ///< generic index (columns of a matrix)

#undef SEQMIX_DEFINE_AXIS

}  // namespace seqmix::axis
