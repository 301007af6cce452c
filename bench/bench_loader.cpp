// Loader and converter throughput. Converts --images synthetic ImageNet-shaped images
// (--shape, default 3x256x256) to shards of each --encodings (raw, jpeg), timing the conversion,
// then reads global batches of --batch images through the threaded loader with the ImageNet
// augmentation (random resized crop to --image-size, flip, normalisation) for each --workers
// count. One JSON line per case:
//   {"bench":"convert","encoding":..,"images":..,"images_per_s":..,"bytes_per_image":..,"ranks":..}
//   {"bench":"loader","encoding":..,"workers":..,"ranks":..,"images_per_s":..,"per_rank_images_per_s":..,
//    "ms_per_global_batch":..}
// Under mpirun the ranks share each global batch (one micro-batch per rank) and the conversion;
// images_per_s counts whole global batches (all ranks). Compare it with bench_search_step's
// images_per_s for the same images (e.g. --stem imagenet --size 224) to see the loader's headroom.
//   bench_loader --images 2048 --workers 0,1,2
//   mpirun -np 2 bench_loader --threads 1
//   bench_loader --dir /data/shards   (an existing shard folder: loader cases only)
//   bench_loader --folder /data/cifar10-jpeg/train --images 0   (folder-tree conversion speed)
#include <torch/torch.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "probnas/comm/communicator.h"
#include "probnas/core/device.h"
#include "probnas/core/timer.h"
#include "probnas/app/options.h"
#include "probnas/data/convert.h"
#include "probnas/data/loader.h"
#include "probnas/data/shards.h"

namespace po = boost::program_options;
using namespace probnas;

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void convert_case(Communicator& comm, const std::map<std::string, std::string>& options, nlohmann::json j) {
  Config c(convert_option_table());
  for (const auto& [k, v] : options) c.set(k, v);
  c.set("log_level", "warn");
  std::filesystem::remove_all(c.text("out"));
  comm.barrier();
  const ConvertSummary s = run_convert(convert_options().read(c), comm);
  if (comm.rank() != 0) return;
  j["bench"] = "convert";
  j["images"] = s.images;
  j["skipped"] = s.skipped;
  j["seconds"] = s.seconds;
  j["images_per_s"] = static_cast<double>(s.images) / s.seconds;
  j["bytes_per_image"] = static_cast<double>(s.bytes) / static_cast<double>(std::max<int64_t>(1, s.images));
  j["ranks"] = comm.size();
  std::cout << j.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t images = 2048, batch = 64, image_size = 224, steps = 20, threads = 0;
  std::string shape, encodings, workers, dir, folder, tmp;
  po::options_description desc("bench_loader options");
  desc.add_options()("help,h", "this help")
      ("images", po::value(&images)->default_value(2048), "synthetic images to convert (0: none)")
      ("shape", po::value(&shape)->default_value("3x256x256"), "CxHxW of the stored synthetic images")
      ("encodings", po::value(&encodings)->default_value("raw,jpeg"), "shard encodings to convert and read")
      ("dir", po::value(&dir)->default_value(""), "read this existing shard folder instead of converting")
      ("folder", po::value(&folder)->default_value(""), "also time converting this image folder tree")
      ("tmp", po::value(&tmp)->default_value("/tmp/probnas-bench-loader"), "where the shards go")
      ("batch", po::value(&batch)->default_value(64), "global batch")
      ("image-size", po::value(&image_size)->default_value(224), "random resized crop output side")
      ("workers", po::value(&workers)->default_value("0,1,2"), "loader thread counts to time")
      ("steps", po::value(&steps)->default_value(20), "timed global batches per case")
      ("threads", po::value(&threads)->default_value(0), "intra-op threads per rank (0: node cores / ranks)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "bench_loader: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  MpiSession mpi(&argc, &argv);
  try {
    auto comm = make_world_communicator();
    const int used_threads = configure_threads(threads > 0 ? static_cast<int>(threads) : default_threads_per_rank(*comm));
    std::vector<std::pair<std::string, std::string>> folders;  // (encoding, dir)
    if (!dir.empty()) folders.push_back({"existing", dir});
    if (!folder.empty())
      convert_case(*comm, {{"in", folder}, {"out", tmp + "-folder"}, {"threads", std::to_string(used_threads)}},
                   {{"from", "folder"}, {"encoding", "auto"}, {"threads", used_threads}});
    if (dir.empty() && images > 0)
      for (const auto& enc : split(encodings)) {
        const std::string out = tmp + "-" + enc;
        convert_case(*comm, {{"synthetic", std::to_string(images)}, {"shape", shape}, {"classes", "1000"},
                             {"encoding", enc}, {"out", out}, {"threads", std::to_string(used_threads)}},
                     {{"from", "synthetic"}, {"encoding", enc}, {"shape", shape}, {"threads", used_threads}});
        folders.push_back({enc, out});
      }
    for (const auto& [enc, path] : folders) {
      auto src = std::make_shared<const ShardedSource>(path);
      for (const auto& w : split(workers)) {
        SplitOptions so;
        so.global_batch = batch;
        so.micro_batches = comm->size();
        so.workers = std::stoll(w);
        so.prefetch = std::max<int64_t>(2, so.workers);
        so.transform.resized_crop = true;
        so.transform.size = image_size;
        const SplitLoader loader(src, torch::arange(src->size(), torch::kInt64), src->stats(), so, RngKey(1),
                                 torch::kCPU, comm->rank(), comm->size());
        const int64_t spe = loader.steps_per_epoch();
        loader.batch_at(0);  // warm-up: opens the shards, first reads
        comm->barrier();
        Stopwatch clock;
        for (int64_t g = 1; g <= steps; ++g) loader.batch_at(g % spe == 0 ? g + 1 : g);
        const double mine = clock.seconds();
        const double slowest = comm->allgather(torch::tensor({mine}, torch::kFloat64)).max().item<double>();
        if (comm->rank() == 0) {
          nlohmann::json j;
          j["bench"] = "loader";
          j["encoding"] = enc == "existing" ? encoding_name(src->index().layout.encoding) : enc;
          j["stored"] = std::to_string(src->channels()) + "x" + std::to_string(src->height()) + "x" +
                        std::to_string(src->width());
          j["image_size"] = image_size;
          j["batch"] = batch;
          j["workers"] = so.workers;
          j["threads"] = used_threads;
          j["ranks"] = comm->size();
          j["images_per_s"] = static_cast<double>(steps * batch) / slowest;
          j["per_rank_images_per_s"] = static_cast<double>(steps * batch) / comm->size() / slowest;
          j["ms_per_global_batch"] = 1000 * slowest / static_cast<double>(steps);
          std::cout << j.dump() << std::endl;
        }
      }
    }
    comm->barrier();
    if (comm->rank() == 0)
      for (const auto& [enc, path] : folders)
        if (enc != "existing") std::filesystem::remove_all(path);
    if (comm->rank() == 0 && !folder.empty()) std::filesystem::remove_all(tmp + "-folder");
  } catch (const std::exception& e) {
    std::cerr << "bench_loader: " << e.what() << "\n";
    MpiSession::abort_if_parallel(1);
    return 1;
  }
  return 0;
}
