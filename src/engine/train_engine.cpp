#include "probnas/engine/train_engine.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <optional>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/comm/communicator.h"
#include "probnas/comm/device_communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"
#include "probnas/core/signals.h"
#include "probnas/core/timer.h"
#include "probnas/data/loader.h"
#include "probnas/engine/nb201_table.h"
#include "probnas/engine/pgnas_ranking.h"
#include "probnas/engine/run_state.h"
#include "probnas/engine/run_support.h"
#include "probnas/method/gradient_sum.h"
#include "probnas/method/method.h"
#include "probnas/optim/optimizers.h"
#include "probnas/report/report.h"
#include "probnas/space/eval_network.h"
#include "probnas/space/multibranch.h"

namespace probnas {

TrainTarget resolve_train_target(const std::string& value) {
  PROBNAS_CHECK(!value.empty(), "probnas train needs a genotype: --genotype <run folder>/genotype.json (or an NB201 "
                "string, or a DARTS Genotype(...) string)");
  TrainTarget t;
  if (value.front() == '|') {
    t.genotype.space = "nb201";
    t.genotype.text = value;
    nb201_cell_ops(t.genotype);  // validates
    return t;
  }
  if (value.rfind("Genotype(", 0) == 0) {
    t.genotype.space = "darts";
    t.genotype.text = value;
    darts_cell_nodes(t.genotype, "normal");
    darts_cell_nodes(t.genotype, "reduce");
    return t;
  }
  std::string file = value;
  if (std::filesystem::is_directory(file)) file += "/genotype.json";
  PROBNAS_CHECK(file_exists(file), "train.genotype = ", value, ": no such file (give a genotype.json written by probnas "
                "search, its run folder, an NB201 string |op~0|+...| or a DARTS Genotype(...) string)");
  t.genotype = read_genotype_file(file);
  t.file = file;
  t.folder = std::filesystem::path(file).parent_path().string();
  if (t.folder.empty()) t.folder = ".";
  if (t.genotype.space == "multibranch") {
    t.pgnas = true;
    PROBNAS_CHECK(file_exists(t.folder + "/best_network.h5"), "train.genotype = ", value, ": a PGNAS result is "
                  "evaluated from its best_network.h5, which is not in ", t.folder,
                  " (the PGNAS search has not finished ranking its candidates: run probnas search or sample again)");
  } else if (t.genotype.space == "nb201") {
    nb201_cell_ops(t.genotype);
  } else if (t.genotype.space == "darts") {
    darts_cell_nodes(t.genotype, "normal");
    darts_cell_nodes(t.genotype, "reduce");
  } else {
    PROBNAS_FAIL("genotype file '", file, "' is of the '", t.genotype.space,
                 "' space; probnas train builds nb201, darts and (PGNAS) multibranch networks");
  }
  return t;
}

std::string TrainProtocol::to_json() const {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["epochs"] = epochs;
  j["batch_size"] = batch_size;
  j["lr"] = lr;
  j["lr_min"] = lr_min;
  j["momentum"] = momentum;
  j["nesterov"] = nesterov;
  j["weight_decay"] = weight_decay;
  j["grad_clip"] = grad_clip;
  if (name != "pgnas") {
    j["channels"] = channels;
    j["cells"] = cells;
  }
  if (name.rfind("darts", 0) == 0) {
    j["stem"] = stem;
    j["auxiliary_weight"] = auxiliary_weight;
    j["drop_path"] = drop_path;
  }
  j["cutout"] = cutout;
  j["label_smoothing"] = label_smoothing;
  return j.dump();
}

TrainProtocol resolve_train_protocol(const Config& c, const std::string& space, int64_t image_size) {
  TrainProtocol p;
  const bool darts = space == "darts", nb201 = space == "nb201";
  std::string stem = c.text("train.stem");
  if (stem == "auto") stem = image_size >= 128 ? "imagenet" : "cifar";
  const bool imagenet = darts && stem == "imagenet";
  p.name = darts ? (imagenet ? "darts-imagenet" : "darts") : nb201 ? "nb201" : "pgnas";
  p.stem = stem;
  auto integer = [&](const char* key, int64_t automatic, int64_t sentinel) {
    return c.integer(key) == sentinel ? automatic : c.integer(key);
  };
  auto real = [&](const char* key, double automatic, double sentinel) {
    return c.real(key) == sentinel ? automatic : c.real(key);
  };
  // DARTS's train.py / train_imagenet.py, NAS-Bench-201's 200-epoch schedule, and PGNAS fine-tuning.
  p.epochs = integer("train.epochs", darts ? (imagenet ? 250 : 600) : nb201 ? 200 : 0, -1);
  p.batch_size = integer("train.batch_size", darts ? (imagenet ? 128 : 96) : nb201 ? 256 : 128, 0);
  p.lr = real("train.lr", darts ? (imagenet ? 0.1 : 0.025) : nb201 ? 0.1 : 0.01, 0);
  p.lr_min = c.real("train.lr_min");
  p.momentum = c.real("train.momentum");
  p.weight_decay = real("train.weight_decay", darts ? (imagenet ? 3e-5 : 3e-4) : 5e-4, -1);
  p.nesterov = c.text("train.nesterov") == "auto" ? nb201 : c.text("train.nesterov") == "true";
  p.grad_clip = real("train.grad_clip", darts ? 5 : 0, -1);
  p.channels = integer("train.channels", darts ? (imagenet ? 48 : 36) : 16, 0);
  p.cells = integer("train.cells", darts ? (imagenet ? 14 : 20) : 5, 0);
  p.auxiliary_weight = darts ? real("train.auxiliary_weight", 0.4, -1) : 0;
  p.drop_path = darts ? real("train.drop_path", imagenet ? 0 : 0.2, -1) : 0;
  p.cutout = integer("train.cutout", darts && !imagenet ? 16 : 0, -1);
  p.label_smoothing = real("train.label_smoothing", imagenet ? 0.1 : 0, -1);
  if (!darts) {
    PROBNAS_CHECK(c.real("train.auxiliary_weight") <= 0 && c.real("train.drop_path") <= 0, "train.auxiliary_weight "
                  "and train.drop_path belong to the DARTS evaluation network; this genotype is of the ", space,
                  " space");
  }
  if (space == "multibranch" && (c.integer("train.channels") != 0 || c.integer("train.cells") != 0)) {
    PROBNAS_LOG(warn) << "train.channels and train.cells are ignored: a PGNAS candidate's network is its best_network.h5";
  }
  return p;
}

std::string train_directory(const Config& c, const TrainTarget& t) {
  if (!c.text("run.dir").empty()) return c.text("run.dir");
  if (!t.folder.empty()) return t.folder + "/train";
  return "outputs/train-" + t.genotype.space + "-" + c.text("data.dataset") + "-seed" +
         std::to_string(c.integer("run.seed"));
}

namespace {

// Test accuracy and loss over the whole test split: ranks take every size-th batch, sums reduced.
StepMetrics::Values evaluate(EvalNetwork& net, const ImageSource& test, const ChannelStats& stats,
                             const TransformOptions& transform, int64_t batch, const c10::Device& device,
                             Communicator& comm) {
  average_batchnorm_statistics(net, comm);  // every rank tests with the same statistics
  torch::NoGradGuard no_grad;
  net.eval();
  StepMetrics m;
  m.set_sums(torch::zeros({6}, torch::kFloat64), device);  // a rank without a batch still joins the reduction
  const int64_t n = test.size();
  int64_t index = 0;
  for (int64_t start = 0; start < n; start += batch, ++index) {
    if (index % comm.size() != comm.rank()) continue;
    const auto idx = torch::arange(start, std::min(n, start + batch), torch::kInt64);
    const Examples ex = test.read(idx);
    const auto x = transform_images(ex.images, transform, stats, false, nullptr).to(device);
    m.add(true, net.forward(x).logits, ex.labels.to(device));
  }
  return m.read(comm.size() > 1 ? &comm : nullptr);
}

torch::Tensor cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& y, double smoothing) {
  return torch::nn::functional::cross_entropy(
      logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum).label_smoothing(smoothing));
}

}  // namespace

TrainSummary run_training(const Config& c, Communicator& world) {
  Stopwatch wall;
  const bool root = world.rank() == 0;
  const SignalWatch signals;
  const int threads = c.integer("run.threads") > 0 ? static_cast<int>(c.integer("run.threads"))
                                                    : default_threads_per_rank(world);
  configure_threads(threads);
  const c10::Device device = select_device(c.text("run.device"), world.local_rank());
  // CUDA tensors through NCCL where built with it; CPU tensors, bytes and barriers through MPI.
  const auto device_comm = make_device_communicator(world, device, c.text("comm.backend"));
  Communicator& comm = *device_comm;
  const RngKey key(static_cast<uint64_t>(c.integer("run.seed")));
  const TrainTarget target = resolve_train_target(c.text("train.genotype"));
  const Genotype& genotype = target.genotype;
  const std::string dir = train_directory(c, target);

  ckpt::SaveOptions save_options;
  save_options.compression = static_cast<int>(c.integer("ckpt.compress"));
  save_options.file_locking = c.boolean("ckpt.file_locking");
  ckpt::Directory checkpoints(dir + "/checkpoints", save_options, c.integer("ckpt.keep"));
  auto [resume_name, resume] = find_resume_state(c, checkpoints, comm, "train", genotype.space);
  if (resume) {
    const auto& meta = resume->group("meta");
    if (meta.attr_text("genotype") != genotype.text)
      throw ckpt::Incompatible("checkpoint '" + resume_name + "' trains the genotype " + meta.attr_text("genotype") +
                               "; this run trains " + genotype.text + ": give another run.dir");
  }

  // Data: the whole training split to train on, the test split to test on.
  auto data = load_training_data(c);
  check_ranks_agree(c, *data, comm);
  auto test = load_test_data(c);
  PROBNAS_CHECK(test->num_classes() == data->num_classes() && test->channels() == data->channels(),
                "the test split (", test->name(), ", ", test->num_classes(), " classes, ", test->channels(),
                " channels) does not match the training split (", data->num_classes(), " classes, ", data->channels(),
                " channels)");
  const ChannelStats stats = data->stats();
  const int64_t image_size = c.integer("data.image_size") > 0 ? c.integer("data.image_size") : data->height();
  PROBNAS_CHECK(c.integer("data.image_size") > 0 || (test->height() == data->height() && test->width() == data->width()),
                "the test images are ", test->height(), "x", test->width(), ", the training images ", data->height(),
                "x", data->width(), ": set data.image_size to bring both to one size");
  const TrainProtocol protocol = resolve_train_protocol(c, genotype.space, image_size);
  PROBNAS_CHECK(genotype.space != "nb201" || (image_size >= 4 && image_size % 4 == 0), "the NB201 network halves the "
                "images twice with 2x2 pooled shortcuts: their side must be a multiple of 4, these are ", image_size,
                " pixels (set data.image_size)");

  SplitOptions so = data_split_options(c, root);
  so.global_batch = protocol.batch_size;
  so.micro_batches = c.integer("train.micro_batches");
  so.batch_option = "train.batch_size";
  so.micro_option = "train.micro_batches";
  so.transform.cutout = protocol.cutout;
  TransformOptions test_transform = so.transform;
  test_transform.cutout = 0;

  // The network, its initial weights drawn from a keyed seed.
  torch::manual_seed(key.with("weights-init").value());
  std::shared_ptr<EvalNetwork> net;
  if (target.pgnas) {
    net = std::make_shared<PrunedModule>(import_pruned(target.folder + "/best_network.h5"));
  } else {
    EvalNetworkOptions eo;
    eo.channels = protocol.channels;
    eo.cells = protocol.cells;
    eo.input_channels = data->channels();
    eo.classes = data->num_classes();
    eo.auxiliary = protocol.auxiliary_weight > 0;
    eo.stem = protocol.stem;
    net = make_eval_network(genotype, eo);
  }
  net->to(device);
  const int64_t params = net->parameters_main(), params_aux = net->parameters_auxiliary();
  const int64_t flops = net->multiply_adds(image_size, image_size);
  std::vector<torch::Tensor> weights;
  std::vector<std::string> names;
  for (const auto& p : net->named_parameters()) {
    weights.push_back(p.value());
    names.push_back(p.key());
  }
  SgdOptions sgd;
  sgd.lr = protocol.lr;
  sgd.momentum = protocol.momentum;
  sgd.weight_decay = protocol.weight_decay;
  sgd.nesterov = protocol.nesterov;
  Sgd optimizer(weights, sgd);
  optimizer.set_names(names);

  const int64_t epochs = protocol.epochs;
  // No loader without training (a PGNAS candidate tested as sampled needs no whole training batch).
  std::optional<SplitLoader> loader;
  if (epochs > 0)
    loader.emplace(data, torch::arange(data->size(), torch::kInt64), stats, so, key.with("data").with("train"), device,
                   comm.rank(), comm.size());
  const int64_t steps_per_epoch = loader ? loader->steps_per_epoch() : 0;
  const int64_t total_steps = epochs * steps_per_epoch;
  const std::string mode = target.pgnas ? (epochs > 0 ? "fine_tuned" : "as_sampled")
                                        : (epochs > 0 ? "retrained" : "untrained");

  int64_t start_step = 0, images = 0;
  double wall_before = 0;
  std::vector<std::string> history;
  StepMetrics metrics;
  if (resume && epochs == 0) {
    PROBNAS_LOG(info) << "train.epochs = 0: " << resume_name << " is not used (the network is tested as it is)";
  } else if (resume) {
    const auto& l = resume->group("loader");
    PROBNAS_CHECK(l.attr_int("steps_per_epoch") == steps_per_epoch && l.attr_int("examples") == loader->examples(),
                  "checkpoint '", resume_name, "' was made with ", l.attr_int("examples"), " training images in ",
                  l.attr_int("steps_per_epoch"), " steps per epoch; this run has ", loader->examples(), " in ",
                  steps_per_epoch, ": the training data or batch size changed");
    PROBNAS_CHECK(l.attr_text("data") == data->fingerprint(), "checkpoint '", resume_name, "' was made on other "
                  "training data (", l.attr_text("data"), "; this run: ", data->fingerprint(), ")");
    start_step = l.attr_int("global_step");
    load_module(resume->group("model"), *net);
    optimizer.load(resume->group("optim"));
    restore_generator_states(resume->group("rng"), comm.rank());
    const auto& h = resume->group("history");
    history = h.lines("metrics");
    images = h.attr_int("images");
    const auto sums = h.get("epoch_sums");
    if (sums.size(0) == comm.size())
      metrics.set_sums(sums[comm.rank()], device);
    else
      metrics.set_sums(root ? sums.sum(0) : torch::zeros({6}, torch::kFloat64), device);
    wall_before = resume->group("meta").attr_real("wall_seconds");
    PROBNAS_LOG(info) << "resuming from " << resume_name << " (step " << start_step << " of " << total_steps << ")";
  }

  const std::string metrics_path = dir + "/train-metrics.jsonl";
  if (root) {
    make_directories(dir);
    write_file_atomic(dir + "/config.ini", c.to_ini());
    std::string lines;
    for (const auto& l : history) lines += l + "\n";
    write_file_atomic(metrics_path, lines);
  }
  log_slurm_job();
  PROBNAS_LOG(info) << "probnas " << PROBNAS_VERSION << ": training " << genotype.text << " ("
                    << (target.pgnas ? "the PGNAS candidate in " + target.folder + "/best_network.h5"
                                     : genotype.space + " evaluation network, C=" + std::to_string(protocol.channels) +
                                           (genotype.space == "darts" ? ", " + std::to_string(protocol.cells) + " cells"
                                                                      : ", N=" + std::to_string(protocol.cells)))
                    << ", " << fixed(static_cast<double>(params) / 1e6, 3) << "M parameters"
                    << (params_aux > 0 ? " + " + fixed(static_cast<double>(params_aux) / 1e6, 3) + "M auxiliary" : "")
                    << ", " << fixed(static_cast<double>(flops) / 1e6, 1) << "M multiply-adds at " << image_size << "x"
                    << image_size << ") on " << data->name() << " " << data->size() << " images, tested on "
                    << test->size() << "; " << comm.size() << " rank" << (comm.size() > 1 ? "s" : "") << ", "
                    << device_description(device);
  PROBNAS_LOG(info) << "protocol " << protocol.name << ": " << protocol.to_json() << " -> " << dir;
  if (epochs > 0) {
    PROBNAS_LOG(info) << epochs << " epochs x " << steps_per_epoch << " steps of " << so.global_batch << " images in "
                      << so.micro_batches << " micro-batch" << (so.micro_batches > 1 ? "es" : "");
  }

  auto save_checkpoint = [&](int64_t done) {
    Stopwatch t;
    average_batchnorm_statistics(*net, comm);  // rank 0 saves what every rank holds
    const auto rng_states = comm.allgather_bytes(generator_states());
    const auto sums = comm.allgather(metrics.sums());
    std::string path;
    if (root) {
      ckpt::State state;
      auto& meta = state.group("meta");
      put_run_meta(meta, c, "train", genotype.space, data->name(), comm.size(), done, steps_per_epoch, total_steps,
                   wall_before + wall.seconds());
      meta.set_attr("genotype", genotype.text);
      save_module(state.group("model"), *net);
      optimizer.save(state.group("optim"));
      auto& m = state.group("method");
      m.set_attr("name", std::string("train"));
      m.set_attr("genotype", genotype.text);
      m.set_attr("protocol", protocol.to_json());
      auto& l = state.group("loader");
      l.set_attr("epoch", done / steps_per_epoch);
      l.set_attr("step_in_epoch", done % steps_per_epoch);
      l.set_attr("global_step", done);
      l.set_attr("steps_per_epoch", steps_per_epoch);
      l.set_attr("examples", loader->examples());
      l.set_attr("global_batch", so.global_batch);
      l.set_attr("micro_batches", so.micro_batches);
      l.set_attr("data", data->fingerprint());
      auto& rng = state.group("rng");
      rng.set_attr("seed", c.integer("run.seed"));
      put_generator_states(rng, rng_states);
      auto& h = state.group("history");
      h.put_lines("metrics", history);
      h.put("epoch_sums", sums);
      h.set_attr("images", images);
      path = checkpoints.save(state, done);
    }
    comm.barrier();
    PROBNAS_LOG(info) << "checkpoint at step " << done << " -> " << path << " (" << fixed(t.seconds(), 2) << " s)";
    return path;
  };

  TrainSummary summary;
  summary.run_dir = dir;
  summary.mode = mode;
  summary.params = params;
  summary.flops = flops;
  summary.epochs = epochs;
  Stopwatch since_progress, clock, since_checkpoint, epoch_clock;
  const double progress_interval = c.real("run.progress_interval");
  const int64_t verify_interval = c.integer("comm.verify_interval");
  const int64_t ckpt_steps = c.integer("ckpt.interval_steps");
  const double ckpt_seconds = c.real("ckpt.interval_minutes") * 60;
  const int64_t eval_every = c.integer("train.eval_every");
  Communicator* reduce = comm.size() > 1 ? &comm : nullptr;
  int64_t epoch_images = 0;
  double drop_prob = 0;
  for (int64_t g = start_step; g < total_steps; ++g) {
    const int64_t epoch = g / steps_per_epoch, s = g % steps_per_epoch;
    if (s == 0 || g == start_step) {
      optimizer.set_lr(cosine_lr(protocol.lr, protocol.lr_min, epoch, epochs));
      drop_prob = protocol.drop_path * static_cast<double>(epoch) / static_cast<double>(epochs);
    }
    if (s == 0) {
      metrics.reset();
      epoch_images = 0;
      epoch_clock.reset();
    }
    maybe_inject_failure(comm.rank(), g);
    net->train();
    for (auto& w : weights) w.mutable_grad() = torch::Tensor();  // the last step's reduced gradient
    GradientSum sum(weights);
    for (const Batch& b : loader->batch(epoch, s)) {
      auto gen = make_generator(key.with("drop-path").with(static_cast<uint64_t>(g)).with(static_cast<uint64_t>(b.index)));
      const EvalOutput out = net->forward(b.x, drop_prob, &gen);
      auto loss = cross_entropy_sum(out.logits, b.y, protocol.label_smoothing);
      if (out.aux_logits.defined())
        loss = loss + protocol.auxiliary_weight * cross_entropy_sum(out.aux_logits, b.y, protocol.label_smoothing);
      (loss / static_cast<double>(b.global)).backward();
      sum.take();
      metrics.add(false, out.logits, b.y);
    }
    sum.finish(reduce);
    if (protocol.grad_clip > 0) clip_grad_norm(weights, protocol.grad_clip);
    optimizer.step();
    const int64_t done = g + 1;
    if (verify_interval > 0 && comm.size() > 1 && done % verify_interval == 0) verify_identical(weights, comm, done);
    images += so.global_batch;
    epoch_images += so.global_batch;
    // A signal, the checkpoint clock and the progress clock may fire on one rank only: the ranks
    // agree through one small allreduce per step.
    const auto calls = agree_on_step_calls(comm, root && ckpt_seconds > 0 && since_checkpoint.seconds() >= ckpt_seconds,
                                           root && since_progress.seconds() >= progress_interval);
    if (calls.progress_due || done == total_steps) {
      since_progress.reset();
      const auto v = metrics.read(reduce);
      const double per_step = clock.seconds() / static_cast<double>(done - start_step);
      PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " step " << s + 1 << "/" << steps_per_epoch
                        << " | train loss " << fixed(v.train_loss, 3) << " acc " << fixed(100 * v.train_acc, 1)
                        << "% | lr " << fixed(optimizer.lr(), 5) << " | "
                        << fixed(static_cast<double>(so.global_batch) / per_step, 1) << " img/s | ETA "
                        << format_duration(per_step * static_cast<double>(total_steps - done));
    }
    const bool epoch_end = done % steps_per_epoch == 0;
    if (epoch_end) {
      const auto v = metrics.read(reduce);
      nlohmann::ordered_json line;
      line["epoch"] = epoch + 1;
      line["step"] = done;
      line["lr"] = optimizer.lr();
      line["drop_path"] = drop_prob;
      line["train_loss"] = v.train_loss;
      line["train_acc"] = v.train_acc;
      if (eval_every > 0 && (epoch + 1) % eval_every == 0 && epoch + 1 < epochs) {
        const auto t = evaluate(*net, *test, stats, test_transform, c.integer("train.eval_batch"), device, comm);
        line["test_loss"] = t.val_loss;
        line["test_acc"] = t.val_acc;
      }
      line["images"] = images;
      line["wall_s"] = wall_before + wall.seconds();
      line["images_per_s"] = static_cast<double>(epoch_images) / epoch_clock.seconds();
      history.push_back(line.dump());
      if (root) append_line(metrics_path, history.back());
      PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " done: train acc " << fixed(100 * v.train_acc, 2)
                        << "%" << (line.contains("test_acc") ? ", test acc " + fixed(100 * line["test_acc"].get<double>(), 2) + "%"
                                                              : std::string());
    }
    const bool signalled = calls.signalled;
    if (signalled || calls.time_due || (ckpt_steps > 0 && done % ckpt_steps == 0) ||
        (epoch_end && c.boolean("ckpt.epoch_end")) || done == total_steps) {
      summary.checkpoint = save_checkpoint(done);
      since_checkpoint.reset();
    }
    if (signalled && done < total_steps) {
      const int sig = SignalWatch::received();
      summary.interrupted = true;
      summary.signal = sig ? signal_name(sig) : "a signal on another rank";
      summary.steps = done;
      summary.wall_seconds = wall_before + wall.seconds();
      PROBNAS_LOG(warn) << "received " << summary.signal << ": checkpointed at step " << done << " of " << total_steps
                        << "; exiting with code " << kExitCheckpointed << " (run the same command to resume)";
      return summary;
    }
  }

  // The test split, once more at the end (also when a finished run is started again).
  const auto t = evaluate(*net, *test, stats, test_transform, c.integer("train.eval_batch"), device, comm);
  summary.test_acc = t.val_acc;
  summary.test_loss = t.val_loss;
  summary.test_images = t.val_count;
  summary.steps = std::max(total_steps, start_step);
  summary.wall_seconds = wall_before + wall.seconds();
  if (root) {
    nlohmann::ordered_json r;
    r["command"] = "train";
    r["search_run"] = target.folder;
    r["genotype_file"] = target.file;
    r["space"] = genotype.space;
    r["genotype"] = genotype.text;
    std::string method;
    if (!target.file.empty()) {
      const auto j = nlohmann::json::parse(read_file_bytes(target.file), nullptr, false);
      if (j.is_object() && j.contains("method") && j["method"].is_string()) method = j["method"].get<std::string>();
    }
    r["method"] = method;
    r["dataset"] = data->name();
    r["mode"] = mode;
    r["test_acc"] = summary.test_acc;
    r["test_loss"] = summary.test_loss;
    r["test_images"] = summary.test_images;
    r["params"] = params;
    r["params_auxiliary"] = params_aux;
    r["flops"] = flops;
    r["image_size"] = image_size;
    r["epochs"] = epochs;
    r["channels"] = target.pgnas ? 0 : protocol.channels;
    r["cells"] = target.pgnas ? 0 : protocol.cells;
    r["protocol"] = nlohmann::ordered_json::parse(protocol.to_json());
    r["wall_s"] = summary.wall_seconds;
    r["images"] = images;
    r["seed"] = c.integer("run.seed");
    r["ranks"] = comm.size();
    if (genotype.space == "nb201") {
      const std::string table_path = locate_nb201_table(c.text("report.nb201_table"));
      if (!table_path.empty()) {
        const Nb201Table table(table_path);
        if (const auto score = table.find(genotype.text))
          r["nb201"] = {{"index", score->index}, {"cifar10_test", score->cifar10_test},
                        {"cifar100_test", score->cifar100_test}, {"imagenet16_test", score->imagenet16_test}};
        else
          r["nb201"] = {{"not_found", table.why_missing(genotype.text)}};
      }
    }
    r["finished_at"] = utc_now();
    write_file_atomic(dir + "/result.json", r.dump(2) + "\n");
    // The search's report shows its retraining.
    std::error_code ec;
    if (!target.folder.empty() && std::filesystem::equivalent(dir, target.folder + "/train", ec)) {
      if (std::string why; !write_report(target.folder, &why)) {
        PROBNAS_LOG(warn) << "report.html not written: " << why;
      }
    }
  }
  comm.barrier();
  return summary;
}

}  // namespace probnas
