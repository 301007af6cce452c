// The sharded loader: partition, the search split, and DESIGN principle 2 (a global batch is
// the same whatever the number of ranks; ranks only divide its micro-batches).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/comm/communicator.h"
#include "probnas/data/loader.h"

namespace probnas {
namespace {

TEST(Partition, CoversEveryUnitOnceWithBalancedShares) {
  for (int64_t n : {0, 1, 7, 64, 100})
    for (int size : {1, 2, 3, 8}) {
      int64_t next = 0, lo = n, hi = 0;
      for (int r = 0; r < size; ++r) {
        const Range part = partition(n, r, size);
        EXPECT_EQ(part.begin, next) << n << " over " << size;
        next = part.end;
        lo = std::min(lo, part.size());
        hi = std::max(hi, part.size());
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(hi - lo, 1);
    }
}

TEST(SearchSplit, IsADeterministicPartitionOfTheTrainingSet) {
  const auto a = make_search_split(101, 0.5, RngKey(4));
  const auto b = make_search_split(101, 0.5, RngKey(4));
  const auto c = make_search_split(101, 0.5, RngKey(5));
  EXPECT_EQ(a.weights.numel(), 51);  // round(50.5) = 51 (llround rounds half away from zero)
  EXPECT_EQ(a.arch.numel(), 50);
  EXPECT_TRUE(torch::equal(a.weights, b.weights));
  EXPECT_FALSE(torch::equal(a.weights, c.weights));
  auto all = std::get<0>(torch::sort(torch::cat({a.weights, a.arch})));
  EXPECT_TRUE(torch::equal(all, torch::arange(101, torch::kInt64)));
  EXPECT_THROW(make_search_split(10, 1.0, RngKey(1)), std::exception);
}

std::shared_ptr<const Dataset> tiny_dataset(int64_t n) {
  SyntheticOptions o;
  o.count = n, o.channels = 2, o.size = 6, o.classes = 3, o.seed = 9;
  return std::make_shared<const Dataset>(make_synthetic(o));
}

SplitLoader loader(const std::shared_ptr<const Dataset>& data, int rank, int size, int64_t micro_batches) {
  SplitOptions so;
  so.global_batch = 10;
  so.micro_batches = micro_batches;
  return SplitLoader(data, torch::arange(data->size(), torch::kInt64), ChannelStats::of(*data), so, RngKey(2).with("w"),
                     torch::kCPU, rank, size);
}

TEST(SplitLoader, RanksTakeDisjointSharesOfTheSameGlobalBatch) {
  auto data = tiny_dataset(47);
  const auto one = loader(data, 0, 1, 6);
  EXPECT_EQ(one.steps_per_epoch(), 4);  // the incomplete last batch is dropped
  for (int64_t step = 0; step < 4; ++step) {
    const auto whole = one.batch(1, step);
    ASSERT_EQ(whole.size(), 6u);
    int64_t examples = 0;
    for (const auto& b : whole) {
      examples += b.y.size(0);
      EXPECT_EQ(b.global, 10);
    }
    EXPECT_EQ(examples, 10);
    std::vector<Batch> joined;
    for (int r = 0; r < 3; ++r)
      for (auto& b : loader(data, r, 3, 6).batch(1, step)) joined.push_back(b);
    ASSERT_EQ(joined.size(), whole.size());
    for (size_t m = 0; m < whole.size(); ++m) {
      EXPECT_EQ(joined[m].index, whole[m].index);
      EXPECT_TRUE(torch::equal(joined[m].x, whole[m].x)) << "step " << step << " micro-batch " << m;
      EXPECT_TRUE(torch::equal(joined[m].y, whole[m].y));
    }
  }
}

TEST(SplitLoader, EpochsAreReshuffledAndEveryExampleIsSeenOncePerEpoch) {
  auto data = tiny_dataset(40);
  SplitOptions so;
  so.global_batch = 10;
  so.augment = false;
  so.transform.normalize = false;
  const SplitLoader l(data, torch::arange(40, torch::kInt64), ChannelStats::of(*data), so, RngKey(1), torch::kCPU, 0, 1);
  auto epoch_images = [&](int64_t epoch) {
    std::vector<torch::Tensor> xs;
    for (int64_t s = 0; s < l.steps_per_epoch(); ++s) xs.push_back(l.batch(epoch, s)[0].x);
    return torch::cat(xs);
  };
  auto e0 = epoch_images(0), e1 = epoch_images(1);
  EXPECT_FALSE(torch::equal(e0, e1));
  // Same multiset of images: compare sorted per-image sums.
  auto key = [](const torch::Tensor& x) { return std::get<0>(torch::sort(x.flatten(1).sum(1))); };
  EXPECT_TRUE(torch::allclose(key(e0), key(e1)));
  EXPECT_TRUE(torch::allclose(key(e0), std::get<0>(torch::sort(data->images.to(torch::kFloat32).div(255).flatten(1).sum(1)))));
}

TEST(SplitLoader, RejectsMicroBatchesThatAreNotAMultipleOfTheRanks) {
  auto data = tiny_dataset(40);
  EXPECT_THROW(loader(data, 0, 4, 2), std::exception);
  EXPECT_THROW(loader(data, 1, 2, 3), std::exception);
  EXPECT_NO_THROW(loader(data, 1, 2, 4));
}

TEST(Transforms, CropKeepsShapeFlipMirrorsAndNormaliseStandardises) {
  auto images = torch::randint(0, 256, {64, 3, 8, 8}, torch::kUInt8);
  Dataset d;
  d.images = images;
  const auto stats = ChannelStats::of(d);
  TransformOptions o;
  o.crop = false, o.flip = false, o.normalize = true;
  auto plain = transform_images(images, o, stats, true, nullptr);
  EXPECT_NEAR(plain.mean().item<double>(), 0.0, 1e-3);
  EXPECT_NEAR(plain.std().item<double>(), 1.0, 1e-2);
  o.normalize = false, o.flip = true;
  auto gen = make_generator(RngKey(0));
  auto flipped = transform_images(images, o, stats, true, &gen);
  auto raw = images.to(torch::kFloat32) / 255;
  int64_t mirrored = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const bool same = torch::equal(flipped[i], raw[i]);
    const bool mirror = torch::equal(flipped[i], raw[i].flip({2}));
    EXPECT_TRUE(same || mirror);
    mirrored += mirror ? 1 : 0;
  }
  EXPECT_GT(mirrored, 10);
  EXPECT_LT(mirrored, 54);
  o.flip = false, o.crop = true, o.crop_padding = 2;
  auto cropped = transform_images(images, o, stats, true, &gen);
  EXPECT_EQ(cropped.sizes(), raw.sizes());
  EXPECT_FALSE(torch::equal(cropped, raw));
}

}  // namespace
}  // namespace probnas
