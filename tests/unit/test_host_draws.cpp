// Host-drawn randomness staged in fixed device buffers (core/host_draws.h): the staged numbers are
// the keyed host draws themselves, the buffer keeps its address from step to step, each rank of
// any world size stages the same numbers for the same micro-batch, and GDAS's Gumbel noise is the
// same numbers its keyed generator drew before the draws moved to the host.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/core/host_draws.h"
#include "probnas/method/dirichlet.h"
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/space/darts_space.h"
#include "probnas/space/nb201.h"

namespace probnas {
namespace {

std::shared_ptr<Supernet> tiny(const std::string& space) {
  torch::manual_seed(5);
  SpaceOptions o;
  o.space = space;
  o.channels = 4, o.cells_per_stage = 1, o.cells = 3, o.input_channels = 3, o.classes = 4;
  return make_supernet(o);
}

torch::Tensor draw_of(const RngKey& key) {
  auto gen = make_generator(key);
  return torch::randn({3, 5}, gen);
}

TEST(StagedDraws, FindGivesEachKeysOwnHostDrawAndNothingForOtherKeys) {
  StagedDraws s;
  const std::vector<RngKey> keys{RngKey(1).with(0), RngKey(1).with(1), RngKey(1).with(2)};
  s.stage(keys, draw_of, torch::kCPU);
  for (const auto& k : keys) {
    const auto staged = s.find(k);
    ASSERT_TRUE(staged.defined());
    EXPECT_EQ(staged.sizes(), torch::IntArrayRef({3, 5}));
    EXPECT_TRUE(torch::equal(staged, draw_of(k)));
  }
  EXPECT_FALSE(torch::equal(s.find(keys[0]), s.find(keys[1])));
  EXPECT_FALSE(s.find(RngKey(1).with(3)).defined());
  s.clear();
  EXPECT_FALSE(s.find(keys[0]).defined());
}

TEST(StagedDraws, TheBufferKeepsItsAddressWhileTheShapesDoAndARepeatedKeyIsStagedOnce) {
  StagedDraws s;
  s.stage({RngKey(2).with(0), RngKey(2).with(1)}, draw_of, torch::kCPU);
  const void* address = s.buffer().data_ptr();
  EXPECT_EQ(s.buffer().numel(), 30);
  // The next step: other keys, the same shapes, the same device memory (what a graph replays).
  s.stage({RngKey(2).with(7), RngKey(2).with(8), RngKey(2).with(7)}, draw_of, torch::kCPU);
  EXPECT_EQ(s.buffer().data_ptr(), address);
  EXPECT_EQ(s.buffer().numel(), 30);
  EXPECT_TRUE(torch::equal(s.find(RngKey(2).with(7)), draw_of(RngKey(2).with(7))));
  EXPECT_FALSE(s.find(RngKey(2).with(0)).defined()) << "the earlier step's keys are gone";
  // Keys that draw nothing stage nothing.
  s.stage({RngKey(3)}, [](const RngKey&) { return torch::Tensor(); }, torch::kCPU);
  EXPECT_FALSE(s.find(RngKey(3)).defined());
}

TEST(HostDraws, HostRandIsTorchRandOfTheSameGeneratorInTheRequestedDtype) {
  auto a = make_generator(RngKey(4)), b = make_generator(RngKey(4));
  const auto x = host_rand({7}, a, torch::TensorOptions().dtype(torch::kFloat64));
  EXPECT_TRUE(torch::equal(x, torch::rand({7}, b, torch::kFloat64)));
  const auto y = host_randn({2, 3}, a, torch::TensorOptions());
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(y, torch::randn({2, 3}, b)));
}

std::vector<Batch> batches(int64_t first, int64_t count) {
  std::vector<Batch> out;
  for (int64_t m = first; m < first + count; ++m) {
    Batch b;
    b.index = m;
    out.push_back(b);
  }
  return out;
}

TEST(HostDraws, EveryWorldSizeStagesTheSameNumbersForTheSameMicroBatch) {
  // 6 micro-batches per phase, split over 1, 2 and 3 ranks as contiguous ranges: each rank stages
  // only its own keys, and they must be the numbers the single rank staged for them (a step-wide
  // generator consumed in staging order would fail this).
  Drnas one(tiny("darts"), GradientMethodOptions{}, RngKey(8));
  StepContext ctx;
  ctx.key = RngKey(9);
  ctx.global_step = 3;
  one.stage_draws(batches(0, 6), batches(0, 6), ctx);
  for (int ranks : {2, 3}) {
    const int64_t per = 6 / ranks;
    for (int r = 0; r < ranks; ++r) {
      Drnas m(tiny("darts"), GradientMethodOptions{}, RngKey(8));
      m.stage_draws(batches(r * per, per), batches(r * per, per), ctx);
      for (int64_t i = r * per; i < (r + 1) * per; ++i) {
        for (bool arch : {true, false}) {
          const auto key = m.draw_key(ctx, arch, i);
          const auto mine = m.staged_draws().find(key), single = one.staged_draws().find(key);
          ASSERT_TRUE(mine.defined() && single.defined()) << ranks << " ranks, micro-batch " << i;
          EXPECT_TRUE(torch::equal(mine, single)) << ranks << " ranks, rank " << r << ", micro-batch " << i;
        }
      }
      EXPECT_FALSE(m.staged_draws().find(m.draw_key(ctx, false, (r + 1) * per % 6)).defined());
    }
  }
  // The noise covers every operation of both DARTS-space groups: 2 x 14 edges x 8 operations.
  const auto noise = one.staged_draws().find(one.draw_key(ctx, true, 0));
  EXPECT_EQ(noise.sizes(), torch::IntArrayRef({2 * kGammaCandidates + 1, int64_t{2 * 14 * 8}}));
}

TEST(HostDraws, GdasGumbelNoiseIsWhatItsKeyedGeneratorDrewGroupByGroup) {
  // The draws moved to the host without changing a CPU run: group after group, Exp(1) from the
  // generator keyed by the draw's key, and the noise -log of it.
  auto net = tiny("darts");
  Gdas m(net, GradientMethodOptions{}, GdasOptions{}, RngKey(1));
  m.begin_epoch(0, 4);
  const RngKey key = RngKey(21).with(4);
  const auto d = m.draw(key);
  auto gen = make_generator(key);
  ASSERT_EQ(d.gumbel.size(), 2u);
  for (size_t g = 0; g < 2; ++g) {
    const auto expected = -torch::empty({14, 8}).exponential_(1.0, gen).log();
    EXPECT_TRUE(torch::equal(d.gumbel[g], expected)) << "group " << g;
  }
  EXPECT_EQ(m.host_draw(key).numel(), 2 * 14 * 8);
}

}  // namespace
}  // namespace probnas
