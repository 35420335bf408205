// SPDX-License-Identifier: Apache-2.0
// seqmix/compose/layer.hpp: the `layer` concept every mixer layer models.
#pragma once

#include <concepts>

#include "../core/tensor_view.hpp"
#include "../runtime/workspace.hpp"

namespace seqmix {

/// A layer maps the residual stream x [B,T,D] in place and owns its state type (KV cache, recurrent
/// state, or an empty struct). forward() serves a prompt (T > 1) and a decode step (T == 1) alike:
/// prefill(T) then n decode steps must equal prefill(T + n).
template <class L>
concept layer = requires(const L& l, typename L::state_type& s, tensor_view<float, btd> x, workspace& ws,
                         index_t batch, index_t max_t) {
  typename L::state_type;
  { l.make_state(batch, max_t) } -> std::same_as<typename L::state_type>;
  { l.forward(x, s, ws) } -> std::same_as<void>;
};

}  // namespace seqmix
