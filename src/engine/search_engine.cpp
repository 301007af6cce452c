#include "probnas/engine/search_engine.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "probnas/comm/communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"
#include "probnas/core/timer.h"
#include "probnas/engine/nb201_table.h"
#include "probnas/method/method.h"
#include "probnas/optim/optimizers.h"

namespace probnas {

std::string run_directory(const Config& c) {
  if (!c.text("run.dir").empty()) return c.text("run.dir");
  return "outputs/" + c.text("search.method") + "-" + c.text("search.space") + "-" + c.text("data.dataset") +
         "-seed" + std::to_string(c.integer("run.seed"));
}

namespace {

std::shared_ptr<const Dataset> load_training_data(const Config& c) {
  Dataset d;
  if (c.text("data.dataset") == "synthetic") {
    SyntheticOptions s;
    s.count = c.integer("data.synthetic_count");
    s.size = c.integer("data.synthetic_size");
    s.channels = c.integer("data.synthetic_channels");
    s.classes = c.integer("data.synthetic_classes");
    s.seed = static_cast<uint64_t>(c.integer("run.seed"));
    d = make_synthetic(s);
  } else {
    d = load_dataset(c.text("data.dataset"), c.text("data.path"), Split::train);
  }
  const int64_t limit = c.integer("data.limit");
  PROBNAS_CHECK(limit == 0 || limit >= 2, "data.limit = ", limit, " leaves no data to split");
  return std::make_shared<const Dataset>(d.head(limit));
}

// Every rank must run the same config on the same data: compare each rank's fingerprint with rank 0's.
void check_ranks_agree(const Config& c, const Dataset& data, Communicator& comm) {
  if (comm.size() == 1) return;
  std::ostringstream data_print;
  data_print << data.name << " " << data.size();
  for (const auto& f : data.files) {
    std::error_code ec;
    data_print << " " << std::filesystem::path(f).filename().string() << ":" << std::filesystem::file_size(f, ec);
  }
  const std::string mine = std::to_string(c.hash()) + "|" + data_print.str();
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

// Fails if the ranks' parameters are not bitwise identical (they apply the same reduced update).
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

// Testing aid: PROBNAS_FAIL_AT=<rank>:<step> makes that rank throw at that step, to exercise the
// failure path (the whole job must end promptly with a non-zero exit).
void maybe_inject_failure(int rank, int64_t step) {
  static const char* spec = std::getenv("PROBNAS_FAIL_AT");
  if (!spec) return;
  int r = -1;
  long long s = -1;
  if (std::sscanf(spec, "%d:%lld", &r, &s) == 2 && r == rank && s == step)
    PROBNAS_FAIL("injected failure on rank ", rank, " at step ", step, " (PROBNAS_FAIL_AT=", spec, ")");
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

}  // namespace

SearchSummary run_search(const Config& c, Communicator& comm) {
  Stopwatch wall;
  const bool root = comm.rank() == 0;
  const int threads = c.integer("run.threads") > 0 ? static_cast<int>(c.integer("run.threads"))
                                                    : default_threads_per_rank(comm);
  configure_threads(threads);
  const c10::Device device = select_device(c.text("run.device"), comm.local_rank());
  const RngKey key(static_cast<uint64_t>(c.integer("run.seed")));
  const std::string dir = run_directory(c);

  // Data: the weight and architecture halves of the training split.
  auto data = load_training_data(c);
  check_ranks_agree(c, *data, comm);
  const ChannelStats stats = ChannelStats::of(*data);
  const SearchSplit split = make_search_split(data->size(), c.real("data.train_portion"), key);
  SplitOptions so;
  so.global_batch = c.integer("search.batch_size");
  so.micro_batches = c.integer("search.micro_batches");
  so.transform.normalize = c.boolean("data.normalize");
  so.transform.crop = c.boolean("data.crop");
  so.transform.crop_padding = c.integer("data.crop_padding");
  so.transform.flip = c.boolean("data.flip");
  const SplitLoader weight_loader(data, split.weights, stats, so, key.with("data").with("weights"), device,
                                  comm.rank(), comm.size());
  const SplitLoader arch_loader(data, split.arch, stats, so, key.with("data").with("arch"), device, comm.rank(),
                                comm.size());

  // Supernet and method; weight initialisation drawn from a keyed seed.
  SpaceOptions space;
  space.space = c.text("search.space");
  space.channels = c.integer("space.channels");
  space.cells_per_stage = c.integer("space.cells_per_stage");
  space.input_channels = data->channels();
  space.classes = data->num_classes;
  torch::manual_seed(key.with("weights-init").value());
  auto net = make_supernet(space);
  net->to(device);
  auto method = make_method(c, net, key);

  std::optional<Nb201Table> table;
  if (!c.text("report.nb201_table").empty() && space.space == "nb201") table.emplace(c.text("report.nb201_table"));

  const int64_t epochs = c.integer("search.epochs");
  const int64_t steps_per_epoch = weight_loader.steps_per_epoch();
  const int64_t total_steps = epochs * steps_per_epoch;
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();

  const std::string metrics_path = dir + "/metrics.jsonl";
  if (root) {
    make_directories(dir);
    write_file_atomic(dir + "/config.ini", c.to_ini());
    std::filesystem::remove(metrics_path);
  }
  PROBNAS_LOG(info) << "probnas " << PROBNAS_VERSION << ": " << method->name() << " on " << space.space << " (C="
            << space.channels << ", N=" << space.cells_per_stage << ", " << params << " weights), "
            << data->name << " " << data->size() << " images (" << weight_loader.examples() << " weights / "
            << arch_loader.examples() << " architecture), " << comm.size() << " rank" << (comm.size() > 1 ? "s" : "")
            << ", " << device_description(device) << (comm.size() > 1 ? ", " + std::to_string(comm.node_count()) + " node(s)" : "");
  PROBNAS_LOG(info) << epochs << " epochs x " << steps_per_epoch << " steps of " << so.global_batch << " images in "
                    << so.micro_batches << " micro-batch" << (so.micro_batches > 1 ? "es" : "") << " ("
                    << so.micro_batches / comm.size() << " per rank; one architecture draw each) -> " << dir;

  StepMetrics metrics;
  StepContext ctx;
  ctx.key = key;
  ctx.comm = comm.size() > 1 ? &comm : nullptr;
  Stopwatch since_progress, search_clock;
  const double progress_interval = c.real("run.progress_interval");
  const int64_t verify_interval = c.integer("comm.verify_interval");
  // What every rank must hold identically: the weights and the architecture distribution.
  auto tracked = [&] {
    std::vector<torch::Tensor> t = net->parameters();
    for (const auto& p : method->expected_weights()) t.push_back(p);
    return t;
  };
  int64_t images = 0;
  SearchSummary summary;
  summary.run_dir = dir;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    Stopwatch epoch_clock;
    method->begin_epoch(epoch, epochs);
    metrics.reset();
    int64_t epoch_images = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      ctx.epoch = epoch;
      ctx.global_step = epoch * steps_per_epoch + s;
      const auto train = weight_loader.batch(epoch, s);
      const auto val = arch_loader.batch_at(ctx.global_step);
      maybe_inject_failure(comm.rank(), ctx.global_step);
      method->step(train, val, ctx, metrics);
      if (verify_interval > 0 && comm.size() > 1 && (ctx.global_step + 1) % verify_interval == 0)
        verify_identical(tracked(), comm, ctx.global_step + 1);
      epoch_images += so.global_batch * (epoch >= c.integer("search.warmup_epochs") ? 2 : 1);
      const int64_t done = ctx.global_step + 1;
      if (since_progress.seconds() >= progress_interval || done == total_steps) {
        since_progress.reset();
        const auto v = metrics.read(ctx.comm);
        const double elapsed = search_clock.seconds();
        PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " step " << s + 1 << "/" << steps_per_epoch
                  << " | train loss " << fixed(v.train_loss, 3) << " acc " << fixed(100 * v.train_acc, 1)
                  << "% | val loss " << fixed(v.val_loss, 3) << " acc " << fixed(100 * v.val_acc, 1) << "% | "
                  << fixed(static_cast<double>(images + epoch_images) / elapsed, 1) << " img/s | ETA "
                  << format_duration(elapsed / static_cast<double>(done) * static_cast<double>(total_steps - done));
      }
    }
    images += epoch_images;

    // End of epoch: metrics line and the current genotype (rank 0 writes; all ranks agree).
    const auto v = metrics.read(ctx.comm);
    const Genotype genotype = method->derive();
    nlohmann::ordered_json line;
    line["epoch"] = epoch + 1;
    line["step"] = (epoch + 1) * steps_per_epoch;
    line["lr"] = cosine_lr(c.real("search.lr"), c.real("search.lr_min"), epoch, epochs);
    line["train_loss"] = v.train_loss;
    line["train_acc"] = v.train_acc;
    line["val_loss"] = v.val_loss;
    line["val_acc"] = v.val_acc;
    for (const auto& [name, value] : method->scalars()) line[name] = value;
    line["genotype"] = genotype.text;
    line["images"] = images;
    line["wall_s"] = wall.seconds();
    line["images_per_s"] = static_cast<double>(epoch_images) / epoch_clock.seconds();

    nlohmann::ordered_json extra;
    extra["method"] = method->name();
    extra["dataset"] = data->name;
    extra["seed"] = c.integer("run.seed");
    extra["epochs_done"] = epoch + 1;
    extra["search_val_acc"] = v.val_acc;
    if (table) {
      if (auto score = table->find(genotype.text)) {
        extra["nb201"] = {{"index", score->index},
                          {"cifar10_test", score->cifar10_test},
                          {"cifar100_test", score->cifar100_test},
                          {"imagenet16_test", score->imagenet16_test}};
        line["nb201_cifar10_test"] = score->cifar10_test;
      }
    }
    if (root) {
      append_line(metrics_path, line.dump());
      write_file_atomic(dir + "/genotype.json", genotype.to_json(extra.dump()) + "\n");
    }
    PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " done: val acc " << fixed(100 * v.val_acc, 2)
              << "%, genotype " << genotype.text;
    summary.genotype = genotype;
    summary.final_val_acc = v.val_acc;
  }
  summary.steps = total_steps;
  summary.wall_seconds = wall.seconds();
  return summary;
}

}  // namespace probnas
