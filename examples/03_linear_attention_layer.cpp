// SPDX-License-Identifier: Apache-2.0
// examples/03_linear_attention_layer.cpp: a GLA layer (d_model=512, H=8, K=V=64) with seeded random weights
// prefills a 512-token prompt in chunk form, keeps the final state, then decodes 32 tokens one at a time
// from that state; the decode outputs are checked against one chunk pass over all the tokens.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <Eigen/Core>

#include <seqmix/ops/linear_attention/linear_attention.hpp>

using namespace seqmix;
using clock_type = std::chrono::steady_clock;
using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {
double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}
matrix random_matrix(index_t rows, index_t cols, float scale, std::mt19937& g) {
  std::normal_distribution<float> n(0.0f, scale);
  matrix m(rows, cols);
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = n(g);
  return m;
}

/// The layer's weights: projections to q, k, v, the per-key log decay gk, and back to d_model.
struct gla_layer {
  index_t d, H, K, V;
  matrix wq, wk, wv, wg, wo;

  gla_layer(index_t d_model, index_t heads, index_t dk, index_t dv, std::mt19937& g)
      : d(d_model), H(heads), K(dk), V(dv),
        wq(random_matrix(d, H * K, 1.0f / std::sqrt(static_cast<float>(d)), g)),
        wk(random_matrix(d, H * K, 1.0f / std::sqrt(static_cast<float>(d)), g)),
        wv(random_matrix(d, H * V, 1.0f / std::sqrt(static_cast<float>(d)), g)),
        wg(random_matrix(d, H * K, 1.0f / std::sqrt(static_cast<float>(d)), g)),
        wo(random_matrix(H * V, d, 1.0f / std::sqrt(static_cast<float>(H * V)), g)) {}

  /// Projections of T tokens x [T, d]: q, k [T, H*K], v [T, H*V], gk = logsigmoid(x wg) / 16 [T, H*K].
  struct projected {
    matrix q, k, v, gk;
  };
  projected project(const matrix& x) const {
    projected p{x * wq, x * wk, x * wv, x * wg};
    p.gk = p.gk.unaryExpr([](float z) { return -std::log1p(std::exp(-z)) / 16.0f; });
    return p;
  }
  /// GLA over the projected tokens (chunk form for a prompt, state in and out), o [T, H*V].
  void mix(const projected& p, matrix& o, const_state_view initial, state_view final_state, linear_mode mode) const {
    const index_t T = p.q.rows();
    gla(gla_args<float>{.q = const_view<float, bthk>(p.q.data(), {1, T, H, K}),    // [1,T,H,K]
                        .k = const_view<float, bthk>(p.k.data(), {1, T, H, K}),    // [1,T,H,K]
                        .v = const_view<float, bthv>(p.v.data(), {1, T, H, V}),    // [1,T,H,V]
                        .gk = const_view<float, bthk>(p.gk.data(), {1, T, H, K}),  // [1,T,H,K]
                        .initial_state = initial,
                        .o = tensor_view<float, bthv>(o.data(), {1, T, H, V}),     // [1,T,H,V]
                        .final_state = final_state},
        gla_options{.mode = mode});
  }
  /// One decode step from the state (updated in place), o [1, H*V].
  void step(const projected& p, matrix& o, state_view state) const {
    gla_decode(gla_args<float>{.q = const_view<float, bthk>(p.q.data(), {1, 1, H, K}),    // [1,1,H,K]
                               .k = const_view<float, bthk>(p.k.data(), {1, 1, H, K}),    // [1,1,H,K]
                               .v = const_view<float, bthv>(p.v.data(), {1, 1, H, V}),    // [1,1,H,V]
                               .gk = const_view<float, bthk>(p.gk.data(), {1, 1, H, K}),  // [1,1,H,K]
                               .o = tensor_view<float, bthv>(o.data(), {1, 1, H, V})},    // [1,1,H,V]
               state);
  }
};
}  // namespace

int main() {
  const auto start = clock_type::now();
  const index_t d = 512, H = 8, K = 64, V = 64, prompt = 512, steps = 32, total = prompt + steps;
  std::mt19937 g(11);
  const gla_layer layer(d, H, K, V, g);
  const matrix x = random_matrix(total, d, 1.0f, g);  // [total, d]: the prompt, then the tokens to decode

  // 1. Prefill the prompt in chunk form; the final state [1,H,K,V] carries the whole prompt.
  std::vector<float> state(static_cast<std::size_t>(H * K * V));
  state_view s(state.data(), {1, H, K, V});  // [1,H,K,V]
  auto t0 = clock_type::now();
  const auto pp = layer.project(x.topRows(prompt));
  matrix o_prompt(prompt, H * V);
  layer.mix(pp, o_prompt, {}, s, linear_mode::chunk);
  const matrix y_prompt = o_prompt * layer.wo;  // [T, d]
  const double prefill_ms = ms_since(t0);
  std::printf("prefill: GLA layer d_model=%td H=%td K=V=%td, %td tokens in chunk form: %.2f ms (%.1f us/token)\n", d,
              H, K, prompt, prefill_ms, prefill_ms * 1e3 / static_cast<double>(prompt));

  // 2. Decode token by token from the state: O(1) work per token, whatever the prompt length.
  matrix o_dec(steps, H * V), o_t(1, H * V);
  t0 = clock_type::now();
  for (index_t t = 0; t < steps; ++t) {
    const auto pt = layer.project(x.row(prompt + t));
    layer.step(pt, o_t, s);
    o_dec.row(t) = o_t.row(0);
  }
  const matrix y_dec = o_dec * layer.wo;  // [steps, d]
  const double decode_ms = ms_since(t0);
  std::printf("decode: %td tokens from the state [1,%td,%td,%td]: %.3f ms per token\n", steps, H, K, V,
              decode_ms / static_cast<double>(steps));

  // 3. Check: one chunk pass over prompt + decoded tokens gives the same outputs for the decoded tokens.
  matrix o_all(total, H * V);
  layer.mix(layer.project(x), o_all, {}, {}, linear_mode::chunk);
  const double err = (o_all.bottomRows(steps) - o_dec).cwiseAbs().maxCoeff();
  const double scale = o_all.bottomRows(steps).cwiseAbs().maxCoeff();
  std::printf("decode outputs vs one chunk pass over %td tokens: max |diff| = %.2e (outputs up to %.2f); "
              "layer output norm %.3f\n", total, err, scale, static_cast<double>(y_prompt.norm() + y_dec.norm()));
  std::printf("03_linear_attention_layer: done in %.1f ms\n", ms_since(start));
  return err <= 1e-3 * std::max(1.0, scale) ? 0 : 1;
}
