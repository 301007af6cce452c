#pragma once
// The sharded loader of DESIGN principle 2: a split is walked in global batches (fixed by the
// config, not by the world size); each global batch is cut into micro-batches; a rank takes
// its share of the micro-batches. Order and augmentation are keyed by (seed, split, epoch,
// step, micro-batch), so every rank count and every restart sees the same examples.
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "probnas/core/rng.h"
#include "probnas/data/dataset.h"

namespace probnas {

struct Batch {
  torch::Tensor x;      // float [b, C, H, W] on the run's device
  torch::Tensor y;      // int64 [b]
  int64_t index = 0;    // micro-batch index within the global batch (the logical unit)
  int64_t global = 0;   // examples in the whole global batch (for loss scaling)
};

struct TransformOptions {
  bool normalize = true;
  bool crop = true;
  int64_t crop_padding = 4;
  bool flip = true;
};

// Per-channel mean/std of a dataset's pixels in [0, 1].
struct ChannelStats {
  torch::Tensor mean, std;  // float [C]
  static ChannelStats of(const Dataset& data);
};

// uint8 images -> float; random crop (zero padding) and horizontal flip drawn from `gen`
// when `augment`; then normalisation.
torch::Tensor transform_images(const torch::Tensor& images, const TransformOptions& options,
                               const ChannelStats& stats, bool augment, at::Generator* gen);

struct SplitOptions {
  int64_t global_batch = 64;
  int64_t micro_batches = 1;
  TransformOptions transform;
  bool augment = true;
  const char* batch_option = "search.batch_size";  // the option that set global_batch, for errors
};

class SplitLoader {
 public:
  // `indices`: the examples of `data` that form this split; `key` identifies the split's draws.
  SplitLoader(std::shared_ptr<const Dataset> data, torch::Tensor indices, ChannelStats stats, SplitOptions options,
              RngKey key, c10::Device device, int rank, int world_size);

  int64_t examples() const { return indices_.numel(); }
  int64_t steps_per_epoch() const { return examples() / options_.global_batch; }
  // The rank's micro-batches of global batch `step` in `epoch`.
  std::vector<Batch> batch(int64_t epoch, int64_t step) const;
  // The same for a running step counter that wraps around epochs (the architecture split).
  std::vector<Batch> batch_at(int64_t global_step) const;

 private:
  const torch::Tensor& order(int64_t epoch) const;
  std::shared_ptr<const Dataset> data_;
  torch::Tensor indices_;
  ChannelStats stats_;
  SplitOptions options_;
  RngKey key_;
  c10::Device device_;
  int rank_, world_size_;
  mutable std::map<int64_t, torch::Tensor> orders_;  // epoch -> permutation (the newest two kept)
};

struct SearchSplit {
  torch::Tensor weights;  // indices for the weight ("train") half
  torch::Tensor arch;     // indices for the architecture ("validation") half
};
// A seeded shuffle of [0, n), the first round(portion * n) for the weights, the rest for the architecture.
SearchSplit make_search_split(int64_t n, double train_portion, const RngKey& key);

}  // namespace probnas
