#include "probnas/engine/run_options.h"

#include <limits>

namespace probnas {

OptionBinding<RunOptions> run_options(const std::string& dir_help) {
  using O = RunOptions;
  return OptionBinding<O>()
      .text("run.dir", &O::dir, "", dir_help)
      .resumable()
      .integer("run.seed", &O::seed, 0, 0, std::numeric_limits<int32_t>::max(), "seed of every random draw of the run")
      .choice("run.device", &O::device, "cpu", {"cpu", "cuda"},
              "compute device (cuda: cuda:<local rank mod visible devices>)")
      .resumable()
      .integer("run.threads", &O::threads, 0, 0, 4096,
               "intra-op CPU threads per rank (0: the node's cores / ranks on the node)")
      .resumable()
      .real("run.progress_interval", &O::progress_interval, 10, 0, 86400,
            "seconds between progress lines on stderr (0: every step)")
      .resumable()
      .choice("run.log_level", &O::log_level, "info", {"debug", "info", "warn", "error"}, "least severe log level printed")
      .resumable()
      .text("run.resume", &O::resume, "auto",
            "auto: carry on from the run folder's newest good checkpoint if there is one; never: refuse a folder that "
            "holds checkpoints; or a checkpoint file to start from")
      .resumable()
      .boolean("run.lock", &O::lock, true,
               "one run per run.dir at a time: rank 0 holds an flock on <run.dir>/run.lock for the whole run, and a "
               "second run on the folder stops at once naming the holder (false: for file systems without locks, "
               "some NFS set-ups; nothing then stops two runs writing one folder)")
      .resumable();
}

OptionBinding<ReportOptions> report_options(const std::string& help) {
  return OptionBinding<ReportOptions>().text("report.nb201_table", &ReportOptions::nb201_table, "auto", help).resumable();
}

}  // namespace probnas
