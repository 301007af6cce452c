#pragma once
// An in-memory image classification dataset: uint8 images [N, C, H, W] and int64 labels [N].
#include <torch/types.h>

#include <string>
#include <vector>

namespace probnas {

struct Dataset {
  std::string name;
  torch::Tensor images;  // uint8 [N, C, H, W], CPU
  torch::Tensor labels;  // int64 [N], CPU
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::vector<std::string> files;  // the files it was read from (for the ranks' consistency check)

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
  // The first n examples (n = 0 or n >= size: all).
  Dataset head(int64_t n) const;
};

enum class Split { train, test };

// Reads a named dataset ("fashion-mnist", "mnist", "cifar10", "cifar100") from `path`
// (empty: the dataset's default location). Errors name the file and how to get it.
Dataset load_dataset(const std::string& name, const std::string& path, Split split);
// The default folder of a named dataset ("" when it has none).
std::string default_data_path(const std::string& name);

// IDX (MNIST-style) files, gzip-compressed or plain.
torch::Tensor read_idx(const std::string& path, int expected_dims);  // uint8 tensor of the stored shape
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path, const std::string& name,
                         std::vector<std::string> class_names);
// CIFAR binary batches: records of `label_bytes` label bytes (the last one used) + 3*32*32 pixels.
Dataset read_cifar_binary(const std::vector<std::string>& files, int label_bytes, int64_t num_classes,
                          const std::string& name, std::vector<std::string> class_names);

struct SyntheticOptions {
  int64_t count = 1024, channels = 3, size = 32, classes = 10;
  uint64_t seed = 0;
  bool test_split = false;  // other examples of the same classes (the same prototypes), for testing
};
// Learnable synthetic images: a per-class pattern plus noise, drawn from keyed generators.
Dataset make_synthetic(const SyntheticOptions& options);

}  // namespace probnas
