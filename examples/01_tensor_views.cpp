// SPDX-License-Identifier: Apache-2.0
// examples/01_tensor_views.cpp: views over foreign buffers: a torch-style [B,H,T,D] buffer read as [B,T,H,D]
// without a copy, slices, an Eigen map of one head, and a parallel_for over (batch, head).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <seqmix/seqmix.hpp>

using namespace seqmix;

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  const index_t B = 2, H = 8, T = 512, D = 64;

  // A buffer some other framework owns, laid out [B,H,T,D] (PyTorch's usual attention layout).
  std::vector<float> buf(static_cast<std::size_t>(B * H * T * D));
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& x : buf) x = normal(rng);

  // Read it as seqmix's canonical [B,T,H,D]: same memory, permuted strides.
  tensor_view<const float, bthd> q(buf.data(), {B, T, H, D}, {H * T * D, D, T * D, 1});  // [B,T,H,D]
  index_t mismatches = 0;
  for (index_t b = 0; b < B; ++b)
    for (index_t t = 0; t < T; t += 37)
      for (index_t h = 0; h < H; ++h)
        for (index_t d = 0; d < D; d += 5)
          mismatches += q(b, t, h, d) != buf[static_cast<std::size_t>(((b * H + h) * T + t) * D + d)];
  std::printf("[B,H,T,D] buffer read as [B,T,H,D] = [%td,%td,%td,%td], strides {%td,%td,%td,%td}: %td mismatches\n",
              q.extent<axis::B>(), q.extent<axis::T>(), q.extent<axis::H>(), q.extent<axis::D>(),
              q.stride<axis::B>(), q.stride<axis::T>(), q.stride<axis::H>(), q.stride<axis::D>(), mismatches);

  // Views of views: the last 128 tokens, one batch row, and the original order back.
  auto tail = q.slice<axis::T>(T - 128, T);                           // [B,128,H,D]
  auto row = tail.at<axis::B>(1);                                     // [128,H,D]
  auto torch_order = q.as<layout<axis::B, axis::H, axis::T, axis::D>>();  // [B,H,T,D]
  std::printf("slice T[%td,%td) -> [%td,%td,%td,%td]; batch 1 -> [%td,%td,%td]; as [B,H,T,D] contiguous: %s\n",
              T - 128, T, tail.extent<axis::B>(), tail.extent<axis::T>(), tail.extent<axis::H>(),
              tail.extent<axis::D>(), row.extent<axis::T>(), row.extent<axis::H>(), row.extent<axis::D>(),
              torch_order.is_contiguous() ? "yes" : "no");

  // One head as an Eigen matrix (no copy): causal attention scores of the last 128 tokens of head 3.
  auto head = row.at<axis::H>(3);                                     // [128,D]
  auto m = as_eigen(head);                                            // Eigen::Map, strides {D, 1}
  const Eigen::MatrixXf scores = (m * m.transpose()) / std::sqrt(static_cast<float>(D));  // [128,128]
  std::printf("Eigen map of one head: %tdx%td, scores %tdx%td, trace %.3f\n", static_cast<index_t>(m.rows()),
              static_cast<index_t>(m.cols()), static_cast<index_t>(scores.rows()),
              static_cast<index_t>(scores.cols()), static_cast<double>(scores.trace()));

  // A parallel_for over the (batch, head) grid: RMS of every head, each task writing its own slot.
  std::vector<float> rms(static_cast<std::size_t>(B * H));
  tensor_view<float, bh> out(rms.data(), {B, H});                     // [B,H]
  const auto p0 = std::chrono::steady_clock::now();
  parallel_for(par, grid{B, H}, [&](index_t b, index_t h) {
    auto x = q.at<axis::B>(b).at<axis::H>(h);                         // [T,D], strided
    double s = 0;
    for (index_t t = 0; t < T; ++t)
      for (index_t d = 0; d < D; ++d) s += static_cast<double>(x(t, d)) * x(t, d);
    out(b, h) = static_cast<float>(std::sqrt(s / static_cast<double>(T * D)));
  });
  const double par_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p0).count();
  float lo = rms[0], hi = rms[0];
  for (float r : rms) lo = std::min(lo, r), hi = std::max(hi, r);
  std::printf("parallel_for over grid{B=%td,H=%td} on %d threads: per-head RMS in [%.3f, %.3f] (%.3f ms)\n", B, H,
              par.concurrency(), static_cast<double>(lo), static_cast<double>(hi), par_ms);

  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("01_tensor_views: done in %.2f ms\n", ms);
  return mismatches == 0 ? 0 : 1;
}
