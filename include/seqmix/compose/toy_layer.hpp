// SPDX-License-Identifier: Apache-2.0
// seqmix/compose/toy_layer.hpp: a minimal stateful layer (per-channel exponential moving average) that
// shows the layer contract; the families' real layers follow the same shape.
#pragma once

#include <cmath>
#include <vector>

#include "../core/check.hpp"
#include "../core/tensor_view.hpp"
#include "../runtime/workspace.hpp"
#include "layer.hpp"

namespace seqmix {

/// x_t <- x_t + h_t with h_t = a ⊙ h_{t-1} + (1 - a) ⊙ x_t per channel; state h [B,D].
class ema_layer {
 public:
  struct state_type {
    std::vector<float> h;  // [B,D]
    index_t batch = 0, dim = 0;
  };

  /// decay a [D], each in [0, 1].
  explicit ema_layer(std::vector<float> decay) : a_(std::move(decay)) {
    const check c("ema_layer");
    for (float v : a_) c.in_range("decay", v, 0.0, 1.0);
  }

  state_type make_state(index_t batch, index_t /*max_t*/) const {
    return {std::vector<float>(static_cast<std::size_t>(batch) * a_.size(), 0.0f), batch,
            static_cast<index_t>(a_.size())};
  }

  /// Shapes: x [B,T,D] with D = decay.size() and B = the state's batch.
  /// Throws: seqmix::shape_error when extents disagree.
  void forward(tensor_view<float, btd> x, state_type& s, workspace& /*ws*/) const {
    const check c("ema_layer");
    c.extent<axis::D>("x", x, static_cast<index_t>(a_.size()), "decay [D]");
    c.extent<axis::B>("x", x, s.batch, "state [B,D]");
    for (index_t b = 0; b < x.extent<axis::B>(); ++b) {
      float* h = s.h.data() + b * s.dim;
      for (index_t t = 0; t < x.extent<axis::T>(); ++t) {
        for (index_t d = 0; d < s.dim; ++d) {
          const float a = a_[static_cast<std::size_t>(d)];
          h[d] = a * h[d] + (1.0f - a) * x(b, t, d);
          x(b, t, d) += h[d];
        }
      }
    }
  }

 private:
  std::vector<float> a_;
};

static_assert(layer<ema_layer>);

}  // namespace seqmix
