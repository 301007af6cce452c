#pragma once
// Checkpoint-and-exit signals. Slurm's --signal, preemption and scancel send SIGUSR1, SIGUSR2 or
// SIGTERM (and some GPU communication libraries take SIGUSR1 for themselves), so all three mean
// the same: finish the current step, checkpoint, exit with kExitCheckpointed. The handler only
// records the signal; the step loop acts on it at the next step boundary.
#include <string>

namespace probnas {

// EX_TEMPFAIL: "checkpointed, resume me" (sysexits.h).
constexpr int kExitCheckpointed = 75;

// Installs the handlers for the whole process, for good: called first thing by search, sample and
// train (before MPI starts and the config and data are read), so that a signal in the first seconds
// is kept and acted on at the first step boundary instead of killing the process. The only window
// left is the program's loading of its shared libraries, before main() runs.
void install_stop_signal_handlers();

class SignalWatch {
 public:
  SignalWatch();   // installs the handlers for SIGUSR1, SIGUSR2, SIGTERM
  ~SignalWatch();  // puts the previous handlers back, unless a signal was received: then they stay
                   // installed until exit, so repeated signals cannot change the exit code
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  // The first signal received since installation, or 0.
  static int received();
  static void clear();
};

std::string signal_name(int signal);  // "SIGUSR1", ...

}  // namespace probnas
