// SPDX-License-Identifier: Apache-2.0
// seqmix/runtime/workspace.hpp: per-worker scratch memory, reserved before a parallel loop so that hot
// loops never allocate; an arena carves aligned arrays out of one worker's block.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "../config.hpp"

namespace seqmix {

/// Scratch memory, one block per worker. reserve() grows (never shrinks) outside hot loops; get() is
/// then free of allocation. Not thread-safe for reserve(); get(w) from worker w is.
class workspace {
 public:
  static constexpr std::size_t alignment = 64;

  workspace() = default;
  workspace(const workspace&) = delete;
  workspace& operator=(const workspace&) = delete;
  workspace(workspace&&) noexcept = default;
  workspace& operator=(workspace&&) noexcept = default;

  /// Ensures `workers` blocks of at least `bytes` each.
  void reserve(int workers, std::size_t bytes) {
    bytes = round_up(bytes == 0 ? alignment : bytes);
    if (static_cast<int>(blocks_.size()) < workers) blocks_.resize(static_cast<std::size_t>(workers));
    if (bytes > bytes_) {
      for (auto& b : blocks_) b.reset();
      bytes_ = bytes;
    }
    for (auto& b : blocks_) {
      if (!b) b.reset(static_cast<std::byte*>(::operator new(bytes_, std::align_val_t{alignment})));
    }
  }
  /// Worker w's block (64-byte aligned, bytes_per_worker() long).
  std::byte* get(int w) const noexcept {
    SEQMIX_ASSERT(w >= 0 && w < static_cast<int>(blocks_.size()));
    return blocks_[static_cast<std::size_t>(w)].get();
  }
  std::size_t bytes_per_worker() const noexcept { return bytes_; }
  int workers() const noexcept { return static_cast<int>(blocks_.size()); }

  static constexpr std::size_t round_up(std::size_t n) noexcept {
    return (n + alignment - 1) / alignment * alignment;
  }

 private:
  struct aligned_delete {
    void operator()(std::byte* p) const noexcept { ::operator delete(p, std::align_val_t{alignment}); }
  };
  std::vector<std::unique_ptr<std::byte, aligned_delete>> blocks_;
  std::size_t bytes_ = 0;
};

/// The workspace used when a caller passes none: one per calling thread.
inline workspace& default_workspace() {
  thread_local workspace ws;
  return ws;
}

/// Carves 64-byte aligned arrays out of one block; size them with arena_bytes<T>(n) when reserving.
class arena {
 public:
  arena(std::byte* p, std::size_t bytes) noexcept : p_(p), left_(bytes) {}
  template <class T>
  T* alloc(index_t n) noexcept {
    const std::size_t sz = workspace::round_up(static_cast<std::size_t>(n) * sizeof(T));
    SEQMIX_ASSERT(sz <= left_);
    T* r = reinterpret_cast<T*>(p_);
    p_ += sz;
    left_ -= sz;
    return r;
  }

 private:
  std::byte* p_;
  std::size_t left_;
};

/// Bytes an arena needs for an array of n T's (rounded to the alignment).
template <class T>
constexpr std::size_t arena_bytes(index_t n) noexcept {
  return workspace::round_up(static_cast<std::size_t>(n) * sizeof(T));
}

}  // namespace seqmix
