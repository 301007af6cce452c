#include "probnas/engine/search_engine.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
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

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

}  // namespace

SearchSummary run_search(const Config& c, Communicator& comm) {
  Stopwatch wall;
  const bool root = comm.rank() == 0;
  configure_threads(static_cast<int>(c.integer("run.threads")));
  const c10::Device device = select_device(c.text("run.device"), comm.rank());
  const RngKey key(static_cast<uint64_t>(c.integer("run.seed")));
  const std::string dir = run_directory(c);

  // Data: the weight and architecture halves of the training split.
  auto data = load_training_data(c);
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
            << ", " << device_description(device);
  PROBNAS_LOG(info) << epochs << " epochs x " << steps_per_epoch << " steps of " << so.global_batch << " images -> " << dir;

  StepMetrics metrics;
  StepContext ctx;
  ctx.key = key;
  ctx.comm = comm.size() > 1 ? &comm : nullptr;
  Stopwatch since_progress, search_clock;
  const double progress_interval = c.real("run.progress_interval");
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
      method->step(train, val, ctx, metrics);
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
