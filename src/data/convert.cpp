#include "probnas/data/convert.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/format.h"
#include "probnas/core/log.h"
#include "probnas/core/rng.h"
#include "probnas/core/timer.h"
#include "probnas/data/dataset.h"
#include "probnas/data/jpeg.h"
#include "probnas/data/shards.h"

namespace probnas {
namespace fs = std::filesystem;

const OptionBinding<ConvertOptions>& convert_options() {
  using O = ConvertOptions;
  static const auto b =
      OptionBinding<O>()
          .choice("from", &O::from, "folder", {"folder", "cifar10", "cifar100", "fashion-mnist", "mnist", "synthetic"},
                  "what to convert: folder = an image folder tree <in>/<class>/<image>.JPEG (ImageNet's train/ or val/ "
                  "sorted into class folders), decoded with libjpeg-turbo; cifar10/cifar100 = the CIFAR binary version "
                  "in <in>; fashion-mnist/mnist = IDX files in <in>; synthetic = generated images (see --synthetic)")
          .given(&O::from_given)
          .text("in", &O::in, "", "input folder (folder: the folder of class folders; cifar*/IDX: the folder of the "
                                  "files, empty for the dataset's default location)")
          .choice("split", &O::split, "train", {"train", "test"},
                  "cifar10/cifar100/fashion-mnist/mnist: which split to convert")
          .text("out", &O::out, "", "output folder of the shards (created; shards already there from the same settings "
                                    "are kept, so a killed conversion resumes)")
          .choice("encoding", &O::encoding, "auto", {"auto", "raw", "jpeg"},
                  "how images are stored: raw uint8 arrays (fast to read, large) or JPEG files (about 10x smaller, "
                  "decoded by the loader threads); auto = jpeg for folder trees and synthetic images of 96x96 "
                  "pixels or more, raw otherwise")
          .integer("size", &O::size, 0, 0, 4096, "stored resolution: images are resized so the shorter side is this, "
                   "then centre-cropped to a square (0: the shorter side of the first image; ImageNet search: 256)")
          .given(&O::size_given)
          .integer("quality", &O::quality, 90, 1, 100, "JPEG quality of the stored images (encoding jpeg)")
          .real("fraction", &O::fraction, 1.0, 1e-6, 1.0, "convert a class-balanced, seeded subset: this fraction of "
                "every class (DrNAS searches ImageNet on 0.1 for the weights and 0.025 for the architecture)")
          .integer("seed", &O::seed, 0, 0, 2147483647, "seed of the subset and of the example order")
          .integer("shard_size", &O::shard_size, 0, 0, 100000000,
                   "examples per shard (0: about 256 MB of raw pixels per shard)")
          .integer("threads", &O::threads, 0, 0, 1024, "decode/encode threads per rank (0: the cores of the node / its ranks)")
          .integer("synthetic", &O::synthetic, 0, 0, 1000000000, "synthetic: this many images (sets --from synthetic)")
          .text("shape", &O::shape, "3x224x224", "synthetic: CxHxW of the images")
          .integer("classes", &O::classes, 1000, 2, 1000000, "synthetic: number of classes")
          .text("log_level", &O::log_level, "info", "debug, info, warn or error");
  return b;
}

namespace {

// One input example: a file (folder trees) or a record of an in-memory dataset.
struct Item {
  int64_t label = 0;
  std::string file;    // folder: the image file
  int64_t record = 0;  // in-memory / synthetic: the example number
};

bool is_image_candidate(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] != '.';
}

// Lists <in>/<class>/<file>, classes and files sorted by name.
void list_folder(const std::string& in, std::vector<std::string>& classes, std::vector<Item>& items) {
  PROBNAS_CHECK(!in.empty(), "--in must name the folder of class folders (e.g. /data/ILSVRC2012/train)");
  PROBNAS_CHECK(fs::is_directory(in), "--in '", in, "' is not a folder");
  for (const auto& e : fs::directory_iterator(in))
    if (e.is_directory() && is_image_candidate(e.path())) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  PROBNAS_CHECK(!classes.empty(), "--in '", in, "' has no class folders: it must hold one folder per class "
                "(<in>/<class>/<image>.JPEG); for ImageNet point it at train/ (or a val/ sorted into class folders)");
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(fs::path(in) / classes[c]))
      if (e.is_regular_file() && is_image_candidate(e.path())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) items.push_back({static_cast<int64_t>(c), std::move(f), 0});
  }
  PROBNAS_CHECK(!items.empty(), "--in '", in, "' has class folders but no files in them");
}

std::string serialize(const std::vector<std::string>& classes, const std::vector<Item>& items) {
  std::ostringstream out;
  out << classes.size() << "\n";
  for (const auto& c : classes) out << c << "\n";
  for (const auto& it : items) out << it.label << "\t" << it.file << "\n";
  return out.str();
}

void deserialize(const std::string& text, std::vector<std::string>& classes, std::vector<Item>& items) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  const size_t k = std::stoul(line);
  for (size_t i = 0; i < k; ++i) {
    std::getline(in, line);
    classes.push_back(line);
  }
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    items.push_back({std::stoll(line.substr(0, tab)), line.substr(tab + 1), 0});
  }
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, 'x')) {
    try {
      dims.push_back(std::stoll(part));
    } catch (const std::exception&) {
      dims.clear();
      break;
    }
  }
  PROBNAS_CHECK(dims.size() == 3 && dims[0] >= 1 && dims[0] <= 64 && dims[1] >= 4 && dims[2] >= 4 &&
                    dims[1] <= 4096 && dims[2] <= 4096,
                "--shape = '", text, "' must be CxHxW (e.g. 3x224x224: 1-64 channels, 4-4096 pixels)");
  return dims;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PROBNAS_CHECK(in.good(), path, ": cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  PROBNAS_CHECK(!in.bad(), path, ": read error");
  return ss.str();
}

// Synthetic example `i`: a class prototype (low-frequency pattern keyed by the class) plus keyed
// noise; independent of shards and ranks.
torch::Tensor synthetic_image(int64_t i, int64_t label, const std::vector<int64_t>& shape, uint64_t seed) {
  const RngKey key = RngKey(seed).with("synthetic-shards");
  auto pg = make_generator(key.with("prototype").with(static_cast<uint64_t>(label)));
  const int64_t coarse = 4;
  auto proto = torch::rand({1, shape[0], coarse, coarse}, pg, torch::kFloat32);
  proto = torch::upsample_bilinear2d(proto, {shape[1], shape[2]}, false).squeeze(0);
  auto ng = make_generator(key.with("noise").with(static_cast<uint64_t>(i)));
  auto noise = torch::randn({shape[0], shape[1], shape[2]}, ng, torch::kFloat32) * 0.2;
  return (proto * 0.6 + 0.2 + noise).clamp(0, 1).mul(255).round().to(torch::kUInt8);
}

std::string format_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

}  // namespace

ConvertSummary run_convert(const ConvertOptions& c, Communicator& comm) {
  Stopwatch clock;
  const bool root = comm.rank() == 0;
  std::string from = c.from;
  if (c.synthetic > 0) {
    PROBNAS_CHECK(!c.from_given || from == "synthetic", "--synthetic ", c.synthetic,
                  " makes synthetic images but --from is ", from, ": give one of them");
    from = "synthetic";
  }
  PROBNAS_CHECK(from != "synthetic" || c.synthetic > 0, "--from synthetic needs --synthetic N (images)");
  const std::string out = c.out;
  PROBNAS_CHECK(!out.empty(), "--out must name the folder the shards go to");
  const uint64_t seed = static_cast<uint64_t>(c.seed);
  const RngKey key = RngKey(seed).with("convert");
  const int threads = c.threads > 0
                          ? static_cast<int>(c.threads)
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, comm.local_size()));

  // 1. The examples and the stored layout, identical on every rank.
  std::vector<std::string> classes;
  std::vector<Item> items;
  std::optional<Dataset> memory;
  std::vector<int64_t> synthetic_shape;
  ShardLayout layout;
  std::string source;
  if (from == "folder") {
    std::string listing;
    if (root) {
      PROBNAS_LOG(info) << "listing " << c.in << " ...";
      list_folder(c.in, classes, items);
      listing = serialize(classes, items);
    }
    comm.broadcast_bytes(listing);
    if (!root) deserialize(listing, classes, items);
    layout.channels = 3;
    source = "folder " + fs::absolute(c.in).lexically_normal().string();
  } else if (from == "synthetic") {
    synthetic_shape = parse_shape(c.shape);
    const int64_t k = c.classes;
    for (int64_t i = 0; i < k; ++i) classes.push_back("class" + std::to_string(i));
    const int64_t n = c.synthetic;
    items.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) items.push_back({i % k, "", i});
    layout.channels = synthetic_shape[0];
    layout.height = synthetic_shape[1];
    layout.width = synthetic_shape[2];
    source = "synthetic " + c.shape + " " + std::to_string(k) + " classes seed " + std::to_string(seed);
  } else {
    memory = load_dataset(from, c.in, c.split == "train" ? Split::train : Split::test);
    classes = memory->class_names;
    const torch::Tensor labels = memory->labels.contiguous();
    const int64_t* lab = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < memory->size(); ++i) items.push_back({lab[i], "", i});
    layout.channels = memory->channels();
    layout.height = memory->height();
    layout.width = memory->width();
    source = from + " " + c.split + " " + (memory->files.empty() ? "" : memory->files.front());
  }
  const int64_t listed = static_cast<int64_t>(items.size());

  // 2. The class-balanced subset, then a seeded order that mixes the classes in every shard.
  const double fraction = c.fraction;
  if (fraction < 1.0) {
    std::vector<std::vector<Item>> by_class(classes.size());
    for (auto& it : items) by_class[static_cast<size_t>(it.label)].push_back(std::move(it));
    items.clear();
    for (size_t k = 0; k < by_class.size(); ++k) {
      auto& list = by_class[k];
      if (list.empty()) continue;
      auto gen = make_generator(key.with("fraction").with(static_cast<uint64_t>(k)));
      const auto perm = torch::randperm(static_cast<int64_t>(list.size()), gen, torch::kInt64);
      const int64_t keep = std::max<int64_t>(1, std::llround(fraction * static_cast<double>(list.size())));
      for (int64_t j = 0; j < keep; ++j) items.push_back(list[static_cast<size_t>(perm[j].item<int64_t>())]);
    }
  }
  {
    auto gen = make_generator(key.with("order"));
    const auto perm = torch::randperm(static_cast<int64_t>(items.size()), gen, torch::kInt64);
    std::vector<Item> shuffled;
    shuffled.reserve(items.size());
    const int64_t* p = perm.data_ptr<int64_t>();
    for (size_t i = 0; i < items.size(); ++i) shuffled.push_back(std::move(items[static_cast<size_t>(p[i])]));
    items = std::move(shuffled);
  }

  // 3. The stored resolution and encoding.
  if (from == "folder") {
    int64_t size = c.size;
    if (size == 0) {  // the shorter side of the first readable image
      std::string first_ok;
      for (const auto& it : items) {
        try {
          const std::string bytes = read_file(it.file);
          const auto img = jpeg::decode(bytes.data(), bytes.size(), 3, it.file);
          size = std::min(img.size(1), img.size(2));
          first_ok = it.file;
          break;
        } catch (const Error&) {
        }
      }
      PROBNAS_CHECK(size > 0, "--in '", c.in, "': no readable JPEG image");
      if (root) {
        PROBNAS_LOG(info) << "stored resolution " << size << "x" << size << " (the shorter side of " << first_ok
                          << "; set --size to choose)";
      }
    }
    layout.height = layout.width = size;
  } else {
    PROBNAS_CHECK(!c.size_given || c.size == layout.height, "--size applies to folder trees; ",
                  from, " images are stored at their own ", layout.height, "x", layout.width);
  }
  const std::string enc = c.encoding;
  if (enc == "auto")
    layout.encoding = (from == "folder" || from == "synthetic") && layout.height * layout.width >= 96 * 96
                          ? ShardEncoding::jpeg
                          : ShardEncoding::raw;
  else
    layout.encoding = enc == "jpeg" ? ShardEncoding::jpeg : ShardEncoding::raw;
  PROBNAS_CHECK(layout.encoding == ShardEncoding::raw || layout.channels == 1 || layout.channels == 3,
                "--encoding jpeg stores 1 or 3 channels; these images have ", layout.channels, " (use --encoding raw)");
  layout.jpeg_quality = static_cast<int>(c.quality);

  const int64_t image_bytes = layout.channels * layout.height * layout.width;
  const int64_t shard_size =
      c.shard_size > 0 ? c.shard_size
                                  : std::clamp<int64_t>((256ll << 20) / image_bytes, 64, 10000);
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t shards = (n + shard_size - 1) / shard_size;
  if (root) {
    std::error_code ec;
    fs::create_directories(out, ec);
    PROBNAS_CHECK(!ec, "--out '", out, "' cannot be created: ", ec.message());
    PROBNAS_LOG(info) << "converting " << n << (fraction < 1 ? " (a " + format_number(fraction) + " subset of " +
                                                                   std::to_string(listed) + ")"
                                                             : std::string())
                      << " images of " << classes.size() << " classes to " << shards << " " << encoding_name(layout.encoding)
                      << " shard" << (shards == 1 ? "" : "s") << " of " << layout.channels << "x" << layout.height << "x"
                      << layout.width << " in " << out << " (" << comm.size() << " rank" << (comm.size() > 1 ? "s" : "")
                      << " x " << threads << " thread" << (threads > 1 ? "s" : "") << ")";
  }
  comm.barrier();
  PROBNAS_CHECK(fs::is_directory(out), "--out '", out, "' is not visible on rank ", comm.rank(),
                ": it must be on a file system every rank shares");

  // 4. This rank's shards: s = rank, rank + ranks, ...
  std::ostringstream settings;
  settings << source << "|" << encoding_name(layout.encoding) << "|" << layout.channels << "x" << layout.height << "x"
           << layout.width << "|q" << layout.jpeg_quality << "|f" << fraction << "|seed" << seed << "|per" << shard_size
           << "|n" << n;
  const int64_t mine = shards > comm.rank() ? (shards - comm.rank() + comm.size() - 1) / comm.size() : 0;
  std::vector<std::string> lines;  // per shard of this rank: "s count bytes reused sum... sq..." and skipped lines
  std::vector<std::string> skipped;
  int64_t done = 0, done_images = 0, reused = 0;
  double last_report = 0;
  for (int64_t s = comm.rank(); s < shards; s += comm.size()) {
    const int64_t begin = s * shard_size, count = std::min(shard_size, n - begin);
    char name[32];
    std::snprintf(name, sizeof name, "shard-%05lld.h5", static_cast<long long>(s));
    const std::string path = out + "/" + name;
    uint64_t h = kFnvOffset;
    for (int64_t i = begin; i < begin + count; ++i) {
      const auto& it = items[static_cast<size_t>(i)];
      h = fnv1a(it.file + "#" + std::to_string(it.record) + ":" + std::to_string(it.label), h);
    }
    const std::string conversion = settings.str() + "|shard" + std::to_string(s) + "|" + std::to_string(h);
    std::optional<ShardSummary> summary = existing_shard(path, conversion);
    std::vector<std::string> shard_skipped;
    const bool was_there = summary.has_value();
    if (!summary) {
      std::vector<torch::Tensor> images(static_cast<size_t>(count));
      std::vector<std::string> errors(static_cast<size_t>(count));
      parallel_items(count, threads, [&](int64_t j) {
        const Item& it = items[static_cast<size_t>(begin + j)];
        const std::string what = from == "folder" ? it.file : from + " example " + std::to_string(it.record);
        try {
          torch::Tensor img;
          if (from == "folder") {
            const std::string bytes = read_file(it.file);
            img = jpeg::resize_center_crop(jpeg::decode(bytes.data(), bytes.size(), 3, it.file), layout.height);
          } else if (from == "synthetic") {
            img = synthetic_image(it.record, it.label, synthetic_shape, seed);
          } else {
            img = memory->images[it.record];
          }
          images[static_cast<size_t>(j)] = img;
        } catch (const Error& ex) {  // names the file already
          errors[static_cast<size_t>(j)] = ex.what();
        } catch (const c10::Error& ex) {  // one line, without LibTorch's backtrace
          errors[static_cast<size_t>(j)] = what + ": " + ex.what_without_backtrace();
        } catch (const std::exception& ex) {
          errors[static_cast<size_t>(j)] = what + ": " + ex.what();
        }
        std::replace(errors[static_cast<size_t>(j)].begin(), errors[static_cast<size_t>(j)].end(), '\n', ' ');
      });
      ShardContents contents;
      std::vector<torch::Tensor> kept;
      std::vector<int64_t> labels;
      for (int64_t j = 0; j < count; ++j) {
        const Item& it = items[static_cast<size_t>(begin + j)];
        if (!errors[static_cast<size_t>(j)].empty()) {
          shard_skipped.push_back(errors[static_cast<size_t>(j)]);
          PROBNAS_LOG(warn) << "skipped " << errors[static_cast<size_t>(j)];
          continue;
        }
        kept.push_back(images[static_cast<size_t>(j)]);
        labels.push_back(it.label);
        contents.sources.push_back(from == "folder" ? it.file : from + "#" + std::to_string(it.record));
      }
      contents.images = kept.empty() ? torch::empty({0, layout.channels, layout.height, layout.width}, torch::kUInt8)
                                     : torch::stack(kept);
      contents.labels = torch::tensor(labels, torch::kInt64);
      // The skipped files of this shard go in a side file first, so a resumed conversion that keeps
      // the shard still reports them.
      std::error_code ec;
      fs::remove(path + ".skipped", ec);
      if (!shard_skipped.empty()) {
        std::ofstream side(path + ".skipped");
        for (const auto& line : shard_skipped) side << line << "\n";
        PROBNAS_CHECK(side.good(), "cannot write '", path, ".skipped'");
      }
      summary = write_shard(path, s, layout, contents, conversion, threads);
    } else {
      ++reused;
      std::ifstream side(path + ".skipped");
      for (std::string line; std::getline(side, line);)
        if (!line.empty()) shard_skipped.push_back(line);
    }

    for (auto& line : shard_skipped) skipped.push_back(std::move(line));
    std::ostringstream l;
    l << std::setprecision(17) << s << " " << summary->count << " " << summary->bytes << " " << (was_there ? 1 : 0)
      << " " << fnv1a(conversion);
    const auto sums = summary->pixel_sums.to(torch::kFloat64).contiguous();
    for (int64_t k = 0; k < sums.numel(); ++k) l << " " << sums.data_ptr<double>()[k];
    lines.push_back(l.str());
    ++done;
    done_images += count;
    const double t = clock.seconds();
    if (root && (t - last_report > 10 || done == mine)) {
      last_report = t;
      const double frac = static_cast<double>(done) / static_cast<double>(std::max<int64_t>(1, mine));
      PROBNAS_LOG(info) << "convert: " << std::fixed << std::setprecision(1) << 100 * frac << "% (rank 0: shard " << done
                        << "/" << mine << ", " << done_images << " images, "
                        << std::setprecision(0) << static_cast<double>(done_images) / std::max(1e-9, t) * comm.size()
                        << " images/s over all ranks), ETA " << format_duration(t / frac * (1 - frac));
    }
  }

  // 5. Rank 0 gathers the shards' counts and pixel sums and writes the index.
  std::ostringstream mine_text;
  mine_text << lines.size() << "\n";
  for (const auto& l : lines) mine_text << l << "\n";
  for (const auto& s : skipped) mine_text << s << "\n";
  const auto all = comm.allgather_bytes(mine_text.str());
  ConvertSummary summary;
  summary.out = out;
  summary.classes = static_cast<int64_t>(classes.size());
  summary.shards = shards;
  if (root) {
    ShardIndex index;
    index.layout = layout;
    index.num_classes = static_cast<int64_t>(classes.size());
    index.class_names = classes;
    index.source = source;
    index.shard_counts.assign(static_cast<size_t>(shards), 0);
    index.shard_files.resize(static_cast<size_t>(shards));
    index.shard_conversions.resize(static_cast<size_t>(shards));
    std::vector<torch::Tensor> shard_sums(static_cast<size_t>(shards));
    for (const auto& text : all) {
      std::istringstream in(text);
      size_t k = 0;
      in >> k;
      for (size_t i = 0; i < k; ++i) {
        int64_t s = 0, count = 0, bytes = 0, was = 0;
        uint64_t conversion_hash = 0;
        in >> s >> count >> bytes >> was >> conversion_hash;
        auto row = torch::empty({2 * layout.channels}, torch::kFloat64);
        for (int64_t j = 0; j < 2 * layout.channels; ++j) in >> row.data_ptr<double>()[j];
        shard_sums[static_cast<size_t>(s)] = row.view({2, layout.channels});
        index.shard_conversions[static_cast<size_t>(s)] = std::to_string(conversion_hash);
        index.shard_counts[static_cast<size_t>(s)] = count;
        summary.images += count;
        summary.bytes += bytes;
        summary.reused_shards += was;
      }
      std::string line;
      std::getline(in, line);
      while (std::getline(in, line))
        if (!line.empty()) index.skipped.push_back(line);
    }
    for (int64_t s = 0; s < shards; ++s) {
      char name[32];
      std::snprintf(name, sizeof name, "shard-%05lld.h5", static_cast<long long>(s));
      index.shard_files[static_cast<size_t>(s)] = name;
    }
    auto sums = torch::zeros({2, layout.channels}, torch::kFloat64);
    for (const auto& row : shard_sums) sums += row;  // in shard order: the same bits on any rank count
    PROBNAS_CHECK(summary.images > 0, "no image could be converted (", index.skipped.size(), " skipped; the first: ",
                  index.skipped.empty() ? "-" : index.skipped.front(), ")");
    const double pixels = static_cast<double>(summary.images) * static_cast<double>(layout.height * layout.width);
    index.mean = (sums[0] / pixels).to(torch::kFloat32);
    index.std = (sums[1] / pixels - (sums[0] / pixels).pow(2)).clamp_min(0).sqrt().to(torch::kFloat32);
    summary.skipped = static_cast<int64_t>(index.skipped.size());
    write_index(out, index);
    if (summary.skipped > 0) {
      std::ofstream list(out + "/skipped.txt");
      for (const auto& s : index.skipped) list << s << "\n";
    }
  }
  comm.barrier();
  summary.seconds = clock.seconds();
  return summary;
}

}  // namespace probnas
