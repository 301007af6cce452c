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
      .choice("run.channels_last", &O::channels_last, "auto", {"auto", "on", "off"},
              "channels-last (NHWC) memory for the network's convolution weights and the images: auto is on for "
              "run.device = cpu, where oneDNN's NHWC kernels run the search step about 1.7-2.2x faster (docs/"
              "benchmarks.md), and off for cuda (not yet measured there); values agree with off up to float rounding "
              "and checkpoints are the same either way")
      .resumable()
      .choice("run.fused", &O::fused, "auto", {"auto", "on", "off"},
              "fused supernet cells (NB201, DARTS space), with the mixing weights alone (DrNAS, DARTS, GibbsNAS): "
              "per source node one ReLU, stacked convolutions and one pooling, pruned operations and none skipped; "
              "off: one edge and operation at a time (the reference path); auto: on, except NB201 with channels-last "
              "memory, where one edge at a time measured faster on CPU (docs/benchmarks.md)")
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

bool use_channels_last(const std::string& setting, bool cuda) {
  if (setting == "auto") return !cuda;
  return setting == "on";
}

bool use_fused_cells(const std::string& setting, const std::string& space, bool channels_last) {
  if (setting == "auto") return !(space == "nb201" && channels_last);
  return setting == "on";
}

OptionBinding<ReportOptions> report_options(const std::string& help) {
  return OptionBinding<ReportOptions>().text("report.nb201_table", &ReportOptions::nb201_table, "auto", help).resumable();
}

}  // namespace probnas
