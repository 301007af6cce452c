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
  std::string channels_last = "auto";  // run.channels_last: auto, on, off
  std::string fused = "auto";          // run.fused: auto, on, off
  double progress_interval = 10;
  std::string log_level = "info";
  std::string resume = "auto";
  bool lock = true;  // run.lock: one run per run.dir at a time
};
// `dir_help` says what the command writes to run.dir and its default.
OptionBinding<RunOptions> run_options(const std::string& dir_help);
// Whether run.channels_last = `setting` puts the network in channels-last memory on `device`
// (auto: on for CPU, where oneDNN's NHWC kernels are the fast ones; off for CUDA).
bool use_channels_last(const std::string& setting, bool cuda);
// Whether run.fused = `setting` runs the fused cells of `space` (nb201, darts; others have none)
// in that memory format (auto: fused, except NB201's cells in channels-last memory, where one edge
// at a time measured faster on CPU).
bool use_fused_cells(const std::string& setting, const std::string& space, bool channels_last);

struct ReportOptions {
  std::string nb201_table = "auto";
};
OptionBinding<ReportOptions> report_options(const std::string& help);

}  // namespace probnas
