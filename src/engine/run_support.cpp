#include "probnas/engine/run_support.h"

#include <torch/torch.h>

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
#include "probnas/core/signals.h"
#include "probnas/data/dataset.h"
#include "probnas/data/shards.h"

namespace probnas {

std::shared_ptr<const ImageSource> load_training_data(const Config& c) {
  const int64_t limit = c.integer("data.limit");
  PROBNAS_CHECK(limit == 0 || limit >= 2, "data.limit = ", limit, " leaves no data to split");
  const std::string& name = c.text("data.dataset");
  if (name == "shards") {
    PROBNAS_CHECK(!c.text("data.path").empty(), "data.dataset = shards needs data.path: the folder probnas convert "
                  "wrote (--out)");
    return std::make_shared<const ShardedSource>(c.text("data.path"), limit, c.boolean("ckpt.file_locking"));
  }
  if (name == "synthetic") {
    SyntheticOptions s;
    s.count = c.integer("data.synthetic_count");
    s.size = c.integer("data.synthetic_size");
    s.channels = c.integer("data.synthetic_channels");
    s.classes = c.integer("data.synthetic_classes");
    s.seed = static_cast<uint64_t>(c.integer("run.seed"));
    return memory_source(make_synthetic(s), limit);
  }
  return memory_source(load_dataset(name, c.text("data.path"), Split::train), limit);
}

void check_ranks_agree(const Config& c, const ImageSource& data, Communicator& comm) {
  if (comm.size() == 1) return;
  const std::string mine = std::to_string(c.hash()) + "|" + data.fingerprint();
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

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Rank 0 reads the checkpoint; every rank gets the bytes, so a thousand ranks do not all open the file.
std::pair<std::string, std::optional<ckpt::State>> find_resume_state(const Config& c, const ckpt::Directory& dir,
                                                                     Communicator& comm, const std::string& method,
                                                                     const std::string& space) {
  std::string name, bytes;
  std::optional<ckpt::State> state;
  if (comm.rank() == 0) {
    const std::string mode = c.text("run.resume");
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
    if (state) ckpt::check_compatible(*state, name, c, method, space);
  }
  if (comm.size() > 1) {
    comm.broadcast_bytes(name);
    comm.broadcast_bytes(bytes);
    if (comm.rank() != 0 && !name.empty()) state = ckpt::read_image(bytes, name);
  }
  return {name, std::move(state)};
}

std::shared_ptr<const ImageSource> load_test_data(const Config& c) {
  const std::string& name = c.text("data.dataset");
  if (name == "shards") {
    PROBNAS_CHECK(!c.text("data.test_path").empty(), "data.dataset = shards has no test split unless data.test_path "
                  "names the folder probnas convert wrote for it (e.g. ImageNet's validation images)");
    return std::make_shared<const ShardedSource>(c.text("data.test_path"), 0, c.boolean("ckpt.file_locking"));
  }
  if (name == "synthetic") {
    SyntheticOptions s;
    s.count = std::max<int64_t>(2, c.integer("data.synthetic_count") / 5);
    s.size = c.integer("data.synthetic_size");
    s.channels = c.integer("data.synthetic_channels");
    s.classes = c.integer("data.synthetic_classes");
    s.seed = static_cast<uint64_t>(c.integer("run.seed"));
    s.test_split = true;
    return memory_source(make_synthetic(s));
  }
  const std::string path = c.text("data.test_path").empty() ? c.text("data.path") : c.text("data.test_path");
  return memory_source(load_dataset(name, path, Split::test));
}

void put_run_meta(ckpt::State& meta, const Config& c, const std::string& method, const std::string& space,
                  const std::string& dataset, int world_size, int64_t step, int64_t steps_per_epoch,
                  int64_t total_steps, double wall_seconds) {
  const int64_t per_epoch = std::max<int64_t>(steps_per_epoch, 1);
  meta.set_attr("schema_version", ckpt::kSchemaVersion);
  meta.set_attr("probnas_version", std::string(PROBNAS_VERSION));
  meta.set_attr("torch_version", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                                     std::to_string(TORCH_VERSION_PATCH));
  meta.set_attr("method", method);
  meta.set_attr("space", space);
  meta.set_attr("dataset", dataset);
  meta.set_attr("world_size", int64_t{world_size});
  meta.set_attr("step", step);
  meta.set_attr("epoch", step / per_epoch);
  meta.set_attr("step_in_epoch", step % per_epoch);
  meta.set_attr("total_steps", total_steps);
  meta.set_attr("wall_seconds", wall_seconds);
  meta.set_attr("saved_at", utc_now());
  meta.set_attr("config_hash", ckpt::resume_hash(c));
  meta.put_text("config", c.to_ini());
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

void average_batchnorm_statistics(torch::nn::Module& module, Communicator& comm) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> buffers;
  for (const auto& b : module.named_buffers()) {
    const auto& name = b.key();
    if (name.size() >= 12 && (name.compare(name.size() - 12, 12, "running_mean") == 0 ||
                              name.compare(name.size() - 11, 11, "running_var") == 0))
      buffers.push_back(b.value());
  }
  if (buffers.empty()) return;
  std::vector<torch::Tensor> sums;
  for (const auto& b : buffers) sums.push_back(b.to(torch::kFloat64));
  comm.allreduce(sums, ReduceOp::sum);
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(sums[i] / static_cast<double>(comm.size()));
}

SplitOptions data_split_options(const Config& c, bool root) {
  SplitOptions so;
  so.transform.normalize = c.boolean("data.normalize");
  so.transform.crop = c.boolean("data.crop");
  so.transform.crop_padding = c.integer("data.crop_padding");
  so.transform.flip = c.boolean("data.flip");
  so.transform.resized_crop = c.boolean("data.random_resized_crop");
  so.transform.crop_scale_min = c.real("data.crop_scale_min");
  so.transform.size = c.integer("data.image_size");
  so.workers = c.integer("data.workers");
  if (so.workers < 0) so.workers = c.text("data.dataset") == "shards" ? 2 : 0;
  if (so.workers > 0 && c.text("data.dataset") == "shards" && !h5::library_is_threadsafe()) {
    if (root) {
      PROBNAS_LOG(warn) << "this HDF5 library is not thread-safe (a parallel HDF5 build?): the shards are read on "
                           "the main thread (data.workers = 0); link a thread-safe HDF5 for loader threads";
    }
    so.workers = 0;
  }
  so.prefetch = c.integer("data.prefetch");
  return so;
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

}  // namespace probnas
