#pragma once
// The one step loop of probnas search and probnas train: global steps over epochs, with the policy
// both share in one place. Per step: the failure-injection aid, the engine's step, the parameter
// check across ranks (comm.verify_interval), one small allreduce in which the ranks agree on what a
// single rank may have seen (a signal, rank 0's checkpoint and progress clocks), the progress line
// with images/s and ETA, the end-of-epoch hook, the checkpoint triggers (ckpt.interval_steps,
// ckpt.interval_minutes, ckpt.epoch_end, the last step, a signal) and, after a signal, the checkpoint
// and the stop (exit code 75).
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/core/timer.h"

namespace probnas {

class Communicator;

struct StepLoopPolicy {
  CheckpointOptions ckpt;          // the checkpoint triggers
  double progress_interval = 10;   // run.progress_interval
  int64_t verify_interval = 0;     // comm.verify_interval (0: never)
};
// The policy a run's settings give (any settings struct with run, ckpt and comm members).
template <class Settings>
StepLoopPolicy step_loop_policy(const Settings& s) {
  return {s.ckpt, s.run.progress_interval, s.comm.verify_interval};
}

class StepLoop {
 public:
  struct Hooks {
    // At step 0 of every epoch (the epoch's first step).
    std::function<void(int64_t epoch)> begin_epoch;
    // At the first step of a run resumed in the middle of an epoch (optional).
    std::function<void(int64_t epoch)> resume_epoch;
    // One global step; returns the images it processed.
    std::function<int64_t(int64_t epoch, int64_t step_in_epoch, int64_t global_step)> step;
    // What every rank must hold bit for bit (checked every verify_interval steps on several ranks).
    std::function<std::vector<torch::Tensor>()> tracked;
    // The middle of a progress line ("train loss ... | val ..."): the loop adds the position, the
    // speed and the ETA. Collective (it may reduce metrics): called on every rank.
    std::function<std::string()> progress;
    // After the last step of an epoch (metrics line, genotype). Collective.
    std::function<void(int64_t epoch, int64_t done)> end_epoch;
    // Writes a checkpoint after `done` steps and returns its path ("" on ranks that do not write).
    // Collective.
    std::function<std::string(int64_t done)> checkpoint;
  };

  struct End {
    bool interrupted = false;  // a signal stopped the loop before the last step (checkpointed)
    std::string signal;        // its name
    int64_t steps = 0;         // steps of the whole run done
    std::string checkpoint;    // the newest checkpoint written ("": none)
  };

  // `images` carries on from a resumed run's count.
  StepLoop(Communicator& comm, StepLoopPolicy policy, int64_t images = 0);
  // Runs steps [start, total) in epochs of `steps_per_epoch`.
  End run(int64_t start, int64_t total, int64_t steps_per_epoch, const Hooks& hooks);

  int64_t images() const { return images_; }  // every image processed so far, resumed runs included
  // Images per second in the epoch so far.
  double epoch_images_per_second() const;

 private:
  Communicator& comm_;
  StepLoopPolicy policy_;
  int64_t images_ = 0, epoch_images_ = 0;
  Stopwatch epoch_clock_;
};

}  // namespace probnas
