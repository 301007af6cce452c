#include "probnas/data/shards.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "probnas/core/hdf5.h"
#include "probnas/ckpt/atomic_file.h"
#include "probnas/core/error.h"
#include "probnas/data/jpeg.h"
#include "probnas/data/loader.h"

namespace probnas {
namespace fs = std::filesystem;

std::string encoding_name(ShardEncoding e) { return e == ShardEncoding::raw ? "raw" : "jpeg"; }

namespace {

ShardEncoding parse_encoding(const std::string& text, const std::string& where) {
  if (text == "raw") return ShardEncoding::raw;
  if (text == "jpeg") return ShardEncoding::jpeg;
  PROBNAS_FAIL(where, ": unknown encoding '", text, "' (raw or jpeg)");
}

// The attribute `key` of `object` in `file`, with an error that names both when it is missing.
int64_t need_int(const h5::Object& object, const std::string& key, const std::string& file) {
  PROBNAS_CHECK(object.has_attr(key), "'", file, "' has no attribute '", key, "': not a complete probnas shard "
                "file (written by an interrupted or foreign converter?)");
  return object.attr_int(key);
}
std::string need_text(const h5::Object& object, const std::string& key, const std::string& file) {
  PROBNAS_CHECK(object.has_attr(key), "'", file, "' has no attribute '", key, "': not a complete probnas shard "
                "file (written by an interrupted or foreign converter?)");
  return object.attr_text(key);
}

void check_format(const h5::Group& root, const std::string& file) {
  PROBNAS_CHECK(root.has_attr("format") && root.attr_text("format") == kShardFormat, "'", file,
                "' is not a probnas image shard file (no format = \"", kShardFormat, "\" attribute)");
  const int64_t version = need_int(root, "format_version", file);
  PROBNAS_CHECK(version == kShardFormatVersion, "'", file, "' has format_version ", version, "; this probnas reads "
                "format version ", kShardFormatVersion, ": convert the data again with this probnas (probnas convert)");
}

void write_layout(h5::Group& root, const ShardLayout& layout) {
  root.set_attr("format", kShardFormat);
  root.set_attr("format_version", kShardFormatVersion);
  root.set_attr("encoding", encoding_name(layout.encoding));
  root.set_attr("channels", layout.channels);
  root.set_attr("height", layout.height);
  root.set_attr("width", layout.width);
  root.set_attr("jpeg_quality", static_cast<int64_t>(layout.jpeg_quality));
}

}  // namespace

void parallel_items(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (t == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::vector<std::exception_ptr> errors(static_cast<size_t>(t));
  std::vector<std::thread> pool;
  for (int64_t k = 0; k < t; ++k)
    pool.emplace_back([&, k] {
      single_threaded_ops();
      try {
        for (int64_t i = next++; i < n; i = next++) fn(i);
      } catch (...) {
        errors[static_cast<size_t>(k)] = std::current_exception();
        next = n;
      }
    });
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

ShardSummary write_shard(const std::string& path, int64_t shard, const ShardLayout& layout,
                         const ShardContents& contents, const std::string& conversion, int threads) {
  const int64_t n = contents.labels.numel();
  PROBNAS_CHECK(contents.images.size(0) == n && static_cast<int64_t>(contents.sources.size()) == n,
                "internal: shard ", path, " has ", contents.images.size(0), " images, ", n, " labels, ",
                contents.sources.size(), " sources");
  ShardSummary summary;
  summary.count = n;
  {
    // Exact integer sums, a few images at a time (a shard can be hundreds of MB): the same bits on
    // any thread count, and the index's mean/std the same on any rank count.
    auto sums = torch::zeros({2, layout.channels}, torch::kInt64);
    for (int64_t b = 0; b < n; b += 64) {
      const auto x = contents.images.narrow(0, b, std::min<int64_t>(64, n - b)).to(torch::kInt64);
      sums[0] += x.sum({0, 2, 3});
      sums[1] += (x * x).sum({0, 2, 3});
    }
    summary.pixel_sums = sums.to(torch::kFloat64) / torch::tensor({255.0, 255.0 * 255.0}, torch::kFloat64).view({2, 1});
  }
  ckpt::write_atomically(path, [&](const std::string& tmp) {
    h5::File file = h5::File::create(tmp);
    h5::Group root = file.root();
    write_layout(root, layout);
    root.set_attr("shard", shard);
    root.set_attr("count", n);
    root.set_attr("conversion", conversion);
    root.write_tensor("labels", contents.labels.to(torch::kInt64));
    root.write_strings("sources", contents.sources.empty() ? std::vector<std::string>{} : contents.sources);
    root.write_tensor("pixel_sums", summary.pixel_sums);
    if (layout.encoding == ShardEncoding::raw) {
      h5::DatasetOptions one_image;
      one_image.chunk_rows = 1;
      root.write_tensor("images", contents.images.contiguous(), one_image);
    } else {
      std::vector<std::string> encoded(static_cast<size_t>(n));
      parallel_items(n, threads, [&](int64_t i) {
        encoded[static_cast<size_t>(i)] = jpeg::encode(contents.images[i], layout.jpeg_quality);
      });
      auto offsets = torch::empty({n + 1}, torch::kInt64);
      auto off = offsets.accessor<int64_t, 1>();
      off[0] = 0;
      for (int64_t i = 0; i < n; ++i) off[i + 1] = off[i] + static_cast<int64_t>(encoded[static_cast<size_t>(i)].size());
      auto bytes = torch::empty({off[n]}, torch::kUInt8);
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(bytes.data_ptr<uint8_t>() + off[i], encoded[static_cast<size_t>(i)].data(),
                    encoded[static_cast<size_t>(i)].size());
      h5::DatasetOptions small_chunks;
      small_chunks.chunk_bytes = 1 << 16;
      root.write_tensor("jpeg_bytes", bytes, small_chunks);
      root.write_tensor("jpeg_offsets", offsets);
    }
    file.close();
  });
  summary.bytes = static_cast<int64_t>(fs::file_size(path));
  return summary;
}

std::optional<ShardSummary> existing_shard(const std::string& path, const std::string& conversion) {
  if (!h5::File::is_hdf5(path)) return std::nullopt;
  try {
    h5::File file = h5::File::open(path);
    h5::Group root = file.root();
    check_format(root, path);
    if (!root.has_attr("conversion") || root.attr_text("conversion") != conversion) return std::nullopt;
    ShardSummary s;
    s.count = root.attr_int("count");
    s.pixel_sums = root.open_dataset("pixel_sums").read_tensor();
    s.bytes = static_cast<int64_t>(fs::file_size(path));
    return s;
  } catch (const Error&) {
    return std::nullopt;
  }
}

void write_index(const std::string& dir, ShardIndex index) {
  uint64_t h = fnv1a(encoding_name(index.layout.encoding) + std::to_string(index.layout.channels) + "x" +
                     std::to_string(index.layout.height) + "x" + std::to_string(index.layout.width) + index.source);
  for (size_t i = 0; i < index.shard_files.size(); ++i)
    h = fnv1a(index.shard_files[i] + ":" + std::to_string(index.shard_counts[i]) + ":" +
                  (i < index.shard_conversions.size() ? index.shard_conversions[i] : std::string()),
              h);
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(h));
  index.dataset_id = id;
  int64_t total = 0;
  for (int64_t c : index.shard_counts) total += c;
  const std::string path = dir + "/index.h5";
  ckpt::write_atomically(path, [&](const std::string& tmp) {
    h5::File file = h5::File::create(tmp);
    h5::Group root = file.root();
    write_layout(root, index.layout);
    root.set_attr("num_classes", index.num_classes);
    root.set_attr("examples", total);
    root.set_attr("dataset_id", index.dataset_id);
    root.set_attr("source", index.source);
    root.write_strings("class_names", index.class_names);
    root.write_strings("shard_files", index.shard_files);
    root.write_tensor("shard_counts", torch::tensor(index.shard_counts, torch::kInt64));
    root.write_tensor("mean", index.mean.to(torch::kFloat32));
    root.write_tensor("std", index.std.to(torch::kFloat32));
    root.write_strings("skipped", index.skipped);
    file.close();
  });
}

ShardIndex read_index(const std::string& dir) {
  PROBNAS_CHECK(fs::is_directory(dir), "data.path = '", dir, "' is not a folder of image shards (it does not exist; "
                "make one with probnas convert --out ", dir, ")");
  const std::string path = dir + "/index.h5";
  PROBNAS_CHECK(fs::is_regular_file(path), "'", path, "' does not exist: data.path must be a folder written by "
                "probnas convert (shard-*.h5 files and their index.h5)");
  PROBNAS_CHECK(h5::File::is_hdf5(path), "'", path, "' is not an HDF5 file (damaged? convert the data again)");
  h5::File file = h5::File::open(path);
  h5::Group root = file.root();
  check_format(root, path);
  auto need_dataset = [&](const std::string& key) {
    PROBNAS_CHECK(root.has(key), "'", path, "' has no '", key, "' entry: an incomplete index (convert the data "
                  "again)");
    return root.open_dataset(key);
  };
  ShardIndex index;
  index.layout.encoding = parse_encoding(need_text(root, "encoding", path), path);
  index.layout.channels = need_int(root, "channels", path);
  index.layout.height = need_int(root, "height", path);
  index.layout.width = need_int(root, "width", path);
  if (root.has_attr("jpeg_quality")) index.layout.jpeg_quality = static_cast<int>(root.attr_int("jpeg_quality"));
  index.num_classes = need_int(root, "num_classes", path);
  index.dataset_id = need_text(root, "dataset_id", path);
  index.source = root.has_attr("source") ? root.attr_text("source") : "";
  index.class_names = need_dataset("class_names").read_strings();
  index.shard_files = need_dataset("shard_files").read_strings();
  const torch::Tensor counts = need_dataset("shard_counts").read_tensor().to(torch::kInt64);
  index.mean = need_dataset("mean").read_tensor().to(torch::kFloat32);
  index.std = need_dataset("std").read_tensor().to(torch::kFloat32);
  if (root.has("skipped")) index.skipped = need_dataset("skipped").read_strings();
  PROBNAS_CHECK(counts.numel() == static_cast<int64_t>(index.shard_files.size()), "'", path, "' lists ",
                index.shard_files.size(), " shard files but ", counts.numel(), " shard counts: a damaged index");
  int64_t total = 0;
  for (int64_t i = 0; i < counts.numel(); ++i) {
    index.shard_counts.push_back(counts[i].item<int64_t>());
    PROBNAS_CHECK(index.shard_counts.back() >= 0, "'", path, "': shard_counts[", i, "] = ", index.shard_counts.back(),
                  " is negative: a damaged index");
    total += index.shard_counts.back();
  }
  const int64_t examples = need_int(root, "examples", path);
  PROBNAS_CHECK(total == examples, "'", path, "': the shard counts add up to ", total, " but examples = ", examples,
                ": a damaged index");
  PROBNAS_CHECK(index.layout.channels == 1 || index.layout.channels == 3 || index.layout.encoding == ShardEncoding::raw,
                "'", path, "': JPEG shards hold 1 or 3 channels, not ", index.layout.channels);
  PROBNAS_CHECK(index.mean.numel() == index.layout.channels && index.std.numel() == index.layout.channels, "'", path,
                "': mean and std must have one value per channel (", index.layout.channels, ")");
  PROBNAS_CHECK(!index.shard_files.empty(), "'", path, "' lists no shards: the converted data is empty");
  return index;
}

// ---------------------------------------------------------------------------------------------
// Reader

struct ShardedSource::OpenShard {
  h5::File file;
  std::optional<h5::Dataset> images;  // raw
  std::optional<h5::Dataset> bytes;   // jpeg
  torch::Tensor labels;               // int64 [n]
  torch::Tensor offsets;              // jpeg: int64 [n + 1]
  std::string path;
  explicit OpenShard(h5::File f) : file(std::move(f)) {}
};

ShardedSource::ShardedSource(const std::string& dir, int64_t limit, bool file_locking)
    : dir_(dir), index_(read_index(dir)), file_locking_(file_locking) {
  name_ = "shards";
  starts_.push_back(0);
  for (size_t s = 0; s < index_.shard_files.size(); ++s) {
    const std::string file = dir_ + "/" + index_.shard_files[s];
    PROBNAS_CHECK(fs::is_regular_file(file), "shard '", file, "' listed in '", dir_, "/index.h5' does not exist "
                  "(copied only in part? convert the data again or copy the whole folder)");
    starts_.push_back(starts_.back() + index_.shard_counts[s]);
  }
  size_ = limit > 0 ? std::min(limit, starts_.back()) : starts_.back();
}

ShardedSource::~ShardedSource() = default;

std::pair<int64_t, int64_t> ShardedSource::locate(int64_t i) const {
  PROBNAS_CHECK(i >= 0 && i < size_, "internal: example ", i, " outside the ", size_, " examples of '", dir_, "'");
  const auto it = std::upper_bound(starts_.begin(), starts_.end(), i);
  const int64_t s = static_cast<int64_t>(it - starts_.begin()) - 1;
  return {s, i - starts_[static_cast<size_t>(s)]};
}

std::shared_ptr<const ShardedSource::OpenShard> ShardedSource::shard(int64_t s) const {
  std::lock_guard<std::mutex> lock(mutex_);
  ++clock_;
  auto it = open_.find(s);
  if (it != open_.end()) {
    it->second.second = clock_;
    return it->second.first;
  }
  // At most kMaxOpenShards files stay open (file descriptors, HDF5 caches): close the least recently used.
  while (static_cast<int64_t>(open_.size()) >= kMaxOpenShards) {
    auto oldest = open_.begin();
    for (auto o = open_.begin(); o != open_.end(); ++o)
      if (o->second.second < oldest->second.second) oldest = o;
    open_.erase(oldest);  // a reader still using it holds its own reference
  }
  const std::string path = dir_ + "/" + index_.shard_files[static_cast<size_t>(s)];
  PROBNAS_CHECK(h5::File::is_hdf5(path), "shard '", path, "' is not an HDF5 file (damaged? convert the data again)");
  h5::FileOptions fo;
  fo.file_locking = file_locking_;
  auto open = std::make_shared<OpenShard>(h5::File::open(path, false, fo));
  open->path = path;
  h5::Group root = open->file.root();
  check_format(root, path);
  const int64_t count = need_int(root, "count", path), expected = index_.shard_counts[static_cast<size_t>(s)];
  PROBNAS_CHECK(count == expected, "shard '", path, "' holds ", count, " examples but '", dir_, "/index.h5' says ",
                expected, ": the folder mixes two conversions (convert the data again)");
  const std::string encoding = need_text(root, "encoding", path);
  PROBNAS_CHECK(encoding == encoding_name(index_.layout.encoding) && need_int(root, "channels", path) == channels() &&
                    need_int(root, "height", path) == height() && need_int(root, "width", path) == width(),
                "shard '", path, "' stores ", encoding, " ", root.attr_int("channels"), "x", root.attr_int("height"), "x",
                root.attr_int("width"), " images but the index says ", encoding_name(index_.layout.encoding), " ",
                channels(), "x", height(), "x", width(), ": the folder mixes two conversions");
  auto need = [&](const std::string& key) {
    PROBNAS_CHECK(root.has(key), "shard '", path, "' has no '", key, "' dataset: an incomplete shard file");
    return root.open_dataset(key);
  };
  open->labels = need("labels").read_tensor().to(torch::kInt64);
  PROBNAS_CHECK(open->labels.numel() == count, "shard '", path, "' has ", open->labels.numel(), " labels for ", count,
                " examples");
  if (count > 0) {
    const int64_t lo = open->labels.min().item<int64_t>(), hi = open->labels.max().item<int64_t>();
    PROBNAS_CHECK(lo >= 0 && hi < num_classes(), "shard '", path, "' has label ", lo < 0 ? lo : hi, " outside the ",
                  num_classes(), " classes of its index");
  }
  if (index_.layout.encoding == ShardEncoding::raw) {
    open->images.emplace(need("images"));
    const auto shape = open->images->shape();
    PROBNAS_CHECK(shape == (std::vector<int64_t>{count, channels(), height(), width()}), "shard '", path,
                  "': its images dataset is ", c10::IntArrayRef(shape), ", not [", count, ", ", channels(), ", ", height(),
                  ", ", width(), "]");
  } else {
    open->bytes.emplace(need("jpeg_bytes"));
    open->offsets = need("jpeg_offsets").read_tensor().to(torch::kInt64);
    PROBNAS_CHECK(open->offsets.numel() == count + 1, "shard '", path, "' has ", open->offsets.numel(),
                  " JPEG offsets for ", count, " examples");
  }
  open_.emplace(s, std::make_pair(open, clock_));
  return open;
}

Examples ShardedSource::read(const torch::Tensor& indices) const {
  const torch::Tensor idx = indices.to(torch::kInt64).contiguous();
  const int64_t n = idx.numel();
  Examples out{torch::empty({n, channels(), height(), width()}, torch::kUInt8), torch::empty({n}, torch::kInt64)};
  // Group the wanted examples by shard: shard -> (row, position in the output).
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> wanted;
  const int64_t* p = idx.data_ptr<int64_t>();
  for (int64_t k = 0; k < n; ++k) {
    const auto [s, row] = locate(p[k]);
    wanted[s].push_back({row, k});
  }
  for (auto& [s, rows] : wanted) {
    const std::shared_ptr<const OpenShard> held = shard(s);
    const OpenShard& sh = *held;
    std::sort(rows.begin(), rows.end());
    std::vector<int64_t> unique;  // distinct rows, ascending
    for (const auto& r : rows)
      if (unique.empty() || unique.back() != r.first) unique.push_back(r.first);
    torch::Tensor images;  // [unique, C, H, W]
    if (sh.images) {
      std::vector<std::pair<int64_t, int64_t>> ranges;
      for (int64_t r : unique) {
        if (!ranges.empty() && ranges.back().first + ranges.back().second == r) ++ranges.back().second;
        else ranges.push_back({r, 1});
      }
      images = sh.images->read_rows(ranges);
    } else {
      const int64_t* off = sh.offsets.data_ptr<int64_t>();
      std::vector<std::pair<int64_t, int64_t>> ranges;
      for (int64_t r : unique) ranges.push_back({off[r], off[r + 1] - off[r]});
      const torch::Tensor bytes = sh.bytes->read_rows(ranges);
      images = torch::empty({static_cast<int64_t>(unique.size()), channels(), height(), width()}, torch::kUInt8);
      int64_t at = 0;
      for (size_t u = 0; u < unique.size(); ++u) {
        const int64_t len = ranges[u].second;
        auto img = jpeg::decode(bytes.data_ptr<uint8_t>() + at, static_cast<size_t>(len), static_cast<int>(channels()),
                                "shard '" + sh.path + "' example " + std::to_string(unique[u]));
        PROBNAS_CHECK(img.size(1) == height() && img.size(2) == width(), "shard '", sh.path, "' example ", unique[u],
                      " is ", img.size(1), "x", img.size(2), ", not the stored ", height(), "x", width());
        images[static_cast<int64_t>(u)].copy_(img);
        at += len;
      }
    }
    const int64_t* labels = sh.labels.data_ptr<int64_t>();
    int64_t* out_labels = out.labels.data_ptr<int64_t>();
    size_t u = 0;
    for (const auto& [row, pos] : rows) {
      while (unique[u] != row) ++u;
      out.images[pos].copy_(images[static_cast<int64_t>(u)]);
      out_labels[pos] = labels[row];
    }
  }
  return out;
}

ChannelStats ShardedSource::stats() const { return {index_.mean.clone(), index_.std.clamp_min(1e-3)}; }

std::string ShardedSource::fingerprint() const {
  return "shards " + index_.dataset_id + " " + std::to_string(size_);
}

}  // namespace probnas
