// The DARTS search space: each primitive's shapes and gradients, the cell's parameter count
// against a count from the published compositions, the supernet's dense and discrete forward
// passes, DARTS's genotype derivation on hand-made weights with a known answer, and the ImageNet
// stem's resolutions and weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/space/darts_space.h"
#include "test_support.h"

namespace probnas {
namespace {

const BnOptions kSearchBn{false, true};

int64_t count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

class DartsPrimitive : public ::testing::TestWithParam<std::string> {};

TEST_P(DartsPrimitive, KeepsOrHalvesTheSizeWithStride) {
  torch::manual_seed(0);
  const auto x = torch::randn({2, 4, 8, 8});
  for (int64_t stride : {1, 2}) {
    auto op = make_darts_op(GetParam(), 4, stride, kSearchBn);
    const auto y = op->forward(x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 4, 8 / stride, 8 / stride})) << GetParam() << " stride " << stride;
    EXPECT_EQ(op->is_zero(), GetParam() == "none");
    if (GetParam() == "none") {
      EXPECT_EQ(y.abs().sum().item<double>(), 0.0);
    }
  }
}

class DartsPrimitiveGradient : public ::testing::TestWithParam<std::string> {};

TEST_P(DartsPrimitiveGradient, InputGradientMatchesFiniteDifferences) {
  torch::manual_seed(1);
  auto op = make_darts_op(GetParam(), 3, 1, kSearchBn);
  op->to(torch::kFloat64);
  const auto r = torch::randn({2, 3, 5, 5}, torch::kFloat64);
  auto x = torch::randn({2, 3, 5, 5}, torch::kFloat64).requires_grad_(true);
  auto f = [&](const torch::Tensor& in) { return (op->forward(in) * r).sum(); };
  f(x).backward();
  const auto grad = x.grad().clone();
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (int64_t i : {0, 7, 23, 49, 101, 149}) {
    auto xp = x.detach().clone(), xm = x.detach().clone();
    xp.view(-1)[i] += h;
    xm.view(-1)[i] -= h;
    const double numeric = (f(xp).item<double>() - f(xm).item<double>()) / (2 * h);
    // Max pooling is piecewise linear: away from ties the difference is exact to rounding.
    EXPECT_NEAR(grad.view(-1)[i].item<double>(), numeric, 1e-5 * (1 + std::abs(numeric))) << GetParam() << " at " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, DartsPrimitive, ::testing::ValuesIn(kDartsOps));
// `none` is identically zero: it has no gradient to check.
INSTANTIATE_TEST_SUITE_P(Ops, DartsPrimitiveGradient,
                         ::testing::ValuesIn(std::vector<std::string>(kDartsOps.begin() + 1, kDartsOps.end())));

TEST(DartsCell, ParameterCountMatchesThePublishedCompositions) {
  // Search-time BN has no parameters. Per stride-1 edge: sep_conv k: 2 x (C*k*k depthwise + C*C
  // pointwise); dil_conv k: C*k*k + C*C; pools, skip and none: 0.
  const int64_t C = 6, Cpp = 10, Cp = 14;
  const int64_t edge = 2 * (9 * C + C * C) + 2 * (25 * C + C * C) + (9 * C + C * C) + (25 * C + C * C);
  DartsCell normal(Cpp, Cp, C, false, false, kSearchBn);
  EXPECT_EQ(count(normal), Cpp * C + Cp * C + 14 * edge);
  // Reduction cell: the 8 edges from the two inputs have stride 2; their skip is a factorized
  // reduce (two 1x1 convs, C/2 output channels each: C*C). After a reduction the first input is
  // factorized-reduced too (C_pp * C).
  DartsCell reduce(Cpp, Cp, C, true, true, kSearchBn);
  EXPECT_EQ(count(reduce), Cpp * C + Cp * C + 14 * edge + 8 * C * C);
}

TEST(DartsSupernet, DenseAndDiscreteForwardAndShape) {
  torch::manual_seed(0);
  SpaceOptions o;
  o.space = "darts", o.channels = 4, o.cells = 5, o.input_channels = 1, o.classes = 7;
  auto net = make_supernet(o);
  EXPECT_EQ(net->space_name(), "darts");
  const auto& shape = net->arch_shape();
  ASSERT_EQ(shape.size(), 2u);
  EXPECT_EQ(shape[0].name, "normal");
  EXPECT_EQ(shape[1].name, "reduce");
  EXPECT_EQ(shape[0].edges(), 14);
  EXPECT_EQ(shape[0].edge_names[2], "3<-0");
  EXPECT_EQ(shape[0].edge_names[13], "5<-4");
  const auto x = torch::randn({2, 1, 12, 12});
  const auto w = torch::full({14, 8}, 1.0 / 8);
  const auto y = net->forward(x, ArchSample::dense({w, w}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7}));
  // Discrete: the derived genotype's choices run only the chosen operations.
  const Genotype g = net->derive({torch::rand({14, 8}), torch::rand({14, 8})});
  const auto choices = genotype_choices(g, shape);
  int64_t kept = 0;
  for (const auto& row : choices)
    for (int64_t k : row) kept += k != 0;
  EXPECT_EQ(kept, 16);  // two inputs for each of 4 nodes, in both cells
  EXPECT_EQ(net->forward(x, ArchSample::discrete(choices)).sizes(), (std::vector<int64_t>{2, 7}));
  // All-none everywhere still gives well-shaped (zero-feature) logits.
  const std::vector<int64_t> nothing(14, 0);
  EXPECT_EQ(net->forward(x, ArchSample::discrete({nothing, nothing})).sizes(), (std::vector<int64_t>{2, 7}));
  // Reductions at 1/3 and 2/3 of the depth: 5 cells -> cells 1 and 3; the classifier sees 4 * 4C channels.
  int64_t classifier_inputs = 0;
  for (const auto& kv : net->named_parameters())
    if (kv.key() == "classifier.weight") classifier_inputs = kv.value().size(1);
  EXPECT_EQ(classifier_inputs, 4 * 4 * 4);
}

TEST(DartsGenotype, HandMadeWeightsGiveTheKnownAnswer) {
  // Op indices: 0 none, 1 max_pool, 2 avg_pool, 3 skip, 4 sep3, 5 sep5, 6 dil3, 7 dil5.
  auto w = torch::zeros({14, 8}, torch::kFloat64);
  // Node 2 (edges 0, 1 from inputs 0, 1): a huge `none` must not count.
  w[0][0] = 0.9, w[0][4] = 0.3;
  w[1][1] = 0.2;
  // Node 3 (edges 2, 3, 4 from 0, 1, 2): the two strongest are from 1 and 2, strongest first.
  w[2][7] = 0.5, w[3][3] = 0.6, w[4][2] = 0.55;
  // Node 4 (edges 5-8 from 0-3): a four-way tie keeps the lowest inputs, in order.
  for (int e = 5; e <= 8; ++e) w[e][5] = 0.4;
  // Node 5 (edges 9-13 from 0-4): within edge 13 dil3 and dil5 tie: the first (dil3) wins.
  w[13][6] = 0.7, w[13][7] = 0.7, w[12][4] = 0.1;
  const auto gene = darts_parse(w);
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"sep_conv_3x3", 0}, {"max_pool_3x3", 1}, {"skip_connect", 1}, {"avg_pool_3x3", 2},
      {"sep_conv_5x5", 0}, {"sep_conv_5x5", 1}, {"dil_conv_3x3", 4}, {"sep_conv_3x3", 3}};
  EXPECT_EQ(gene, expected);
  EXPECT_EQ(format_darts(gene, {{"max_pool_3x3", 0}}),
            "Genotype(normal=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 1), ('avg_pool_3x3', 2), "
            "('sep_conv_5x5', 0), ('sep_conv_5x5', 1), ('dil_conv_3x3', 4), ('sep_conv_3x3', 3)], "
            "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0)], reduce_concat=range(2, 6))");

  // The supernet's derive puts the same choice on the edges and `none` on the 6 dropped ones.
  SpaceOptions o;
  o.space = "darts", o.channels = 2, o.cells = 3, o.input_channels = 1, o.classes = 2;
  const auto g = make_supernet(o)->derive({w, w});
  EXPECT_EQ(g.space, "darts");
  EXPECT_EQ(g.text.rfind("Genotype(normal=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 1)", 0), 0u);
  ASSERT_EQ(g.edges.size(), 28u);
  EXPECT_EQ(g.edges[0].op, "sep_conv_3x3");   // normal 2<-0
  EXPECT_EQ(g.edges[2].op, "none");           // normal 3<-0, dropped
  EXPECT_EQ(g.edges[3].op, "skip_connect");   // normal 3<-1
  EXPECT_EQ(g.edges[13].op, "dil_conv_3x3");  // normal 5<-4
  EXPECT_EQ(g.edges[14 + 1].op, "max_pool_3x3");
  EXPECT_EQ(g.edges[0].probs.size(), 8u);
  EXPECT_DOUBLE_EQ(g.edges[0].probs[0].second, 0.9);
}

}  // namespace
}  // namespace probnas

namespace probnas {
namespace {

int64_t count_with_prefix(const torch::nn::Module& m, const std::string& prefix) {
  int64_t n = 0;
  for (const auto& kv : m.named_parameters())
    if (kv.key().rfind(prefix, 0) == 0) n += kv.value().numel();
  return n;
}

TEST(DartsSupernet, ImageNetStemStartsTheCellsAtOneEighth) {
  torch::manual_seed(0);
  SpaceOptions o;
  o.space = "darts", o.channels = 4, o.cells = 3, o.input_channels = 3, o.classes = 5, o.stem = "imagenet";
  DartsSupernet net(o);
  const auto x = torch::randn({2, 3, 64, 64});
  const auto [s0, s1] = net.stem(x);
  // Three stride-2 convs with 3C = 12 channels: s0 (after two) at 1/4, s1 at 1/8.
  EXPECT_EQ(s0.sizes(), (std::vector<int64_t>{2, 12, 16, 16}));
  EXPECT_EQ(s1.sizes(), (std::vector<int64_t>{2, 12, 8, 8}));
  const auto w = torch::full({14, 8}, 1.0 / 8);
  EXPECT_EQ(net.forward(x, ArchSample::dense({w, w})).sizes(), (std::vector<int64_t>{2, 5}));
  const std::vector<int64_t> sep3(14, 4);
  EXPECT_EQ(net.forward(x, ArchSample::discrete({sep3, sep3})).sizes(), (std::vector<int64_t>{2, 5}));

  // The stem's weights (BN affine, as in the reference): conv 3 -> 3C/2, BN, conv 3C/2 -> 3C, BN; conv 3C -> 3C, BN.
  const int64_t c = 12, h = 6;
  EXPECT_EQ(count_with_prefix(net, "stem0."), 3 * h * 9 + 2 * h + h * c * 9 + 2 * c);
  EXPECT_EQ(count_with_prefix(net, "stem1."), c * c * 9 + 2 * c);
  EXPECT_EQ(count_with_prefix(net, "stem."), 0);
  // The first cell sees reduction_prev: its s0 (at 1/4) is factorized-reduced to s1's 1/8.
  bool factorized = false;
  for (const auto& kv : net.named_parameters())
    if (kv.key() == "cell0.preprocess0.conv_a.weight") {
      factorized = true;
      EXPECT_EQ(kv.value().sizes(), (std::vector<int64_t>{2, 12, 1, 1}));
    }
  EXPECT_TRUE(factorized);
  // Everything after the stem has the CIFAR network's weights (the factorized reduce's two 1x1
  // convs hold as many as the 1x1 ReLU-Conv-BN they replace): the totals differ by the stems.
  o.stem = "cifar";
  DartsSupernet cifar(o);
  EXPECT_EQ(count_with_prefix(cifar, "stem."), 3 * c * 9 + 2 * c);
  EXPECT_EQ(count_with_prefix(net, "") - count_with_prefix(cifar, ""),
            count_with_prefix(net, "stem0.") + count_with_prefix(net, "stem1.") - count_with_prefix(cifar, "stem."));
  // The CIFAR stem gives the cells both inputs at full size.
  const auto [c0, c1] = cifar.stem(torch::randn({1, 3, 8, 8}));
  EXPECT_EQ(c0.sizes(), (std::vector<int64_t>{1, 12, 8, 8}));
  EXPECT_TRUE(c0.equal(c1));
}

TEST(DartsSupernet, StemOptionIsCheckedNamingTheKey) {
  SpaceOptions o;
  o.space = "nb201", o.channels = 2, o.cells_per_stage = 1, o.stem = "imagenet";
  const std::string nb201 = test::error_of([&] { make_supernet(o); });
  EXPECT_NE(nb201.find("space.stem"), std::string::npos) << nb201;
  EXPECT_NE(nb201.find("DARTS"), std::string::npos) << nb201;
  o.space = "darts", o.cells = 3, o.stem = "mnist";
  const std::string unknown = test::error_of([&] { make_supernet(o); });
  EXPECT_NE(unknown.find("space.stem = 'mnist'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("cifar, imagenet"), std::string::npos) << unknown;
}

}  // namespace
}  // namespace probnas
