#pragma once
// The search loop: epochs of global steps over the weight split, the architecture split
// cycled alongside, metrics per epoch, the genotype after each epoch, progress lines with ETA,
// checkpoints (interval, epoch end, signals) and resuming from them.
#include <memory>
#include <string>

#include "probnas/core/config.h"
#include "probnas/space/genotype.h"

namespace probnas {

class Communicator;

struct SearchSummary {
  std::string run_dir;
  Genotype genotype;
  double wall_seconds = 0;
  int64_t steps = 0;             // steps of the whole search done so far
  int64_t resumed_from_step = 0;  // 0 for a fresh start
  double final_val_acc = 0;
  bool interrupted = false;        // a signal asked for checkpoint-and-exit before the end
  std::string signal;              // its name
  std::string checkpoint;          // the newest checkpoint written (empty: none)
  std::string report;              // PGNAS: the ranking's result lines (rank 0)
};

// Runs the search the config describes on `comm`'s ranks and writes the run folder (rank 0).
// `sample_only` (probnas sample): the run folder must hold a finished search; only PGNAS's
// candidate ranking runs (resuming a ranking that was stopped).
SearchSummary run_search(const Config& config, Communicator& comm, bool sample_only = false);
// The run folder a config names (run.dir, or outputs/<method>-<space>-<dataset>-seed<seed>).
std::string run_directory(const Config& config);

}  // namespace probnas
