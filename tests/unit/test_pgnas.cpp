// PGNAS: the concrete gates (which probability drops), the KL term against a hand computation, the
// gradient's sign on a toy problem, the multi-branch supernet against its pruned candidates, the
// export round trip, keyed candidates, and a ranking that resumes without re-evaluating.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/files.h"
#include "probnas/data/loader.h"
#include "probnas/method/pgnas/ranking.h"
#include "probnas/method/pgnas/pgnas.h"
#include "test_support.h"

namespace probnas {
namespace {

SpaceOptions tiny_space(std::vector<int64_t> kernels = {1, 3}) {
  SpaceOptions so;
  so.space = "multibranch";
  so.channels = 4;
  so.cells_per_stage = 1;
  so.kernels = std::move(kernels);
  so.input_channels = 1;
  so.classes = 3;
  return so;
}

TEST(PgnasGates, HardGatesKeepWithProbabilityOneMinusDrop) {
  auto gen = make_generator(RngKey(3));
  const int64_t n = 200000;
  for (const double drop : {0.1, 0.7}) {
    const auto g = hard_gates(torch::tensor(drop, torch::kFloat64), n, gen);
    const double kept = g.mean().item<double>();
    const double sigma = std::sqrt(drop * (1 - drop) / static_cast<double>(n));
    EXPECT_NEAR(kept, 1 - drop, 5 * sigma) << "drop " << drop;
    EXPECT_TRUE(((g == 0) | (g == 1)).all().item<bool>());
  }
}

TEST(PgnasGates, RelaxedGatesConcentrateAtZeroAndOneAsTemperatureFalls) {
  const double drop = 0.3;
  const auto logit = torch::tensor(std::log(drop / (1 - drop)), torch::kFloat64);
  auto gen = make_generator(RngKey(4));
  const auto cold = relaxed_gates(logit, 50000, 4, 0.01, gen);
  const double near_binary = ((cold < 0.01) | (cold > 0.99)).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(near_binary, 0.97);
  // The kept (near 1) frequency matches 1 - p.
  EXPECT_NEAR((cold > 0.5).to(torch::kFloat64).mean().item<double>(), 1 - drop, 0.01);
  // Warm gates spread over (0, 1): the relaxation really relaxes.
  const auto warm = relaxed_gates(logit, 50000, 4, 2.0, gen);
  EXPECT_LT(((warm < 0.01) | (warm > 0.99)).to(torch::kFloat64).mean().item<double>(), 0.2);
}

TEST(PgnasGates, ExpectedWeightsAreKeepThenDrop) {
  torch::manual_seed(0);
  auto net = std::make_shared<MultiBranchNet>(tiny_space());
  PgnasOptions o;
  o.init_drop = 0.3;
  Pgnas m(net, o, RngKey(1));
  const auto w = m.expected_weights()[0];
  ASSERT_EQ(w.size(1), 2);
  EXPECT_EQ(net->arch_shape()[0].ops, (std::vector<std::string>{"keep", "drop"}));
  EXPECT_NEAR(w[0][0].item<double>(), 0.7, 1e-6);
  EXPECT_NEAR(w[0][1].item<double>(), 0.3, 1e-6);
  EXPECT_NEAR(m.mean_drop(), 0.3, 1e-6);
  // The mean network's gates are the keep probabilities.
  EXPECT_NEAR(m.expected().gates[0][0].item<double>(), 0.7, 1e-6);
}

// A useful channel (the target itself) and a harmful one (noise with a fixed weight): the expected
// loss falls when the noise's drop probability rises and when the signal's falls.
TEST(PgnasGates, ExpectedLossGradientFavoursDroppingTheUselessGroup) {
  auto gen = make_generator(RngKey(9));
  const int64_t n = 40000;
  auto x0 = torch::randn({n}, gen, torch::kFloat64), x1 = torch::randn({n}, gen, torch::kFloat64);
  auto logits = torch::zeros({2}, torch::kFloat64).requires_grad_(true);
  const auto g0 = relaxed_gates(logits[0], n, 1, 0.2, gen).flatten();
  const auto g1 = relaxed_gates(logits[1], n, 1, 0.2, gen).flatten();
  const auto loss = (g0 * x0 + 3.0 * g1 * x1 - x0).square().mean();
  loss.backward();
  const auto grad = logits.grad();
  EXPECT_GT(grad[0].item<double>(), 0.1) << "raising the signal's drop probability must raise the loss";
  EXPECT_LT(grad[1].item<double>(), -0.1) << "raising the noise's drop probability must lower the loss";
}

TEST(PgnasObjective, RegulariserMatchesAHandComputation) {
  const auto logits = torch::tensor({-1.0, 0.5}, torch::kFloat64).requires_grad_(true);
  const auto m1 = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64).requires_grad_(true);
  const auto m2 = torch::tensor({3.0}, torch::kFloat64).requires_grad_(true);
  const std::vector<int64_t> channels = {4, 7};
  const double l = 2.0, n = 10.0;
  const auto r = pgnas_regulariser(logits, {m1, m2}, channels, l, 10);
  auto h = [](double p) { return -p * std::log(p) - (1 - p) * std::log(1 - p); };
  const double p1 = 1 / (1 + std::exp(1.0)), p2 = 1 / (1 + std::exp(-0.5));
  const double expected = l * l * (1 - p1) / (2 * n) * (1 + 4 + 0.25) - 4 / n * h(p1) +
                          l * l * (1 - p2) / (2 * n) * 9 - 7 / n * h(p2);
  EXPECT_NEAR(r.item<double>(), expected, 1e-12);
  r.backward();
  // d/dm = l^2 (1 - p) / N * m: the prior acts as weight decay scaled by the keep probability.
  EXPECT_TRUE(torch::allclose(m1.grad(), l * l * (1 - p1) / n * m1.detach(), 1e-12, 1e-12));
  // d/dlogit of the weight term is negative (dropping more saves weight cost); the entropy term
  // pulls p towards 1/2: at p1 < 1/2 it adds a negative part too.
  EXPECT_LT(logits.grad()[0].item<double>(), 0);
}

TEST(PgnasObjective, ConstantL2AblationDecaysKernelsWhateverTheDropProbability) {
  const auto logits = torch::tensor({-1.0, 0.5}, torch::kFloat64).requires_grad_(true);
  const auto m1 = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64).requires_grad_(true);
  const auto m2 = torch::tensor({3.0}, torch::kFloat64).requires_grad_(true);
  const double l = 2, n = 10;
  const auto r = pgnas_regulariser(logits, {m1, m2}, {4, 7}, l, 10, /*constant_l2=*/true);
  r.backward();
  // d/dm = l^2 / N * m: a weight decay with no (1 - p) factor.
  EXPECT_TRUE(torch::allclose(m1.grad(), l * l / n * m1.detach(), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(m2.grad(), l * l / n * m2.detach(), 1e-12, 1e-12));
  // d/dlogit is the entropy term's alone: the kernels no longer pull p.
  const auto logits2 = logits.detach().clone().requires_grad_(true);
  pgnas_regulariser(logits2, {m1.detach(), m2.detach()}, {4, 7}, 0, 10).backward();
  EXPECT_TRUE(torch::allclose(logits.grad(), logits2.grad(), 1e-12, 1e-12));
  // Eq. 15's term does pull it.
  const auto logits3 = logits.detach().clone().requires_grad_(true);
  pgnas_regulariser(logits3, {m1.detach(), m2.detach()}, {4, 7}, l, 10).backward();
  EXPECT_FALSE(torch::allclose(logits3.grad(), logits2.grad(), 1e-6, 1e-6));
}

TEST(PgnasShake, WeightsAreDirichletOneAndKeyed) {
  auto gen = make_generator(RngKey(5).with("shake"));
  const auto w = shake_weights(3, 20000, 2, torch::TensorOptions().dtype(torch::kFloat64), gen);
  ASSERT_EQ(w.size(), 3u);
  for (const auto& [f, b] : w) {
    ASSERT_EQ(f.sizes(), (std::vector<int64_t>{20000, 2}));
    EXPECT_TRUE(torch::allclose(f.sum(1), torch::ones({20000}, torch::kFloat64), 1e-12, 1e-12));
    EXPECT_GE(f.min().item<double>(), 0);
    // Two branches: alpha ~ U(0, 1), shake-shake's: mean 1/2, variance 1/12.
    const auto a = f.select(1, 0);
    EXPECT_NEAR(a.mean().item<double>(), 0.5, 0.01);
    EXPECT_NEAR(a.var().item<double>(), 1.0 / 12, 0.003);
    EXPECT_FALSE(torch::allclose(f, b));  // the backward pass draws its own weights
  }
  // Four branches: Dirichlet(1,1,1,1) has means 1/4 and variances (1/4)(3/4)/5 = 3/80.
  const auto four = shake_weights(1, 20000, 4, torch::TensorOptions().dtype(torch::kFloat64), gen)[0].first;
  EXPECT_NEAR(four.mean(0)[3].item<double>(), 0.25, 0.01);
  EXPECT_NEAR(four.var(0)[3].item<double>(), 3.0 / 80, 0.003);
  auto again = make_generator(RngKey(5).with("shake"));
  EXPECT_TRUE(torch::equal(shake_weights(3, 20000, 2, torch::TensorOptions().dtype(torch::kFloat64), again)[2].second,
                           w[2].second));
}

TEST(PgnasShake, ACheckpointFromBeforeShakeResumesWithoutIt) {
  torch::manual_seed(0);
  auto net = std::make_shared<MultiBranchNet>(tiny_space());
  PgnasOptions o;  // shake on, the default
  Pgnas a(net, o, RngKey(1));
  ckpt::State state;
  a.save(state.group("method"), state.group("optim"));
  EXPECT_EQ(state.group("method").attr_int("shake"), 1);
  Pgnas b(net, o, RngKey(1));
  b.load(state.group("method"), state.group("optim"));
  EXPECT_TRUE(b.options().shake);
  // Without the attribute (an older checkpoint): the search goes on unshaken, as it began.
  ckpt::State old;
  old.group("method").put("drop_logit", state.group("method").get("drop_logit"));
  old.group("method").put_lines("groups", state.group("method").lines("groups"));
  Pgnas c(net, o, RngKey(1));
  c.load(old.group("method"), state.group("optim"));
  EXPECT_FALSE(c.options().shake);
  // A checkpoint trained unshaken does not resume shaken.
  old.group("method").set_attr("shake", int64_t{0});
  Pgnas d(net, o, RngKey(1));
  EXPECT_NE(test::error_of([&] { d.load(old.group("method"), state.group("optim")); }).find("pgnas.shake = false"),
            std::string::npos);
}

TEST(PgnasShake, ABlockShakesForwardWithAlphaAndBackwardWithBeta) {
  torch::manual_seed(3);
  MultiBranchBlock block(4, 4, 1, {1, 3});
  block.to(torch::kFloat64);
  const auto x = torch::randn({5, 4, 6, 6}, torch::kFloat64);
  const auto g = torch::randn({5, 4, 6, 6}, torch::kFloat64);
  auto gen = make_generator(RngKey(9));
  const auto w = shake_weights(1, 5, 2, torch::TensorOptions().dtype(torch::kFloat64), gen)[0];
  // The reference: each branch alone (training mode, batch statistics).
  std::vector<torch::Tensor> h;
  for (auto& branch : block.branches) h.push_back(branch->forward(torch::relu(x), {}, {}));
  auto expected = x.clone();
  for (int64_t b = 0; b < 2; ++b) expected = expected + w.first.select(1, b).view({-1, 1, 1, 1}) * h[b];
  const auto y = block.forward(x, {}, w);
  EXPECT_TRUE(torch::allclose(y, expected, 1e-12, 1e-12));
  // Gradients: what sum_b beta_b h_b would receive.
  (y * g).sum().backward();
  std::vector<torch::Tensor> shaken;
  for (const auto& p : block.parameters()) shaken.push_back(p.grad().clone());
  block.zero_grad();
  torch::Tensor beta_sum;
  for (int64_t b = 0; b < 2; ++b) {
    const auto term = w.second.select(1, b).view({-1, 1, 1, 1}) * block.branches[b]->forward(torch::relu(x), {}, {});
    beta_sum = beta_sum.defined() ? beta_sum + term : term;
  }
  (beta_sum * g).sum().backward();
  const auto params = block.parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(torch::allclose(shaken[i], params[i].grad(), 1e-10, 1e-12)) << i;
  // Forward weights in the gradient would differ (the draws differ).
  block.zero_grad();
  torch::Tensor alpha_sum;
  for (int64_t b = 0; b < 2; ++b) {
    const auto term = w.first.select(1, b).view({-1, 1, 1, 1}) * block.branches[b]->forward(torch::relu(x), {}, {});
    alpha_sum = alpha_sum.defined() ? alpha_sum + term : term;
  }
  (alpha_sum * g).sum().backward();
  EXPECT_FALSE(torch::allclose(shaken[0], params[0].grad(), 1e-6, 1e-6));
  // Without weights: the plain average (shake-shake's test-time rule).
  EXPECT_TRUE(torch::allclose(block.forward(x, {}), x + (h[0] + h[1]) / 2, 1e-12, 1e-12));
}

TEST(PgnasSpace, PrunedCandidateComputesWhatTheGatedSupernetComputes) {
  torch::manual_seed(1);
  auto net = std::make_shared<MultiBranchNet>(tiny_space({1, 3, 5}));
  net->to(torch::kFloat64);
  // Non-trivial BN statistics and affine parameters.
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : net->named_buffers())
      if (kv.key().find("running_mean") != std::string::npos) kv.value().normal_(0, 0.3);
    for (auto& kv : net->named_parameters())
      if (kv.key().find("bn") != std::string::npos) kv.value().normal_(1, 0.2);
  }
  net->eval();
  const auto& groups = net->gate_groups();
  ASSERT_EQ(groups.size(), 3u * 3u * 2u);
  auto gen = make_generator(RngKey(2));
  std::vector<torch::Tensor> gates;
  for (const auto& g : groups)
    gates.push_back((torch::rand({g.channels}, gen, torch::kFloat64) > 0.4).to(torch::kFloat64));
  gates[2].zero_();  // s1.b1.k3.conv1 fully closed: that branch is removed
  gates[1].zero_();  // s1.b1.k1.conv2 too
  gates[8].fill_(1);  // a fully open one
  const auto x = torch::randn({5, 1, 12, 12}, gen, torch::kFloat64);
  const auto supernet = net->forward(x, ArchSample::gated(gates));
  const PrunedNet pruned = net->prune(gates);
  EXPECT_EQ(pruned.blocks[0].branches.size(), 1u);  // k1 and k3 removed, k5 left
  EXPECT_TRUE(torch::allclose(pruned.forward(x), supernet, 1e-9, 1e-9));
  // Soft gates (the mean network) scale the kept channels.
  std::vector<torch::Tensor> soft;
  for (const auto& g : groups) soft.push_back(torch::rand({g.channels}, gen, torch::kFloat64) * 0.5 + 0.25);
  EXPECT_TRUE(torch::allclose(net->prune(soft).forward(x), net->forward(x, ArchSample::gated(soft)), 1e-9, 1e-9));
  // A candidate has fewer weights than the supernet.
  int64_t all = 0;
  for (const auto& p : net->parameters()) all += p.numel();
  EXPECT_LT(pruned.parameters(), all);
  EXPECT_EQ(net->prune(std::vector<torch::Tensor>(soft)).parameters(), all);
  // A branch removed in the supernet contributes nothing, not its BN bias: changing the closed
  // branch's BN bias changes nothing.
  {
    torch::NoGradGuard no_grad;
    net->named_parameters()["s1b1.k3.bn2.bias"].add_(5.0);
  }
  EXPECT_TRUE(torch::allclose(net->forward(x, ArchSample::gated(gates)), supernet, 1e-12, 1e-12));
}

TEST(PgnasSpace, ExportedNetworkReproducesTheCandidate) {
  test::TempDir dir;
  torch::manual_seed(2);
  auto net = std::make_shared<MultiBranchNet>(tiny_space());
  net->eval();
  PgnasOptions o;
  o.init_drop = 0.4;
  Pgnas m(net, o, RngKey(5));
  const auto gates = candidate_gates(m, RngKey(5), "guided", 3, 0);
  const PrunedNet pruned = net->prune(gates);
  ChannelStats stats{torch::zeros({1}), torch::ones({1})};
  export_pruned(dir.file("best.h5"), pruned, stats, true, "test");
  const PrunedNet back = import_pruned(dir.file("best.h5"));
  const auto x = torch::randn({3, 1, 10, 10});
  EXPECT_TRUE(torch::equal(back.forward(x), pruned.forward(x)));
  EXPECT_EQ(back.parameters(), pruned.parameters());
}

TEST(PgnasCandidates, KeyedByIndexAlone) {
  torch::manual_seed(3);
  auto net = std::make_shared<MultiBranchNet>(tiny_space());
  PgnasOptions o;
  o.init_drop = 0.5;
  Pgnas m(net, o, RngKey(1));
  const auto a = candidate_gates(m, RngKey(8), "guided", 17, 0);
  candidate_gates(m, RngKey(8), "guided", 4, 0);  // drawing others in between changes nothing
  const auto b = candidate_gates(m, RngKey(8), "guided", 17, 0);
  const auto c = candidate_gates(m, RngKey(8), "guided", 18, 0);
  const auto r = candidate_gates(m, RngKey(8), "random", 17, 0.5);
  bool differs = false, random_differs = false;
  for (size_t g = 0; g < a.size(); ++g) {
    EXPECT_TRUE(torch::equal(a[g], b[g]));
    differs = differs || !torch::equal(a[g], c[g]);
    random_differs = random_differs || !torch::equal(a[g], r[g]);
  }
  EXPECT_TRUE(differs);
  EXPECT_TRUE(random_differs);  // the random baseline has its own stream
}

TEST(PgnasCandidates, RandomBaselineKeepsAtItsFixedRate) {
  torch::manual_seed(3);
  SpaceOptions so = tiny_space();
  so.channels = 16;
  auto net = std::make_shared<MultiBranchNet>(so);
  Pgnas m(net, PgnasOptions{}, RngKey(1));
  double kept = 0;
  for (int i = 0; i < 50; ++i) kept += kept_fraction(candidate_gates(m, RngKey(2), "random", i, 0.25));
  EXPECT_NEAR(kept / 50, 0.75, 0.02);
}

EvalSet toy_eval(int64_t n, uint64_t seed) {
  auto gen = make_generator(RngKey(seed));
  EvalSet s;
  s.x.push_back(torch::randn({n, 1, 8, 8}, gen));
  s.y.push_back(torch::randint(3, {n}, gen));
  return s;
}

TEST(PgnasRanking, ResumesWithoutReevaluatingFinishedCandidates) {
  test::TempDir dir;
  torch::manual_seed(4);
  auto net = std::make_shared<MultiBranchNet>(tiny_space());
  Pgnas m(net, PgnasOptions{}, RngKey(1));
  const EvalSet val = toy_eval(40, 1), calib;
  SerialCommunicator comm;
  RankingOptions o;
  o.candidates = 6;
  o.random = false;
  o.round = 2;
  o.dir = dir.path();
  o.fingerprint = "f1";
  const auto first = rank_candidates(m, RngKey(1), val, calib, o, comm);
  ASSERT_EQ(first.phases.size(), 1u);
  ASSERT_EQ(first.phases[0].scores.size(), 6u);
  // Keep the header and candidates 0-2, mark candidate 1 with an impossible score, cut the next line short.
  const std::string path = dir.file("ranking/guided.csv");
  std::istringstream in(read_file_bytes(path));
  std::string line, kept;
  for (int i = 0; i < 5 && std::getline(in, line); ++i) {
    if (i == 3) line = "1,39,1,40,123,0.5";  // index 1 again (the later line wins)
    kept += line + "\n";
  }
  kept += "5,3";  // torn
  ckpt::write_file_atomic(path, kept);
  const auto second = rank_candidates(m, RngKey(1), val, calib, o, comm);
  ASSERT_EQ(second.phases[0].scores.size(), 6u);
  EXPECT_EQ(second.phases[0].scores[1].correct, 39);  // not evaluated again
  EXPECT_EQ(second.phases[0].scores[1].params, 123);
  for (const int i : {0, 3, 4, 5}) {
    EXPECT_EQ(second.phases[0].scores[static_cast<size_t>(i)].correct, first.phases[0].scores[static_cast<size_t>(i)].correct);
    EXPECT_EQ(second.phases[0].scores[static_cast<size_t>(i)].loss_sum, first.phases[0].scores[static_cast<size_t>(i)].loss_sum);
  }
  EXPECT_EQ(second.phases[0].best().index, 1);
  // Other weights (another fingerprint): everything is ranked again.
  o.fingerprint = "f2";
  const auto third = rank_candidates(m, RngKey(1), val, calib, o, comm);
  EXPECT_EQ(third.phases[0].scores[1].correct, first.phases[0].scores[1].correct);
}

TEST(PgnasRanking, RecalibratedStatisticsDifferFromRunningOnes) {
  torch::manual_seed(6);
  auto net = std::make_shared<MultiBranchNet>(tiny_space());
  net->eval();
  Pgnas m(net, PgnasOptions{}, RngKey(1));
  PrunedNet p = net->prune(candidate_gates(m, RngKey(1), "guided", 0, 0));
  const auto mean_before = p.stem.bn_mean.clone();
  const auto x = torch::randn({64, 1, 8, 8}) * 3 + 1;
  p.recalibrate({x});
  // The stem's BN sees conv(x): its recalibrated mean is the batch mean of that output.
  const auto y = torch::conv2d(x, p.stem.weight, {}, 1, 1);
  EXPECT_TRUE(torch::allclose(p.stem.bn_mean, y.mean({0, 2, 3}), 1e-4, 1e-5));
  EXPECT_FALSE(torch::allclose(p.stem.bn_mean, mean_before));
}

TEST(PgnasSpace, KernelListErrorsNameTheValue) {
  EXPECT_EQ(parse_kernels("1,3,5,7"), (std::vector<int64_t>{1, 3, 5, 7}));
  EXPECT_NE(test::error_of([] { parse_kernels("3,4"); }).find("'4' is not an odd kernel size"), std::string::npos);
  EXPECT_NE(test::error_of([] { parse_kernels("3,3"); }).find("appears twice"), std::string::npos);
  EXPECT_NE(test::error_of([] { parse_kernels("1,3,5,7,9"); }).find("1 to 4 kernel sizes"), std::string::npos);
}

}  // namespace
}  // namespace probnas
