#pragma once
// probnas train: a searched architecture trained from scratch on the whole training split and
// tested on the test split, data-parallel across ranks (the same global batches and keyed draws as
// the search, so 1 and P ranks train the same network), checkpointed and resumable like a search.
// PGNAS's result is a trained candidate already: it is tested as sampled, or fine-tuned.
#include <cstdint>
#include <string>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/comm/comm_options.h"
#include "probnas/core/config.h"
#include "probnas/data/data_options.h"
#include "probnas/engine/run_options.h"
#include "probnas/engine/train_protocol.h"

namespace probnas {

class Communicator;

// Everything a training reads, typed (app/options.cpp fills it from the config in one place).
struct TrainSettings {
  RunOptions run;
  CheckpointOptions ckpt;
  CommOptions comm;
  DataOptions data;
  TrainOptions train;
  ReportOptions report;
  const Config* config = nullptr;  // the effective configuration (config.ini, hashes, resume checks)
};

struct TrainSummary {
  std::string run_dir;
  std::string mode;  // retrained, as_sampled, fine_tuned
  double test_acc = 0, test_loss = 0;
  int64_t test_images = 0, params = 0, flops = 0, epochs = 0, steps = 0;
  double wall_seconds = 0;
  bool interrupted = false;
  std::string signal, checkpoint;
};

// Runs the training the settings describe on `comm`'s ranks and writes the run folder (rank 0).
TrainSummary run_training(const TrainSettings& settings, Communicator& comm);
// The run folder: run.dir, or <the genotype file's folder>/train, or outputs/train-<space>-<dataset>-seed<seed>.
std::string train_directory(const TrainSettings& settings, const TrainTarget& target);

}  // namespace probnas
