#include "probnas/data/loader.h"

#include <torch/torch.h>

#include <cmath>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"

namespace probnas {

ChannelStats ChannelStats::of(const Dataset& data) {
  PROBNAS_CHECK(data.size() > 0, "dataset '", data.name, "' is empty");
  auto x = data.images.to(torch::kFloat64).div_(255.0);
  ChannelStats s;
  s.mean = x.mean({0, 2, 3}).to(torch::kFloat32);
  s.std = x.std({0, 2, 3}).clamp_min(1e-3).to(torch::kFloat32);
  return s;
}

torch::Tensor transform_images(const torch::Tensor& images, const TransformOptions& o, const ChannelStats& stats,
                               bool augment, at::Generator* gen) {
  torch::Tensor x = images.to(torch::kFloat32).div_(255.0);
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  if (augment && o.crop && o.crop_padding > 0) {
    const int64_t p = o.crop_padding;
    auto padded = torch::constant_pad_nd(x, {p, p, p, p}, 0.0);
    auto offsets = torch::randint(0, 2 * p + 1, {b, 2}, *gen, torch::kInt64);
    auto off = offsets.accessor<int64_t, 2>();
    std::vector<torch::Tensor> crops;
    crops.reserve(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) crops.push_back(padded[i].narrow(1, off[i][0], h).narrow(2, off[i][1], w));
    x = torch::stack(crops);
  }
  if (augment && o.flip) {
    auto flip = torch::rand({b}, *gen) < 0.5;
    x = torch::where(flip.view({b, 1, 1, 1}), x.flip({3}), x);
  }
  if (o.normalize) x = (x - stats.mean.view({1, -1, 1, 1})) / stats.std.view({1, -1, 1, 1});
  return x.contiguous();
}

SplitLoader::SplitLoader(std::shared_ptr<const Dataset> data, torch::Tensor indices, ChannelStats stats,
                         SplitOptions options, RngKey key, c10::Device device, int rank, int world_size)
    : data_(std::move(data)),
      indices_(std::move(indices)),
      stats_(std::move(stats)),
      options_(options),
      key_(key),
      device_(device),
      rank_(rank),
      world_size_(world_size) {
  PROBNAS_CHECK(options_.global_batch > 0, "search.batch_size must be positive");
  PROBNAS_CHECK(options_.micro_batches >= 1 && options_.micro_batches <= options_.global_batch,
                "search.micro_batches = ", options_.micro_batches, " must be in [1, search.batch_size = ",
                options_.global_batch, "]");
  PROBNAS_CHECK(options_.micro_batches % world_size_ == 0, "search.micro_batches = ", options_.micro_batches,
                " is not a multiple of the ", world_size_, " ranks: every rank must take the same number of "
                "micro-batches (set search.micro_batches to ", world_size_, " or a multiple of it)");
  PROBNAS_CHECK(steps_per_epoch() > 0, "a split of ", examples(), " examples holds no whole batch of ",
                options_.global_batch, " (raise data.limit or lower ", options_.batch_option, ")");
}

const torch::Tensor& SplitLoader::order(int64_t epoch) const {
  auto it = orders_.find(epoch);
  if (it != orders_.end()) return it->second;
  while (orders_.size() >= 2) orders_.erase(orders_.begin());
  auto gen = make_generator(key_.with("order").with(static_cast<uint64_t>(epoch)));
  auto perm = torch::randperm(examples(), gen, torch::kInt64);
  return orders_.emplace(epoch, indices_.index_select(0, perm)).first->second;
}

std::vector<Batch> SplitLoader::batch(int64_t epoch, int64_t step) const {
  PROBNAS_CHECK(step >= 0 && step < steps_per_epoch(), "internal: step ", step, " outside the epoch");
  const int64_t gb = options_.global_batch, mbs = options_.micro_batches;
  const torch::Tensor global = order(epoch).narrow(0, step * gb, gb);
  const Range mine = partition(mbs, rank_, world_size_);
  std::vector<Batch> out;
  for (int64_t m = mine.begin; m < mine.end; ++m) {
    const Range rows = partition(gb, static_cast<int>(m), static_cast<int>(mbs));
    const torch::Tensor idx = global.narrow(0, rows.begin, rows.size());
    auto gen = make_generator(key_.with("augment").with(static_cast<uint64_t>(epoch)).with(static_cast<uint64_t>(step))
                                  .with(static_cast<uint64_t>(m)));
    Batch b;
    b.x = transform_images(data_->images.index_select(0, idx), options_.transform, stats_, options_.augment, &gen)
              .to(device_);
    b.y = data_->labels.index_select(0, idx).to(device_);
    b.index = m;
    b.global = gb;
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<Batch> SplitLoader::batch_at(int64_t global_step) const {
  const int64_t spe = steps_per_epoch();
  return batch(global_step / spe, global_step % spe);
}

SearchSplit make_search_split(int64_t n, double train_portion, const RngKey& key) {
  PROBNAS_CHECK(train_portion > 0 && train_portion < 1, "data.train_portion = ", train_portion,
                " must be strictly between 0 and 1");
  auto gen = make_generator(key.with("search-split"));
  auto perm = torch::randperm(n, gen, torch::kInt64);
  const int64_t k = static_cast<int64_t>(std::llround(train_portion * static_cast<double>(n)));
  PROBNAS_CHECK(k > 0 && k < n, "data.train_portion = ", train_portion, " of ", n,
                " examples leaves one half of the search split empty");
  return {perm.narrow(0, 0, k), perm.narrow(0, k, n - k)};
}

}  // namespace probnas
