// Checkpoint cost: writes and reads the full checkpoint of a DrNAS search on the NB201 (or DARTS-space) supernet
// (weights, BatchNorm buffers, SGD momentum, eta with its Adam moments, generator states) through
// the real protocol (.tmp, complete mark, fsync, rename, LATEST), times a search step of the same
// supernet, and prints one JSON line:
//   {"bench":"checkpoint","space":"nb201","params":..,"file_mb":..,"write_ms_median":..,
//    "read_ms_median":..,"step_ms_median":..,"share_at_interval":..,"share_per_epoch":..}
// share_at_interval = write time / ckpt.interval_minutes (default 15 min): the run-time share of the
// default time trigger; share_per_epoch = write time / (steps_per_epoch x step time): the share
// of the epoch-end trigger (default 391 steps: CIFAR-10's 25,000 weight images in batches of 64).
#include <torch/torch.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/core/device.h"
#include "probnas/core/timer.h"
#include "probnas/data/loader.h"
#include "probnas/ckpt/torch_state.h"
#include "probnas/method/drnas/drnas.h"

namespace po = boost::program_options;
using namespace probnas;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string device_name, dir, space_name;
  int64_t space_cells = 8, channels = 16, cells = 5, batch = 64, size = 32, steps = 5, repeats = 5, steps_per_epoch = 391;
  int threads = 0, compress = 0;
  double interval_minutes = 15;
  po::options_description desc("bench_checkpoint options");
  desc.add_options()("help,h", "this help")
      ("device", po::value(&device_name)->default_value("cpu"), "cpu or cuda")
      ("space", po::value(&space_name)->default_value("nb201"), "nb201 or darts")
      ("space-cells", po::value(&space_cells)->default_value(8), "DARTS space: cells")
      ("channels", po::value(&channels)->default_value(16), "initial channels C")
      ("cells", po::value(&cells)->default_value(5), "NB201 N (cells per stage)")
      ("batch", po::value(&batch)->default_value(64), "batch size of the timed search steps")
      ("size", po::value(&size)->default_value(32), "image side (3 x size x size)")
      ("steps", po::value(&steps)->default_value(5), "timed search steps (after one untimed)")
      ("repeats", po::value(&repeats)->default_value(5), "checkpoint writes and reads timed")
      ("threads", po::value(&threads)->default_value(0), "intra-op threads (0: all cores)")
      ("compress", po::value(&compress)->default_value(0), "gzip level (ckpt.compress)")
      ("interval-minutes", po::value(&interval_minutes)->default_value(15), "ckpt.interval_minutes for the share")
      ("steps-per-epoch", po::value(&steps_per_epoch)->default_value(391), "steps per epoch for the epoch-end share")
      ("dir", po::value(&dir)->default_value(""), "folder for the files (default: a fresh one under /tmp)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bench_checkpoint: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  try {
    const int used_threads = configure_threads(threads);
    const c10::Device device = select_device(device_name);
    if (dir.empty()) dir = (std::filesystem::temp_directory_path() / ("probnas-bench-ckpt-" + std::to_string(::getpid()))).string();

    torch::manual_seed(0);
    SpaceOptions space;
    space.space = space_name, space.cells = space_cells;
    space.channels = channels, space.cells_per_stage = cells, space.input_channels = 3, space.classes = 10;
    auto net = make_supernet(space);
    net->to(device);
    Drnas method(net, GradientMethodOptions(), RngKey(0));
    method.begin_epoch(0, 1);

    SyntheticOptions so;
    so.count = 2 * batch, so.channels = 3, so.size = size, so.classes = 10;
    auto data = std::make_shared<const Dataset>(make_synthetic(so));
    SplitOptions lo;
    lo.global_batch = batch;
    const auto stats = ChannelStats::of(*data);
    const auto all = torch::arange(data->size(), torch::kInt64);
    const SplitLoader train(data, all.narrow(0, 0, batch), stats, lo, RngKey(0).with("w"), device, 0, 1);
    const SplitLoader val(data, all.narrow(0, batch, batch), stats, lo, RngKey(0).with("a"), device, 0, 1);
    StepMetrics metrics;
    StepContext ctx;
    ctx.key = RngKey(0);
    std::vector<double> step_ms;
    for (int64_t s = 0; s <= steps; ++s) {  // the first step fills the momentum buffers; untimed
      ctx.global_step = s;
      synchronize(device);
      Stopwatch clock;
      method.step(train.batch(0, 0), val.batch(0, 0), ctx, metrics);
      synchronize(device);
      if (s > 0) step_ms.push_back(clock.seconds() * 1e3);
    }

    // What the engine saves, minus the few attributes of /meta, /loader and /history.
    auto make_state = [&] {
      ckpt::State state;
      auto& meta = state.group("meta");
      meta.set_attr("schema_version", ckpt::kSchemaVersion);
      meta.put_text("config", std::string(4500, '#'));  // about the size of the effective config
      save_module(state.group("model"), *net);
      method.save(state.group("method"), state.group("optim"));
      put_generator_states(state.group("rng"), {generator_states()});
      state.group("history").put_lines("metrics", std::vector<std::string>(100, std::string(400, 'x')));
      return state;
    };
    ckpt::SaveOptions options;
    options.compression = compress;
    ckpt::Directory directory(dir, options, 2);
    std::vector<double> write_ms, read_ms;
    std::string path;
    for (int64_t r = 0; r < repeats; ++r) {
      synchronize(device);
      Stopwatch w;
      path = directory.save(make_state(), r + 1);  // device -> host copies included
      write_ms.push_back(w.seconds() * 1e3);
      Stopwatch rd;
      const auto state = ckpt::read_file(path);
      load_module(state.group("model"), *net);
      method.load(state.group("method"), state.group("optim"));
      synchronize(device);
      read_ms.push_back(rd.seconds() * 1e3);
    }
    int64_t params = 0;
    for (const auto& p : net->parameters()) params += p.numel();
    const double write_s = median(write_ms) / 1e3, step_s = median(step_ms) / 1e3;
    nlohmann::ordered_json j;
    j["bench"] = "checkpoint";
    j["space"] = space_name;
    j["method"] = "drnas";
    j["channels"] = channels;
    if (space_name == "darts") j["cells"] = space_cells;
    else j["cells_per_stage"] = cells;
    j["params"] = params;
    j["device"] = device.str();
    j["threads"] = used_threads;
    j["compress"] = compress;
    j["file_mb"] = static_cast<double>(std::filesystem::file_size(path)) / (1024.0 * 1024.0);
    j["write_ms_median"] = median(write_ms);
    j["read_ms_median"] = median(read_ms);
    j["step_ms_median"] = median(step_ms);
    j["batch"] = batch;
    j["interval_minutes"] = interval_minutes;
    j["share_at_interval"] = write_s / (interval_minutes * 60);
    j["steps_per_epoch"] = steps_per_epoch;
    j["share_per_epoch"] = write_s / (static_cast<double>(steps_per_epoch) * step_s);
    j["libtorch"] = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
    std::cout << j.dump() << std::endl;
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::cerr << "bench_checkpoint: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
