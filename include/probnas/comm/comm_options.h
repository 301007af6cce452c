#pragma once
// comm.*: how ranks exchange tensors and how often they check that they agree (both may change on resume).
#include <cstdint>
#include <string>

#include "probnas/core/option_binding.h"

namespace probnas {

struct CommOptions {
  int64_t verify_interval = 100;  // steps between parameter checks across ranks (0: never)
  std::string backend = "auto";   // auto, mpi, nccl
};

const OptionBinding<CommOptions>& comm_options();

}  // namespace probnas
