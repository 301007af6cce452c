#pragma once
// What the search and train engines share besides the step loop: the run's device, threads and
// communicator, checking that every rank runs the same config on the same data, finding the
// checkpoint to resume from, the parameter check across ranks and the failure-injection testing aid.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/ckpt/run_checkpoint.h"
#include "probnas/core/config.h"
#include "probnas/core/folder_lock.h"
#include "probnas/comm/communicator.h"
#include "probnas/data/source.h"

namespace probnas {

// Every rank must run the same config on the same data: compares each rank's config hash and the
// data's fingerprint with rank 0's and fails naming the first rank that differs.
void check_ranks_agree(uint64_t config_hash, const ImageSource& data, Communicator& comm);
// Fails if the ranks' tensors are not bitwise identical (checksums compared after `step`).
void verify_identical(const std::vector<torch::Tensor>& params, Communicator& comm, int64_t step);
// Testing aid: PROBNAS_FAIL_AT=<rank>:<step>[:<signal>] makes that rank throw at the start of that
// step (or raise KILL, TERM, USR1 or USR2 there); step -1 is start-up, just after MPI started.
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

// "host ranks 0,2 (local 0,1); ..." from every rank's "<host>\n<local rank>" (rank order), nodes
// in the order of their first rank, at most 8 shown.
std::string placement_text(const std::vector<std::string>& host_and_local_rank);

// The option keys of every registered method but `method` (whose values a resume may ignore).
std::set<std::string> other_methods_keys(const std::string& method);

// The checkpoint to resume from as run.resume (`resume`: auto, never or a file) says (rank 0 reads;
// every rank gets the bytes), checked against `method` and `space` and the config. Returns an empty
// name for a fresh start.
std::pair<std::string, std::optional<ckpt::State>> find_resume_state(const std::string& resume, const Config& config,
                                                                     const ckpt::Directory& dir, Communicator& comm,
                                                                     const std::string& method, const std::string& space);

// The /meta of a checkpoint after `step` steps of `total_steps` (`method`: search.method, or
// "train"): what ran, where it stands, the effective configuration and its resume hash.
ckpt::CheckpointMeta checkpoint_meta(const Config& config, const std::string& method, const std::string& space,
                                     const std::string& dataset, int world_size, int64_t step, int64_t steps_per_epoch,
                                     int64_t total_steps, double wall_seconds);

// Takes the lock of the run folder `dir` (core/folder_lock.h) on rank 0, before anything is written
// there; every rank learns the outcome, and all fail with rank 0's message (FolderBusy when another
// run holds it). `enabled` false (run.lock = false): no lock, a warning. Keep the result alive for
// the whole run.
std::unique_ptr<FolderLock> lock_run_folder(const std::string& dir, bool enabled, Communicator& world);

// Logs the Slurm job (id, name, restart count, nodes) when running under Slurm.
void log_slurm_job();

// The device, threads and communicator of a run: threads set (run.threads, or the node's cores over
// its ranks), the rank's device selected, and CUDA tensors reduced through NCCL where built with it.
struct RunEnvironment {
  c10::Device device = c10::kCPU;
  std::unique_ptr<Communicator> comm;
};
RunEnvironment make_run_environment(int64_t threads, const std::string& device, const std::string& backend,
                                    Communicator& world);

}  // namespace probnas
