#include "probnas/engine/train_engine.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <optional>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/ckpt/run_checkpoint.h"
#include "probnas/ckpt/torch_state.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/format.h"
#include "probnas/core/log.h"
#include "probnas/core/signals.h"
#include "probnas/core/timer.h"
#include "probnas/data/loader.h"
#include "probnas/engine/run_report.h"
#include "probnas/engine/run_support.h"
#include "probnas/engine/step_loop.h"
#include "probnas/method/batchnorm_sum.h"
#include "probnas/method/gradient_sum.h"
#include "probnas/method/method.h"
#include "probnas/space/pruned_file.h"
#include "probnas/optim/optimizers.h"
#include "probnas/run/nb201_table.h"
#include "probnas/run/run_folder.h"
#include "probnas/space/eval_network.h"
#include "probnas/space/multibranch.h"

namespace probnas {

std::string train_directory(const TrainSettings& s, const TrainTarget& t) {
  if (!s.run.dir.empty()) return s.run.dir;
  if (!t.folder.empty()) return t.folder + "/train";
  return "outputs/train-" + t.genotype.space + "-" + s.data.dataset + "-seed" + std::to_string(s.run.seed);
}

namespace {

// Test accuracy and loss over the whole test split: ranks take every size-th batch, sums reduced.
StepMetrics::Values evaluate(EvalNetwork& net, const ImageSource& test, const ChannelStats& stats,
                             const TransformOptions& transform, int64_t batch, const c10::Device& device,
                             Communicator& comm, bool channels_last) {
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
    m.add(true, net.forward(images_in_format(x, channels_last)).logits, ex.labels.to(device));
  }
  return m.read(comm.size() > 1 ? &comm : nullptr);
}

torch::Tensor cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& y, double smoothing) {
  return torch::nn::functional::cross_entropy(
      logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum).label_smoothing(smoothing));
}

// One training: what it reads and builds, and the steps of its loop.
class Training {
 public:
  Training(const TrainSettings& s, Communicator& world);
  TrainSummary run();

 private:
  void restore();
  void log_start() const;
  std::string checkpoint(int64_t done);
  void set_schedule(int64_t epoch);
  int64_t step(int64_t epoch, int64_t s, int64_t g);
  void end_epoch(int64_t epoch, int64_t done);
  void write_result(const TrainSummary& summary) const;

  const TrainSettings& s_;
  Stopwatch wall_;
  const SignalWatch signals_;
  RunEnvironment env_;
  Communicator& comm_;
  const bool root_;
  const RngKey key_;
  const TrainTarget target_;
  const Genotype& genotype_;
  const std::string dir_;
  const std::unique_ptr<FolderLock> lock_;  // held from before the first read of the folder to the end
  ckpt::Directory checkpoints_;
  std::string resume_name_;
  std::optional<ckpt::State> resume_;
  std::shared_ptr<const ImageSource> data_, test_;
  ChannelStats stats_;
  int64_t image_size_ = 0;
  TrainProtocol protocol_;
  SplitOptions so_;
  TransformOptions test_transform_;
  std::shared_ptr<EvalNetwork> net_;
  bool channels_last_ = false;  // run.channels_last resolved for the device
  int64_t params_ = 0, params_aux_ = 0, flops_ = 0;
  std::vector<torch::Tensor> weights_;
  std::optional<Sgd> optimizer_;
  std::optional<SplitLoader> loader_;
  int64_t epochs_ = 0, steps_per_epoch_ = 0, total_steps_ = 0, start_step_ = 0, images_ = 0;
  std::string mode_;
  double wall_before_ = 0, drop_prob_ = 0;
  std::vector<std::string> history_;
  StepMetrics metrics_;
  Communicator* reduce_ = nullptr;
  std::optional<StepLoop> loop_;
};

Training::Training(const TrainSettings& s, Communicator& world)
    : s_(s),
      env_(make_run_environment(s.run.threads, s.run.device, s.comm.backend, world)),
      comm_(*env_.comm),
      root_(world.rank() == 0),
      key_(static_cast<uint64_t>(s.run.seed)),
      target_(resolve_train_target(s.train.genotype)),
      genotype_(target_.genotype),
      dir_(train_directory(s, target_)),
      lock_(lock_run_folder(dir_, s.run.lock, world)),
      checkpoints_(dir_ + "/checkpoints", s.ckpt.save(), s.ckpt.keep) {
  std::tie(resume_name_, resume_) = find_resume_state(s.run.resume, *s.config, checkpoints_, comm_, "train", genotype_.space);
  if (resume_) {
    const ckpt::CheckpointMeta meta = ckpt::read_meta(*resume_);
    if (meta.genotype != genotype_.text)
      throw ckpt::Incompatible("checkpoint '" + resume_name_ + "' trains the genotype " + meta.genotype +
                               "; this run trains " + genotype_.text + ": give another run.dir");
  }
  // Data: the whole training split to train on, the test split to test on.
  data_ = load_training_data(s.data);
  check_ranks_agree(s.config->hash(), *data_, comm_);
  test_ = load_test_data(s.data);
  PROBNAS_CHECK(test_->num_classes() == data_->num_classes() && test_->channels() == data_->channels(),
                "the test split (", test_->name(), ", ", test_->num_classes(), " classes, ", test_->channels(),
                " channels) does not match the training split (", data_->num_classes(), " classes, ",
                data_->channels(), " channels)");
  stats_ = data_->stats();
  image_size_ = s.data.image_size > 0 ? s.data.image_size : data_->height();
  PROBNAS_CHECK(s.data.image_size > 0 || (test_->height() == data_->height() && test_->width() == data_->width()),
                "the test images are ", test_->height(), "x", test_->width(), ", the training images ",
                data_->height(), "x", data_->width(), ": set data.image_size to bring both to one size");
  // train.protocol = auto resolves once, when the training begins: a resumed run keeps the protocol its checkpoint
  // records, even where the genotype file now names another method.
  std::string method = target_.method;
  if (resume_ && s.train.protocol == "auto" && resume_->group("method").has_attr("protocol")) {
    const auto stored = nlohmann::json::parse(resume_->group("method").attr_text("protocol"), nullptr, false);
    if (stored.is_object() && stored.contains("name") && stored["name"].is_string()) {
      const std::string name = stored["name"].get<std::string>();
      if (name.rfind("drnas", 0) == 0 || name.rfind("darts", 0) == 0) method = name.substr(0, 5);
    }
  }
  protocol_ = resolve_train_protocol(s.train, genotype_.space, image_size_, method);
  if (resume_ && resume_->group("method").has_attr("protocol") &&
      adopt_older_schedule(protocol_, resume_->group("method").attr_text("protocol"), s.train))
    PROBNAS_LOG(info) << "the checkpoint predates train.lr_schedule: the training goes on with the cosine schedule it "
                         "began with";
  if (method != target_.method && protocol_.name != resolve_train_protocol(s.train, genotype_.space, image_size_,
                                                                           target_.method).name)
    PROBNAS_LOG(warn) << "resuming with the " << protocol_.name << " protocol the training began with; "
                      << (target_.file.empty() ? "the genotype" : target_.file) << " now names the "
                      << (target_.method.empty() ? "no" : target_.method) << " method";
  PROBNAS_CHECK(genotype_.space != "nb201" || (image_size_ >= 4 && image_size_ % 4 == 0), "the NB201 network halves "
                "the images twice with 2x2 pooled shortcuts: their side must be a multiple of 4, these are ",
                image_size_, " pixels (set data.image_size)");
  so_ = data_split_options(s.data, root_);
  so_.global_batch = protocol_.batch_size;
  so_.micro_batches = s.train.micro_batches;
  so_.batch_option = "train.batch_size";
  so_.micro_option = "train.micro_batches";
  so_.transform.cutout = protocol_.cutout;
  test_transform_ = so_.transform;
  test_transform_.cutout = 0;

  // The network, its initial weights drawn from a keyed seed.
  torch::manual_seed(key_.with("weights-init").value());
  if (target_.pgnas) {
    net_ = std::make_shared<PrunedModule>(import_pruned(target_.folder + "/best_network.h5"));
  } else {
    EvalNetworkOptions eo;
    eo.channels = protocol_.channels;
    eo.cells = protocol_.cells;
    eo.input_channels = data_->channels();
    eo.classes = data_->num_classes();
    eo.auxiliary = protocol_.auxiliary_weight > 0;
    eo.stem = protocol_.stem;
    net_ = make_eval_network(genotype_, eo);
  }
  net_->to(env_.device);
  channels_last_ = use_channels_last(s.run.channels_last, env_.device.is_cuda());
  to_memory_format(*net_, channels_last_);
  params_ = net_->parameters_main();
  params_aux_ = net_->parameters_auxiliary();
  flops_ = net_->multiply_adds(image_size_, image_size_);
  std::vector<std::string> names;
  for (const auto& p : net_->named_parameters()) {
    weights_.push_back(p.value());
    names.push_back(p.key());
  }
  SgdOptions sgd;
  sgd.lr = protocol_.lr;
  sgd.momentum = protocol_.momentum;
  sgd.weight_decay = protocol_.weight_decay;
  sgd.nesterov = protocol_.nesterov;
  optimizer_.emplace(weights_, sgd);
  optimizer_->set_names(names);

  epochs_ = protocol_.epochs;
  // No loader without training (a PGNAS candidate tested as sampled needs no whole training batch).
  if (epochs_ > 0)
    loader_.emplace(data_, torch::arange(data_->size(), torch::kInt64), stats_, so_, key_.with("data").with("train"),
                    env_.device, comm_.rank(), comm_.size());
  steps_per_epoch_ = loader_ ? loader_->steps_per_epoch() : 0;
  total_steps_ = epochs_ * steps_per_epoch_;
  mode_ = target_.pgnas ? (epochs_ > 0 ? "fine_tuned" : "as_sampled") : (epochs_ > 0 ? "retrained" : "untrained");
  reduce_ = comm_.size() > 1 ? &comm_ : nullptr;
  if (resume_ && epochs_ == 0) {
    PROBNAS_LOG(info) << "train.epochs = 0: " << resume_name_ << " is not used (the network is tested as it is)";
  } else if (resume_) {
    restore();
  }
}

void Training::restore() {
  const ckpt::DataPosition p = ckpt::read_position(*resume_);
  PROBNAS_CHECK(p.steps_per_epoch == steps_per_epoch_ && p.examples == loader_->examples(), "checkpoint '",
                resume_name_, "' was made with ", p.examples, " training images in ", p.steps_per_epoch,
                " steps per epoch; this run has ", loader_->examples(), " in ", steps_per_epoch_,
                ": the training data or batch size changed");
  PROBNAS_CHECK(p.data == data_->fingerprint(), "checkpoint '", resume_name_, "' was made on other training data (",
                p.data, "; this run: ", data_->fingerprint(), ")");
  start_step_ = p.global_step;
  load_module(resume_->group("model"), *net_);
  optimizer_->load(resume_->group("optim"));
  restore_generator_states(resume_->group("rng"), comm_.rank());
  const ckpt::RunHistory h = ckpt::read_history(*resume_);
  history_ = h.metrics;
  images_ = h.images;
  metrics_.set_sums(h.sums_for(comm_.rank(), comm_.size()), env_.device);
  wall_before_ = ckpt::read_meta(*resume_).wall_seconds;
  PROBNAS_LOG(info) << "resuming from " << resume_name_ << " (step " << start_step_ << " of " << total_steps_ << ")";
}

void Training::log_start() const {
  log_slurm_job();
  PROBNAS_LOG(info) << "probnas " << PROBNAS_VERSION << ": training " << genotype_.text << " ("
                    << (target_.pgnas ? "the PGNAS candidate in " + target_.folder + "/best_network.h5"
                                      : genotype_.space + " evaluation network, C=" + std::to_string(protocol_.channels) +
                                            (genotype_.space == "darts" ? ", " + std::to_string(protocol_.cells) + " cells"
                                                                        : ", N=" + std::to_string(protocol_.cells)))
                    << ", " << fixed(static_cast<double>(params_) / 1e6, 3) << "M parameters"
                    << (params_aux_ > 0 ? " + " + fixed(static_cast<double>(params_aux_) / 1e6, 3) + "M auxiliary" : "")
                    << ", " << fixed(static_cast<double>(flops_) / 1e6, 1) << "M multiply-adds at " << image_size_ << "x"
                    << image_size_ << ") on " << data_->name() << " " << data_->size() << " images, tested on "
                    << test_->size() << "; " << comm_.size() << " rank" << (comm_.size() > 1 ? "s" : "") << ", "
                    << device_description(env_.device);
  PROBNAS_LOG(info) << "protocol " << protocol_.name << ": " << protocol_.to_json() << " -> " << dir_;
  if (epochs_ > 0) {
    PROBNAS_LOG(info) << epochs_ << " epochs x " << steps_per_epoch_ << " steps of " << so_.global_batch << " images in "
                      << so_.micro_batches << " micro-batch" << (so_.micro_batches > 1 ? "es" : "");
  }
}

std::string Training::checkpoint(int64_t done) {
  Stopwatch t;
  const auto rng_states = comm_.allgather_bytes(generator_states());
  const auto sums = comm_.allgather(metrics_.sums());
  std::string path;
  if (root_) {
    ckpt::RunCheckpoint c;
    c.meta = checkpoint_meta(*s_.config, "train", genotype_.space, data_->name(), comm_.size(), done, steps_per_epoch_,
                             total_steps_, wall_before_ + wall_.seconds());
    c.meta.genotype = genotype_.text;
    save_module(c.model, *net_);
    optimizer_->save(c.optim);
    c.method.set_attr("name", std::string("train"));
    c.method.set_attr("genotype", genotype_.text);
    c.method.set_attr("protocol", protocol_.to_json());
    c.position.global_step = done;
    c.position.steps_per_epoch = steps_per_epoch_;
    c.position.examples = loader_->examples();
    c.position.global_batch = so_.global_batch;
    c.position.micro_batches = so_.micro_batches;
    c.position.data = data_->fingerprint();
    c.seed = s_.run.seed;
    c.generator_states = rng_states;
    c.history.metrics = history_;
    c.history.epoch_sums = sums;
    c.history.images = loop_->images();
    path = checkpoints_.save(ckpt::to_state(c), done);
  }
  comm_.barrier();
  PROBNAS_LOG(info) << "checkpoint at step " << done << " -> " << path << " (" << fixed(t.seconds(), 2) << " s)";
  return path;
}

void Training::set_schedule(int64_t epoch) {
  optimizer_->set_lr(protocol_.lr_at(epoch, epochs_));
  drop_prob_ = protocol_.drop_path * static_cast<double>(epoch) / static_cast<double>(epochs_);
}

int64_t Training::step(int64_t epoch, int64_t s, int64_t g) {
  net_->train();
  for (auto& w : weights_) w.mutable_grad() = torch::Tensor();  // the last step's reduced gradient
  GradientSum sum(weights_);
  // The running statistics every rank holds are one rank's (tests and checkpoints use them).
  BatchNormSum norms(*net_, so_.micro_batches);
  for (const Batch& b : loader_->batch(epoch, s)) {
    auto gen = make_generator(key_.with("drop-path").with(static_cast<uint64_t>(g)).with(static_cast<uint64_t>(b.index)));
    const EvalOutput out = net_->forward(images_in_format(b.x, channels_last_), drop_prob_, &gen);
    auto loss = cross_entropy_sum(out.logits, b.y, protocol_.label_smoothing);
    if (out.aux_logits.defined())
      loss = loss + protocol_.auxiliary_weight * cross_entropy_sum(out.aux_logits, b.y, protocol_.label_smoothing);
    (loss / static_cast<double>(b.global)).backward();
    sum.take();
    norms.take(b.index);
    metrics_.add(false, out.logits, b.y);
  }
  norms.finish(reduce_);
  sum.finish(reduce_);
  if (protocol_.grad_clip > 0) clip_grad_norm(weights_, protocol_.grad_clip);
  optimizer_->step();
  return so_.global_batch;
}

void Training::end_epoch(int64_t epoch, int64_t done) {
  const auto v = metrics_.read(reduce_);
  nlohmann::ordered_json line;
  line["epoch"] = epoch + 1;
  line["step"] = done;
  line["lr"] = optimizer_->lr();
  line["drop_path"] = drop_prob_;
  line["train_loss"] = v.train_loss;
  line["train_acc"] = v.train_acc;
  if (s_.train.eval_every > 0 && (epoch + 1) % s_.train.eval_every == 0 && epoch + 1 < epochs_) {
    const auto t = evaluate(*net_, *test_, stats_, test_transform_, s_.train.eval_batch, env_.device, comm_, channels_last_);
    line["test_loss"] = t.val_loss;
    line["test_acc"] = t.val_acc;
  }
  line["images"] = loop_->images();
  line["wall_s"] = wall_before_ + wall_.seconds();
  line["images_per_s"] = loop_->epoch_images_per_second();
  history_.push_back(line.dump());
  if (root_) append_metrics_line(run_path(dir_, run_files::train_metrics), history_.back());
  PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs_ << " done: train acc " << fixed(100 * v.train_acc, 2)
                    << "%"
                    << (line.contains("test_acc") ? ", test acc " + fixed(100 * line["test_acc"].get<double>(), 2) + "%"
                                                  : std::string());
}

TrainSummary Training::run() {
  if (root_) {
    make_directories(dir_);
    ckpt::write_file_atomic(run_path(dir_, run_files::config), s_.config->to_ini());
    write_metrics_log(run_path(dir_, run_files::train_metrics), history_);
  }
  log_start();
  loop_.emplace(comm_, step_loop_policy(s_), images_);
  StepLoop::Hooks hooks;
  hooks.begin_epoch = [&](int64_t epoch) {
    set_schedule(epoch);
    metrics_.reset();
  };
  hooks.resume_epoch = [&](int64_t epoch) { set_schedule(epoch); };
  hooks.step = [&](int64_t epoch, int64_t s, int64_t g) { return step(epoch, s, g); };
  hooks.tracked = [&] { return weights_; };
  hooks.progress = [&] {
    const auto v = metrics_.read(reduce_);
    return "train loss " + fixed(v.train_loss, 3) + " acc " + fixed(100 * v.train_acc, 1) + "% | lr " +
           fixed(optimizer_->lr(), 5);
  };
  hooks.end_epoch = [&](int64_t epoch, int64_t done) { end_epoch(epoch, done); };
  hooks.checkpoint = [&](int64_t done) { return checkpoint(done); };
  const StepLoop::End end = loop_->run(start_step_, total_steps_, steps_per_epoch_, hooks);

  TrainSummary summary;
  summary.run_dir = dir_;
  summary.mode = mode_;
  summary.params = params_;
  summary.flops = flops_;
  summary.epochs = epochs_;
  summary.checkpoint = end.checkpoint;
  summary.steps = end.steps;
  if (end.interrupted) {
    summary.interrupted = true;
    summary.signal = end.signal;
    summary.wall_seconds = wall_before_ + wall_.seconds();
    return summary;
  }
  // The test split, once more at the end (also when a finished run is started again).
  const auto t = evaluate(*net_, *test_, stats_, test_transform_, s_.train.eval_batch, env_.device, comm_, channels_last_);
  summary.test_acc = t.val_acc;
  summary.test_loss = t.val_loss;
  summary.test_images = t.val_count;
  summary.wall_seconds = wall_before_ + wall_.seconds();
  if (root_) write_result(summary);
  comm_.barrier();
  return summary;
}

void Training::write_result(const TrainSummary& summary) const {
  nlohmann::ordered_json r;
  r["command"] = "train";
  r["search_run"] = target_.folder;
  r["genotype_file"] = target_.file;
  r["space"] = genotype_.space;
  r["genotype"] = genotype_.text;
  r["method"] = target_.method;
  r["dataset"] = data_->name();
  r["mode"] = mode_;
  r["test_acc"] = summary.test_acc;
  r["test_loss"] = summary.test_loss;
  r["test_images"] = summary.test_images;
  r["params"] = params_;
  r["params_auxiliary"] = params_aux_;
  r["flops"] = flops_;
  r["image_size"] = image_size_;
  r["epochs"] = epochs_;
  r["channels"] = target_.pgnas ? 0 : protocol_.channels;
  r["cells"] = target_.pgnas ? 0 : protocol_.cells;
  r["protocol"] = nlohmann::ordered_json::parse(protocol_.to_json());
  r["wall_s"] = summary.wall_seconds;
  r["images"] = loop_->images();
  r["seed"] = s_.run.seed;
  r["ranks"] = comm_.size();
  if (genotype_.space == "nb201") {
    const std::string table_path = locate_nb201_table(s_.report.nb201_table);
    if (!table_path.empty()) {
      const Nb201Table table(table_path);
      if (const auto score = table.find(genotype_.text))
        r["nb201"] = {{"index", score->index}, {"cifar10_test", score->cifar10_test},
                      {"cifar100_test", score->cifar100_test}, {"imagenet16_test", score->imagenet16_test}};
      else
        r["nb201"] = {{"not_found", table.why_missing(genotype_.text)}};
    }
  }
  r["finished_at"] = utc_now();
  write_json(run_path(dir_, run_files::result), r);
  // The search's report shows its retraining.
  std::error_code ec;
  if (!target_.folder.empty() && std::filesystem::equivalent(dir_, target_.folder + "/train", ec)) {
    if (std::string why; !write_report(target_.folder, &why)) {
      PROBNAS_LOG(warn) << "report.html not written: " << why;
    }
  }
}

}  // namespace

TrainSummary run_training(const TrainSettings& settings, Communicator& comm) {
  PROBNAS_CHECK(settings.config != nullptr, "internal: run_training needs the effective configuration");
  Training training(settings, comm);
  return training.run();
}

}  // namespace probnas
