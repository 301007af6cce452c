#pragma once
// probnas search: epochs of global steps over the weight split, the architecture split cycled
// alongside, metrics per epoch, the genotype after each epoch, progress lines with ETA, checkpoints
// (interval, epoch end, signals) and resuming from them; then the method's post-search phase, if it
// has one. The engine knows methods only through the registry (method/registry.h).
#include <any>
#include <memory>
#include <string>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/comm/comm_options.h"
#include "probnas/core/config.h"
#include "probnas/data/data_options.h"
#include "probnas/engine/run_options.h"
#include "probnas/method/method_options.h"
#include "probnas/run/genotype.h"
#include "probnas/space/supernet.h"

namespace probnas {

class Communicator;

// search.method, search.space and the schedule of the global batches.
struct SearchOptions {
  std::string method = "drnas", space = "nb201";
  int64_t epochs = 100, batch_size = 64, arch_batch_size = 0, micro_batches = 1;
};
const OptionBinding<SearchOptions>& search_options();

// Everything a search reads, typed (app/options.cpp fills it from the config in one place).
struct SearchSettings {
  RunOptions run;
  CheckpointOptions ckpt;
  CommOptions comm;
  DataOptions data;
  SpaceOptions space;
  SearchOptions search;
  SharedMethodOptions method;
  std::any method_options;  // the method's own section, as its registry entry read it
  ReportOptions report;
  // The effective configuration: written to config.ini and into checkpoints, hashed to check that
  // ranks agree, and compared with a checkpoint's when resuming. Nothing reads a key from it.
  const Config* config = nullptr;
};

struct SearchSummary {
  std::string run_dir;
  Genotype genotype;
  double wall_seconds = 0;
  int64_t steps = 0;              // steps of the whole search done so far
  int64_t resumed_from_step = 0;  // 0 for a fresh start
  double final_val_acc = 0;
  bool interrupted = false;       // a signal asked for checkpoint-and-exit before the end
  std::string signal;             // its name
  std::string checkpoint;         // the newest checkpoint written (empty: none)
  std::string stopped_in;         // a signal in the phase after the search: where it stopped, and what is kept
  std::string report;             // the post-search phase's result lines (rank 0)
  std::string files;              // what the run folder holds, for the closing line
};

// Runs the search the settings describe on `comm`'s ranks and writes the run folder (rank 0).
// `sample_only` (probnas sample): the run folder must hold a finished search; only the method's
// post-search phase runs (resuming it where it was stopped).
SearchSummary run_search(const SearchSettings& settings, Communicator& comm, bool sample_only = false);
// The run folder: run.dir, or outputs/<method>-<space>-<dataset>-seed<seed>.
std::string run_directory(const SearchSettings& settings);

}  // namespace probnas
