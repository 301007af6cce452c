#pragma once
// probnas convert: image folder trees (ImageNet layout), CIFAR binaries, IDX files and synthetic
// data to HDF5 image shards (data/shards.h). Ranks convert disjoint shards; which examples go in
// which shard depends only on the input, the options and the seed, never on the rank count.
#include <cstdint>
#include <string>

#include "probnas/core/config.h"

namespace probnas {

class Communicator;

// The options of probnas convert (undotted: --from, --in, --out, ...).
const OptionTable& convert_option_table();

struct ConvertSummary {
  int64_t images = 0, classes = 0, skipped = 0, shards = 0, reused_shards = 0, bytes = 0;
  double seconds = 0;
  std::string out;
};

// "1.5 GB"
std::string format_bytes(double bytes);

// Converts as `config` says; every rank calls it. Rank 0 writes the index and returns the totals.
ConvertSummary run_convert(const Config& config, Communicator& comm);

}  // namespace probnas
