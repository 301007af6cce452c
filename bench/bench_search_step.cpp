// Times search steps (one architecture step + one weight step) of DrNAS, DARTS (first order;
// "darts2": second order), GDAS, PARSEC (--samples K single-path architectures per step) and GibbsNAS
// ("gibbs1", "gibbs2": first and second order, the latter with its extra curvature gradients) on the
// NB201 or DARTS-space supernet with synthetic images, after warm-up, and prints one JSON line per case:
//   {"bench":"search_step","method":..,"device":..,"threads":..,"images_per_s":..,
//    "step_ms_median":..,"step_ms_p90":..,"peak_rss_mb":..,"peak_gpu_mb":..}
// images_per_s counts both halves of a step (batch images for the weights + --arch-batch, default batch,
// for the architecture).
// step_extra_rss_mb is the resident memory the timed steps added on top of what the process held before
// them (peak reset through /proc/self/clear_refs): compare methods with one process each, e.g.
//   bench_search_step --methods drnas; bench_search_step --methods parsec
// Under mpirun the ranks share each global batch (--micro-batches, default: one per rank); rank 0
// prints, adding "ranks" and "comm_share" (time inside collectives / step time, rank 0's view).
//   mpirun -np 2 bench_search_step --threads 1
// DARTS space with partial channels, and the second stage of a progressive search (pruned to
// --then-keep operations per edge, widened to K = --then-k) -- one process per case, so that
// peak_rss_mb is that case's:
//   bench_search_step --space darts --cells 8 --k 6 --methods drnas
//   bench_search_step --space darts --cells 8 --k 6 --then-k 3 --then-keep 4 --methods drnas
// ImageNet-sized search steps (the loader bench compares its throughput with these):
//   bench_search_step --space darts --cells 8 --k 2 --stem imagenet --size 224 --methods drnas
// "ops_per_step" counts the ATen operations of one step (outermost only): on a GPU, about its kernel
// launches. On CUDA it adds the GPU's own time per step (CUDA events, "gpu_step_ms_median") and, from Kineto's
// record of --profile-steps more steps, "gpu_busy_share": the union of the GPU's kernels, copies and
// memsets over the steps' wall time (1.0: the GPU never waits for the host). --cudnn-benchmark,
// --channels-last (as run.channels_last: auto, on, off), --bf16 (autocast) and --tf32 try the speed
// options one by one:
//   bench_search_step --device cuda --methods drnas,darts --channels-last on
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "probnas/comm/communicator.h"
#include "probnas/comm/device_communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/error.h"
#include "probnas/core/timer.h"
#include "probnas/engine/run_options.h"
#include "probnas/method/darts/darts.h"
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/method/gibbsnas/gibbsnas.h"
#include "probnas/method/parsec/parsec.h"
#include "probnas/space/nb201.h"
#include "op_count.h"

#if defined(PROBNAS_WITH_CUDA)
#include <ATen/Context.h>

#include "gpu_timing.h"
#endif

namespace po = boost::program_options;
using namespace probnas;

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// VmRSS or VmHWM of this process in MiB (0 where /proc is missing).
double proc_status_mb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;  // kB
  return 0;
}

// Resets VmHWM to the current resident size (Linux: writing 5 to clear_refs).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name, methods, space_name, stem;
  int64_t batch = 64, channels = 16, cells = 5, size = 32, warmup = 2, steps = 10, k = 1, then_k = 0, then_keep = 0;
  int threads = 0;
  int64_t micro_batches = 0, samples = 8, arch_batch = 0, profile_steps = 5;
  bool cudnn_benchmark = false, bf16 = false, unfused = false;
  std::string channels_last_setting = "auto", fused_setting = "auto";
  std::string tf32 = "default", comm_backend = "auto";
  po::options_description desc("bench_search_step options");
  desc.add_options()("help,h", "this help")
      ("device", po::value(&device_name)->default_value("cpu"), "cpu or cuda")
      ("methods", po::value(&methods)->default_value("drnas,darts"),
       "comma-separated methods: drnas, darts, darts2 (DARTS second order), gdas, parsec, gibbs1, gibbs2 "
       "(GibbsNAS first and second order)")
      ("samples", po::value(&samples)->default_value(8), "PARSEC: architectures K per step (ranks split them)")
      ("batch", po::value(&batch)->default_value(64), "global batch size")
      ("arch-batch", po::value(&arch_batch)->default_value(0), "architecture batch (0: --batch; a multiple of "
                                                               "--batch; GibbsNAS's paper uses 2048)")
      ("space", po::value(&space_name)->default_value("nb201"), "nb201 or darts")
      ("channels", po::value(&channels)->default_value(16), "initial channels C")
      ("cells", po::value(&cells)->default_value(5), "NB201: cells per stage N; DARTS space: cells")
      ("k", po::value(&k)->default_value(1), "DARTS space: partial channels K")
      ("then-k", po::value(&then_k)->default_value(0), "DARTS space: time the second progressive stage with this K "
                                                        "(0: the first stage)")
      ("then-keep", po::value(&then_keep)->default_value(0), "operations per edge kept in the second stage (0: half)")
      ("size", po::value(&size)->default_value(32), "image side (3 x size x size)")
      ("stem", po::value(&stem)->default_value("cifar"), "cifar or imagenet (three stride-2 convs, for 224 images)")
      ("warmup", po::value(&warmup)->default_value(2), "untimed steps first")
      ("steps", po::value(&steps)->default_value(10), "timed steps")
      ("threads", po::value(&threads)->default_value(0), "intra-op threads per rank (0: node cores / ranks on the node)")
      ("micro-batches", po::value(&micro_batches)->default_value(0), "micro-batches per global batch (0: one per rank)")
      ("profile-steps", po::value(&profile_steps)->default_value(5), "CUDA: steps recorded by the profiler for "
                                                                     "gpu_busy_share (0: none)")
      ("fused", po::value(&fused_setting)->default_value("auto"),
       "NB201 and DARTS space, as run.fused: auto (the engine's default: fused, except NB201 in channels-last), on "
       "(fused cells), off (one edge and operation at a time, the reference path)")
      ("unfused", po::bool_switch(&unfused), "the same as --fused off")
      ("cudnn-benchmark", po::bool_switch(&cudnn_benchmark), "cuDNN picks the fastest convolution algorithms")
      ("channels-last", po::value(&channels_last_setting)->default_value("auto"),
       "NHWC memory format for images and convolution weights, as run.channels_last: auto (on for cpu, off for "
       "cuda, the engine's default), on, off")
      ("bf16", po::bool_switch(&bf16), "bf16 autocast for the step's forward and backward passes")
      ("comm-backend", po::value(&comm_backend)->default_value("auto"), "auto, mpi or nccl (as comm.backend; nccl on "
                                                                          "one rank times NCCL's reduction on one GPU)")
      ("tf32", po::value(&tf32)->default_value("default"), "TF32 matmuls and convolutions on CUDA: on, off, default "
                                                           "(LibTorch's)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bench_search_step: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  MpiSession mpi(&argc, &argv);
  try {
    auto world = make_world_communicator();
    const int used_threads = configure_threads(threads > 0 ? threads : default_threads_per_rank(*world));
    const c10::Device device = select_device(device_name, world->local_rank());
    PROBNAS_CHECK(channels_last_setting == "auto" || channels_last_setting == "on" || channels_last_setting == "off",
                  "--channels-last ", channels_last_setting, " (allowed: auto, on, off)");
    const bool channels_last = use_channels_last(channels_last_setting, device.is_cuda());
    PROBNAS_CHECK(fused_setting == "auto" || fused_setting == "on" || fused_setting == "off", "--fused ",
                  fused_setting, " (allowed: auto, on, off)");
    const bool fused = !unfused && use_fused_cells(fused_setting, space_name, channels_last);
    auto comm = make_device_communicator(*world, device, comm_backend);
    const bool reduce = comm->size() > 1 || comm_backend == "nccl";
    if (micro_batches == 0) micro_batches = comm->size();
    if (tf32 != "default" && tf32 != "on" && tf32 != "off") {
      std::cerr << "bench_search_step: --tf32 " << tf32 << " (allowed: on, off, default)\n";
      return 2;
    }
#if defined(PROBNAS_WITH_CUDA)
    at::globalContext().setBenchmarkCuDNN(cudnn_benchmark);
    if (tf32 != "default") {
      at::globalContext().setAllowTF32CuDNN(tf32 == "on");
      at::globalContext().setAllowTF32CuBLAS(tf32 == "on");
    }
#endif
    if (arch_batch == 0) arch_batch = batch;
    if (bf16 && (methods.find("darts2") != std::string::npos || methods.find("gibbs2") != std::string::npos)) {
      // They change the weights in place inside the step, and autocast would reuse its stale casts.
      std::cerr << "bench_search_step: --bf16 is for first-order steps (not darts2 or gibbs2)\n";
      return 2;
    }
    if (arch_batch % batch != 0) {
      std::cerr << "bench_search_step: --arch-batch " << arch_batch << " is not a multiple of --batch " << batch << "\n";
      return 2;
    }
    SyntheticOptions so;
    so.count = batch + arch_batch, so.channels = 3, so.size = size, so.classes = 10;
    auto data = std::make_shared<const Dataset>(make_synthetic(so));
    SplitOptions lo;
    lo.global_batch = batch;
    lo.micro_batches = micro_batches;
    const auto stats = ChannelStats::of(*data);
    const auto all = torch::arange(data->size(), torch::kInt64);
    // PARSEC's ranks split the samples and see every micro-batch.
    // The architecture batch is cut into micro-batches of the weight batch's micro-batch size.
    auto loader = [&](int64_t first, int64_t size, const char* name, bool whole) {
      SplitOptions o = lo;
      o.global_batch = size;
      o.micro_batches = micro_batches * (size / batch);
      return SplitLoader(data, all.narrow(0, first, size), stats, o, RngKey(0).with(name), device,
                         whole ? 0 : comm->rank(), whole ? 1 : comm->size());
    };

    std::stringstream list(methods);
    for (std::string method; std::getline(list, method, ',');) {
      torch::manual_seed(0);
      SpaceOptions space;
      space.space = space_name, space.channels = channels, space.input_channels = 3, space.classes = 10;
      space.cells_per_stage = cells, space.cells = cells, space.partial_channels = k;
      space.stem = stem;
      auto net = make_supernet(space);
      net->to(device);
      net->set_channels_last(channels_last);
      net->set_fused(fused);
      GradientMethodOptions go;
      const int64_t ops = net->arch_shape().front().num_ops();
      if (then_k > 0) go.stages = {{1, k, ops}, {1, then_k, then_keep > 0 ? then_keep : (ops + 1) / 2}};
      go.second_order = method == "darts2";
      std::unique_ptr<SearchMethod> m;
      if (method == "parsec") {
        ParsecOptions po;
        po.samples = samples;
        m = std::make_unique<Parsec>(net, po, RngKey(0));
      } else if (method == "drnas") m = std::make_unique<Drnas>(net, go, RngKey(0));
      else if (method == "darts" || method == "darts2") m = std::make_unique<Darts>(net, go, RngKey(0));
      else if (method == "gdas") m = std::make_unique<Gdas>(net, go, GdasOptions{}, RngKey(0));
      else if (method == "gibbs1" || method == "gibbs2") {
        GibbsOptions g;
        g.order = method == "gibbs1" ? 1 : 2;
        m = std::make_unique<GibbsNas>(net, go, g, RngKey(0));
      } else {
        std::cerr << "bench_search_step: unknown method '" << method << "' (allowed: drnas, darts, darts2, gdas, parsec, "
                     "gibbs1, gibbs2)\n";
        return 2;
      }
      m->begin_epoch(then_k > 0 ? 1 : 0, then_k > 0 ? 2 : 1);  // the second stage prunes and widens here
      int64_t weights = 0;
      for (const auto& p : net->parameters()) weights += p.numel();
      auto tb = loader(0, batch, "w", m->splits_samples()).batch(0, 0);
      auto vb = loader(batch, arch_batch, "a", m->splits_samples()).batch(0, 0);
      StepMetrics metrics;
      StepContext ctx;
      ctx.key = RngKey(0);
      ctx.comm = reduce ? comm.get() : nullptr;
      ctx.train_micro_batches = micro_batches;  // as the loaders above cut the two batches
      ctx.val_micro_batches = micro_batches * (arch_batch / batch);
      reset_peak_device_memory(device);
      const double rss_before = proc_status_mb("VmRSS");
      reset_peak_rss();
      std::vector<double> ms, gpu_ms;
      double comm_seconds = 0;
#if defined(PROBNAS_WITH_CUDA)
      bench::GpuStepTimer gpu_timer(device.is_cuda() ? device.index() : c10::DeviceIndex{0});
#endif
      for (int64_t s = 0; s < warmup + steps; ++s) {
        ctx.global_step = s;
        synchronize(device);
        comm->barrier();  // every rank starts the step together
        const double comm_before = comm->collective_seconds();
        Stopwatch clock;
#if defined(PROBNAS_WITH_CUDA)
        if (device.is_cuda()) gpu_timer.start();
#endif
        {
          AutocastScope precision(device, torch::kBFloat16, bf16);
          m->step(tb, vb, ctx, metrics);
        }
#if defined(PROBNAS_WITH_CUDA)
        if (device.is_cuda() && s >= warmup) gpu_ms.push_back(gpu_timer.stop_ms());
#endif
        synchronize(device);
        if (s >= warmup) {
          ms.push_back(clock.seconds() * 1e3);
          comm_seconds += comm->collective_seconds() - comm_before;
        }
      }
      // One more step with every ATen operation counted (outside the timed steps: counting costs).
      int64_t ops_per_step = 0;
      {
        ctx.global_step = warmup + steps;
        bench::OpCounter counter;
        AutocastScope precision(device, torch::kBFloat16, bf16);
        m->step(tb, vb, ctx, metrics);
        ops_per_step = counter.ops();
      }
      nlohmann::ordered_json gpu;
#if defined(PROBNAS_WITH_CUDA)
      if (device.is_cuda() && profile_steps > 0) {
        // Separate steps: the profiler's own overhead must not enter the timed ones.
        synchronize(device);
        comm->barrier();
        bench::GpuProfile profile;
        Stopwatch clock;
        for (int64_t s = 0; s < profile_steps; ++s) {
          ctx.global_step = warmup + steps + 1 + s;
          AutocastScope precision(device, torch::kBFloat16, bf16);
          m->step(tb, vb, ctx, metrics);
        }
        synchronize(device);
        const double wall_ms = clock.seconds() * 1e3;
        const auto a = profile.stop();
        gpu["gpu_busy_share"] = a.busy_ms / wall_ms;
        gpu["gpu_busy_ms_per_step"] = a.busy_ms / static_cast<double>(profile_steps);
        gpu["gpu_activities_per_step"] = static_cast<double>(a.activities) / static_cast<double>(profile_steps);
        gpu["profiled_step_ms"] = wall_ms / static_cast<double>(profile_steps);
      }
#endif
      double total = 0;
      for (double v : ms) total += v;
      nlohmann::ordered_json j;
      j["bench"] = "search_step";
      j["space"] = space_name;
      j["method"] = method;
      j["device"] = device.str();
      j["ranks"] = comm->size();
      j["comm_backend"] = choose_comm_backend(comm_backend, device, comm->size()).nccl ? "nccl" : "mpi";
      j["threads"] = used_threads;
      j["micro_batches"] = micro_batches;
      j["batch"] = batch;
      j["arch_batch"] = arch_batch;
      j["channels"] = channels;
      j[space_name == "darts" ? "cells" : "cells_per_stage"] = cells;
      if (space_name == "darts") {
        j["k"] = then_k > 0 ? then_k : k;
        j["ops_per_edge"] = then_k > 0 ? go.stages[1].keep : ops;
      }
      j["weights"] = weights;
      j["image"] = "3x" + std::to_string(size) + "x" + std::to_string(size);
      j["steps"] = steps;
      if (space_name != "multibranch") j["fused"] = fused;
      // Both halves of a step (weights and architecture), and the weight batch alone: the unit of the
      // official DrNAS code's images per second.
      j["images_per_s"] = static_cast<double>(batch + arch_batch) * static_cast<double>(steps) / (total / 1e3);
      j["train_images_per_s"] = static_cast<double>(batch) * static_cast<double>(steps) / (total / 1e3);
      j["step_ms_median"] = percentile(ms, 0.5);
      j["step_ms_p90"] = percentile(ms, 0.9);
      j["comm_share"] = comm_seconds / (total / 1e3);
      j["ops_per_step"] = ops_per_step;
      if (method == "parsec") j["samples"] = samples;
      j["peak_rss_mb"] = peak_rss_mb();
      j["rss_before_mb"] = rss_before;
      j["step_extra_rss_mb"] = proc_status_mb("VmHWM") - rss_before;
      if (device.is_cuda()) {
        j["peak_gpu_mb"] = static_cast<double>(peak_device_memory(device)) / (1024.0 * 1024.0);
        if (!gpu_ms.empty()) j["gpu_step_ms_median"] = percentile(gpu_ms, 0.5);
        for (const auto& [key, value] : gpu.items()) j[key] = value;
      }
      j["cudnn_benchmark"] = cudnn_benchmark;
      j["channels_last"] = channels_last;
      j["precision"] = bf16 ? "bf16" : "fp32";
      j["tf32"] = tf32;
      j["libtorch"] = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
      if (comm->rank() == 0) std::cout << j.dump() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_search_step: " << e.what() << "\n";
    MpiSession::abort_if_parallel(1);
    return 1;
  }
  return 0;
}
