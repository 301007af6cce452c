#include "probnas/engine/run_support.h"

#include <torch/torch.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <sstream>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"
#include "probnas/core/process.h"
#include "probnas/core/signals.h"
#include "probnas/comm/device_communicator.h"
#include "probnas/core/device.h"
#include "probnas/method/registry.h"

namespace probnas {

void check_ranks_agree(uint64_t config_hash, const ImageSource& data, Communicator& comm) {
  if (comm.size() == 1) return;
  const std::string mine = std::to_string(config_hash) + "|" + data.fingerprint();
  const auto all = comm.allgather_bytes(mine);
  auto split = [](const std::string& print) {
    const auto bar = print.find('|');
    return std::make_pair(print.substr(0, bar), print.substr(bar + 1));
  };
  const auto [config0, data0] = split(all[0]);
  for (int r = 1; r < comm.size(); ++r) {
    const auto [config_r, data_r] = split(all[static_cast<size_t>(r)]);
    PROBNAS_CHECK(config_r == config0, "rank ", r, "'s effective configuration differs from rank 0's (config hash ",
                  config_r, " vs ", config0, "): start every rank with the same config file and options");
    PROBNAS_CHECK(data_r == data0, "rank ", r, " sees other training data than rank 0 (", data_r, " vs ", data0,
                  "): every rank must read the same files");
  }
}

// The ranks apply the same reduced update, so their parameters must agree bit for bit.
void verify_identical(const std::vector<torch::Tensor>& params, Communicator& comm, int64_t step) {
  torch::NoGradGuard guard;
  // Sum and sum of squares of every tensor, reduced on the device: one host transfer.
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) {
    auto d = p.detach().to(torch::kFloat64);
    parts.push_back(torch::stack({d.sum(), d.pow(2).sum()}));
  }
  const auto all = comm.allgather(torch::stack(parts).sum(0).to(torch::kCPU));
  for (int r = 1; r < comm.size(); ++r)
    PROBNAS_CHECK(torch::equal(all[r], all[0]), "parameters diverged between ranks at step ", step, ": rank ", r,
                  "'s checksum (", all[r][0].item<double>(), ", ", all[r][1].item<double>(), ") differs from rank 0's (",
                  all[0][0].item<double>(), ", ", all[0][1].item<double>(), ")");
}

// Testing aid: PROBNAS_FAIL_AT=<rank>:<step>[:<signal>] makes that rank throw at the start of that
// step, to exercise the failure path (the whole job must end promptly with a non-zero exit), or
// send itself KILL, TERM, USR1 or USR2 there (a real kill; the checkpoint-and-exit path).
void maybe_inject_failure(int rank, int64_t step) {
  static const char* spec = std::getenv("PROBNAS_FAIL_AT");
  if (!spec) return;
  int r = -1;
  long long s = -1;
  char sig[16] = {0};
  const int n = std::sscanf(spec, "%d:%lld:%15s", &r, &s, sig);
  if (n < 2 || r != rank || s != step) return;
  if (n == 3) {
    const std::string name = sig;
    const int number = name == "KILL" ? SIGKILL : name == "TERM" ? SIGTERM : name == "USR1" ? SIGUSR1
                     : name == "USR2" ? SIGUSR2 : 0;
    PROBNAS_CHECK(number != 0, "PROBNAS_FAIL_AT=", spec, ": unknown signal '", name, "' (KILL, TERM, USR1, USR2)");
    std::raise(number);
    return;
  }
  PROBNAS_FAIL("injected failure on rank ", rank, " at step ", step, " (PROBNAS_FAIL_AT=", spec, ")");
}

std::set<std::string> other_methods_keys(const std::string& method) {
  std::set<std::string> others, own;
  for (const auto& entry : method_registry()) {
    if (!entry.declare_options) continue;
    OptionTable table;
    entry.declare_options(table);
    for (const auto& spec : table.specs()) (entry.name == method ? own : others).insert(spec.key);
  }
  for (const auto& key : own) others.erase(key);  // a key this method reads too is never ignored
  return others;
}

// Rank 0 reads the checkpoint; every rank gets the bytes, so a thousand ranks do not all open the file.

std::pair<std::string, std::optional<ckpt::State>> find_resume_state(const std::string& mode, const Config& c,
                                                                     const ckpt::Directory& dir, Communicator& comm,
                                                                     const std::string& method, const std::string& space) {
  std::string name, bytes;
  std::optional<ckpt::State> state;
  if (comm.rank() == 0) {
    if (mode == "never") {
      const auto files = dir.list();
      PROBNAS_CHECK(files.empty(), "run.resume = never, but '", dir.path(), "' already holds ", files.size(),
                    " checkpoint", files.size() > 1 ? "s" : "", " (newest ", files.front(),
                    "): resume it (run.resume = auto), or choose another run.dir");
    } else if (mode == "auto") {
      if (auto found = dir.newest_good()) {
        name = found->path;
        bytes = std::move(found->bytes);
        state = std::move(found->state);
      }
    } else {
      PROBNAS_CHECK(file_exists(mode), "run.resume = ", mode, ": no such checkpoint file (or use auto or never)");
      bytes = read_file_bytes(mode);
      state = ckpt::read_image(bytes, mode);
      name = mode;
    }
    if (state) ckpt::check_compatible(*state, name, c, method, space, other_methods_keys(method));
  }
  if (comm.size() > 1) {
    comm.broadcast_bytes(name);
    comm.broadcast_bytes(bytes);
    if (comm.rank() != 0 && !name.empty()) state = ckpt::read_image(bytes, name);
  }
  return {name, std::move(state)};
}

StepCalls agree_on_step_calls(Communicator& comm, bool time_due_here, bool progress_due_here) {
  double flags[3] = {SignalWatch::received() != 0 ? 1.0 : 0.0, time_due_here ? 1.0 : 0.0,
                     progress_due_here ? 1.0 : 0.0};
  if (comm.size() > 1) {
    std::vector<torch::Tensor> t{torch::tensor({flags[0], flags[1], flags[2]}, torch::kFloat64)};
    comm.allreduce(t, ReduceOp::sum);
    for (int64_t i = 0; i < 3; ++i) flags[i] = t[0][i].item<double>();
  }
  return {flags[0] > 0, flags[1] > 0, flags[2] > 0};
}

ckpt::CheckpointMeta checkpoint_meta(const Config& config, const std::string& method, const std::string& space,
                                     const std::string& dataset, int world_size, int64_t step, int64_t steps_per_epoch,
                                     int64_t total_steps, double wall_seconds) {
  ckpt::CheckpointMeta m;
  m.method = method;
  m.space = space;
  m.dataset = dataset;
  m.world_size = world_size;
  m.step = step;
  m.steps_per_epoch = steps_per_epoch;
  m.total_steps = total_steps;
  m.wall_seconds = wall_seconds;
  m.config_ini = config.to_ini();
  m.config_hash = ckpt::resume_hash(config);
  return m;
}

std::unique_ptr<FolderLock> lock_run_folder(const std::string& dir, bool enabled, Communicator& world) {
  if (!enabled) {
    if (world.rank() == 0) {
      PROBNAS_LOG(warn) << "run.lock = false: nothing stops a second run from writing '" << dir << "' at the same time";
    }
    return nullptr;
  }
  std::unique_ptr<FolderLock> lock;
  std::string failure;  // "B<message>": the folder is busy; "E<message>": another error; "": locked
  if (world.rank() == 0) {
    try {
      lock = std::make_unique<FolderLock>(dir, "run.lock");
    } catch (const FolderBusy& e) {
      failure = std::string("B") + e.what();
    } catch (const std::exception& e) {
      failure = std::string("E") + e.what();
    }
  }
  world.broadcast_bytes(failure);
  if (!failure.empty()) {
    if (failure[0] == 'B') throw FolderBusy(failure.substr(1));
    throw Error(failure.substr(1));
  }
  return lock;
}

void log_slurm_job() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) return;
  const char* restarts = std::getenv("SLURM_RESTART_COUNT");
  const char* name = std::getenv("SLURM_JOB_NAME");
  const char* nodes = std::getenv("SLURM_JOB_NODELIST");
  PROBNAS_LOG(info) << "Slurm job " << job << (name ? std::string(" (") + name + ")" : std::string()) << ", restart "
                    << (restarts ? restarts : "0") << (nodes ? std::string(", nodes ") + nodes : std::string());
}

std::string placement_text(const std::vector<std::string>& host_and_local_rank) {
  struct Node {
    std::string host, ranks, locals;
  };
  std::vector<Node> nodes;
  for (size_t r = 0; r < host_and_local_rank.size(); ++r) {
    const std::string& s = host_and_local_rank[r];
    const size_t nl = s.find('\n');
    const std::string host = s.substr(0, nl), local = nl == std::string::npos ? "?" : s.substr(nl + 1);
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const Node& n) { return n.host == host; });
    if (it == nodes.end()) {
      nodes.push_back({host, std::to_string(r), local});
    } else {
      it->ranks += "," + std::to_string(r);
      it->locals += "," + local;
    }
  }
  constexpr size_t kShown = 8;
  std::string text;
  for (size_t i = 0; i < nodes.size() && i < kShown; ++i)
    text += (i ? "; " : "") + nodes[i].host + " ranks " + nodes[i].ranks + " (local " + nodes[i].locals + ")";
  if (nodes.size() > kShown) text += "; and " + std::to_string(nodes.size() - kShown) + " more nodes";
  return text;
}

RunEnvironment make_run_environment(int64_t threads, const std::string& device, const std::string& backend,
                                    Communicator& world) {
  configure_threads(threads > 0 ? static_cast<int>(threads) : default_threads_per_rank(world));
  if (world.size() > 1) {  // where each rank runs, by host name: a misplaced job shows at its start
    const auto all = world.allgather_bytes(host_name() + "\n" + std::to_string(world.local_rank()));
    if (world.rank() == 0) PROBNAS_LOG(info) << "placement: " << placement_text(all);
  }
  RunEnvironment env;
  env.device = select_device(device, world.local_rank());
  env.comm = make_device_communicator(world, env.device, backend);
  return env;
}

}  // namespace probnas
