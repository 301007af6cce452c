// PGNAS candidate ranking throughput: candidates drawn from a PGNAS posterior over the multi-branch
// supernet, pruned, and scored on held-out images, on every rank of the job (run it under mpirun
// with 1 and with P ranks at the same threads per rank; bench/pgnas_ranking.sh does both and
// reports the parallel efficiency). Rank 0 prints one JSON line:
//   {"bench":"pgnas_ranking","ranks":..,"threads_per_rank":..,"candidates":..,"images":..,
//    "seconds":..,"candidates_per_s":..,"prune_ms":..,"eval_ms_per_candidate":..,"device":..}
#include <torch/torch.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "probnas/comm/communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/timer.h"
#include "probnas/method/pgnas/ranking.h"
#include "probnas/method/pgnas/pgnas.h"

namespace po = boost::program_options;
using namespace probnas;

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  auto comm = make_world_communicator();
  std::string device_name, kernels, dir;
  int64_t channels = 16, blocks = 1, size = 28, in_channels = 1, images = 2000, batch = 500, candidates = 64;
  int threads = 1;
  bool recalibrate = false;
  po::options_description desc("bench_pgnas_ranking options");
  desc.add_options()("help,h", "this help")
      ("device", po::value(&device_name)->default_value("cpu"), "cpu or cuda")
      ("channels", po::value(&channels)->default_value(16), "initial channels C")
      ("blocks", po::value(&blocks)->default_value(1), "blocks per stage")
      ("kernels", po::value(&kernels)->default_value("1,3,5"), "branch kernel sizes")
      ("size", po::value(&size)->default_value(28), "image side")
      ("in-channels", po::value(&in_channels)->default_value(1), "image channels")
      ("images", po::value(&images)->default_value(2000), "held-out images per candidate")
      ("batch", po::value(&batch)->default_value(500), "evaluation batch")
      ("candidates", po::value(&candidates)->default_value(64), "candidates ranked (timed)")
      ("threads", po::value(&threads)->default_value(1), "intra-op threads per rank")
      ("recalibrate", po::bool_switch(&recalibrate), "recalibrate BN per candidate (on 512 images)")
      ("dir", po::value(&dir)->default_value(""), "folder for the progress files (default: fresh under /tmp)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bench_pgnas_ranking: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  configure_threads(threads);
  const auto device = select_device(device_name, comm->local_rank());
  SpaceOptions so;
  so.space = "multibranch";
  so.channels = channels;
  so.cells_per_stage = blocks;
  so.kernels = parse_kernels(kernels);
  so.input_channels = in_channels;
  torch::manual_seed(0);
  auto net = std::make_shared<MultiBranchNet>(so);
  net->to(device);
  PgnasOptions po_;
  po_.init_drop = 0.2;
  Pgnas method(net, po_, RngKey(1));
  // Fixed synthetic held-out images (the same on every rank), in evaluation batches.
  auto gen = make_generator(RngKey(7));
  EvalSet val, calib;
  for (int64_t s = 0; s < images; s += batch) {
    const int64_t n = std::min(batch, images - s);
    val.x.push_back(torch::randn({n, in_channels, size, size}, gen).to(device));
    val.y.push_back(torch::randint(10, {n}, gen).to(device));
  }
  if (recalibrate) calib.x.push_back(torch::randn({512, in_channels, size, size}, gen).to(device));
  if (dir.empty()) dir = "/tmp/bench_pgnas_ranking_" + std::to_string(::getpid());
  comm->broadcast_bytes(dir);
  RankingOptions o;
  o.candidates = candidates;
  o.random = false;
  o.recalibrate_bn = recalibrate;
  o.progress_interval = 1e9;
  o.dir = dir;
  o.fingerprint = "bench";
  if (comm->rank() == 0) std::filesystem::remove_all(dir);
  comm->barrier();
  // Component times on rank 0 (one candidate), untimed warm-up included.
  Stopwatch t;
  const auto gates = candidate_gates(method, RngKey(1), "guided", 0, 0);
  PrunedNet pruned = net->prune(gates);
  const double prune_ms = t.seconds() * 1000;
  evaluate_pruned(pruned, val);
  t.reset();
  evaluate_pruned(pruned, val);
  const double eval_ms = t.seconds() * 1000;
  comm->barrier();
  Stopwatch clock;
  rank_candidates(method, RngKey(1), val, calib, o, *comm);
  comm->barrier();
  const double seconds = clock.seconds();
  if (comm->rank() == 0) {
    nlohmann::ordered_json j;
    j["bench"] = "pgnas_ranking";
    j["ranks"] = comm->size();
    j["threads_per_rank"] = threads;
    j["candidates"] = candidates;
    j["images"] = images;
    j["params"] = [&] { int64_t n = 0; for (const auto& p : net->parameters()) n += p.numel(); return n; }();
    j["seconds"] = seconds;
    j["candidates_per_s"] = static_cast<double>(candidates) / seconds;
    j["prune_ms"] = prune_ms;
    j["eval_ms_per_candidate"] = eval_ms;
    j["recalibrate_bn"] = recalibrate;
    j["device"] = device_description(device);
    std::cout << j.dump() << std::endl;
    std::filesystem::remove_all(dir);
  }
  return 0;
}
