#include "probnas/engine/search_engine.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/comm/communicator.h"
#include "probnas/comm/device_communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"
#include "probnas/core/signals.h"
#include "probnas/core/timer.h"
#include "probnas/data/shards.h"
#include "probnas/engine/nb201_table.h"
#include "probnas/engine/pgnas_ranking.h"
#include "probnas/method/pgnas.h"
#include "probnas/engine/run_state.h"
#include "probnas/engine/run_support.h"
#include "probnas/method/method.h"
#include "probnas/method/progressive.h"
#include "probnas/optim/optimizers.h"
#include "probnas/report/report.h"
#include "probnas/space/cell_picture.h"
#include "probnas/space/multibranch.h"

namespace probnas {

std::string run_directory(const Config& c) {
  if (!c.text("run.dir").empty()) return c.text("run.dir");
  return "outputs/" + c.text("search.method") + "-" + c.text("search.space") + "-" + c.text("data.dataset") +
         "-seed" + std::to_string(c.integer("run.seed"));
}

namespace {

// report.html in the run folder, again (rank 0). A report that cannot be written never fails the run.
void refresh_report(const std::string& dir) {
  if (std::string why; !write_report(dir, &why)) {
    PROBNAS_LOG(warn) << "report.html not written: " << why;
  }
}

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

}  // namespace

namespace {



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

}  // namespace

namespace {
// The architecture split's batches: search.arch_batch_size images (0: the weight batch's size).
SplitOptions architecture_split_options(const Config& c, const SplitOptions& weights) {
  SplitOptions a = weights;
  int64_t batch = c.integer("search.arch_batch_size");
  const bool gibbs = c.text("search.method") == "gibbsnas";
  if (batch == 0 && !gibbs) return a;
  // Micro-batches of the weight batch's size, so that a rank's memory per forward pass is the same.
  const int64_t micro = weights.global_batch / weights.micro_batches;
  // GibbsNAS's default is the paper's 2048 images, rounded up to whole micro-batches.
  if (batch == 0) batch = (2048 + micro - 1) / micro * micro;
  PROBNAS_CHECK(weights.global_batch % weights.micro_batches == 0 && batch % micro == 0, "search.arch_batch_size = ",
                batch, " must be a multiple of the micro-batch size search.batch_size / search.micro_batches = ",
                weights.global_batch, " / ", weights.micro_batches, " (the architecture batch is cut into micro-batches "
                "of that size)");
  a.global_batch = batch;
  a.micro_batches = batch / micro;
  a.batch_option = "search.arch_batch_size";
  return a;
}
}  // namespace

SearchSummary run_search(const Config& c, Communicator& world, bool sample_only) {
  Stopwatch wall;
  check_method_and_space(c);
  const bool root = world.rank() == 0;
  const SignalWatch signals;  // from here on SIGUSR1/SIGUSR2/SIGTERM mean checkpoint-and-exit
  const int threads = c.integer("run.threads") > 0 ? static_cast<int>(c.integer("run.threads"))
                                                    : default_threads_per_rank(world);
  configure_threads(threads);
  const c10::Device device = select_device(c.text("run.device"), world.local_rank());
  // CUDA tensors through NCCL where built with it; CPU tensors, bytes and barriers through MPI.
  const auto device_comm = make_device_communicator(world, device, c.text("comm.backend"));
  Communicator& comm = *device_comm;
  const RngKey key(static_cast<uint64_t>(c.integer("run.seed")));
  const std::string dir = run_directory(c);

  // Checkpoints: where they go and the one to resume from, decided before the data is read.
  ckpt::SaveOptions save_options;
  save_options.compression = static_cast<int>(c.integer("ckpt.compress"));
  save_options.file_locking = c.boolean("ckpt.file_locking");
  ckpt::Directory checkpoints(dir + "/checkpoints", save_options, c.integer("ckpt.keep"));
  auto [resume_name, resume] = find_resume_state(c, checkpoints, comm, c.text("search.method"), c.text("search.space"));

  if (sample_only) {
    PROBNAS_CHECK(c.text("search.method") == "pgnas", "probnas sample ranks PGNAS candidates; search.method = ",
                  c.text("search.method"), " has no sampling phase");
    PROBNAS_CHECK(resume.has_value(), "probnas sample: '", checkpoints.path(), "' holds no checkpoint to sample from: "
                  "run probnas search with this config first");
  }
  // Data: the weight and architecture halves of the training split.
  auto data = load_training_data(c);
  check_ranks_agree(c, *data, comm);
  const ChannelStats stats = data->stats();
  const SearchSplit split = make_search_split(data->size(), c.real("data.train_portion"), key);
  SplitOptions so = data_split_options(c, root);
  so.global_batch = c.integer("search.batch_size");
  so.micro_batches = c.integer("search.micro_batches");
  const SplitOptions arch_so = architecture_split_options(c, so);
  // Supernet and method; weight initialisation drawn from a keyed seed.
  SpaceOptions space;
  space.space = c.text("search.space");
  space.channels = c.integer("space.channels");
  space.cells_per_stage = c.integer("space.cells_per_stage");
  space.cells = c.integer("space.cells");
  space.partial_channels = initial_partial_channels(c);
  for (const auto& op : split_list(c.text("space.ops"))) space.ops.push_back(op);
  space.stem = c.text("space.stem");
  if (space.space == "multibranch") space.kernels = parse_kernels(c.text("space.kernels"));
  space.input_channels = data->channels();
  space.classes = data->num_classes();
  torch::manual_seed(key.with("weights-init").value());
  auto net = make_supernet(space);
  net->to(device);
  auto method = make_method(c, net, key);
  // Ranks share the micro-batches, or (PARSEC) each rank sees them all and takes a share of the samples.
  const int loader_rank = method->splits_samples() ? 0 : comm.rank();
  const int loader_ranks = method->splits_samples() ? 1 : comm.size();
  const SplitLoader weight_loader(data, split.weights, stats, so, key.with("data").with("weights"), device,
                                  loader_rank, loader_ranks);
  const SplitLoader arch_loader(data, split.arch, stats, arch_so, key.with("data").with("arch"), device, loader_rank,
                                loader_ranks);

  std::optional<Nb201Table> table;
  if (space.space == "nb201")
    if (const auto path = locate_nb201_table(c.text("report.nb201_table")); !path.empty()) table.emplace(path);

  const int64_t epochs = c.integer("search.epochs");
  const int64_t steps_per_epoch = weight_loader.steps_per_epoch();
  const int64_t total_steps = epochs * steps_per_epoch;
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  const std::string partial = space.partial_channels > 1 ? ", K=" + std::to_string(space.partial_channels) : "";

  // Progress of the whole search (carried over on resume).
  int64_t start_step = 0, images = 0;
  double wall_before = 0;  // seconds spent by earlier runs of this search
  std::vector<std::string> history;
  StepMetrics metrics;
  if (resume) {
    const auto& loader = resume->group("loader");
    PROBNAS_CHECK(loader.attr_int("steps_per_epoch") == steps_per_epoch &&
                      loader.attr_int("weight_examples") == weight_loader.examples() &&
                      loader.attr_int("arch_examples") == arch_loader.examples(),
                  "checkpoint '", resume_name, "' was made with ", loader.attr_int("weight_examples"), " + ",
                  loader.attr_int("arch_examples"), " images in ", loader.attr_int("steps_per_epoch"),
                  " steps per epoch; this run has ", weight_loader.examples(), " + ", arch_loader.examples(),
                  " images in ", steps_per_epoch, " steps: the training data changed");
    if (loader.has_attr("data"))
      PROBNAS_CHECK(loader.attr_text("data") == data->fingerprint(), "checkpoint '", resume_name,
                    "' was made on other training data (", loader.attr_text("data"), "; this run: ",
                    data->fingerprint(), "): resume with the data the search started on, or start a new run.dir");
    start_step = loader.attr_int("global_step");
    if (loader.has_attr("next_weight_example") && loader.attr_int("next_weight_example") >= 0 && start_step < total_steps)
      PROBNAS_CHECK(loader.attr_int("next_weight_example") == weight_loader.global_batch_indices(start_step)[0].item<int64_t>(),
                    "checkpoint '", resume_name, "': the loader would not continue at the example the run stopped "
                    "before (", loader.attr_int("next_weight_example"), "): the data order changed");
    PROBNAS_CHECK(!sample_only || start_step >= total_steps, "probnas sample: the search in '", dir,
                  "' stopped at step ", start_step, " of ", total_steps, ": finish it first (run probnas search "
                  "with the same config; it resumes and ranks the candidates at the end)");
    // The supernet takes the checkpoint's shape (progressive stage), then its tensors, then the
    // method its state; begin_epoch then finds the stage in place.
    method->restore_structure(resume->group("method"));
    load_module(resume->group("model"), *net);
    method->load(resume->group("method"), resume->group("optim"));
    method->begin_epoch(std::min(start_step / steps_per_epoch, epochs - 1), epochs);
    restore_generator_states(resume->group("rng"), comm.rank());
    const auto& h = resume->group("history");
    history = h.lines("metrics");
    images = h.attr_int("images");
    const auto sums = h.get("epoch_sums");  // [ranks at save, 6]
    const int64_t saved_ranks = sums.size(0);
    if (saved_ranks == comm.size())
      metrics.set_sums(sums[comm.rank()], device);
    else  // another world size: rank 0 carries the totals, so the sums over ranks are unchanged
      metrics.set_sums(root ? sums.sum(0) : torch::zeros({6}, torch::kFloat64), device);
    wall_before = resume->group("meta").attr_real("wall_seconds");
    PROBNAS_LOG(info) << "resuming from " << resume_name << " (step " << start_step << " of " << total_steps
                      << ", saved by " << resume->group("meta").attr_int("world_size") << " rank"
                      << (resume->group("meta").attr_int("world_size") > 1 ? "s" : "") << " at "
                      << resume->group("meta").attr_text("saved_at") << ")";
  }

  const std::string metrics_path = dir + "/metrics.jsonl";
  if (root) {
    make_directories(dir);
    write_file_atomic(dir + "/config.ini", c.to_ini());
    // The metric history is the checkpoint's: lines a killed run wrote after it are dropped.
    std::string lines;
    for (const auto& l : history) lines += l + "\n";
    write_file_atomic(metrics_path, lines);
  }
  const std::string title = method->name() + (c.text("search.method") == "darts" && c.integer("darts.order") == 2
                                                   ? " (second order)" : "");
  log_slurm_job();
  PROBNAS_LOG(info) << "probnas " << PROBNAS_VERSION << ": " << title << " on " << space.space << " (C="
            << space.channels << (space.space == "darts" ? ", cells=" + std::to_string(space.cells) + partial
                                         : ", N=" + std::to_string(space.cells_per_stage))
            << (space.space == "multibranch" ? ", kernels " + c.text("space.kernels") : "")
            << ", " << params << " weights), "
            << data->name() << " " << data->size() << " images (" << weight_loader.examples() << " weights / "
            << arch_loader.examples() << " architecture), " << comm.size() << " rank" << (comm.size() > 1 ? "s" : "")
            << ", " << device_description(device) << (comm.size() > 1 ? ", " + std::to_string(comm.node_count()) + " node(s)" : "");
  PROBNAS_LOG(info) << epochs << " epochs x " << steps_per_epoch << " steps of " << so.global_batch << " images in "
                    << so.micro_batches << " micro-batch" << (so.micro_batches > 1 ? "es" : "") << " ("
                    << (method->splits_samples()
                            ? "all on every rank; the ranks split the " + std::to_string(c.integer("parsec.samples")) + " samples"
                            : std::to_string(so.micro_batches / comm.size()) + " per rank; one architecture draw each")
                    << ")" << (arch_so.global_batch != so.global_batch
                                   ? "; architecture batches of " + std::to_string(arch_so.global_batch) + " images in " +
                                         std::to_string(arch_so.micro_batches) + " micro-batches"
                                   : std::string())
                    << " -> " << dir;

  // Checkpoint writing: every rank takes part (generator states and metric sums are gathered);
  // rank 0 writes; nobody returns before the file is complete.
  const auto& arch_shape = net->arch_shape();
  auto save_checkpoint = [&](int64_t done) {
    Stopwatch t;
    const auto rng_states = comm.allgather_bytes(generator_states());
    const auto sums = comm.allgather(metrics.sums());  // [ranks, 6]
    std::string path;
    if (root) {
      ckpt::State state;
      auto& meta = state.group("meta");
      put_run_meta(meta, c, c.text("search.method"), c.text("search.space"), data->name(), comm.size(), done,
                   steps_per_epoch, total_steps, wall_before + wall.seconds());

      save_module(state.group("model"), *net);
      auto& method_group = state.group("method");
      method->save(method_group, state.group("optim"));
      // What inspect and scripts read without rebuilding the method: the genotype and the
      // probabilities it is derived from, with the names of edges and operations.
      method_group.set_attr("name", method->name());
      method_group.set_attr("genotype", method->derive().text);
      const auto probs = method->expected_weights();
      for (size_t g = 0; g < arch_shape.size(); ++g) {
        method_group.group("probabilities").put(arch_shape[g].name, probs[g]);
        auto& names = method_group.group("space").group(arch_shape[g].name);
        names.put_lines("edges", arch_shape[g].edge_names);
        names.put_lines("ops", arch_shape[g].ops);
      }

      auto& loader = state.group("loader");
      loader.set_attr("epoch", done / steps_per_epoch);
      loader.set_attr("step_in_epoch", done % steps_per_epoch);
      loader.set_attr("global_step", done);
      loader.set_attr("steps_per_epoch", steps_per_epoch);
      loader.set_attr("weight_examples", weight_loader.examples());
      loader.set_attr("arch_examples", arch_loader.examples());
      loader.set_attr("global_batch", so.global_batch);
      loader.set_attr("micro_batches", so.micro_batches);
      loader.set_attr("arch_global_batch", arch_so.global_batch);
      loader.set_attr("data", data->fingerprint());
      // The first example of the next weight batch: a resumed run must read it first.
      loader.set_attr("next_weight_example",
                      done < total_steps ? weight_loader.global_batch_indices(done)[0].item<int64_t>() : int64_t{-1});

      auto& rng = state.group("rng");
      rng.set_attr("seed", c.integer("run.seed"));
      rng.set_attr("scheme", std::string("every draw keyed by (seed, purpose, step, index); generators below "
                                         "hold LibTorch's default generators per rank"));
      put_generator_states(rng, rng_states);

      auto& h = state.group("history");
      h.put_lines("metrics", history);
      h.put("epoch_sums", sums);
      h.set_attr("images", images);
      h.set_attr("columns", std::string("epoch_sums: train loss, train correct, train count, val loss, val "
                                         "correct, val count (per rank)"));
      path = checkpoints.save(state, done);
      refresh_report(dir);
    }
    comm.barrier();
    PROBNAS_LOG(info) << "checkpoint at step " << done << " -> " << path << " (" << fixed(t.seconds(), 2) << " s)";
    return path;
  };

  StepContext ctx;
  ctx.key = key;
  ctx.comm = comm.size() > 1 ? &comm : nullptr;
  ctx.train_examples = weight_loader.examples();
  Stopwatch since_progress, search_clock, since_checkpoint, epoch_clock;
  const double progress_interval = c.real("run.progress_interval");
  const int64_t verify_interval = c.integer("comm.verify_interval");
  const int64_t ckpt_steps = c.integer("ckpt.interval_steps");
  const double ckpt_seconds = c.real("ckpt.interval_minutes") * 60;
  const bool ckpt_epoch_end = c.boolean("ckpt.epoch_end");
  // What every rank must hold identically: the weights and the architecture distribution.
  auto tracked = [&] {
    std::vector<torch::Tensor> t = net->parameters();
    for (const auto& p : method->expected_weights()) t.push_back(p);
    return t;
  };
  SearchSummary summary;
  summary.run_dir = dir;
  summary.resumed_from_step = start_step;
  int64_t epoch_images = 0;
  for (int64_t g = start_step; g < total_steps; ++g) {
    const int64_t epoch = g / steps_per_epoch, s = g % steps_per_epoch;
    if (s == 0) {
      method->begin_epoch(epoch, epochs);
      metrics.reset();
      epoch_images = 0;
      epoch_clock.reset();
    }
    ctx.epoch = epoch;
    ctx.global_step = g;
    const auto train = weight_loader.batch(epoch, s);
    const auto val = arch_loader.batch_at(g);
    maybe_inject_failure(comm.rank(), g);
    method->step(train, val, ctx, metrics);
    const int64_t done = g + 1;
    if (verify_interval > 0 && comm.size() > 1 && done % verify_interval == 0) verify_identical(tracked(), comm, done);
    const int64_t step_images = so.global_batch + (method->updates_architecture() ? arch_so.global_batch : 0);
    epoch_images += step_images;
    images += step_images;
    // A signal, the checkpoint clock and the progress clock may fire on one rank only: the ranks
    // agree through one small allreduce per step.
    const auto calls = agree_on_step_calls(comm, root && ckpt_seconds > 0 && since_checkpoint.seconds() >= ckpt_seconds,
                                           root && since_progress.seconds() >= progress_interval);
    if (calls.progress_due || done == total_steps) {
      since_progress.reset();
      const auto v = metrics.read(ctx.comm);
      const double elapsed = search_clock.seconds();
      const double per_step = elapsed / static_cast<double>(done - start_step);
      PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " step " << s + 1 << "/" << steps_per_epoch
                << " | train loss " << fixed(v.train_loss, 3) << " acc " << fixed(100 * v.train_acc, 1)
                << "% | "
                << (v.val_count > 0 ? "val loss " + fixed(v.val_loss, 3) + " acc " + fixed(100 * v.val_acc, 1) + "%"
                                    : std::string("no validation (weight-only warm-up)"))
                << " | "
                << fixed(static_cast<double>(step_images) / per_step, 1) << " img/s | ETA "
                << format_duration(per_step * static_cast<double>(total_steps - done));
    }

    const bool epoch_end = done % steps_per_epoch == 0;
    if (epoch_end) {
      // End of epoch: metrics line and the current genotype (rank 0 writes; all ranks agree).
      const auto v = metrics.read(ctx.comm);
      const Genotype genotype = method->derive();
      nlohmann::ordered_json line;
      line["epoch"] = epoch + 1;
      line["step"] = done;
      line["lr"] = cosine_lr(c.real("search.lr"), c.real("search.lr_min"), epoch, epochs);
      line["train_loss"] = v.train_loss;
      line["train_acc"] = v.train_acc;
      line["val_loss"] = v.val_loss;
      line["val_acc"] = v.val_acc;
      for (const auto& [name, value] : method->scalars()) line[name] = value;
      line["genotype"] = genotype.text;
      line["probs"] = probabilities_json(arch_shape, method->expected_weights());
      line["images"] = images;
      line["wall_s"] = wall_before + wall.seconds();
      line["images_per_s"] = static_cast<double>(epoch_images) / epoch_clock.seconds();
      if (const char* job = std::getenv("SLURM_JOB_ID")) {  // which Slurm job (and requeue) ran this epoch
        line["slurm_job_id"] = job;
        const char* restarts = std::getenv("SLURM_RESTART_COUNT");
        line["slurm_restart_count"] = restarts ? std::atoll(restarts) : 0;
      }

      nlohmann::ordered_json extra;
      extra["method"] = method->name();
      extra["dataset"] = data->name();
      extra["seed"] = c.integer("run.seed");
      extra["epochs_done"] = epoch + 1;
      extra["search_val_acc"] = v.val_acc;
      if (const auto report = method->report_json(); !report.empty())
        extra[method->name()] = nlohmann::ordered_json::parse(report);
      if (table) {
        if (auto score = table->find(genotype.text)) {
          extra["nb201"] = {{"index", score->index},
                            {"cifar10_test", score->cifar10_test},
                            {"cifar100_test", score->cifar100_test},
                            {"imagenet16_test", score->imagenet16_test}};
          line["nb201_cifar10_test"] = score->cifar10_test;
        }
      }
      history.push_back(line.dump());
      if (root) {
        append_line(metrics_path, history.back());
        write_file_atomic(dir + "/genotype.json", genotype.to_json(extra.dump()) + "\n");
        write_cells(genotype, dir, /*render=*/false);
      }
      PROBNAS_LOG(info) << "epoch " << epoch + 1 << "/" << epochs << " done: "
                        << (v.val_count > 0 ? "val acc " + fixed(100 * v.val_acc, 2) + "%"
                                            : std::string("weight-only warm-up"))
                        << ", genotype " << genotype.text;
    }

    const bool signalled = calls.signalled;
    const bool due = signalled || calls.time_due || (ckpt_steps > 0 && done % ckpt_steps == 0) ||
                     (epoch_end && ckpt_epoch_end) || done == total_steps;
    if (due) {
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

  if (start_step >= total_steps) {
    PROBNAS_LOG(info) << "the search was already complete at step " << start_step << " of " << total_steps
                      << " (" << resume_name << "); nothing to do";
  }
  summary.genotype = method->derive();
  summary.report = method->report_text();
  // Also when a finished run is started again: its pictures are then drawn (again) with what is installed now.
  if (root) write_cells(summary.genotype, dir, /*render=*/true);
  if (auto* pgnas = dynamic_cast<Pgnas*>(method.get())) {
    const auto outcome = finish_pgnas(c, *pgnas, *data, split, stats, device, comm, dir, std::max(total_steps, start_step));
    if (outcome.interrupted) {
      summary.interrupted = true;
      summary.signal = outcome.signal;
      summary.steps = std::max(total_steps, start_step);
      summary.wall_seconds = wall_before + wall.seconds();
      PROBNAS_LOG(warn) << "received " << summary.signal << " during the candidate ranking; the ranked candidates are in "
                        << dir << "/ranking/; exiting with code " << kExitCheckpointed
                        << " (run the same command to go on)";
      return summary;
    }
    summary.genotype.text = outcome.genotype_text;
    summary.report = outcome.report;
  }
  if (root) refresh_report(dir);
  if (!history.empty()) summary.final_val_acc = nlohmann::json::parse(history.back()).value("val_acc", 0.0);
  summary.steps = std::max(total_steps, start_step);
  summary.wall_seconds = wall_before + wall.seconds();
  return summary;
}

}  // namespace probnas
