// SPDX-License-Identifier: Apache-2.0
// seqmix/compose/stack.hpp: stack<L...> and repeat<N, L...>: hybrid layer stacks composed at compile time.
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include "../core/tensor_view.hpp"
#include "../runtime/workspace.hpp"
#include "layer.hpp"

namespace seqmix {

/// Layers applied in order; a stack's state is the tuple of its layers' states. A stack is a layer
/// itself, so stacks nest.
template <layer... Ls>
class stack {
 public:
  using state_type = std::tuple<typename Ls::state_type...>;
  static constexpr std::size_t size = sizeof...(Ls);

  stack() = default;
  template <class... Args>
    requires(sizeof...(Args) == sizeof...(Ls) && sizeof...(Ls) > 0)
  explicit stack(Args&&... ls) : layers_(std::forward<Args>(ls)...) {}

  /// One state per layer for `batch` rows and up to `max_t` tokens.
  state_type make_state(index_t batch, index_t max_t) const {
    return std::apply([&](const auto&... l) { return state_type{l.make_state(batch, max_t)...}; }, layers_);
  }
  /// x [B,T,D] through every layer in order (T > 1 prefill, T == 1 decode).
  void forward(tensor_view<float, btd> x, state_type& s, workspace& ws) const {
    forward_impl(x, s, ws, std::index_sequence_for<Ls...>{});
  }

  template <std::size_t I>
  const auto& get() const noexcept { return std::get<I>(layers_); }
  template <std::size_t I>
  auto& get() noexcept { return std::get<I>(layers_); }

 private:
  template <std::size_t... I>
  void forward_impl(tensor_view<float, btd> x, state_type& s, workspace& ws, std::index_sequence<I...>) const {
    (std::get<I>(layers_).forward(x, std::get<I>(s), ws), ...);
  }
  std::tuple<Ls...> layers_;
};

namespace detail {
template <std::size_t N, class Block, class Acc>
struct repeat_impl;
template <class Block, class... Acc>
struct repeat_impl<0, Block, stack<Acc...>> {
  using type = stack<Acc...>;
};
template <std::size_t N, class... Bs, class... Acc>
  requires(N > 0)
struct repeat_impl<N, stack<Bs...>, stack<Acc...>> {
  using type = typename repeat_impl<N - 1, stack<Bs...>, stack<Acc..., Bs...>>::type;
};
}  // namespace detail

/// N copies of the block L... flattened into one stack (each copy has its own weights and state):
/// repeat<6, mamba, mamba, mamba, attention, moe>.
template <std::size_t N, layer... Ls>
using repeat = typename detail::repeat_impl<N, stack<Ls...>, stack<>>::type;

static_assert(layer<stack<>>, "an empty stack is a layer");

}  // namespace seqmix
