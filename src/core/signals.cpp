#include "probnas/core/signals.h"

#include <csignal>

namespace probnas {

namespace {
volatile std::sig_atomic_t g_received = 0;
constexpr int kSignals[] = {SIGUSR1, SIGUSR2, SIGTERM};
struct sigaction g_previous[3];

extern "C" void record_signal(int signal) {
  if (g_received == 0) g_received = signal;  // async-signal-safe: one store, nothing else
}

bool g_process_wide = false;  // install_stop_signal_handlers() ran: the handlers stay for good

void install_handlers(struct sigaction* previous) {
  for (int i = 0; i < 3; ++i) {
    struct sigaction action {};
    action.sa_handler = record_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // blocking reads and MPI calls carry on; the loop looks at the flag
    sigaction(kSignals[i], &action, previous != nullptr ? &previous[i] : nullptr);
  }
}
}  // namespace

void install_stop_signal_handlers() {
  install_handlers(nullptr);
  g_process_wide = true;
}

SignalWatch::SignalWatch() {
  // With the process-wide handlers, a signal that came while the run started up is kept: the
  // step loop acts on it at the first step boundary. Without them (tests, library use), each
  // watch starts afresh.
  if (!g_process_wide) g_received = 0;
  install_handlers(g_previous);
}

SignalWatch::~SignalWatch() {
  // Once a stop signal was taken, the handlers stay for the rest of the process: later USR1, USR2
  // and TERM (a scheduler repeating itself, a user pressing on) are recorded and ignored while the
  // run shuts down, so it still exits with kExitCheckpointed rather than dying on the default action.
  if (g_received != 0) return;
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
}

int SignalWatch::received() { return g_received; }
void SignalWatch::clear() { g_received = 0; }

std::string signal_name(int signal) {
  switch (signal) {
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGKILL: return "SIGKILL";
    default: return "signal " + std::to_string(signal);
  }
}

}  // namespace probnas
