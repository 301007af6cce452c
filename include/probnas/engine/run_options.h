#pragma once
// run.* and report.*: where a run goes, its seed, device, threads, logging and resume policy, and
// which NAS-Bench-201 table scores NB201 genotypes; shared by probnas search and probnas train.
#include <cstdint>
#include <string>

#include "probnas/core/option_binding.h"

namespace probnas {

struct RunOptions {
  std::string dir;
  int64_t seed = 0;
  std::string device = "cpu";
  int64_t threads = 0;
  double progress_interval = 10;
  std::string log_level = "info";
  std::string resume = "auto";
  bool lock = true;  // run.lock: one run per run.dir at a time
};
// `dir_help` says what the command writes to run.dir and its default.
OptionBinding<RunOptions> run_options(const std::string& dir_help);

struct ReportOptions {
  std::string nb201_table = "auto";
};
OptionBinding<ReportOptions> report_options(const std::string& help);

}  // namespace probnas
