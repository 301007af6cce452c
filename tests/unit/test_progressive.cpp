// Partial channels and DrNAS progressive learning: the partial-channel edge against its definition
// (K = 1 is the plain mixed op; K > 1 slices, bypasses and shuffles), widening by the random
// mapping (old weights kept, new channels copies of mapped ones, the same map through a layer
// pair), pruning to the strongest operations by concentration, momentum carried through a stage
// change, and a progressive method saved and restored across a stage boundary.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "probnas/ckpt/state.h"
#include "probnas/core/config.h"
#include "probnas/ckpt/torch_state.h"
#include "probnas/method/darts/darts.h"
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/progressive.h"
#include "probnas/space/darts_space.h"
#include "test_support.h"

namespace probnas {
namespace {

const BnOptions kSearchBn{false, true};

// `fn` fails with a probnas::Error whose message holds every one of `parts`.
template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  const std::string message = test::error_of(fn);
  for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

int64_t op_index(const std::string& name) {
  return std::find(kDartsOps.begin(), kDartsOps.end(), name) - kDartsOps.begin();
}

// [14, 8] weights that put everything on `op` (on every edge).
torch::Tensor one_hot_weights(const std::string& op) {
  auto w = torch::zeros({DartsCell::kEdges, static_cast<int64_t>(kDartsOps.size())});
  w.select(1, op_index(op)).fill_(1.0);
  return w;
}

TEST(PartialChannels, KOneIsThePlainMixedOperation) {
  torch::manual_seed(3);
  DartsCell cell(6, 6, 4, /*reduction=*/false, /*reduction_prev=*/false, kSearchBn, kDartsOps, 1);
  const auto x = torch::randn({2, 4, 6, 6});
  const auto w = torch::softmax(torch::randn({DartsCell::kEdges, 8}), -1);
  for (int64_t e : {0, 4, 13}) {
    torch::Tensor expected = torch::zeros({2, 4, 6, 6});
    for (size_t k = 1; k < kDartsOps.size(); ++k) expected += w[e][static_cast<int64_t>(k)] * cell.edge(e)[k]->forward(x);
    EXPECT_TRUE(torch::allclose(cell.edge_output(e, x, w, nullptr), expected, 1e-5, 1e-6)) << "edge " << e;
  }
}

TEST(PartialChannels, OnlyTheFirstChannelsGoThroughAndTheRestAreShuffledIn) {
  torch::manual_seed(4);
  constexpr int64_t C = 6, K = 3, part = C / K;
  DartsCell cell(C, C, C, false, false, kSearchBn, kDartsOps, K);
  // The operations are built for C/K channels.
  EXPECT_EQ(cell.edge(0)[static_cast<size_t>(op_index("sep_conv_3x3"))]->parameters().front().size(0), part);
  const auto x = torch::randn({2, C, 5, 5});
  // All weight on skip_connect (identity at stride 1): the edge is a pure channel permutation.
  // Channel shuffle in K groups sends concatenated channel g*(C/K)+r to r*K+g.
  const auto y = cell.edge_output(2, x, one_hot_weights("skip_connect"), nullptr);
  ASSERT_EQ(y.sizes(), x.sizes());
  for (int64_t g = 0; g < K; ++g)
    for (int64_t r = 0; r < part; ++r) EXPECT_TRUE(torch::equal(y.select(1, r * K + g), x.select(1, g * part + r)));

  // With avg_pool only the first C/K channels change; the bypassed ones arrive untouched.
  const auto pooled = cell.edge_output(2, x, one_hot_weights("avg_pool_3x3"), nullptr);
  const auto through = cell.edge(2)[static_cast<size_t>(op_index("avg_pool_3x3"))]->forward(x.narrow(1, 0, part));
  for (int64_t g = 0; g < K; ++g)
    for (int64_t r = 0; r < part; ++r) {
      const auto expected = g == 0 ? through.select(1, r) : x.select(1, g * part + r);
      EXPECT_TRUE(torch::allclose(pooled.select(1, r * K + g), expected, 1e-6, 1e-6)) << g << " " << r;
    }
}

TEST(PartialChannels, ReductionEdgesMaxPoolTheBypassedChannels) {
  torch::manual_seed(5);
  constexpr int64_t C = 4, K = 2;
  DartsCell cell(C, C, C, /*reduction=*/true, false, kSearchBn, kDartsOps, K);
  const auto x = torch::randn({2, C, 8, 8});
  const auto y = cell.edge_output(0, x, one_hot_weights("max_pool_3x3"), nullptr);  // edge 2<-0: stride 2
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, C, 4, 4}));
  const auto bypass = torch::max_pool2d(x.narrow(1, C / K, C - C / K), {2, 2}, {2, 2});
  for (int64_t r = 0; r < C / K; ++r) EXPECT_TRUE(torch::equal(y.select(1, r * K + 1), bypass.select(1, r)));
  // And the whole cell halves the resolution with the cell's output width.
  EXPECT_EQ(cell.forward(x, x, one_hot_weights("sep_conv_3x3"), nullptr).sizes(),
            (std::vector<int64_t>{2, 4 * C, 4, 4}));
}

TEST(PartialChannels, KMustDivideTheChannels) {
  SpaceOptions o;
  o.space = "darts", o.channels = 16, o.cells = 3, o.partial_channels = 6;
  expect_error([&] { make_supernet(o); }, {"space.partial_channels = 6", "space.channels = 16"});
  o.space = "nb201", o.partial_channels = 2;
  expect_error([&] { make_supernet(o); }, {"space.partial_channels = 2", "DARTS space"});
}

// --- widening ------------------------------------------------------------------------------------

// Every slice of `after` along `dim` at index >= old size equals some slice of `after` below the
// old size, the slices below the old size are `before`'s; returns the source of each new slice.
std::vector<int64_t> check_widened(const torch::Tensor& before, const torch::Tensor& after, int64_t dim,
                                   const std::string& what) {
  const int64_t old_n = before.size(dim), new_n = after.size(dim);
  std::vector<int64_t> sources;
  EXPECT_TRUE(torch::equal(after.narrow(dim, 0, old_n), before)) << what << ": old channels changed";
  for (int64_t j = old_n; j < new_n; ++j) {
    int64_t source = -1;
    for (int64_t i = 0; i < old_n && source < 0; ++i)
      if (torch::equal(after.select(dim, j), after.select(dim, i))) source = i;
    EXPECT_GE(source, 0) << what << ": new channel " << j << " copies no old channel";
    sources.push_back(source);
  }
  return sources;
}

TEST(Widening, DilConvCopiesOldChannelsWithOneMapThroughItsLayers) {
  torch::manual_seed(6);
  DilConv op(4, 4, 3, 1, 2, 2, kSearchBn);
  auto params = op.named_parameters();
  const auto dw = params["body.1.weight"].clone(), pw = params["body.2.weight"].clone();
  Widener widener(RngKey(1));
  op.widen(8, widener);
  params = op.named_parameters();
  const auto dw2 = params["body.1.weight"], pw2 = params["body.2.weight"];
  ASSERT_EQ(dw2.sizes(), (std::vector<int64_t>{8, 1, 3, 3}));
  ASSERT_EQ(pw2.sizes(), (std::vector<int64_t>{8, 8, 1, 1}));
  // The depthwise kernels of new channels are copies; the pointwise input columns of those
  // channels copy the same source (one map g for the pair of layers).
  const auto sources = check_widened(dw, dw2, 0, "depthwise");
  const auto pw_in = pw2.narrow(0, 0, 4);  // old output rows, widened inputs
  check_widened(pw, pw_in.narrow(1, 0, 4), 1, "pointwise old block");
  for (size_t j = 0; j < sources.size(); ++j)
    EXPECT_TRUE(torch::equal(pw_in.select(1, 4 + static_cast<int64_t>(j)), pw.select(1, sources[j])))
        << "pointwise input " << 4 + j << " does not follow the depthwise map";
  check_widened(pw2.narrow(1, 0, 4).narrow(0, 0, 4), pw2.narrow(1, 0, 4), 0, "pointwise output rows");
}

// Zero-extended input: the old channels' outputs are exactly the unwidened operation's, and each
// new output channel is a copy of an old one (the copy part of the mapping preserves the function).
// FactorizedReduce concatenates two half-width paths, so its old channels sit at 0,1 and 4,5 of 8.
void expect_function_copied(const std::string& name, int64_t stride) {
  torch::manual_seed(7);
  auto op = make_darts_op(name, 4, stride, kSearchBn);
  op->train();
  const auto x = torch::randn({3, 4, 8, 8});
  const auto before = op->forward(x).detach();
  Widener widener(RngKey(2));
  op->widen(8, widener);
  const auto after = op->forward(torch::cat({x, torch::zeros_like(x)}, 1)).detach();
  ASSERT_EQ(after.size(1), 8) << name;
  const bool halves = name == "skip_connect";
  const std::vector<int64_t> old_at = halves ? std::vector<int64_t>{0, 1, 4, 5} : std::vector<int64_t>{0, 1, 2, 3};
  const std::vector<int64_t> new_at = halves ? std::vector<int64_t>{2, 3, 6, 7} : std::vector<int64_t>{4, 5, 6, 7};
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(torch::allclose(after.select(1, old_at[i]), before.select(1, static_cast<int64_t>(i)), 1e-5, 1e-6))
        << name << " stride " << stride << ": old channel " << i << " changed";
  if (op->parameters().empty()) return;  // pools: new channels pool the (zero) new inputs
  for (size_t n = 0; n < 4; ++n) {
    // A new channel copies an old channel of its own path (FactorizedReduce) or any old channel.
    bool copy = false;
    for (size_t i = 0; i < 4 && !copy; ++i) {
      if (halves && (i < 2) != (n < 2)) continue;
      copy = torch::allclose(after.select(1, new_at[n]), after.select(1, old_at[i]), 1e-5, 1e-6);
    }
    EXPECT_TRUE(copy) << name << ": output channel " << new_at[n] << " copies no old channel";
  }
}

TEST(Widening, DilConvPoolsAndFactorizedReduceKeepTheOldChannelsFunction) {
  for (const char* op : {"dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3", "avg_pool_3x3"})
    for (int64_t stride : {1, 2}) expect_function_copied(op, stride);
  expect_function_copied("skip_connect", 2);  // FactorizedReduce
}

TEST(Widening, SepConvWidensEveryLayerAndStillRuns) {
  torch::manual_seed(8);
  auto op = make_darts_op("sep_conv_3x3", 4, 1, kSearchBn);
  std::map<std::string, torch::Tensor> before;
  for (const auto& kv : op->named_parameters()) before[kv.key()] = kv.value().clone();
  Widener widener(RngKey(3));
  op->widen(12, widener);
  for (const auto& kv : op->named_parameters()) {
    const auto& old = before.at(kv.key());
    for (int64_t d = 0; d < 2; ++d) {
      if (old.size(d) == 1) continue;  // depthwise input dimension
      ASSERT_EQ(kv.value().size(d), 12) << kv.key();
    }
    // The old block is untouched.
    auto block = kv.value();
    for (int64_t d = 0; d < 2; ++d) block = block.narrow(d, 0, old.size(d));
    EXPECT_TRUE(torch::equal(block, old)) << kv.key();
  }
  EXPECT_EQ(op->forward(torch::randn({2, 12, 6, 6})).sizes(), (std::vector<int64_t>{2, 12, 6, 6}));
}

TEST(Widening, IsKeyedAndRecordsTheExpansionForOptimiserState) {
  auto w1 = torch::randn({3, 5}), w2 = w1.clone();
  Widener a(RngKey(9)), b(RngKey(9)), c(RngKey(10));
  const auto m1 = a.mapping(3, 7), m2 = b.mapping(3, 7), m3 = c.mapping(3, 7);
  EXPECT_TRUE(torch::equal(m1, m2));
  EXPECT_TRUE(torch::equal(m1.narrow(0, 0, 3), torch::arange(3)));
  EXPECT_GE(m1.min().item<int64_t>(), 0);
  EXPECT_LT(m1.max().item<int64_t>(), 3);
  EXPECT_FALSE(torch::equal(m1, m3) && torch::equal(c.mapping(3, 7), a.mapping(3, 7)));
  const auto impl = w1.unsafeGetTensorImpl();
  a.expand(w1, 0, m1);
  EXPECT_EQ(w1.unsafeGetTensorImpl(), impl);  // same tensor object, new shape
  EXPECT_EQ(w1.sizes(), (std::vector<int64_t>{7, 5}));
  const auto momentum = torch::randn({3, 5});
  const auto widened = a.apply(w1, momentum);
  for (int64_t j = 0; j < 7; ++j) {
    EXPECT_TRUE(torch::equal(widened[j], momentum[m1[j].item<int64_t>()]));
    EXPECT_TRUE(torch::equal(w1[j], w2[m1[j].item<int64_t>()]));
  }
}

// --- pruning and stages --------------------------------------------------------------------------

std::shared_ptr<Supernet> tiny_darts(int64_t k) {
  torch::manual_seed(11);
  SpaceOptions o;
  o.space = "darts", o.channels = 4, o.cells = 3, o.input_channels = 3, o.classes = 4, o.partial_channels = k;
  return make_supernet(o);
}

GradientMethodOptions two_stages() {
  GradientMethodOptions o;
  o.stages = {{1, 2, 8}, {1, 1, 4}};
  return o;
}

TEST(Progressive, PruningKeepsTheStrongerHalfByConcentrationWithTiesToTheEarlierOperation) {
  auto net = tiny_darts(2);
  Drnas method(net, two_stages(), RngKey(1));
  torch::manual_seed(12);
  {
    torch::NoGradGuard guard;
    for (auto& eta : method.arch_parameters()) eta.copy_(torch::randn(eta.sizes()));
    // Edge 0 of the normal cell: a four-way tie for the last places.
    method.arch_parameters()[0][0].copy_(torch::tensor({5.0, 1.0, 1.0, 1.0, 1.0, 9.0, 9.0, 0.0}));
  }
  const int64_t weights_before = [&] {
    int64_t n = 0;
    for (const auto& p : net->parameters()) n += p.numel();
    return n;
  }();
  method.begin_epoch(0, 2);
  EXPECT_EQ(method.stage(), 0);
  method.begin_epoch(1, 2);  // the second stage starts here
  ASSERT_EQ(method.stage(), 1);
  ASSERT_EQ(method.masks().size(), 2u);
  for (size_t g = 0; g < 2; ++g) {
    const auto beta = torch::elu(method.arch_parameters()[g].detach()) + 1;
    for (int64_t e = 0; e < DartsCell::kEdges; ++e) {
      std::vector<int64_t> order(8);
      for (int64_t i = 0; i < 8; ++i) order[static_cast<size_t>(i)] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return beta[e][a].item<double>() > beta[e][b].item<double>(); });
      for (int64_t r = 0; r < 8; ++r)
        EXPECT_EQ(method.masks()[g][e][order[static_cast<size_t>(r)]].item<bool>(), r < 4) << g << " " << e;
    }
  }
  // The tie on edge 0: 9, 9, 5 and then the first of the 1.0s (operation 1).
  EXPECT_TRUE(torch::equal(method.masks()[0][0], torch::tensor({true, true, false, false, false, true, true, false})));
  // Pruned operations are gone from the network; their mixing weights are 0 and edges sum to 1.
  const auto probs = method.expected_weights();
  EXPECT_TRUE(torch::equal(probs[0] > 0, method.masks()[0]));
  EXPECT_TRUE(torch::allclose(probs[1].sum(-1), torch::ones({DartsCell::kEdges})));
  const auto sample = method.sample(RngKey(4));
  EXPECT_TRUE(torch::equal(sample.weights[1] > 0, method.masks()[1]));
  auto& cell = *std::dynamic_pointer_cast<DartsSupernet>(net)->cells()[0];
  for (size_t o = 0; o < 8; ++o) EXPECT_EQ(cell.edge(0)[o] != nullptr, method.masks()[0][0][static_cast<int64_t>(o)].item<bool>());
  EXPECT_EQ(net->partial_channels(), 1);
  EXPECT_EQ(cell.partial_channels(), 1);
  int64_t weights_after = 0;
  for (const auto& p : net->parameters()) weights_after += p.numel();
  // Half the operations at twice the width: fewer than twice the weights (the convs are 1/K wide).
  EXPECT_NE(weights_after, weights_before);
  const auto logits = net->forward(torch::randn({2, 3, 8, 8}), sample);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 4}));
}

struct TinyBatches {
  std::vector<Batch> train, val;
};

TinyBatches tiny_batches() {
  torch::manual_seed(13);
  TinyBatches b;
  for (int i = 0; i < 2; ++i) {
    Batch t{torch::randn({8, 3, 8, 8}), torch::randint(4, {8}), i, 16};
    Batch v{torch::randn({8, 3, 8, 8}), torch::randint(4, {8}), i, 16};
    b.train.push_back(t);
    b.val.push_back(v);
  }
  return b;
}

TEST(Progressive, MomentumFollowsTheWidenedWeightsAndARestoredStageContinuesIdentically) {
  const auto batches = tiny_batches();
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = RngKey(5);

  auto net = tiny_darts(2);
  Drnas method(net, two_stages(), RngKey(1));
  method.begin_epoch(0, 2);
  method.step(batches.train, batches.val, ctx, metrics);
  // Momentum of a sep_conv pointwise layer before the stage change.
  const std::string name = "cell0.edge0_sep_conv_3x3.body.2.weight";
  ckpt::State before_state;
  method.save(before_state, before_state.group("optim"));
  const auto momentum_before = before_state.group("optim").group("weights").group("momentum").get(name);
  method.begin_epoch(1, 2);
  ASSERT_EQ(method.stage(), 1);
  ctx.global_step = 1;

  // Save right after the stage change, restore into a fresh network and method.
  ckpt::State saved;
  save_module(saved.group("model"), *net);
  method.save(saved.group("method"), saved.group("optim"));
  if (method.masks()[0][0][op_index("sep_conv_3x3")].item<bool>()) {
    const auto widened = saved.group("optim").group("weights").group("momentum").get(name);
    EXPECT_EQ(widened.size(0), 2 * momentum_before.size(0));
    EXPECT_TRUE(torch::equal(widened.narrow(0, 0, momentum_before.size(0)).narrow(1, 0, momentum_before.size(1)),
                             momentum_before));
  }
  auto net2 = tiny_darts(2);
  Drnas restored(net2, two_stages(), RngKey(1));
  restored.restore_structure(saved.group("method"));
  load_module(saved.group("model"), *net2);
  restored.load(saved.group("method"), saved.group("optim"));
  restored.begin_epoch(1, 2);
  EXPECT_EQ(restored.stage(), 1);
  for (size_t g = 0; g < 2; ++g) EXPECT_TRUE(torch::equal(restored.masks()[g], method.masks()[g]));

  method.step(batches.train, batches.val, ctx, metrics);
  restored.step(batches.train, batches.val, ctx, metrics);
  const auto a = net->named_parameters(), b = net2->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& kv : a) EXPECT_TRUE(torch::equal(kv.value(), b[kv.key()])) << kv.key();
  for (size_t g = 0; g < 2; ++g) EXPECT_TRUE(torch::equal(method.arch_parameters()[g], restored.arch_parameters()[g]));
}

TEST(Progressive, ScheduleIsValidatedAgainstTheConfig) {
  OptionTable t;
  progressive_options().declare(t);
  Config c(t);
  SpaceOptions space;
  space.space = "darts";
  space.channels = 36;
  int64_t epochs = 50;
  auto stages_of = [&] { return progressive_stages(progressive_options().read(c), space, epochs, 7); };
  EXPECT_TRUE(stages_of().empty());
  c.set("progressive.k", "6, 3");
  c.set("progressive.epochs", "25,25");
  const auto stages = stages_of();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].keep, 7);
  EXPECT_EQ(stages[1].keep, 4);  // the stronger half, rounded up (DrNAS: 7 then 4)
  EXPECT_EQ(stages[1].k, 3);
  EXPECT_EQ(initial_partial_channels(progressive_options().read(c), 1), 6);
  expect_error([&] { initial_partial_channels(progressive_options().read(c), 2); },
               {"space.partial_channels = 2", "progressive.k = 6, 3"});
  epochs = 40;
  expect_error([&] { stages_of(); }, {"add up to 50", "search.epochs = 40"});
  epochs = 50;
  c.set("progressive.k", "3,6");
  expect_error([&] { stages_of(); }, {"K may only fall"});
  c.set("progressive.k", "5,3");
  expect_error([&] { stages_of(); }, {"K = 5", "space.channels = 36"});
  c.set("progressive.k", "6,x");
  expect_error([&] { stages_of(); }, {"progressive.k", "'x' is not an integer"});
  c.set("progressive.k", "6,3");
  c.set("progressive.keep", "6,4");
  expect_error([&] { stages_of(); }, {"must be 7"});
  space.space = "nb201";
  expect_error([&] { stages_of(); }, {"search.space = darts"});
}

}  // namespace
}  // namespace probnas

namespace probnas {
namespace {

// --- PC-DARTS edge normalisation -------------------------------------------------------------------

GradientMethodOptions with_edge_norm() {
  GradientMethodOptions o;
  o.edge_norm = true;
  return o;
}

TEST(EdgeNormalisation, EdgeWeightsAreASoftmaxOverEachNodesEdgesAndScaleTheEdges) {
  auto net = tiny_darts(1);
  Darts method(net, with_edge_norm(), RngKey(2));
  ASSERT_EQ(method.edge_parameters().size(), 2u);
  torch::manual_seed(14);
  {
    torch::NoGradGuard guard;
    for (auto& beta : method.edge_parameters()) beta.copy_(torch::randn(beta.sizes()) * 2);
  }
  const auto weights = method.edge_weights(false);
  const std::vector<std::pair<int64_t, int64_t>> nodes = {{0, 2}, {2, 3}, {5, 4}, {9, 5}};
  for (size_t g = 0; g < 2; ++g)
    for (const auto& [first, count] : nodes) {
      const auto beta = method.edge_parameters()[g].detach().narrow(0, first, count);
      EXPECT_TRUE(torch::allclose(weights[g].narrow(0, first, count), torch::softmax(beta, 0))) << first;
    }

  // A cell with edge weights equals the cell whose operation weights are multiplied by them.
  auto& cell = *std::dynamic_pointer_cast<DartsSupernet>(net)->cells()[0];
  const auto s = torch::randn({2, 12, 8, 8});
  const auto ops = torch::softmax(torch::randn({DartsCell::kEdges, 8}), -1);
  cell.eval();  // BN from running statistics: both passes see the same normalisation
  const auto scaled = cell.forward(s, s, ops, nullptr, weights[0]);
  const auto folded = cell.forward(s, s, ops * weights[0].unsqueeze(1), nullptr);
  EXPECT_TRUE(torch::allclose(scaled, folded, 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(scaled, cell.forward(s, s, ops, nullptr), 1e-3, 1e-4));
}

TEST(EdgeNormalisation, TheGenotypeKeepsTheEdgesTheEdgeWeightsFavour) {
  auto net = tiny_darts(1);
  Darts method(net, with_edge_norm(), RngKey(3));
  {
    torch::NoGradGuard guard;
    for (auto& a : method.arch_parameters()) a.zero_();
    // Node 2 (edges 0, 1): sep_conv_3x3 slightly stronger on the edge from input 0 ...
    method.arch_parameters()[0][0][op_index("sep_conv_3x3")].fill_(1.0);
    method.arch_parameters()[0][1][op_index("sep_conv_3x3")].fill_(0.9);
    // ... node 3 (edges 2, 3, 4): operations favour inputs 0 and 1, the edge weights input 2.
    method.arch_parameters()[0][2][op_index("max_pool_3x3")].fill_(3.0);
    method.arch_parameters()[0][3][op_index("max_pool_3x3")].fill_(3.0);
    method.arch_parameters()[0][4][op_index("dil_conv_3x3")].fill_(2.0);
    for (auto& b : method.edge_parameters()) b.zero_();
    method.edge_parameters()[0][4].fill_(4.0);
  }
  const auto g = method.derive();
  // Without edge weights node 3 would take max_pool from 0 and 1; with them dil_conv from 2 wins first.
  EXPECT_NE(g.text.find("normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('dil_conv_3x3', 2), ('max_pool_3x3', 0)"),
            std::string::npos)
      << g.text;
  const auto plain = net->derive(method.expected_weights());
  EXPECT_NE(plain.text.find("('max_pool_3x3', 0), ('max_pool_3x3', 1)"), std::string::npos) << plain.text;
}

TEST(EdgeNormalisation, EdgeParametersLearnAndSurviveSaveAndLoad) {
  const auto batches = tiny_batches();
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = RngKey(6);
  GradientMethodOptions o = with_edge_norm();
  o.arch.lr = 0.05;
  auto net = tiny_darts(1);
  Darts method(net, o, RngKey(4));
  method.begin_epoch(0, 1);
  const auto before = method.edge_parameters()[0].detach().clone();
  method.step(batches.train, batches.val, ctx, metrics);
  EXPECT_FALSE(torch::equal(before, method.edge_parameters()[0]));  // the architecture step reached beta
  ckpt::State saved;
  save_module(saved.group("model"), *net);
  method.save(saved.group("method"), saved.group("optim"));
  auto net2 = tiny_darts(1);
  Darts restored(net2, o, RngKey(99));
  load_module(saved.group("model"), *net2);
  restored.load(saved.group("method"), saved.group("optim"));
  for (size_t g = 0; g < 2; ++g) EXPECT_TRUE(torch::equal(restored.edge_parameters()[g], method.edge_parameters()[g]));
  restored.begin_epoch(0, 1);
  ctx.global_step = 1;
  method.step(batches.train, batches.val, ctx, metrics);
  restored.step(batches.train, batches.val, ctx, metrics);
  for (size_t g = 0; g < 2; ++g) EXPECT_TRUE(torch::equal(restored.edge_parameters()[g], method.edge_parameters()[g]));
}

}  // namespace
}  // namespace probnas
