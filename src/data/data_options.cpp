#include "probnas/data/data_options.h"

#include "probnas/core/error.h"
#include "probnas/core/hdf5.h"
#include "probnas/core/log.h"
#include "probnas/data/dataset.h"
#include "probnas/data/shards.h"

namespace probnas {

const OptionBinding<DataOptions>& data_options() {
  using O = DataOptions;
  static const auto b =
      OptionBinding<O>()
          .choice("data.dataset", &O::dataset, "fashion-mnist",
                  {"fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic", "shards"},
                  "training data (shards: HDF5 image shards written by probnas convert, read a batch at a time)")
          .text("data.path", &O::path, "", "folder of the dataset's files (empty: /usr/share/datasets/<dataset> for the "
                                           "MNIST family; required for CIFAR and shards: the folder probnas convert wrote)")
          .resumable()
          .text("data.test_path", &O::test_path, "", "folder of the test split (empty: data.path; for shards: a folder "
                                                     "probnas convert wrote from the test or validation images; probnas "
                                                     "train and PGNAS's test)")
          .resumable()
          .integer("data.limit", &O::limit, 0, 0, 1000000000, "use only the first N training images (0: all)")
          .real("data.train_portion", &O::train_portion, 0.5, 0.01, 0.99,
                "search: share of the training images for the weights; the rest drive the architecture")
          .boolean("data.normalize", &O::normalize, true, "normalise by the per-channel mean/std of the training images")
          .boolean("data.crop", &O::crop, true, "random crop after zero padding (training augmentation)")
          .integer("data.crop_padding", &O::crop_padding, 4, 0, 64, "padding of the random crop, pixels")
          .boolean("data.flip", &O::flip, true, "random horizontal flip (training augmentation)")
          .boolean("data.random_resized_crop", &O::random_resized_crop, false,
                   "ImageNet augmentation: a random crop of data.crop_scale_min-1 of the area at aspect ratio 3/4-4/3, "
                   "resized to data.image_size (replaces the padded crop)")
          .real("data.crop_scale_min", &O::crop_scale_min, 0.08, 0.01, 1.0,
                "smallest area fraction of a random resized crop")
          .integer("data.image_size", &O::image_size, 0, 0, 4096,
                   "height = width of the images the network sees (0: as stored); stored images are resized to it, or "
                   "random-resized-cropped to it")
          .integer("data.workers", &O::workers, -1, -1, 64,
                   "loader threads per rank that read, decode and augment ahead of the search (0: on the main thread; "
                   "-1: 2 for shards, 0 for data held in memory); they change speed, never results")
          .integer("data.prefetch", &O::prefetch, 2, 1, 64,
                   "global batches the loader threads prepare ahead (memory: this many batches of images)")
          .integer("data.synthetic_count", &O::synthetic_count, 1024, 2, 100000000, "synthetic: number of images")
          .integer("data.synthetic_size", &O::synthetic_size, 32, 4, 4096, "synthetic: image height and width")
          .integer("data.synthetic_channels", &O::synthetic_channels, 3, 1, 64, "synthetic: image channels")
          .integer("data.synthetic_classes", &O::synthetic_classes, 10, 2, 100000, "synthetic: classes");
  return b;
}

namespace {
SyntheticOptions synthetic(const DataOptions& o) {
  SyntheticOptions s;
  s.count = o.synthetic_count;
  s.size = o.synthetic_size;
  s.channels = o.synthetic_channels;
  s.classes = o.synthetic_classes;
  s.seed = o.seed;
  return s;
}
}  // namespace

std::shared_ptr<const ImageSource> load_training_data(const DataOptions& o) {
  PROBNAS_CHECK(o.limit == 0 || o.limit >= 2, "data.limit = ", o.limit, " leaves no data to split");
  if (o.dataset == "shards") {
    PROBNAS_CHECK(!o.path.empty(), "data.dataset = shards needs data.path: the folder probnas convert wrote (--out)");
    return std::make_shared<const ShardedSource>(o.path, o.limit, o.file_locking);
  }
  if (o.dataset == "synthetic") return memory_source(make_synthetic(synthetic(o)), o.limit);
  return memory_source(load_dataset(o.dataset, o.path, Split::train), o.limit);
}

std::shared_ptr<const ImageSource> load_test_data(const DataOptions& o) {
  if (o.dataset == "shards") {
    PROBNAS_CHECK(!o.test_path.empty(), "data.dataset = shards has no test split unless data.test_path names the "
                  "folder probnas convert wrote for it (e.g. ImageNet's validation images)");
    return std::make_shared<const ShardedSource>(o.test_path, 0, o.file_locking);
  }
  if (o.dataset == "synthetic") {
    SyntheticOptions s = synthetic(o);
    s.count = std::max<int64_t>(2, o.synthetic_count / 5);
    s.test_split = true;
    return memory_source(make_synthetic(s));
  }
  return memory_source(load_dataset(o.dataset, o.test_path.empty() ? o.path : o.test_path, Split::test));
}

bool has_test_split(const DataOptions& o) {
  return o.dataset != "synthetic" && (o.dataset != "shards" || !o.test_path.empty());
}

SplitOptions data_split_options(const DataOptions& o, bool root) {
  SplitOptions so;
  so.transform.normalize = o.normalize;
  so.transform.crop = o.crop;
  so.transform.crop_padding = o.crop_padding;
  so.transform.flip = o.flip;
  so.transform.resized_crop = o.random_resized_crop;
  so.transform.crop_scale_min = o.crop_scale_min;
  so.transform.size = o.image_size;
  so.workers = o.workers;
  if (so.workers < 0) so.workers = o.dataset == "shards" ? 2 : 0;
  if (so.workers > 0 && o.dataset == "shards" && !h5::library_is_threadsafe()) {
    if (root) {
      PROBNAS_LOG(warn) << "this HDF5 library is not thread-safe (a parallel HDF5 build?): the shards are read on "
                           "the main thread (data.workers = 0); link a thread-safe HDF5 for loader threads";
    }
    so.workers = 0;
  }
  so.prefetch = o.prefetch;
  return so;
}

}  // namespace probnas
