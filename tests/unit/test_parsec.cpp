// PARSEC: the categorical architecture distribution (log-prob and its gradient against a hand
// computation, sampling frequencies, the k most probable architectures against brute force), the
// importance weights (direct computation, finite for very negative log-likelihoods), single-path
// execution in the DARTS space, concentration on a toy problem whose best operation per edge is
// known, and the checkpoint round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "probnas/ckpt/state.h"
#include "probnas/method/parsec/parsec.h"
#include "probnas/space/darts_space.h"
#include "probnas/space/nb201.h"
#include "test_support.h"

namespace probnas {
namespace {

ArchShape nb201_shape() {
  ArchGroup g;
  g.name = "cell";
  g.edge_names = {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"};
  g.ops = kNb201Ops;
  return {g};
}

std::shared_ptr<Supernet> tiny(const std::string& space, uint64_t seed, std::vector<std::string> ops = {}) {
  torch::manual_seed(seed);
  SpaceOptions o;
  o.space = space;
  o.channels = 4, o.cells_per_stage = 1, o.cells = 3, o.input_channels = 3, o.classes = 4;
  o.ops = std::move(ops);
  return make_supernet(o);
}

// --- 1. the distribution ------------------------------------------------------------------------

TEST(ParsecDistribution, LogProbAndItsGradientMatchAHandComputation) {
  const ArchCategoricals dist("nb201", nb201_shape());
  ASSERT_EQ(dist.variables(), 6);
  ASSERT_EQ(dist.max_options(), 5);
  auto logits = torch::arange(30, torch::kFloat64).reshape({6, 5}).mul(0.1).sin().set_requires_grad(true);
  const ArchDraw draw = {0, 4, 2, 2, 1, 3};
  const auto lp = dist.log_prob(logits, draw);
  lp.backward();
  const auto held = logits.detach();
  const auto l = held.accessor<double, 2>();
  double expected = 0;
  for (int64_t v = 0; v < 6; ++v) {
    double z = 0;
    for (int64_t c = 0; c < 5; ++c) z += std::exp(l[v][c]);
    expected += l[v][draw[static_cast<size_t>(v)]] - std::log(z);
    // d log p / d logit[v][c] = [c == chosen] - softmax(logits[v])[c]
    for (int64_t c = 0; c < 5; ++c) {
      const double g = (c == draw[static_cast<size_t>(v)] ? 1.0 : 0.0) - std::exp(l[v][c]) / z;
      EXPECT_NEAR(logits.grad()[v][c].item<double>(), g, 1e-12) << "variable " << v << " option " << c;
    }
  }
  EXPECT_NEAR(lp.item<double>(), expected, 1e-12);
  // Uniform logits: log p = 6 log(1/5), entropy 6 log 5.
  const auto zeros = torch::zeros({6, 5}, torch::kFloat64);
  EXPECT_NEAR(dist.log_prob(zeros, draw).item<double>(), 6 * std::log(0.2), 1e-12);
  EXPECT_NEAR(dist.entropy(zeros).item<double>(), 6 * std::log(5.0), 1e-12);
}

TEST(ParsecDistribution, DartsVariablesPickInputOperationPairsAndIgnoreThePadding) {
  auto net = tiny("darts", 0);
  const ArchCategoricals dist("darts", net->arch_shape());
  // 2 groups x 4 nodes x 2 input slots; node n (0-based) has n + 2 inputs x 8 operations.
  ASSERT_EQ(dist.variables(), 16);
  ASSERT_EQ(dist.max_options(), 5 * 8);
  EXPECT_EQ(dist.variable_list()[0].name, "normal/node2/input1");
  EXPECT_EQ(dist.variable_list()[0].options.size(), 16u);
  EXPECT_EQ(dist.variable_list()[7].options.size(), 40u);
  auto logits = torch::randn({16, 40}, torch::kFloat64).set_requires_grad(true);
  const auto lp = dist.log_probs(logits);
  // Each variable's probabilities sum to 1 over its real options; the padding has probability 0.
  for (int64_t v = 0; v < 16; ++v) {
    const int64_t n = static_cast<int64_t>(dist.variable_list()[static_cast<size_t>(v)].options.size());
    EXPECT_NEAR(lp[v].narrow(0, 0, n).exp().sum().item<double>(), 1.0, 1e-12);
    if (n < 40) {
      EXPECT_TRUE(torch::isinf(lp[v].narrow(0, n, 40 - n)).all().item<bool>());
    }
  }
  ArchDraw draw(16, 3);
  dist.log_prob(logits, draw).backward();
  EXPECT_EQ(logits.grad()[0].narrow(0, 16, 24).abs().max().item<double>(), 0.0);
  // The entropy is finite (0 log 0 on the padding is 0).
  EXPECT_TRUE(std::isfinite(dist.entropy(logits).item<double>()));
  // A draw past a variable's options is refused, naming it.
  ArchDraw bad(16, 0);
  bad[0] = 16;
  EXPECT_NE(test::error_of([&] { dist.log_prob(logits, bad); }).find("normal/node2/input1"), std::string::npos);
}

TEST(ParsecDistribution, SampleFrequenciesMatchTheProbabilities) {
  auto net = tiny("darts", 0);
  const ArchCategoricals dist("darts", net->arch_shape());
  torch::manual_seed(5);
  const auto logits = torch::randn({dist.variables(), dist.max_options()}, torch::kFloat64) * 1.5;
  const auto probs = dist.log_probs(logits).exp();
  const int n = 8000;
  auto counts = torch::zeros_like(probs);
  auto c = counts.accessor<double, 2>();
  for (int i = 0; i < n; ++i) {
    const auto d = dist.sample(probs, RngKey(1).with(static_cast<uint64_t>(i)));
    for (size_t v = 0; v < d.size(); ++v) c[static_cast<int64_t>(v)][d[v]] += 1;
  }
  const auto freq = counts / n;
  const auto sigma = (probs * (1 - probs) / n).sqrt();
  // Within 5 sigma everywhere (and never on the padding, where sigma is 0).
  EXPECT_TRUE(((freq - probs).abs() <= 5 * sigma + 1e-12).all().item<bool>())
      << "worst |freq - p| / sigma " << ((freq - probs).abs() / (sigma + 1e-12)).max().item<double>();
  // The same key draws the same architecture.
  EXPECT_EQ(dist.sample(probs, RngKey(9)), dist.sample(probs, RngKey(9)));
}

TEST(ParsecDistribution, MostProbableArchitecturesAgreeWithBruteForce) {
  const ArchCategoricals dist("nb201", nb201_shape());
  torch::manual_seed(2);
  const auto logits = torch::randn({6, 5}, torch::kFloat64) * 2;
  const auto lp = dist.log_probs(logits);
  const auto a = lp.accessor<double, 2>();
  std::vector<double> all;
  for (int64_t i = 0; i < 15625; ++i) {
    int64_t r = i;
    double s = 0;
    for (int64_t v = 0; v < 6; ++v, r /= 5) s += a[v][r % 5];
    all.push_back(s);
  }
  std::sort(all.rbegin(), all.rend());
  const auto top = dist.most_probable(logits, 25);
  ASSERT_EQ(top.size(), 25u);
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_NEAR(top[i].second, all[i], 1e-12) << "rank " << i;
    EXPECT_NEAR(dist.log_prob(logits, top[i].first).item<double>(), top[i].second, 1e-12);
  }
  // Distinct architectures; the first is the mode.
  for (size_t i = 1; i < top.size(); ++i) EXPECT_NE(top[i].first, top[0].first);
  EXPECT_EQ(dist.mode(logits), top[0].first);
  EXPECT_EQ(dist.most_probable(torch::zeros({6, 5}), 100000).size(), 15625u);  // no more than exist
}

TEST(ParsecDistribution, DescriptionsUseTheSpacesNotation) {
  const ArchCategoricals nb("nb201", nb201_shape());
  EXPECT_EQ(nb.describe({3, 3, 1, 0, 2, 4}),
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|");
  auto net = tiny("darts", 0);
  const ArchCategoricals darts("darts", net->arch_shape());
  // Option i * 8 + o of a variable: input i, operation o (kDartsOps order).
  ArchDraw d(16, 0);
  d[0] = 4;           // normal node 2, slot 1: sep_conv_3x3 from input 0
  d[1] = 8 + 3;       // slot 2: skip_connect from input 1
  d[2] = 2 * 8 + 4;   // node 3: sep_conv_3x3 from node 2
  d[3] = 2 * 8 + 4;   // and again (both slots may pick the same pair)
  const std::string text = darts.describe(d);
  EXPECT_EQ(text.rfind("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 2), "
                       "('sep_conv_3x3', 2), ('none', 0), ('none', 0)",
                       0),
            0u)
      << text;
}

// --- 2. importance weights -----------------------------------------------------------------------

TEST(ParsecImportanceWeights, EqualTheDirectComputation) {
  const auto ll = torch::tensor({-3.0, -1.5, -2.25, -7.0}, torch::kFloat64);
  const auto w = importance_weights(ll);
  double z = 0;
  for (int i = 0; i < 4; ++i) z += std::exp(ll[i].item<double>());
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(w[i].item<double>(), std::exp(ll[i].item<double>()) / z, 1e-15);
}

TEST(ParsecImportanceWeights, StayFiniteForVeryNegativeLogLikelihoods) {
  // A whole batch's log-likelihood is easily -1e5: exp underflows to 0 and a naive ratio is 0/0.
  const auto ll = torch::tensor({-100000.0, -100001.0, -100003.0, -250000.0}, torch::kFloat64);
  ASSERT_EQ(torch::exp(ll).sum().item<double>(), 0.0);  // the naive computation fails
  const auto w = importance_weights(ll);
  ASSERT_TRUE(torch::isfinite(w).all().item<bool>());
  const double z = 1 + std::exp(-1.0) + std::exp(-3.0);
  EXPECT_NEAR(w[0].item<double>(), 1 / z, 1e-12);
  EXPECT_NEAR(w[1].item<double>(), std::exp(-1.0) / z, 1e-12);
  EXPECT_NEAR(w[2].item<double>(), std::exp(-3.0) / z, 1e-12);
  EXPECT_EQ(w[3].item<double>(), 0.0);
  EXPECT_NEAR(w.sum().item<double>(), 1.0, 1e-15);
}

// --- 3. single-path execution in the DARTS space ------------------------------------------------

TEST(ParsecPaths, OnlyTheSampledPathsRunAndARepeatedPathCountsTwice) {
  auto net = tiny("darts", 3);
  net->train();
  const ArchCategoricals dist("darts", net->arch_shape());
  torch::manual_seed(4);
  const auto x = torch::randn({4, 3, 8, 8});
  const auto probs = dist.log_probs(torch::zeros({dist.variables(), dist.max_options()})).exp().to(torch::kFloat64);
  for (uint64_t key = 0; key < 3; ++key) {
    auto draw = dist.sample(probs, RngKey(key));
    draw[2] = draw[3] = 2 * 8 + 4;  // normal node 3 takes sep_conv_3x3 from node 2 twice
    const auto arch = dist.arch_sample(draw);
    // The dense forward with the number of times each path was drawn as its weight computes the same.
    std::vector<torch::Tensor> counts;
    for (const auto& g : net->arch_shape()) counts.push_back(torch::zeros({g.edges(), g.num_ops()}));
    for (size_t g = 0; g < 2; ++g)
      for (const auto& p : arch.paths[g]) counts[g][p.edge][p.op] += 1;
    EXPECT_EQ(counts[0][2 + 2][4].item<float>(), 2.0f);  // edge 4 is 3<-2
    net->zero_grad(/*set_to_none=*/true);
    const auto out = net->forward(x, arch);
    {
      torch::NoGradGuard no_grad;
      const auto dense = net->forward(x, ArchSample::dense(counts));
      EXPECT_TRUE(torch::allclose(out.detach(), dense, 1e-4, 1e-5))
          << "max |difference| " << (out.detach() - dense).abs().max().item<double>();
    }
    out.square().sum().backward();
    // An operation's parameters get a gradient exactly when a path ran it.
    for (const auto& kv : net->named_parameters()) {
      const auto& name = kv.key();
      const auto pos = name.find(".edge");
      if (pos == std::string::npos) continue;
      const auto underscore = name.find('_', pos);
      const int64_t edge = std::stoll(name.substr(pos + 5, underscore - pos - 5));
      const std::string op = name.substr(underscore + 1, name.find('.', underscore) - underscore - 1);
      const std::string cell = name.substr(0, pos);
      const bool reduce = cell == "cell1" || cell == "cell2";  // 3 cells: reductions at 1 and 2
      const auto& ops = net->arch_shape()[reduce ? 1 : 0].ops;
      const int64_t k = std::find(ops.begin(), ops.end(), op) - ops.begin();
      bool ran = false;
      for (const auto& p : arch.paths[reduce ? 1 : 0]) ran = ran || (p.edge == edge && p.op == k);
      EXPECT_EQ(kv.value().grad().defined(), ran) << name;
    }
  }
}

TEST(ParsecPaths, PathProbabilitiesAverageTheSlotsAndGiveADartsGenotype) {
  auto net = tiny("darts", 0);
  const ArchCategoricals dist("darts", net->arch_shape());
  // Normal node 2: slot 1 certain of (input 1, sep_conv_3x3), slot 2 of (input 0, skip_connect).
  auto logits = torch::zeros({16, 40});
  logits[0][8 + 4] = 50;
  logits[1][3] = 50;
  const auto w = dist.path_probabilities(logits);
  ASSERT_EQ(w.size(), 2u);
  ASSERT_EQ(w[0].sizes(), (std::vector<int64_t>{14, 8}));
  // Every node's entries sum to 1 (edges of node n: from sum_{m<n}(m+2)).
  int64_t first = 0;
  for (int64_t node = 0; node < 4; ++node) {
    EXPECT_NEAR(w[0].narrow(0, first, node + 2).sum().item<double>(), 1.0, 1e-5) << "node " << node;
    first += node + 2;
  }
  EXPECT_NEAR(w[0][1][4].item<double>(), 0.5, 1e-5);
  EXPECT_NEAR(w[0][0][3].item<double>(), 0.5, 1e-5);
  const auto g = net->derive(w);
  EXPECT_EQ(g.text.rfind("Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1)", 0), 0u) << g.text;
}

// --- 4. the update rule --------------------------------------------------------------------------

// A toy supernet with the NB201 edge structure: edge e gates feature block e of a linear classifier,
// which passes only when the edge chose operation best(e); the label depends on every block, so
// each wrong operation costs likelihood and the best architecture is known.
class GatedLinear : public Supernet {
 public:
  static int64_t best(int64_t e) { return (e * 2 + 1) % 5; }
  GatedLinear() : shape_(nb201_shape()) { fc_ = register_module("fc", torch::nn::Linear(12, 2)); }
  torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) override {
    auto mask = torch::zeros({12});
    for (int64_t e = 0; e < 6; ++e)
      if (arch.choices[0][static_cast<size_t>(e)] == best(e)) mask.narrow(0, 2 * e, 2).fill_(1);
    return fc_->forward(x * mask);
  }
  const ArchShape& arch_shape() const override { return shape_; }
  std::string space_name() const override { return "nb201"; }

 private:
  ArchShape shape_;
  torch::nn::Linear fc_{nullptr};
};

std::vector<Batch> toy_batch(uint64_t seed, int64_t n) {
  auto gen = make_generator(RngKey(seed));
  const auto x = torch::randn({n, 12}, gen, torch::kFloat32);
  const auto y = (x.sum(1) > 0).to(torch::kInt64);
  Batch b;
  b.x = x, b.y = y, b.index = 0, b.global = n;
  return {b};
}

// Steps [from, from + steps) of `m` on fresh toy batches of `n` examples, keyed by the step.
void toy_steps(Parsec& m, int64_t from, int64_t steps, int64_t n = 64) {
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = RngKey(2);
  for (int64_t s = from; s < from + steps; ++s) {
    ctx.global_step = s;
    m.step(toy_batch(2 * static_cast<uint64_t>(s), n), toy_batch(2 * static_cast<uint64_t>(s) + 1, n), ctx, metrics);
  }
}

TEST(ParsecUpdate, WarmUpDefaultsToThreeTenthsOfTheEpochsUnlessSet) {
  EXPECT_EQ(parsec_warmup_epochs(-1, 0, 10), 3);    // the quick start's 10 epochs: 3
  EXPECT_EQ(parsec_warmup_epochs(-1, 0, 100), 30);
  EXPECT_EQ(parsec_warmup_epochs(-1, 0, 11), 4);     // rounded up
  EXPECT_EQ(parsec_warmup_epochs(-1, 0, 2), 1);
  EXPECT_EQ(parsec_warmup_epochs(-1, 0, 1), 0);      // pi keeps at least the last epoch
  EXPECT_EQ(parsec_warmup_epochs(-1, 10, 100), 10);  // search.warmup_epochs where set (the NB201 config's 10)
  EXPECT_EQ(parsec_warmup_epochs(-1, 0, 0), 0);
  EXPECT_EQ(parsec_warmup_epochs(0, 5, 10), 0);     // parsec.warmup_epochs = 0: none, as the paper
  EXPECT_EQ(parsec_warmup_epochs(4, 0, 10), 4);
}

TEST(ParsecUpdate, TheDistributionConcentratesOnTheBestOperationOfEveryEdge) {
  torch::manual_seed(0);
  auto net = std::make_shared<GatedLinear>();
  ParsecOptions o;
  o.weights.lr = 0.5, o.weights.momentum = 0.9, o.weights.weight_decay = 0, o.lr_min = 0.5;
  o.arch.lr = 0.05;
  o.samples = 8;
  Parsec m(net, o, RngKey(1));
  m.begin_epoch(0, 1);
  const auto uniform = m.scalars();
  toy_steps(m, 0, 300);
  const auto p = m.expected_weights()[0];
  for (int64_t e = 0; e < 6; ++e)
    EXPECT_GT(p[e][GatedLinear::best(e)].item<double>(), 0.9) << "edge " << e << ": " << p[e];
  ArchDraw best;
  for (int64_t e = 0; e < 6; ++e) best.push_back(GatedLinear::best(e));
  EXPECT_EQ(m.distribution().mode(m.logits()), best);
  const auto g = m.derive();
  for (int64_t e = 0; e < 6; ++e) EXPECT_EQ(g.edges[static_cast<size_t>(e)].op, kNb201Ops[static_cast<size_t>(GatedLinear::best(e))]);
  // The entropy fell from the uniform distribution's 6 log 5.
  EXPECT_NEAR(uniform[1].second, 6 * std::log(5.0), 1e-5);
  EXPECT_LT(m.scalars()[1].second, 0.3 * 6 * std::log(5.0));
}

TEST(ParsecUpdate, WithoutImportanceWeightsTheDistributionDoesNotLearn) {
  // The same problem in weight-only warm-up: w_k = 1/K and pi stays uniform, so the concentration
  // above comes from the importance weights.
  torch::manual_seed(0);
  auto net = std::make_shared<GatedLinear>();
  ParsecOptions o;
  o.arch.lr = 0.05;
  o.warmup_epochs = 1;
  Parsec m(net, o, RngKey(1));
  m.begin_epoch(0, 2);
  EXPECT_FALSE(m.updates_architecture());
  toy_steps(m, 0, 20);
  EXPECT_EQ(m.logits().abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(m.last_weights(), torch::full({8}, 0.125, torch::kFloat64)));
  m.begin_epoch(1, 2);
  EXPECT_TRUE(m.updates_architecture());
}

TEST(ParsecUpdate, ImportanceWeightsOfAStepAreTheNormalisedValidationLikelihoods) {
  torch::manual_seed(0);
  auto net = std::make_shared<GatedLinear>();
  ParsecOptions o;
  o.weights.lr = 0;  // nothing moves, so the likelihoods can be recomputed after the step
  o.weights.momentum = 0, o.weights.weight_decay = 0, o.lr_min = 0;
  o.samples = 6;
  Parsec m(net, o, RngKey(1));
  m.begin_epoch(0, 1);
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = RngKey(5);
  ctx.global_step = 3;
  const auto val = toy_batch(11, 32);
  const auto draws = m.step_draws(ctx);
  m.step(toy_batch(10, 32), val, ctx, metrics);
  std::vector<double> ll;
  torch::NoGradGuard no_grad;
  for (const auto& d : draws) {
    const auto logits = net->forward(val[0].x, m.distribution().arch_sample(d));
    ll.push_back(-torch::nn::functional::cross_entropy(
                      logits, val[0].y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .item<double>());
  }
  const double top = *std::max_element(ll.begin(), ll.end());
  double z = 0;
  for (double v : ll) z += std::exp(v - top);
  for (size_t k = 0; k < ll.size(); ++k)
    EXPECT_NEAR(m.last_weights()[static_cast<int64_t>(k)].item<double>(), std::exp(ll[k] - top) / z, 1e-6) << k;
}

TEST(ParsecUpdate, AResumeKeepsTheWarmUpItBeganWith) {
  ParsecOptions o;
  o.arch.lr = 0.05;
  o.warmup_epochs = 1;
  torch::manual_seed(0);
  auto net_a = std::make_shared<GatedLinear>();
  Parsec a(net_a, o, RngKey(1));
  a.begin_epoch(0, 10);
  toy_steps(a, 0, 2, 32);
  ckpt::State state;
  a.save(state.group("method"), state.group("optim"));
  // Does pi move in epoch 2 of a search resumed from `method` with these options?
  auto moves = [&](const ParsecOptions& options, const ckpt::State& method) {
    torch::manual_seed(0);
    auto net = std::make_shared<GatedLinear>();
    Parsec b(net, options, RngKey(1));
    b.load(method, state.group("optim"));
    b.begin_epoch(2, 50);
    const auto before = b.logits().detach().clone();
    toy_steps(b, 2, 2, 32);
    return !torch::equal(before, b.logits());
  };
  // search.epochs raised on resume: the default would now resolve to a longer warm-up; the checkpoint's 1 holds.
  ParsecOptions longer = o;
  longer.warmup_epochs = 15;
  EXPECT_TRUE(moves(longer, state.group("method")));
  // A checkpoint from before parsec.warmup_epochs: the warm-up is search.warmup_epochs as it was then.
  ckpt::State old;
  old.group("method").put("logits", state.group("method").get("logits"));
  old.group("method").put_lines("variables", state.group("method").lines("variables"));
  longer.legacy_warmup_epochs = 0;
  EXPECT_TRUE(moves(longer, old.group("method")));
  longer.legacy_warmup_epochs = 3;
  EXPECT_FALSE(moves(longer, old.group("method")));
}

TEST(ParsecUpdate, SaveAndLoadRestoreEverythingTheNextStepUses) {
  ParsecOptions o;
  o.arch.lr = 0.05;
  torch::manual_seed(0);
  auto net_a = std::make_shared<GatedLinear>();
  Parsec a(net_a, o, RngKey(1));
  a.begin_epoch(0, 2);
  toy_steps(a, 0, 5, 32);
  ckpt::State state;
  a.save(state.group("method"), state.group("optim"));
  torch::manual_seed(9);
  auto net_b = std::make_shared<GatedLinear>();
  {
    torch::NoGradGuard guard;
    auto src = net_a->named_parameters(), dst = net_b->named_parameters();
    for (const auto& kv : src) dst[kv.key()].copy_(kv.value());
  }
  Parsec b(net_b, o, RngKey(1));
  b.load(state.group("method"), state.group("optim"));
  b.begin_epoch(0, 2);
  EXPECT_TRUE(torch::equal(a.logits(), b.logits()));
  toy_steps(a, 5, 3, 32);
  toy_steps(b, 5, 3, 32);
  EXPECT_TRUE(torch::equal(a.logits(), b.logits()));
  auto pa = net_a->parameters(), pb = net_b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "weight " << i;
  // A checkpoint of another space is refused, naming the key.
  auto darts_net = tiny("darts", 0);
  Parsec other(darts_net, o, RngKey(1));
  EXPECT_NE(test::error_of([&] { other.load(state.group("method"), state.group("optim")); }).find("logits"),
            std::string::npos);
}

TEST(ParsecUpdate, StepsRunOnBothSpaces) {
  for (const std::string space : {"nb201", "darts"}) {
    auto net = tiny(space, 1);
    ParsecOptions o;
    o.samples = 2;
    Parsec m(net, o, RngKey(1));
    m.begin_epoch(0, 1);
    torch::manual_seed(3);
    Batch b;
    b.x = torch::randn({4, 3, 8, 8});
    b.y = torch::tensor({0, 1, 2, 3});
    b.global = 4;
    StepMetrics metrics;
    StepContext ctx;
    ctx.key = RngKey(4);
    const auto before = m.logits().detach().clone();
    m.step({b}, {b}, ctx, metrics);
    EXPECT_GT((m.logits().detach() - before).abs().max().item<double>(), 0.0) << space;
    const auto v = metrics.read();
    EXPECT_EQ(v.train_count, 8) << space;  // 2 samples x 4 images
    EXPECT_EQ(v.val_count, 8) << space;
    EXPECT_FALSE(m.derive().text.empty());
    EXPECT_NE(m.report_json().find("most_probable"), std::string::npos);
  }
}

}  // namespace
}  // namespace probnas
