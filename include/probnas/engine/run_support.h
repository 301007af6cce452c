#pragma once
// What the search and train engines share: reading the training (and test) data a config names,
// checking that every rank runs the same config on the same data, finding the checkpoint to resume
// from, the parameter check across ranks, the failure-injection testing aid and small formatting.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/core/config.h"
#include "probnas/data/loader.h"
#include "probnas/data/source.h"

namespace probnas {

class Communicator;

// The training images data.* names (data.limit applied).
std::shared_ptr<const ImageSource> load_training_data(const Config& config);
// The test images that go with them: the dataset's test split; for synthetic data other examples of
// the same classes; for shards the folder data.test_path names (errors say what to give).
std::shared_ptr<const ImageSource> load_test_data(const Config& config);

// The loader options data.* sets (augmentation, resizing, loader threads); the batch sizes are the
// caller's. `root` logs once when loader threads have to be turned off.
SplitOptions data_split_options(const Config& config, bool root);

// Every rank must run the same config on the same data: compares each rank's config hash and the
// data's fingerprint with rank 0's and fails naming the first rank that differs.
void check_ranks_agree(const Config& config, const ImageSource& data, Communicator& comm);
// Fails if the ranks' tensors are not bitwise identical (checksums compared after `step`).
void verify_identical(const std::vector<torch::Tensor>& params, Communicator& comm, int64_t step);
// Testing aid: PROBNAS_FAIL_AT=<rank>:<step>[:<signal>] makes that rank throw at the start of that
// step (or raise KILL, TERM, USR1 or USR2 there).
void maybe_inject_failure(int rank, int64_t step);

// What a step may call for on one rank only: a signal (any rank), a checkpoint by the clock and a
// progress line (rank 0's clocks). The ranks agree through one small allreduce, so all of them
// checkpoint (and stop) together and join the same collectives (a progress line reduces metrics).
struct StepCalls {
  bool signalled = false;     // some rank received SIGUSR1, SIGUSR2 or SIGTERM: checkpoint and exit
  bool time_due = false;      // ckpt.interval_minutes passed on rank 0's clock
  bool progress_due = false;  // run.progress_interval passed on rank 0's clock
};
StepCalls agree_on_step_calls(Communicator& comm, bool time_due_here, bool progress_due_here);

// Averages BatchNorm running statistics (buffers named running_mean / running_var) over the ranks,
// whose micro-batches differed: evaluation and checkpoints then use the same statistics on every
// rank. The running averages are linear in the batches' statistics, so averaging commutes with
// further training steps.
void average_batchnorm_statistics(torch::nn::Module& module, Communicator& comm);

// The checkpoint to resume from as run.resume says (rank 0 reads; every rank gets the bytes), checked
// against `method` and `space` and the config. Returns an empty name for a fresh start.
std::pair<std::string, std::optional<ckpt::State>> find_resume_state(const Config& config, const ckpt::Directory& dir,
                                                                     Communicator& comm, const std::string& method,
                                                                     const std::string& space);

// The /meta attributes every checkpoint carries (schema and versions, what ran, where it stands, the
// config and its resume hash).
void put_run_meta(ckpt::State& meta, const Config& config, const std::string& method, const std::string& space,
                  const std::string& dataset, int world_size, int64_t step, int64_t steps_per_epoch,
                  int64_t total_steps, double wall_seconds);

// Logs the Slurm job (id, name, restart count, nodes) when running under Slurm.
void log_slurm_job();
// "2026-11-30T10:40:00Z"
std::string utc_now();
// `v` with `digits` decimals.
std::string fixed(double v, int digits);

}  // namespace probnas
