#pragma once
// Where a loader's examples come from: a dataset held in memory (IDX, CIFAR binary, synthetic) or
// HDF5 image shards on disk, read a few examples at a time (data/shards.h). Sources are read by
// the loader's threads concurrently: read() must be thread-safe.
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "probnas/data/dataset.h"

namespace probnas {

// Per-channel mean/std of a dataset's pixels in [0, 1].
struct ChannelStats {
  torch::Tensor mean, std;  // float [C]
  static ChannelStats of(const Dataset& data);
};

struct Examples {
  torch::Tensor images;  // uint8 [b, C, H, W]
  torch::Tensor labels;  // int64 [b]
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual const std::string& name() const = 0;
  virtual int64_t size() const = 0;
  // The stored image shape, the same for every example.
  virtual int64_t channels() const = 0;
  virtual int64_t height() const = 0;
  virtual int64_t width() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  // The examples `indices` (int64, any order, repeats allowed), in that order. Thread-safe.
  virtual Examples read(const torch::Tensor& indices) const = 0;
  // Normalisation statistics of the dataset's pixels.
  virtual ChannelStats stats() const = 0;
  // Identifies the data (files, sizes, dataset id): equal on every rank, and between a run and its resumption.
  virtual std::string fingerprint() const = 0;
};

// A dataset in memory; `limit` > 0 keeps only its first `limit` examples.
std::shared_ptr<const ImageSource> memory_source(Dataset data, int64_t limit = 0);

}  // namespace probnas
