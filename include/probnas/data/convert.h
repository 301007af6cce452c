#pragma once
// probnas convert: image folder trees (ImageNet layout), CIFAR binaries, IDX files and synthetic
// data to HDF5 image shards (data/shards.h). Ranks convert disjoint shards; which examples go in
// which shard depends only on the input, the options and the seed, never on the rank count.
#include <cstdint>
#include <string>

#include "probnas/core/option_binding.h"

namespace probnas {

class Communicator;

// The options of probnas convert (undotted: --from, --in, --out, ...).
struct ConvertOptions {
  std::string from = "folder", in, split = "train", out, encoding = "auto", shape = "3x224x224", log_level = "info";
  bool from_given = false, size_given = false;  // --from / --size given rather than defaulted
  int64_t size = 0, quality = 90, seed = 0, shard_size = 0, threads = 0, synthetic = 0, classes = 1000;
  double fraction = 1.0;
};
const OptionBinding<ConvertOptions>& convert_options();

struct ConvertSummary {
  int64_t images = 0, classes = 0, skipped = 0, shards = 0, reused_shards = 0, bytes = 0;
  double seconds = 0;
  std::string out;
};

// Converts as `config` says; every rank calls it. Rank 0 writes the index and returns the totals.
ConvertSummary run_convert(const ConvertOptions& options, Communicator& comm);

}  // namespace probnas
