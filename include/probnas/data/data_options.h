#pragma once
// data.*: which images a run reads and how they are augmented, typed, with their declarations;
// and the sources and loader settings they describe.
#include <cstdint>
#include <memory>
#include <string>

#include "probnas/core/option_binding.h"
#include "probnas/data/loader.h"
#include "probnas/data/source.h"

namespace probnas {

struct DataOptions {
  std::string dataset = "fashion-mnist";
  std::string path, test_path;
  int64_t limit = 0;
  double train_portion = 0.5;
  bool normalize = true, crop = true, flip = true, random_resized_crop = false;
  int64_t crop_padding = 4;
  double crop_scale_min = 0.08;
  int64_t image_size = 0;
  int64_t workers = -1, prefetch = 2;
  int64_t synthetic_count = 1024, synthetic_size = 32, synthetic_channels = 3, synthetic_classes = 10;
  // Set from other sections: synthetic images are keyed by run.seed; shards are read with ckpt.file_locking.
  uint64_t seed = 0;
  bool file_locking = true;
};

const OptionBinding<DataOptions>& data_options();

// The training images (data.limit applied).
std::shared_ptr<const ImageSource> load_training_data(const DataOptions& options);
// The test images that go with them: the dataset's test split; for synthetic data other examples of
// the same classes; for shards the folder data.test_path names (errors say what to give).
std::shared_ptr<const ImageSource> load_test_data(const DataOptions& options);
// Whether load_test_data reads a test split of the data's own: the datasets' test files (or
// data.test_path), and shards only where data.test_path names them; not synthetic data, whose
// "test" images are drawn like its training images.
bool has_test_split(const DataOptions& options);
// The loader settings data.* sets (augmentation, resizing, loader threads); the batch sizes are the
// caller's. `root` logs once when loader threads have to be turned off.
SplitOptions data_split_options(const DataOptions& options, bool root);

}  // namespace probnas
