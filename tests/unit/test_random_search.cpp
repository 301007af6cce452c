// Random search with weight sharing: uniform architectures for training, a keyed candidate pool
// scored only in the last epochs, the best scored candidate as the genotype, scores checkpointed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <map>
#include <set>

#include "probnas/ckpt/state.h"
#include "probnas/method/random/random_search.h"
#include "probnas/space/nb201.h"
#include "probnas/space/supernet.h"
#include "test_support.h"

namespace probnas {
namespace {

std::shared_ptr<Supernet> tiny_nb201() {
  torch::manual_seed(0);
  SpaceOptions o;
  o.space = "nb201";
  o.channels = 2, o.cells_per_stage = 1, o.input_channels = 1, o.classes = 3;
  return make_supernet(o);
}

std::vector<Batch> images(uint64_t seed, int64_t n) {
  auto gen = make_generator(RngKey(seed));
  Batch b;
  b.x = torch::randn({n, 1, 8, 8}, gen, torch::kFloat32);
  b.y = torch::randint(3, {n}, gen, torch::kInt64);
  b.index = 0;
  b.global = n;
  return {b};
}

RandomSearchOptions options(int64_t candidates) {
  RandomSearchOptions o;
  o.candidates = candidates;
  o.eval_epochs = 1;
  return o;
}

TEST(RandomSearch, SamplesUniformlyFromTheSpace) {
  RandomSearch m(tiny_nb201(), options(4), RngKey(1));
  std::vector<std::map<int64_t, int>> counts(6);
  const int draws = 3000;
  for (int i = 0; i < draws; ++i) {
    const auto a = m.sample(RngKey(7).with(static_cast<uint64_t>(i)));
    ASSERT_EQ(a.choices.size(), 1u);
    for (size_t e = 0; e < 6; ++e) ++counts[e][a.choices[0][e]];
  }
  for (size_t e = 0; e < 6; ++e) {
    ASSERT_EQ(counts[e].size(), 5u) << "edge " << e;  // every NB201 operation, none included
    for (const auto& [op, n] : counts[e]) EXPECT_NEAR(static_cast<double>(n) / draws, 0.2, 0.035) << e << "/" << op;
  }
  // The sampling distribution it reports is uniform too.
  EXPECT_TRUE(torch::allclose(m.expected_weights()[0].to(torch::kFloat64), torch::full({6, 5}, 0.2, torch::kFloat64)));
}

TEST(RandomSearch, ScoresOneCandidateInTurnOnlyInTheLastEpochsAndPicksTheBest) {
  RandomSearch m(tiny_nb201(), options(3), RngKey(1));
  // The pool is a function of the key alone.
  RandomSearch twin(tiny_nb201(), options(3), RngKey(1));
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(m.candidate(i), twin.candidate(i));
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = RngKey(2);
  auto run_epoch = [&](int64_t epoch, int64_t epochs, int64_t first_step) {
    m.begin_epoch(epoch, epochs);
    for (int64_t s = 0; s < 4; ++s) {
      ctx.global_step = first_step + s;
      m.step(images(static_cast<uint64_t>(ctx.global_step), 16), images(100 + static_cast<uint64_t>(ctx.global_step), 8),
             ctx, metrics);
    }
  };
  run_epoch(0, 2, 0);  // training only
  EXPECT_FALSE(m.updates_architecture());
  EXPECT_EQ(m.scores().sum().item<double>(), 0);
  EXPECT_EQ(metrics.read().val_count, 0);
  run_epoch(1, 2, 4);  // steps 4..7 score candidates 1, 2, 0, 1
  EXPECT_TRUE(m.updates_architecture());
  const auto s = m.scores();
  EXPECT_EQ(s[0][2].item<double>(), 8);
  EXPECT_EQ(s[1][2].item<double>(), 16);
  EXPECT_EQ(s[2][2].item<double>(), 8);
  EXPECT_EQ(metrics.read().val_count, 32);

  // The genotype is the candidate with the best accuracy, then the lower loss.
  ckpt::State method, optim;
  m.save(method, optim);
  auto scores = torch::tensor({2.0, 9.0, 10.0, 7.0, 1.0, 10.0, 9.0, 5.0, 10.0}, torch::kFloat64).view({3, 3});
  method.put("scores", scores);
  m.load(method, optim);
  EXPECT_EQ(m.ranking(), (std::vector<int64_t>{2, 1, 0}));  // accuracies 0.9, 0.7, 0.2
  const auto report = nlohmann::json::parse(m.report_json());
  EXPECT_EQ(report["best"][0]["candidate"], 2);
  EXPECT_EQ(m.derive().text, report["best"][0]["architecture"].get<std::string>());
  // Equal accuracy: the lower loss wins.
  scores[2][0] = 7.0;
  scores[2][1] = 6.0;
  method.put("scores", scores);
  m.load(method, optim);
  EXPECT_EQ(m.ranking().front(), 1);
  // A pool of another size is refused, naming the option.
  RandomSearch other(tiny_nb201(), options(5), RngKey(1));
  EXPECT_THROW(other.load(method, optim), std::exception);
}

// DARTS space: every draw is a DARTS cell (two distinct inputs per node, no `none`), and the
// genotype of the best candidate is exactly that cell.
TEST(RandomSearch, DartsSpaceDrawsAreValidCellsAndTheGenotypeIsTheDraw) {
  torch::manual_seed(0);
  SpaceOptions o;
  o.space = "darts";
  o.channels = 2, o.cells = 3, o.input_channels = 1, o.classes = 3;
  auto net = make_supernet(o);
  RandomSearch m(net, options(20), RngKey(4));
  const auto& shape = net->arch_shape();
  for (int64_t i = 0; i < 20; ++i) {
    const auto arch = m.sample(RngKey(9).with(static_cast<uint64_t>(i)));
    ASSERT_EQ(arch.paths.size(), 2u);
    for (size_t g = 0; g < 2; ++g) {
      ASSERT_EQ(arch.paths[g].size(), 8u);  // 4 nodes x 2 inputs
      std::map<int64_t, int> per_edge;
      for (const auto& p : arch.paths[g]) {
        EXPECT_NE(shape[g].ops[static_cast<size_t>(p.op)], "none");
        EXPECT_EQ(++per_edge[p.edge], 1) << "edge " << p.edge << " taken twice";
      }
    }
  }
  // The genotype keeps exactly the candidate's 16 paths.
  ckpt::State method, optim;
  m.save(method, optim);
  auto scores = torch::zeros({20, 3}, torch::kFloat64);
  scores[7][0] = 5, scores[7][2] = 5;  // candidate 7 alone is perfect
  for (int64_t i = 0; i < 20; ++i) scores[i][2] = 5;
  method.put("scores", scores);
  m.load(method, optim);
  const Genotype g = m.derive();
  const ArchSample best = [&] {
    RandomSearch twin(net, options(20), RngKey(4));
    return ArchCategoricals("darts", shape).arch_sample(twin.candidate(7));
  }();
  std::set<std::string> expected, derived;
  for (size_t gi = 0; gi < 2; ++gi)
    for (const auto& p : best.paths[gi])
      expected.insert(shape[gi].name + "/" + shape[gi].edge_names[static_cast<size_t>(p.edge)] + "/" +
                      shape[gi].ops[static_cast<size_t>(p.op)]);
  for (const auto& e : g.edges)
    if (e.op != "none") derived.insert(e.group + "/" + e.edge + "/" + e.op);
  EXPECT_EQ(derived, expected);
}

}  // namespace
}  // namespace probnas
