#include "probnas/app/commands.h"

#include <torch/torch.h>

#include <iostream>

#include "probnas/app/options.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/log.h"
#include "probnas/core/timer.h"
#include "probnas/engine/search_engine.h"

namespace probnas {
namespace {

const char* kUsage =
    "usage: probnas <command> [--config FILE] [--section.key VALUE ...]\n"
    "\n"
    "commands:\n"
    "  search     search an architecture (DrNAS, DARTS) and write a run folder\n"
    "\n"
    "  probnas <command> --help   lists every option of a command with its default\n"
    "  probnas --version          prints the version\n"
    "\n"
    "Options are the same dotted names in INI files ([search] method = drnas) and on the command line\n"
    "(--search.method drnas); the command line wins. Run under mpirun/srun for several ranks.\n";

int search_command(const std::vector<std::string>& args) {
  Config config(search_option_table());
  const CommandLine cl = parse_command_line(config, args);
  if (cl.help) {
    std::cout << "usage: probnas search [--config FILE] [--section.key VALUE ...]\n\n"
                 "Searches an architecture and writes config.ini, metrics.jsonl and genotype.json to run.dir.\n"
                 "Every option (INI: [section] key = value; command line: --section.key value):\n"
              << search_option_table().help_text();
    return 0;
  }
  log::set_level(log::parse_level(config.text("run.log_level")));
  auto comm = make_world_communicator();
  const SearchSummary s = run_search(config, *comm);
  if (comm->rank() == 0) {
    std::cout << "search finished in " << format_duration(s.wall_seconds) << " (" << s.steps
              << " steps); search validation accuracy " << s.final_val_acc * 100 << "%\n"
              << "genotype: " << s.genotype.text << "\n"
              << "results in " << s.run_dir << "/ (genotype.json, metrics.jsonl, config.ini)\n";
  }
  return 0;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, int* argc, char*** argv) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "probnas " << PROBNAS_VERSION << " (LibTorch " << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "."
              << TORCH_VERSION_PATCH << ")\n";
    return 0;
  }
  const std::string command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command != "search") {
    std::cerr << "probnas: unknown command '" << command << "' (allowed: search; see probnas --help)\n";
    return 2;
  }
  try {
    MpiSession mpi(argc, argv);
    try {
      return search_command(rest);
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
