#include "probnas/app/commands.h"

#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "probnas/app/compare.h"
#include "probnas/app/inspect.h"
#include "probnas/app/options.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"
#include "probnas/core/signals.h"
#include "probnas/core/format.h"
#include "probnas/core/hdf5.h"
#include "probnas/core/timer.h"
#include "probnas/data/convert.h"
#include "probnas/engine/run_support.h"
#include "probnas/engine/search_engine.h"
#include "probnas/engine/train_engine.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

const char* kUsageHead =
    "usage: probnas <command> [--config FILE] [--section.key VALUE ...]\n"
    "\n"
    "commands:\n"
    "  search     search an architecture (search.method, below) and write a run folder; resumes from its\n"
    "             checkpoints; a method with a phase after the search (PGNAS's candidate ranking) runs it\n"
    "  sample     rerun that phase of a finished search (same options as search; the options marked 'may\n"
    "             change on resume' in probnas search --help may change, e.g. pgnas.candidates)\n";
const char* kUsageTail =
    "  train      probnas train --genotype RUN/genotype.json: trains the searched architecture from scratch (the\n"
    "             NB201 or DARTS evaluation protocol) and tests it, or tests a PGNAS candidate as sampled; resumes\n"
    "  convert    image folder trees (ImageNet), CIFAR binaries, IDX files or synthetic images to HDF5 image\n"
    "             shards for --data.dataset shards (probnas convert --help); runs on several ranks too\n"
    "  inspect    probnas inspect <ckpt.h5> [--config] [--cells DIR]: a checkpoint's meta data, genotype, sizes,\n"
    "             validity; --cells DIR also draws its cells\n"
    "  compare    probnas compare <run folders...> [--csv FILE] [--sort COLUMN]: a table comparing searches\n"
    "             (cost, accuracies, size, parameter-free share, NAS-Bench-201 scores; probnas compare --help)\n"
    "\n"
    "  probnas <command> --help   lists every option of a command with its default\n"
    "  probnas --version          prints the version\n"
    "\n"
    "Options are the same dotted names in INI files ([search] method = drnas) and on the command line\n"
    "(--search.method drnas); the command line wins. Run under mpirun/srun for several ranks.\n"
    "\n"
    "exit codes: 0 done; 1 error (message on stderr); 2 bad usage; 75 checkpointed on SIGUSR1, SIGUSR2 or\n"
    "SIGTERM before the end (run the same command again to resume).\n";

// The usage text: the commands, then the methods as the registry describes them.
std::string usage() {
  std::string methods = "\nmethods (search.method):\n";
  for (const auto& e : method_registry()) {
    std::string name = "  " + e.name + " ";
    if (name.size() < 13) name.resize(13, ' ');
    std::string spaces;
    for (const auto& sp : e.spaces) spaces += (spaces.empty() ? "" : ", ") + sp;
    methods += name + e.summary + " [" + spaces + "]\n";
  }
  return std::string(kUsageHead) + kUsageTail + methods;
}

int search_command(const std::vector<std::string>& args, bool sample_only) {
  Config config(search_option_table());
  const CommandLine cl = parse_command_line(config, args);
  if (cl.help) {
    if (sample_only)
      std::cout << "usage: probnas sample [--config FILE] [--section.key VALUE ...]\n\n"
                   "Reruns the phase after the search of a finished search in run.dir (PGNAS ranks its candidates\n"
                   "and rewrites candidates.csv, genotype.json and best_network.h5), with the same config; the\n"
                   "options marked 'may change on resume' below may differ (e.g. pgnas.candidates, pgnas.sampling).\n"
                   "A stopped phase goes on where it stopped.\n";
    else
      std::cout << "usage: probnas search [--config FILE] [--section.key VALUE ...]\n\n"
                   "Searches an architecture and writes config.ini, metrics.jsonl, genotype.json and report.html to\n"
                   "run.dir (PGNAS: then ranks candidates and writes candidates.csv and best_network.h5 too).\n";
    std::cout << "Every option (INI: [section] key = value; command line: --section.key value):\n"
              << search_option_table().help_text();
    return 0;
  }
  const SearchSettings settings = read_search_settings(config);
  log::set_level(log::parse_level(settings.run.log_level));
  auto comm = make_world_communicator();
  maybe_inject_failure(comm->rank(), -1);  // testing aid: a signal at start-up (PROBNAS_FAIL_AT=<rank>:-1:TERM)
  const SearchSummary s = run_search(settings, *comm, sample_only);
  if (s.interrupted) {
    if (comm->rank() == 0)
      std::cout << "search interrupted by " << s.signal << " after step " << s.steps
                << (s.checkpoint.empty() ? "; stopped " + s.stopped_in : "; checkpoint " + s.checkpoint)
                << "\nrun the same command again to resume (exit code " << kExitCheckpointed << ")\n";
    return kExitCheckpointed;
  }
  if (comm->rank() == 0) {
    std::cout << "search finished in " << format_duration(s.wall_seconds) << " (" << s.steps
              << " steps); search validation accuracy " << s.final_val_acc * 100 << "%\n"
              << s.report << "genotype: " << s.genotype.text << "\n"
              << "results in " << s.run_dir << "/ (" << s.files << ")\n";
  }
  return 0;
}

// `--genotype X` is `--train.genotype X`.
std::vector<std::string> train_arguments(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    if (a == "--genotype")
      out.push_back("--train.genotype");
    else if (a.rfind("--genotype=", 0) == 0)
      out.push_back("--train.genotype=" + a.substr(11));
    else
      out.push_back(a);
  }
  return out;
}

int train_command(const std::vector<std::string>& raw_args) {
  const auto args = train_arguments(raw_args);
  // First pass: which genotype, so that its search's data.* settings become the defaults.
  Config probe(train_option_table());
  const CommandLine cl = parse_command_line(probe, args);
  if (cl.help) {
    std::cout << "usage: probnas train --genotype RUN/genotype.json [--config FILE] [--section.key VALUE ...]\n\n"
                 "Trains a searched architecture from scratch on the whole training split and tests it on the test\n"
                 "split: an NB201 genotype as NAS-Bench-201's network (C=16, N=5, 200 epochs, SGD nesterov 0.1, wd\n"
                 "5e-4), a DARTS genotype as DARTS's evaluation network (20 cells, C=36, 600 epochs, batch 96, SGD\n"
                 "0.025, wd 3e-4, cosine, auxiliary head 0.4, drop-path 0.2, cutout 16, gradient clip 5); every\n"
                 "train.* value can be changed. A PGNAS run's best candidate (best_network.h5) is tested as sampled,\n"
                 "or fine-tuned for train.epochs. The data.* settings of the search (RUN/config.ini) are the\n"
                 "defaults, except data.limit. Writes config.ini, train-metrics.jsonl, result.json and checkpoints/\n"
                 "to run.dir (default RUN/train) and resumes from its checkpoints like a search.\n\n"
                 "Every option (INI: [section] key = value; command line: --section.key value):\n"
              << train_option_table().help_text();
    return 0;
  }
  Config config(train_option_table());
  const std::string genotype = probe.text("train.genotype");
  const std::string folder = genotype.empty() || genotype.front() == '|' || genotype.rfind("Genotype(", 0) == 0
                                 ? std::string()
                                 : (std::filesystem::is_directory(genotype) ? genotype
                                                                            : std::filesystem::path(genotype).parent_path().string());
  const std::string search_config = (folder.empty() ? std::string(".") : folder) + "/config.ini";
  if (!genotype.empty() && !folder.empty() && file_exists(search_config)) {
    for (const auto& [key, value] : parse_ini_values(read_file_bytes(search_config))) {
      if (key.rfind("data.", 0) != 0 || key == "data.limit" || key == "data.train_portion") continue;
      if (!config.table().find(key)) continue;
      config.set(key, value, "the search's " + search_config);
    }
  }
  parse_command_line(config, args);
  const TrainSettings settings = read_train_settings(config);
  log::set_level(log::parse_level(settings.run.log_level));
  auto comm = make_world_communicator();
  maybe_inject_failure(comm->rank(), -1);
  const TrainSummary s = run_training(settings, *comm);
  if (s.interrupted) {
    if (comm->rank() == 0)
      std::cout << "training interrupted by " << s.signal << " after step " << s.steps << "; checkpoint " << s.checkpoint
                << "\nrun the same command again to resume (exit code " << kExitCheckpointed << ")\n";
    return kExitCheckpointed;
  }
  if (comm->rank() == 0)
    std::cout << (s.mode == "as_sampled" ? "tested as sampled" : "trained " + std::to_string(s.epochs) + " epochs") << " in "
              << format_duration(s.wall_seconds) << ": test accuracy " << s.test_acc * 100 << "% on " << s.test_images
              << " images (loss " << s.test_loss << "), " << static_cast<double>(s.params) / 1e6 << "M parameters, "
              << static_cast<double>(s.flops) / 1e6 << "M multiply-adds\nresults in " << s.run_dir
              << "/ (result.json, train-metrics.jsonl, config.ini, checkpoints/)\n";
  return 0;
}

int convert_command(const std::vector<std::string>& args) {
  Config config(convert_option_table());
  const CommandLine cl = parse_command_line(config, args);
  if (cl.help) {
    std::cout << "usage: probnas convert --from folder --in DIR --out DIR [--size 256] [--fraction F] [options]\n"
                 "       probnas convert --synthetic N [--shape 3x224x224] [--classes 1000] --out DIR\n\n"
                 "Writes HDF5 image shards (shard-NNNNN.h5) and their index.h5 to --out; search on them with\n"
                 "--data.dataset shards --data.path DIR. Unreadable images are reported with their path and reason,\n"
                 "skipped, counted in the summary and listed in DIR/skipped.txt. Under mpirun/srun every rank converts\n"
                 "its share of the shards; a killed conversion keeps its finished shards and resumes.\n\n"
                 "Every option (also from an INI file with --config):\n"
              << convert_option_table().help_text();
    return 0;
  }
  const ConvertOptions options = convert_options().read(config);
  log::set_level(log::parse_level(options.log_level));
  auto comm = make_world_communicator();
  const ConvertSummary s = run_convert(options, *comm);
  if (comm->rank() == 0) {
    std::cout << "converted " << s.images << " images of " << s.classes << " classes into " << s.shards << " shard"
              << (s.shards == 1 ? "" : "s") << " (" << format_bytes(static_cast<double>(s.bytes)) << ", "
              << s.reused_shards << " kept from an earlier run) in " << format_duration(s.seconds) << ", "
              << static_cast<int64_t>(static_cast<double>(s.images) / std::max(1e-9, s.seconds)) << " images/s; "
              << s.skipped << " skipped" << (s.skipped > 0 ? " (listed in " + s.out + "/skipped.txt)" : std::string())
              << "\nsearch on them with --data.dataset shards --data.path " << s.out << "\n";
  }
  return 0;
}

int inspect_command(const std::vector<std::string>& args) {
  std::string path, cells_dir;
  bool show_config = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << "usage: probnas inspect <ckpt.h5> [--config] [--cells DIR]\n\n"
                   "Prints a checkpoint's meta data (schema, versions, method, space, step, epoch, wall time,\n"
                   "config hash), the genotype with every edge's operation probabilities, the number of\n"
                   "datasets and bytes of each group, and whether the file is valid (complete, readable schema,\n"
                   "checksums verified). --config also prints the effective configuration it was made with.\n"
                   "--cells DIR writes the pictures of the checkpoint's cells to DIR (DOT; SVG too when\n"
                   "Graphviz's dot is installed).\n"
                   "Exit code 0 for a valid checkpoint, 1 otherwise.\n";
      return 0;
    }
    if (a == "--config") {
      show_config = true;
    } else if (a == "--cells") {
      if (i + 1 == args.size() || args[i + 1].empty()) {
        std::cerr << "probnas inspect: --cells needs a folder (--cells DIR)\n";
        return 2;
      }
      cells_dir = args[++i];
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "probnas inspect: unknown option '" << a << "' (allowed: --config, --cells DIR, --help)\n";
      return 2;
    } else {
      if (!path.empty()) {
        std::cerr << "probnas inspect: one checkpoint at a time ('" << path << "' and '" << a << "')\n";
        return 2;
      }
      path = a;
    }
  }
  if (path.empty()) {
    std::cerr << "usage: probnas inspect <ckpt.h5> [--config] [--cells DIR]\n";
    return 2;
  }
  if (!file_exists(path)) {
    std::cerr << "probnas inspect: '" << path << "' does not exist\n";
    return 1;
  }
  return inspect_checkpoint(path, show_config, std::cout, cells_dir);
}

}  // namespace

int run_cli(const std::vector<std::string>& args, int* argc, char*** argv) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    // Line 1 is what scripts read ("probnas <version> (LibTorch x.y.z)"); the rest is for people.
#ifdef PROBNAS_WITH_CUDA
    const char* cuda = "yes";
#else
    const char* cuda = "no";
#endif
#ifdef PROBNAS_WITH_NCCL
    const char* nccl = "yes";
#else
    const char* nccl = "no";
#endif
    std::cout << "probnas " << PROBNAS_VERSION << " (LibTorch " << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "."
              << TORCH_VERSION_PATCH << ")\n"
              << "built with CUDA: " << cuda << "; NCCL: " << nccl << "\n"
              << "MPI: " << mpi_library_version() << "; HDF5: " << h5::library_version() << "\n";
    return 0;
  }
  const std::string command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "compare") return compare_command(rest, std::cout, std::cerr);  // no MPI needed
  if (command == "inspect") {
    try {
      return inspect_command(rest);
    } catch (const std::exception& e) {
      PROBNAS_LOG(error) << e.what();
      return 1;
    }
  }
  if (command != "search" && command != "sample" && command != "convert" && command != "train") {
    std::cerr << "probnas: unknown command '" << command
              << "' (allowed: search, sample, train, convert, inspect, compare; see probnas --help)\n";
    return 2;
  }
  // search, sample and train checkpoint and exit 75 on a stop signal from the very start; convert
  // keeps the default action (a killed conversion keeps its finished shards).
  if (command != "convert") install_stop_signal_handlers();
  try {
    MpiSession mpi(argc, argv);
    try {
      if (command == "convert") return convert_command(rest);
      if (command == "train") return train_command(rest);
      return search_command(rest, command == "sample");
    } catch (const Error& e) {
      PROBNAS_LOG(error) << e.what();
      PROBNAS_LOG(debug) << "raised at " << e.where();
      MpiSession::abort_if_parallel(1);
      return 1;
    } catch (const std::exception& e) {
      PROBNAS_LOG(error) << e.what();
      MpiSession::abort_if_parallel(1);
      return 1;
    }
  } catch (const std::exception& e) {
    PROBNAS_LOG(error) << e.what();
    return 1;
  }
}

}  // namespace probnas
