#pragma once
// The sharded loader of DESIGN principle 2: a split is walked in global batches (fixed by the
// config, not by the world size); each global batch is cut into micro-batches; a rank takes
// its share of the micro-batches and reads only their examples. Order and augmentation are
// keyed by (seed, split, epoch, step, micro-batch), so every rank count and every restart sees
// the same examples: the loader's position is the global step the checkpoint holds.
//
// Reading, decoding and augmentation run on background threads (SplitOptions::workers) that
// work `prefetch` global steps ahead into a bounded queue; what they produce is the same as a
// synchronous read, so threads change speed, never results.
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "probnas/core/rng.h"
#include "probnas/data/source.h"

namespace probnas {

struct Batch {
  torch::Tensor x;      // float [b, C, H, W] on the run's device
  torch::Tensor y;      // int64 [b]
  int64_t index = 0;    // micro-batch index within the global batch (the logical unit)
  int64_t global = 0;   // examples in the whole global batch (for loss scaling)
};

struct TransformOptions {
  bool normalize = true;
  bool crop = true;             // random crop after zero padding (CIFAR style)
  int64_t crop_padding = 4;
  bool flip = true;
  bool resized_crop = false;    // random resized crop (ImageNet style), instead of the padded crop
  double crop_scale_min = 0.08; // smallest area fraction of a resized crop (aspect ratio in [3/4, 4/3])
  int64_t size = 0;             // output height = width (0: as stored); without augmentation the image is resized
  int64_t cutout = 0;           // side of the square cutout zeroes after normalisation (DARTS's Cutout; 0: none)
};

// uint8 images -> float; random (padded or resized) crop and horizontal flip drawn from `gen`
// when `augment`; resizing to options.size; then normalisation; then (when `augment`) cutout: one
// square of side options.cutout per image, centred uniformly in the image and clipped at its border,
// set to zero (DeVries & Taylor 2017, as DARTS's evaluation applies it).
torch::Tensor transform_images(const torch::Tensor& images, const TransformOptions& options,
                               const ChannelStats& stats, bool augment, at::Generator* gen);

// Makes LibTorch's CPU ops on the calling thread single-threaded (loader and decode threads).
void single_threaded_ops();

struct SplitOptions {
  int64_t global_batch = 64;
  int64_t micro_batches = 1;
  TransformOptions transform;
  bool augment = true;
  const char* batch_option = "search.batch_size";  // the option that set global_batch, for errors
  const char* micro_option = "search.micro_batches";  // the option that set micro_batches, for errors
  int64_t workers = 0;    // loader threads (0: read on the calling thread)
  int64_t prefetch = 2;   // global steps the threads work ahead
};

class SplitLoader {
 public:
  // `indices`: the examples of `data` that form this split; `key` identifies the split's draws.
  SplitLoader(std::shared_ptr<const ImageSource> data, torch::Tensor indices, ChannelStats stats, SplitOptions options,
              RngKey key, c10::Device device, int rank, int world_size);
  // The same over a dataset in memory.
  SplitLoader(const std::shared_ptr<const Dataset>& data, torch::Tensor indices, ChannelStats stats,
              SplitOptions options, RngKey key, c10::Device device, int rank, int world_size)
      : SplitLoader(memory_source(*data), std::move(indices), std::move(stats), options, key, device, rank,
                    world_size) {}
  ~SplitLoader();
  SplitLoader(SplitLoader&&) noexcept;
  SplitLoader& operator=(SplitLoader&&) = delete;

  int64_t examples() const;
  int64_t steps_per_epoch() const;
  // The rank's micro-batches of global batch `step` in `epoch`.
  std::vector<Batch> batch(int64_t epoch, int64_t step) const;
  // The same for a running step counter that wraps around epochs (the architecture split).
  std::vector<Batch> batch_at(int64_t global_step) const;
  // The examples (indices into the source) of global batch `global_step`, all micro-batches.
  torch::Tensor global_batch_indices(int64_t global_step) const;

  struct Core;
  struct Prefetcher;

 private:
  std::shared_ptr<Core> core_;
  std::unique_ptr<Prefetcher> prefetcher_;
  c10::Device device_;
};

struct SearchSplit {
  torch::Tensor weights;  // indices for the weight ("train") half
  torch::Tensor arch;     // indices for the architecture ("validation") half
};
// A seeded shuffle of [0, n), the first round(portion * n) for the weights, the rest for the architecture.
SearchSplit make_search_split(int64_t n, double train_portion, const RngKey& key);

}  // namespace probnas
