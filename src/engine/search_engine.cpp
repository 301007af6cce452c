#include "probnas/engine/search_engine.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
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
#include "probnas/engine/run_report.h"
#include "probnas/engine/run_support.h"
#include "probnas/engine/step_loop.h"
#include "probnas/method/method.h"
#include "probnas/method/registry.h"
#include "probnas/optim/optimizers.h"
#include "probnas/run/nb201_table.h"
#include "probnas/run/run_folder.h"
#include "probnas/space/cell_picture.h"

namespace probnas {

const OptionBinding<SearchOptions>& search_options() {
  using O = SearchOptions;
  static const auto b = [] {
    std::vector<std::string> names = method_names();
    std::sort(names.begin(), names.end());
    std::string needs;
    for (const auto& e : method_registry())
      if (e.spaces.size() == 1) needs += (needs.empty() ? "" : "; ") + e.name + " needs search.space = " + e.spaces[0];
    return OptionBinding<O>()
        .choice("search.method", &O::method, "drnas", names,
                "search method (" + needs + "; probnas --help says what each is)")
        .choice("search.space", &O::space, "nb201", {"nb201", "darts", "multibranch"},
                "search space: NAS-Bench-201 cells, DARTS's normal and reduction cells, or PGNAS's multi-branch ResNet "
                "with gated channels")
        .integer("search.epochs", &O::epochs, 100, 1, 1000000, "search epochs (one epoch = one pass over the weight half)")
        .resumable()
        .integer("search.batch_size", &O::batch_size, 64, 1, 1 << 20,
                 "global batch size (fixed whatever the number of ranks)")
        .integer("search.arch_batch_size", &O::arch_batch_size, 0, 0, 1 << 24,
                 "global batch of the architecture split (0: search.batch_size; for GibbsNAS 2048, the paper's, rounded "
                 "up to whole micro-batches), cut into micro-batches of the weight batch's micro-batch size")
        .integer("search.micro_batches", &O::micro_batches, 1, 1, 1 << 20,
                 "micro-batches per global batch (the unit ranks share; each has its own BatchNorm statistics)");
  }();
  return b;
}

std::string run_directory(const SearchSettings& s) {
  if (!s.run.dir.empty()) return s.run.dir;
  return "outputs/" + s.search.method + "-" + s.search.space + "-" + s.data.dataset + "-seed" + std::to_string(s.run.seed);
}

namespace {

// Every edge's operation probabilities, {group: [[p per op] per edge]} (4 significant digits:
// what the report's heat map shows, at a tenth of the bytes of full precision).
nlohmann::ordered_json probabilities_json(const ArchShape& shape, const std::vector<torch::Tensor>& probs) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t g = 0; g < shape.size() && g < probs.size(); ++g) {
    const auto p = probs[g].detach().to(torch::kCPU, torch::kFloat64).contiguous();
    auto rows = nlohmann::ordered_json::array();
    for (int64_t e = 0; e < p.size(0); ++e) {
      auto row = nlohmann::ordered_json::array();
      for (int64_t k = 0; k < p.size(1); ++k) row.push_back(std::round(p[e][k].item<double>() * 1e4) / 1e4);
      rows.push_back(std::move(row));
    }
    j[shape[g].name] = std::move(rows);
  }
  return j;
}

// Pictures of the derived cells in <dir>/cells (rank 0). The DOT text is cheap and follows the
// genotype at every epoch end; the SVG starts Graphviz once, at the end of the search. A missing or
// failing Graphviz never fails the run: the DOT files are the pictures, one command away from SVG.
void write_cells(const Genotype& genotype, const std::string& dir, bool render) {
  if (!has_cell_pictures(genotype.space)) return;
  const auto files = write_cell_pictures(genotype, dir + "/cells", render);
  if (!render || files.dot.empty()) return;
  const std::string& first = files.dot.front();
  const std::string how = "dot -Tsvg " + first + " -o " + first.substr(0, first.size() - 4) + ".svg";
  if (!files.dot_program_found) {
    PROBNAS_LOG(info) << "cell pictures: DOT files in " << dir << "/cells; Graphviz's dot is not on PATH, so no SVG "
                      << "(install graphviz, or render them elsewhere: " << how << ")";
  } else if (!files.svg_problem.empty()) {
    PROBNAS_LOG(warn) << "cell pictures: " << files.svg_problem << "; the DOT files are in " << dir
                      << "/cells (render them with " << how << ")";
  } else {
    std::string list;
    for (const auto& f : files.svg) list += (list.empty() ? "" : ", ") + f;
    PROBNAS_LOG(info) << "cell pictures: " << list;
  }
}

// The architecture split's batches: search.arch_batch_size images (0: the method's default, else
// the weight batch's size), in micro-batches of the weight batch's micro-batch size, so that a
// rank's memory per forward pass is the same.
SplitOptions architecture_split_options(int64_t batch, int64_t method_default, const SplitOptions& weights) {
  SplitOptions a = weights;
  if (batch == 0 && method_default == 0) return a;
  const int64_t micro = weights.global_batch / weights.micro_batches;
  if (batch == 0) batch = (method_default + micro - 1) / micro * micro;  // rounded up to whole micro-batches
  PROBNAS_CHECK(weights.global_batch % weights.micro_batches == 0 && batch % micro == 0, "search.arch_batch_size = ",
                batch, " must be a multiple of the micro-batch size search.batch_size / search.micro_batches = ",
                weights.global_batch, " / ", weights.micro_batches, " (the architecture batch is cut into micro-batches "
                "of that size)");
  a.global_batch = batch;
  a.micro_batches = batch / micro;
  a.batch_option = "search.arch_batch_size";
  return a;
}

// One search: what it reads and builds, and the steps of its loop.
class Search {
 public:
  Search(const SearchSettings& s, Communicator& world, bool sample_only);
  SearchSummary run();

 private:
  void restore();
  void log_start() const;
  std::string checkpoint(int64_t done);
  int64_t step(int64_t epoch, int64_t s, int64_t g);
  std::string progress();
  void end_epoch(int64_t epoch, int64_t done);
  SearchSummary finish(SearchSummary summary);

  const SearchSettings& s_;
  const bool sample_only_;
  Stopwatch wall_;
  const SignalWatch signals_;  // from here on SIGUSR1/SIGUSR2/SIGTERM mean checkpoint-and-exit
  RunEnvironment env_;
  Communicator& comm_;
  const bool root_;
  const RngKey key_;
  const std::string dir_;
  const std::unique_ptr<FolderLock> lock_;  // held from before the first read of the folder to the end
  const MethodEntry& entry_;
  ckpt::Directory checkpoints_;
  std::string resume_name_;
  std::optional<ckpt::State> resume_;
  std::shared_ptr<const ImageSource> data_;
  ChannelStats stats_;
  SearchSplit split_;
  SplitOptions so_, arch_so_;
  std::shared_ptr<Supernet> net_;
  std::unique_ptr<SearchMethod> method_;
  std::optional<SplitLoader> weight_loader_, arch_loader_;
  std::optional<Nb201Table> table_;
  int64_t epochs_ = 0, steps_per_epoch_ = 0, total_steps_ = 0, start_step_ = 0, images_ = 0;
  double wall_before_ = 0;  // seconds spent by earlier runs of this search
  std::vector<std::string> history_;
  StepMetrics metrics_;
  StepContext ctx_;
  std::optional<StepLoop> loop_;
  std::optional<BackgroundReport> report_;
};

Search::Search(const SearchSettings& s, Communicator& world, bool sample_only)
    : s_(s),
      sample_only_(sample_only),
      env_(make_run_environment(s.run.threads, s.run.device, s.comm.backend, world)),
      comm_(*env_.comm),
      root_(world.rank() == 0),
      key_(static_cast<uint64_t>(s.run.seed)),
      dir_(run_directory(s)),
      lock_(lock_run_folder(dir_, s.run.lock, world)),
      entry_(find_method(s.search.method)),
      checkpoints_(dir_ + "/checkpoints", s.ckpt.save(), s.ckpt.keep) {
  check_method_and_space(s.search.method, s.search.space);
  PROBNAS_CHECK(!sample_only_ || entry_.has_phase_after_search, "probnas sample reruns a method's phase after the "
                "search (PGNAS ranks its candidates); search.method = ", s.search.method, " has no such phase");
  // Checkpoints: the one to resume from, decided before the data is read.
  std::tie(resume_name_, resume_) =
      find_resume_state(s.run.resume, *s.config, checkpoints_, comm_, s.search.method, s.search.space);
  if (sample_only_) {
    PROBNAS_CHECK(resume_.has_value(), "probnas sample: '", checkpoints_.path(), "' holds no checkpoint to sample from: "
                  "run probnas search with this config first");
  }
  // Data: the weight and architecture halves of the training split.
  data_ = load_training_data(s.data);
  check_ranks_agree(s.config->hash(), *data_, comm_);
  stats_ = data_->stats();
  split_ = make_search_split(data_->size(), s.data.train_portion, key_);
  so_ = data_split_options(s.data, root_);
  so_.global_batch = s.search.batch_size;
  so_.micro_batches = s.search.micro_batches;
  // Supernet and method; weight initialisation drawn from a keyed seed.
  SpaceOptions space = s.space;
  space.input_channels = data_->channels();
  space.classes = data_->num_classes();
  torch::manual_seed(key_.with("weights-init").value());
  net_ = make_supernet(space);
  net_->to(env_.device);
  net_->set_channels_last(use_channels_last(s.run.channels_last, env_.device.is_cuda()));
  net_->set_fused(use_fused_cells(s.run.fused, s.search.space, net_->channels_last()));
  MethodBuild build;
  build.net = net_;
  build.key = key_;
  build.space = space;
  build.epochs = s.search.epochs;
  build.shared = s.method;
  build.own = s.method_options;
  build.resuming = resume_.has_value();
  method_ = entry_.make(build);
  arch_so_ = architecture_split_options(s.search.arch_batch_size, method_->default_arch_batch(), so_);
  // Ranks share the micro-batches, or (PARSEC) each rank sees them all and takes a share of the samples.
  const int loader_rank = method_->splits_samples() ? 0 : comm_.rank();
  const int loader_ranks = method_->splits_samples() ? 1 : comm_.size();
  weight_loader_.emplace(data_, split_.weights, stats_, so_, key_.with("data").with("weights"), env_.device, loader_rank,
                         loader_ranks);
  arch_loader_.emplace(data_, split_.arch, stats_, arch_so_, key_.with("data").with("arch"), env_.device, loader_rank,
                       loader_ranks);
  if (s.search.space == "nb201")
    if (const auto path = locate_nb201_table(s.report.nb201_table); !path.empty()) {
      table_.emplace(path);
      PROBNAS_LOG(info) << "NAS-Bench-201 scores from " << path;
    }
  epochs_ = s.search.epochs;
  steps_per_epoch_ = weight_loader_->steps_per_epoch();
  total_steps_ = epochs_ * steps_per_epoch_;
  if (resume_) restore();
  ctx_.key = key_;
  ctx_.comm = comm_.size() > 1 ? &comm_ : nullptr;
  ctx_.train_examples = weight_loader_->examples();
  ctx_.train_micro_batches = so_.micro_batches;
  ctx_.val_micro_batches = arch_so_.micro_batches;
}

void Search::restore() {
  const ckpt::DataPosition p = ckpt::read_position(*resume_);
  PROBNAS_CHECK(p.steps_per_epoch == steps_per_epoch_ && p.examples == weight_loader_->examples() &&
                    p.arch_examples.value_or(-1) == arch_loader_->examples(),
                "checkpoint '", resume_name_, "' was made with ", p.examples, " + ", p.arch_examples.value_or(0),
                " images in ", p.steps_per_epoch, " steps per epoch; this run has ", weight_loader_->examples(), " + ",
                arch_loader_->examples(), " images in ", steps_per_epoch_, " steps: the training data changed");
  if (!p.data.empty())
    PROBNAS_CHECK(p.data == data_->fingerprint(), "checkpoint '", resume_name_, "' was made on other training data (",
                  p.data, "; this run: ", data_->fingerprint(),
                  "): resume with the data the search started on, or start a new run.dir");
  start_step_ = p.global_step;
  if (p.next_example && *p.next_example >= 0 && start_step_ < total_steps_)
    PROBNAS_CHECK(*p.next_example == weight_loader_->global_batch_indices(start_step_)[0].item<int64_t>(),
                  "checkpoint '", resume_name_, "': the loader would not continue at the example the run stopped "
                  "before (", *p.next_example, "): the data order changed");
  PROBNAS_CHECK(!sample_only_ || start_step_ >= total_steps_, "probnas sample: the search in '", dir_,
                "' stopped at step ", start_step_, " of ", total_steps_, ": finish it first (run probnas search "
                "with the same config; it resumes and ranks the candidates at the end)");
  // The supernet takes the checkpoint's shape (progressive stage), then its tensors, then the
  // method its state; begin_epoch then finds the stage in place.
  method_->restore_structure(resume_->group("method"));
  load_module(resume_->group("model"), *net_);
  method_->load(resume_->group("method"), resume_->group("optim"));
  method_->begin_epoch(std::min(start_step_ / steps_per_epoch_, epochs_ - 1), epochs_);
  restore_generator_states(resume_->group("rng"), comm_.rank());
  const ckpt::RunHistory h = ckpt::read_history(*resume_);
  history_ = h.metrics;
  images_ = h.images;
  metrics_.set_sums(h.sums_for(comm_.rank(), comm_.size()), env_.device);
  const ckpt::CheckpointMeta meta = ckpt::read_meta(*resume_);
  wall_before_ = meta.wall_seconds;
  PROBNAS_LOG(info) << "resuming from " << resume_name_ << " (step " << start_step_ << " of " << total_steps_
                    << ", saved by " << meta.world_size << " rank" << (meta.world_size > 1 ? "s" : "") << " at "
                    << meta.saved_at << ")";
}

void Search::log_start() const {
  const SpaceOptions& space = s_.space;
  int64_t params = 0;
  for (const auto& p : net_->parameters()) params += p.numel();
  const std::string partial = space.partial_channels > 1 ? ", K=" + std::to_string(space.partial_channels) : "";
  log_slurm_job();
  PROBNAS_LOG(info) << "probnas " << PROBNAS_VERSION << ": " << method_->title() << " on " << space.space << " (C="
                    << space.channels
                    << (space.space == "darts" ? ", cells=" + std::to_string(space.cells) + partial
                                               : ", N=" + std::to_string(space.cells_per_stage))
                    << (space.space == "multibranch" ? ", kernels " + space.kernels_text : "") << ", " << params
                    << " weights), " << data_->name() << " " << data_->size() << " images ("
                    << weight_loader_->examples() << " weights / " << arch_loader_->examples() << " architecture), "
                    << comm_.size() << " rank" << (comm_.size() > 1 ? "s" : "") << ", "
                    << device_description(env_.device)
                    << (comm_.size() > 1 ? ", " + std::to_string(comm_.node_count()) + " node(s)" : "") << ", "
                    << (net_->channels_last() ? "channels-last" : "NCHW")
                    << (space.space != "multibranch" ? use_fused_cells(s_.run.fused, space.space, net_->channels_last())
                                                           ? ", fused cells for mixing weights"
                                                           : ", one edge at a time"
                                                     : "");
  PROBNAS_LOG(info) << epochs_ << " epochs x " << steps_per_epoch_ << " steps of " << so_.global_batch << " images in "
                    << so_.micro_batches << " micro-batch" << (so_.micro_batches > 1 ? "es" : "") << " ("
                    << (method_->splits_samples()
                            ? "all on every rank; the ranks split the " + std::to_string(method_->samples_per_step()) +
                                  " samples"
                            : std::to_string(so_.micro_batches / comm_.size()) + " per rank; one architecture draw each")
                    << ")"
                    << (arch_so_.global_batch != so_.global_batch
                            ? "; architecture batches of " + std::to_string(arch_so_.global_batch) + " images in " +
                                  std::to_string(arch_so_.micro_batches) + " micro-batches"
                            : std::string())
                    << " -> " << dir_;
}

// Every rank takes part (generator states and metric sums are gathered); rank 0 writes; nobody
// returns before the file is complete. The report follows on rank 0's report thread.
std::string Search::checkpoint(int64_t done) {
  Stopwatch t;
  const auto rng_states = comm_.allgather_bytes(generator_states());
  const auto sums = comm_.allgather(metrics_.sums());  // [ranks, 6]
  std::string path;
  if (root_) {
    ckpt::RunCheckpoint c;
    c.meta = checkpoint_meta(*s_.config, s_.search.method, s_.search.space, data_->name(), comm_.size(), done,
                             steps_per_epoch_, total_steps_, wall_before_ + wall_.seconds());
    save_module(c.model, *net_);
    method_->save(c.method, c.optim);
    // What inspect and scripts read without rebuilding the method: the genotype and the
    // probabilities it is derived from, with the names of edges and operations.
    c.method.set_attr("name", method_->name());
    c.method.set_attr("genotype", method_->derive().text);
    const auto& shape = net_->arch_shape();
    const auto probs = method_->expected_weights();
    for (size_t g = 0; g < shape.size(); ++g) {
      c.method.group("probabilities").put(shape[g].name, probs[g]);
      auto& names = c.method.group("space").group(shape[g].name);
      names.put_lines("edges", shape[g].edge_names);
      names.put_lines("ops", shape[g].ops);
    }
    c.position.global_step = done;
    c.position.steps_per_epoch = steps_per_epoch_;
    c.position.examples = weight_loader_->examples();
    c.position.arch_examples = arch_loader_->examples();
    c.position.global_batch = so_.global_batch;
    c.position.micro_batches = so_.micro_batches;
    c.position.arch_global_batch = arch_so_.global_batch;
    c.position.data = data_->fingerprint();
    // The first example of the next weight batch: a resumed run must read it first.
    c.position.next_example =
        done < total_steps_ ? weight_loader_->global_batch_indices(done)[0].item<int64_t>() : int64_t{-1};
    c.seed = s_.run.seed;
    c.generator_states = rng_states;
    c.history.metrics = history_;
    c.history.epoch_sums = sums;
    c.history.images = loop_ ? loop_->images() : images_;
    path = checkpoints_.save(ckpt::to_state(c), done);
    if (report_) report_->request();
  }
  comm_.barrier();
  PROBNAS_LOG(info) << "checkpoint at step " << done << " -> " << path << " (" << fixed(t.seconds(), 2) << " s)";
  return path;
}

int64_t Search::step(int64_t epoch, int64_t s, int64_t g) {
  ctx_.epoch = epoch;
  ctx_.global_step = g;
  const auto train = weight_loader_->batch(epoch, s);
  const auto val = arch_loader_->batch_at(g);
  method_->step(train, val, ctx_, metrics_);
  return so_.global_batch + (method_->updates_architecture() ? arch_so_.global_batch : 0);
}

std::string Search::progress() {
  const auto v = metrics_.read(ctx_.comm);
  return "train loss " + fixed(v.train_loss, 3) + " acc " + fixed(100 * v.train_acc, 1) + "% | " +
         (v.val_count > 0 ? "val loss " + fixed(v.val_loss, 3) + " acc " + fixed(100 * v.val_acc, 1) + "%"
                          : std::string("no validation (weight-only warm-up)"));
}

// End of epoch: metrics line and the current genotype (rank 0 writes; all ranks agree).
void Search::end_epoch(int64_t epoch, int64_t done) {
  const auto v = metrics_.read(ctx_.comm);
  const Genotype genotype = method_->derive();
  nlohmann::ordered_json line;
  line["epoch"] = epoch + 1;
  line["step"] = done;
  line["lr"] = cosine_lr(s_.method.weights.lr, s_.method.weights.lr_min, epoch, epochs_);
  line["train_loss"] = v.train_loss;
  line["train_acc"] = v.train_acc;
  line["val_loss"] = v.val_loss;
  line["val_acc"] = v.val_acc;
  for (const auto& [name, value] : method_->scalars()) line[name] = value;
  line["genotype"] = genotype.text;
  line["probs"] = probabilities_json(net_->arch_shape(), method_->expected_weights());
  line["images"] = loop_->images();
  line["wall_s"] = wall_before_ + wall_.seconds();
  line["images_per_s"] = loop_->epoch_images_per_second();
  if (const char* job = std::getenv("SLURM_JOB_ID")) {  // which Slurm job (and requeue) ran this epoch
    line["slurm_job_id"] = job;
    const char* restarts = std::getenv("SLURM_RESTART_COUNT");
    line["slurm_restart_count"] = restarts ? std::atoll(restarts) : 0;
  }
  nlohmann::ordered_json extra;
  extra["method"] = method_->name();
  extra["dataset"] = data_->name();
  extra["seed"] = s_.run.seed;
  extra["epochs_done"] = epoch + 1;
  extra["search_val_acc"] = v.val_acc;
  if (const auto report = method_->report_json(); !report.empty())
    extra[method_->name()] = nlohmann::ordered_json::parse(report);
  if (table_) {
    if (auto score = table_->find(genotype.text)) {
      extra["nb201"] = {{"index", score->index},
                        {"cifar10_test", score->cifar10_test},
                        {"cifar100_test", score->cifar100_test},
                        {"imagenet16_test", score->imagenet16_test}};
      line["nb201_cifar10_test"] = score->cifar10_test;
    }
  }
  history_.push_back(line.dump());
  if (root_) {
    append_metrics_line(run_path(dir_, run_files::metrics), history_.back());
    write_genotype_json(dir_, genotype, extra);
    write_cells(genotype, dir_, /*render=*/false);
  }
  PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs_ << " done: "
                    << (v.val_count > 0 ? "val acc " + fixed(100 * v.val_acc, 2) + "%"
                                        : std::string("weight-only warm-up"))
                    << ", genotype " << genotype.text;
}

SearchSummary Search::run() {
  if (root_) {
    make_directories(dir_);
    ckpt::write_file_atomic(run_path(dir_, run_files::config), s_.config->to_ini());
    // The metric history is the checkpoint's: lines a killed run wrote after it are dropped.
    write_metrics_log(run_path(dir_, run_files::metrics), history_);
    report_.emplace(dir_);
  }
  log_start();
  loop_.emplace(comm_, step_loop_policy(s_), images_);
  StepLoop::Hooks hooks;
  hooks.begin_epoch = [&](int64_t epoch) {
    method_->begin_epoch(epoch, epochs_);
    metrics_.reset();
  };
  hooks.step = [&](int64_t epoch, int64_t s, int64_t g) { return step(epoch, s, g); };
  // What every rank must hold identically: the weights and the architecture distribution.
  hooks.tracked = [&] {
    std::vector<torch::Tensor> t = net_->parameters();
    for (const auto& p : method_->expected_weights()) t.push_back(p);
    return t;
  };
  hooks.progress = [&] { return progress(); };
  hooks.end_epoch = [&](int64_t epoch, int64_t done) { end_epoch(epoch, done); };
  hooks.checkpoint = [&](int64_t done) { return checkpoint(done); };
  const StepLoop::End end = loop_->run(start_step_, total_steps_, steps_per_epoch_, hooks);

  SearchSummary summary;
  summary.run_dir = dir_;
  summary.resumed_from_step = start_step_;
  summary.checkpoint = end.checkpoint;
  summary.steps = end.steps;
  if (end.interrupted) {
    summary.interrupted = true;
    summary.signal = end.signal;
    summary.wall_seconds = wall_before_ + wall_.seconds();
    return summary;
  }
  return finish(std::move(summary));
}

SearchSummary Search::finish(SearchSummary summary) {
  if (start_step_ >= total_steps_) {
    PROBNAS_LOG(info) << "the search was already complete at step " << start_step_ << " of " << total_steps_ << " ("
                      << resume_name_ << "); nothing to do";
  }
  summary.genotype = method_->derive();
  summary.report = method_->report_text();
  summary.files = "genotype.json, cells/, metrics.jsonl, config.ini, checkpoints/";
  // Also when a finished run is started again: its pictures are then drawn (again) with what is installed now.
  if (root_) write_cells(summary.genotype, dir_, /*render=*/true);
  if (method_->has_after_search()) {
    AfterSearchContext a;
    a.data = data_.get();
    a.weight_examples = split_.weights;
    a.arch_examples = split_.arch;
    a.stats = stats_;
    a.normalize = s_.data.normalize;
    a.image_size = s_.data.image_size;
    const DataOptions data_options = s_.data;
    a.test_data = [data_options]() -> std::shared_ptr<const ImageSource> {
      return has_test_split(data_options) ? load_test_data(data_options) : nullptr;
    };
    a.device = env_.device;
    a.comm = &comm_;
    a.dir = dir_;
    a.trained_steps = summary.steps;
    a.key = key_;
    a.seed = s_.run.seed;
    a.progress_interval = s_.run.progress_interval;
    a.config_hash = ckpt::resume_hash(*s_.config);
    const AfterSearchOutcome outcome = method_->after_search(a);
    if (outcome.interrupted) {
      summary.interrupted = true;
      summary.signal = outcome.signal;
      summary.stopped_in = outcome.stopped_in;
      summary.wall_seconds = wall_before_ + wall_.seconds();
      PROBNAS_LOG(warn) << "received " << summary.signal << " " << outcome.stopped_in << "; exiting with code "
                        << kExitCheckpointed << " (run the same command to go on)";
      return summary;
    }
    summary.genotype.text = outcome.genotype_text;
    summary.report = outcome.report;
    if (!outcome.files.empty()) summary.files = outcome.files;
  }
  if (report_) report_->finish();
  if (!history_.empty()) summary.final_val_acc = nlohmann::json::parse(history_.back()).value("val_acc", 0.0);
  summary.wall_seconds = wall_before_ + wall_.seconds();
  return summary;
}

}  // namespace

SearchSummary run_search(const SearchSettings& settings, Communicator& comm, bool sample_only) {
  PROBNAS_CHECK(settings.config != nullptr, "internal: run_search needs the effective configuration");
  Search search(settings, comm, sample_only);
  return search.run();
}

}  // namespace probnas
