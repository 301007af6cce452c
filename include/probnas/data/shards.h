#pragma once
// HDF5 image shards (format version 1), documented in docs/clusters.md, "The shard format":
//
//   DIR/index.h5          root attributes: format = "probnas-image-shards", format_version = 1,
//                         encoding ("raw" | "jpeg"), channels, height, width, num_classes, examples,
//                         dataset_id, source, jpeg_quality; datasets: class_names [K] (text),
//                         shard_files [S] (text, names relative to DIR), shard_counts [S] (int64),
//                         mean [C], std [C] (float32, pixels in [0, 1]), skipped [*] (text: files that
//                         were not converted, with the reason)
//   DIR/shard-NNNNN.h5    root attributes: format, format_version, encoding, shard, count, channels,
//                         height, width, conversion (the converter's settings: a rerun keeps a shard
//                         only if they match); datasets: labels [n] (int64), sources [n] (text: the
//                         original file or "<file>#<record>"), pixel_sums [2, C] (float64: sum and sum
//                         of squares of the pixels in [0, 1]), and either
//                           raw:  images [n, C, H, W] uint8, chunked one image per chunk, or
//                           jpeg: jpeg_bytes [total] uint8 (every image's JPEG file, concatenated)
//                                 and jpeg_offsets [n + 1] int64 (image i is bytes [off[i], off[i+1]))
//
// Example i of the dataset is example i - (count of the shards before) of the shard that holds it.
// Every image is stored at channels x height x width (the converter resizes and centre-crops).
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "probnas/data/source.h"

namespace probnas {

inline constexpr int64_t kShardFormatVersion = 1;
inline constexpr const char* kShardFormat = "probnas-image-shards";

enum class ShardEncoding { raw, jpeg };
std::string encoding_name(ShardEncoding e);

struct ShardLayout {
  ShardEncoding encoding = ShardEncoding::raw;
  int64_t channels = 3, height = 32, width = 32;
  int jpeg_quality = 90;
};

// One shard's contents, written with write_shard (to `path`.tmp, then renamed: a killed converter
// leaves no half-written shard under a final name).
struct ShardContents {
  torch::Tensor images;               // uint8 [n, C, H, W] (encoded here if the layout says jpeg)
  torch::Tensor labels;               // int64 [n]
  std::vector<std::string> sources;   // [n]
};
struct ShardSummary {
  int64_t count = 0;
  int64_t bytes = 0;       // file size
  torch::Tensor pixel_sums;  // float64 [2, C]
};
// `threads`: JPEG encoding threads.
ShardSummary write_shard(const std::string& path, int64_t shard, const ShardLayout& layout, const ShardContents& contents,
                         const std::string& conversion, int threads = 1);
// fn(i) for i in [0, n) on `threads` threads (each with single-threaded LibTorch ops); the first
// exception is rethrown after all threads stopped.
void parallel_items(int64_t n, int threads, const std::function<void(int64_t)>& fn);
// The summary of an existing shard if it is complete and was written with `conversion`; nullopt otherwise.
std::optional<ShardSummary> existing_shard(const std::string& path, const std::string& conversion);

struct ShardIndex {
  ShardLayout layout;
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::vector<std::string> shard_files;   // relative to the folder
  std::vector<int64_t> shard_counts;
  torch::Tensor mean, std;                // float [C]
  std::vector<std::string> skipped;
  std::string dataset_id, source;
  std::vector<std::string> shard_conversions;  // written: the settings of each shard, folded into dataset_id
};
// Writes DIR/index.h5 (via a temporary file); fills in dataset_id from the shards' names and counts.
void write_index(const std::string& dir, ShardIndex index);
// Reads and validates DIR/index.h5: errors name the file and the missing or wrong key.
ShardIndex read_index(const std::string& dir);

// The examples of a shard folder. Shard files are opened on first use and kept open; a shard's
// labels (and JPEG offsets) are read once. read() groups the wanted examples by shard and reads
// each shard's rows in one HDF5 read; JPEGs are decoded by the calling thread.
class ShardedSource : public ImageSource {
 public:
  // `limit` > 0: only the first `limit` examples.
  explicit ShardedSource(const std::string& dir, int64_t limit = 0, bool file_locking = true);
  static constexpr int64_t kMaxOpenShards = 128;
  ~ShardedSource() override;

  const std::string& name() const override { return name_; }
  int64_t size() const override { return size_; }
  int64_t channels() const override { return index_.layout.channels; }
  int64_t height() const override { return index_.layout.height; }
  int64_t width() const override { return index_.layout.width; }
  int64_t num_classes() const override { return index_.num_classes; }
  const std::vector<std::string>& class_names() const override { return index_.class_names; }
  Examples read(const torch::Tensor& indices) const override;
  ChannelStats stats() const override;
  std::string fingerprint() const override;
  const ShardIndex& index() const { return index_; }
  // Where example i lives: (shard, row in shard).
  std::pair<int64_t, int64_t> locate(int64_t i) const;

 private:
  struct OpenShard;
  std::shared_ptr<const OpenShard> shard(int64_t s) const;
  std::string dir_, name_;
  ShardIndex index_;
  std::vector<int64_t> starts_;  // first example of each shard, plus the total
  int64_t size_ = 0;
  bool file_locking_ = true;
  mutable std::mutex mutex_;
  mutable std::map<int64_t, std::pair<std::shared_ptr<const OpenShard>, int64_t>> open_;  // shard -> (file, last use)
  mutable int64_t clock_ = 0;
};

}  // namespace probnas
