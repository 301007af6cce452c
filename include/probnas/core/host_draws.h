#pragma once
// Randomness drawn on the host, used on the device (the step's half of graph readiness).
//
// Every random draw of a search step comes from a keyed CPU generator (core/rng.h), never from a
// device generator. So a draw is the same noise on any device and any world size: CUDA and CPU
// runs of one configuration draw the same samples, up to a rare rounding flip at a rejection
// boundary or an argmax tie. GradientMethod makes the draws of a step (DrNAS's gamma candidates,
// GDAS's Exp(1) draws) before the step and stages them, with one asynchronous copy from pinned
// memory, in one device buffer whose address stays fixed while the step's shapes do. A DrNAS or
// DARTS step then reads fixed device memory, launches no random kernel and never waits for the
// host, which is what a CUDA-graph capture of the step needs (the capture itself is the GPU
// issue's). Methods that draw inside their step (PGNAS's gates, GibbsNAS's noise) use
// host_rand/host_randn: host numbers, copied without a sync, not staged.
#include <torch/types.h>

#include <functional>
#include <unordered_map>
#include <vector>

#include "probnas/core/rng.h"

namespace probnas {

// `host` (a CPU tensor) on `device`: itself on the CPU; elsewhere copied through pinned memory
// without a host synchronisation (the caching host allocator keeps the pinned block until the copy
// is done).
torch::Tensor host_to_device(const torch::Tensor& host, const c10::Device& device);

// U[0, 1) and N(0, 1) draws of `sizes` and `options`' dtype from `gen` (a CPU generator), on
// `options`' device (host_to_device): the numbers of torch::rand / torch::randn with that
// generator on the CPU, whatever the device.
torch::Tensor host_rand(at::IntArrayRef sizes, at::Generator& gen, const torch::TensorOptions& options);
torch::Tensor host_randn(at::IntArrayRef sizes, at::Generator& gen, const torch::TensorOptions& options);

// The draws of one step, staged in one device buffer.
class StagedDraws {
 public:
  // What one key draws, on the host (a CPU tensor; undefined: the key draws nothing).
  using Draw = std::function<torch::Tensor(const RngKey&)>;

  // Draws every key (in order, each from its own generator), packs the draws into one host tensor
  // and copies it into the device buffer, which is reallocated only when the total size or the
  // dtype changes. Replaces what was staged before. Every draw must have `dtype`.
  void stage(const std::vector<RngKey>& keys, const Draw& draw, const c10::Device& device);
  // The staged draw of `key` on the device (a view of the buffer, in the draw's shape), or an
  // undefined tensor when `key` was not staged.
  torch::Tensor find(const RngKey& key) const;
  // Forgets the staged draws (the buffer stays allocated).
  void clear() { views_.clear(); }
  // The device buffer (undefined before the first stage); for tests of its fixed address.
  const torch::Tensor& buffer() const { return buffer_; }

 private:
  torch::Tensor buffer_;
  std::unordered_map<uint64_t, torch::Tensor> views_;
};

}  // namespace probnas
