#include "probnas/engine/step_loop.h"

#include "probnas/comm/communicator.h"
#include "probnas/core/format.h"
#include "probnas/core/log.h"
#include "probnas/core/signals.h"
#include "probnas/engine/run_support.h"

namespace probnas {

StepLoop::StepLoop(Communicator& comm, StepLoopPolicy policy, int64_t images)
    : comm_(comm), policy_(std::move(policy)), images_(images) {}

double StepLoop::epoch_images_per_second() const {
  return static_cast<double>(epoch_images_) / epoch_clock_.seconds();
}

StepLoop::End StepLoop::run(int64_t start, int64_t total, int64_t steps_per_epoch, const Hooks& hooks) {
  const bool root = comm_.rank() == 0;
  const int64_t epochs = steps_per_epoch > 0 ? total / steps_per_epoch : 0;
  const double ckpt_seconds = policy_.ckpt.interval_minutes * 60;
  Stopwatch since_progress, clock, since_checkpoint;
  End end;
  end.steps = std::max(start, total);
  for (int64_t g = start; g < total; ++g) {
    const int64_t epoch = g / steps_per_epoch, s = g % steps_per_epoch;
    if (s == 0) {
      epoch_images_ = 0;
      epoch_clock_.reset();
      if (hooks.begin_epoch) hooks.begin_epoch(epoch);
    } else if (g == start && hooks.resume_epoch) {
      hooks.resume_epoch(epoch);
    }
    maybe_inject_failure(comm_.rank(), g);
    const int64_t step_images = hooks.step(epoch, s, g);
    const int64_t done = g + 1;
    if (policy_.verify_interval > 0 && comm_.size() > 1 && done % policy_.verify_interval == 0 && hooks.tracked)
      verify_identical(hooks.tracked(), comm_, done);
    images_ += step_images;
    epoch_images_ += step_images;
    // A signal, the checkpoint clock and the progress clock may fire on one rank only: the ranks
    // agree through one small allreduce per step.
    const auto calls = agree_on_step_calls(comm_, root && ckpt_seconds > 0 && since_checkpoint.seconds() >= ckpt_seconds,
                                           root && since_progress.seconds() >= policy_.progress_interval);
    if (calls.progress_due || done == total) {
      since_progress.reset();
      const std::string detail = hooks.progress ? hooks.progress() : std::string();
      const double per_step = clock.seconds() / static_cast<double>(done - start);
      PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " step " << s + 1 << "/" << steps_per_epoch
                        << " | " << detail << (detail.empty() ? "" : " | ")
                        << fixed(static_cast<double>(step_images) / per_step, 1) << " img/s | ETA "
                        << format_duration(per_step * static_cast<double>(total - done));
    }
    const bool epoch_end = done % steps_per_epoch == 0;
    if (epoch_end && hooks.end_epoch) hooks.end_epoch(epoch, done);
    const bool due = calls.signalled || calls.time_due ||
                     (policy_.ckpt.interval_steps > 0 && done % policy_.ckpt.interval_steps == 0) ||
                     (epoch_end && policy_.ckpt.epoch_end) || done == total;
    if (due) {
      end.checkpoint = hooks.checkpoint(done);
      since_checkpoint.reset();
    }
    if (calls.signalled && done < total) {
      const int sig = SignalWatch::received();
      end.interrupted = true;
      end.signal = sig ? signal_name(sig) : "a signal on another rank";
      end.steps = done;
      PROBNAS_LOG(warn) << "received " << end.signal << ": checkpointed at step " << done << " of " << total
                        << "; exiting with code " << kExitCheckpointed << " (run the same command to resume)";
      return end;
    }
  }
  return end;
}

}  // namespace probnas
