// The NB201 supernet: parameter count derived independently from the architecture's definition,
// forward shapes, single-path execution, and the genotype string.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/space/nb201.h"
#include "test_support.h"

namespace probnas {
namespace {

// Counted from NAS-Bench-201's definition, not from our modules:
//  stem conv3x3 (in->C, no bias) + BN(C) affine;
//  a search cell of c channels: 6 edges x (1x1 conv c*c + 3x3 conv 9*c*c); its BNs have no
//  affine parameters; pooling, skip and none have none;
//  a stride-2 ResNet block c/2 -> c: conv_a 9*(c/2)*c + BN 2c, conv_b 9*c*c + BN 2c, shortcut 1x1 conv (c/2)*c;
//  final BN(4C) affine, linear 4C -> classes with bias.
int64_t expected_parameters(int64_t C, int64_t N, int64_t in, int64_t classes) {
  int64_t n = 9 * in * C + 2 * C;
  for (int s = 0; s < 3; ++s) {
    const int64_t c = C << s;
    n += N * 6 * (c * c + 9 * c * c);
    if (s > 0) {
      const int64_t h = c / 2;
      n += 9 * h * c + 2 * c + 9 * c * c + 2 * c + h * c;
    }
  }
  return n + 2 * 4 * C + 4 * C * classes + classes;
}

int64_t count(Supernet& net) {
  int64_t n = 0;
  for (const auto& p : net.parameters()) n += p.numel();
  return n;
}

TEST(Nb201, ParameterCountMatchesDefinition) {
  for (auto [C, N, in, classes] : std::vector<std::array<int64_t, 4>>{{16, 5, 3, 10}, {8, 1, 1, 10}, {4, 2, 3, 100}}) {
    SpaceOptions o;
    o.channels = C, o.cells_per_stage = N, o.input_channels = in, o.classes = classes;
    auto net = make_supernet(o);
    EXPECT_EQ(count(*net), expected_parameters(C, N, in, classes)) << "C=" << C << " N=" << N;
  }
}

TEST(Nb201, ArchShapeIsSixEdgesOfFiveOps) {
  const auto shape = nb201_arch_shape();
  ASSERT_EQ(shape.size(), 1u);
  EXPECT_EQ(shape[0].edge_names, (std::vector<std::string>{"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}));
  EXPECT_EQ(shape[0].ops, (std::vector<std::string>{"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}));
}

TEST(Nb201, ForwardGivesLogitsAndRejectsWrongArchitecture) {
  SpaceOptions o;
  o.channels = 4, o.cells_per_stage = 1, o.input_channels = 1, o.classes = 7;
  auto net = make_supernet(o);
  auto x = torch::randn({5, 1, 12, 12});
  auto w = torch::softmax(torch::randn({6, 5}), -1);
  EXPECT_EQ(net->forward(x, ArchSample::dense({w})).sizes(), torch::IntArrayRef({5, 7}));
  EXPECT_THROW(net->forward(x, ArchSample::dense({torch::ones({6, 4})})), std::exception);
  EXPECT_THROW(net->forward(x, ArchSample::discrete({{0, 1, 2}})), std::exception);
}

TEST(Nb201, DiscreteForwardEqualsOneHotMixing) {
  torch::manual_seed(3);
  SpaceOptions o;
  o.channels = 4, o.cells_per_stage = 2, o.input_channels = 3, o.classes = 10;
  auto net = make_supernet(o);
  net->train();  // batch statistics: both passes see the same batch
  auto x = torch::randn({4, 3, 8, 8});
  const std::vector<int64_t> choice{3, 1, 0, 2, 4, 3};
  auto one_hot = torch::zeros({6, 5});
  for (int e = 0; e < 6; ++e) one_hot[e][choice[static_cast<size_t>(e)]] = 1.0;
  auto dense = net->forward(x, ArchSample::dense({one_hot}));
  auto single = net->forward(x, ArchSample::discrete({choice}));
  EXPECT_TRUE(torch::allclose(dense, single, 1e-5, 1e-5));
  // The mixing weights matter: another architecture gives other logits.
  auto other = net->forward(x, ArchSample::discrete({{1, 1, 1, 1, 1, 1}}));
  EXPECT_FALSE(torch::allclose(dense, other, 1e-3, 1e-3));
}

TEST(Nb201, MixingWeightGradientReachesEveryNonZeroOperation) {
  SpaceOptions o;
  o.channels = 4, o.cells_per_stage = 1, o.input_channels = 3, o.classes = 10;
  auto net = make_supernet(o);
  auto w = torch::full({6, 5}, 0.2).requires_grad_(true);
  net->forward(torch::randn({4, 3, 8, 8}), ArchSample::dense({w})).pow(2).sum().backward();
  auto g = w.grad();
  EXPECT_EQ(g.select(1, 0).abs().sum().item<float>(), 0.0f);  // none: w * 0
  EXPECT_GT(g.narrow(1, 1, 4).abs().min().item<float>(), 0.0f);
}

// The fused cell (one ReLU, one stacked convolution per kernel size and one pooling per source
// node) against the reference, one edge and operation at a time: outputs, every gradient and the
// BatchNorm running statistics, in training and in evaluation mode.
// Fused cells, and both paths in channels-last memory, against the NCHW reference.
TEST(Nb201, FusedCellsEqualTheOneEdgeAtATimeReference) {
  struct Variant {
    bool fused, channels_last;
  };
  for (const Variant v : {Variant{true, false}, Variant{true, true}, Variant{false, true}})
  for (const int64_t C : {4, 16}) {
    SCOPED_TRACE(std::string(v.fused ? "fused" : "one edge at a time") + (v.channels_last ? ", channels-last" : ""));
    SpaceOptions o;
    o.channels = C, o.cells_per_stage = 2, o.input_channels = 3, o.classes = 10;
    torch::manual_seed(8);
    auto fused = std::static_pointer_cast<Nb201Supernet>(make_supernet(o));
    fused->set_fused(v.fused);
    fused->set_channels_last(v.channels_last);
    torch::manual_seed(8);
    auto reference = std::static_pointer_cast<Nb201Supernet>(make_supernet(o));
    reference->set_fused(false);
    const auto x = torch::randn({6, 3, 12, 12});
    const auto y = torch::randint(10, {6});
    const auto w0 = torch::softmax(torch::randn({6, 5}), -1);
    auto close = [](const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
      const double scale = std::max(1e-6, b.abs().max().item<double>());
      EXPECT_LE((a - b).abs().max().item<double>() / scale, 1e-5) << what;
    };
    for (const bool training : {true, false}) {
      fused->train(training);
      reference->train(training);
      for (auto* net : {fused.get(), reference.get()}) net->zero_grad();
      auto wf = w0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true);
      const auto out_f = fused->forward(x, ArchSample::dense({wf}));
      const auto out_r = reference->forward(x, ArchSample::dense({wr}));
      close(out_f, out_r, "logits, C=" + std::to_string(C));
      torch::nn::functional::cross_entropy(out_f, y).backward();
      torch::nn::functional::cross_entropy(out_r, y).backward();
      close(wf.grad(), wr.grad(), "mixing-weight gradient");
      EXPECT_EQ(wf.grad().select(1, 0).abs().sum().item<double>(), 0.0);  // none
      auto pr = reference->named_parameters();
      for (const auto& kv : fused->named_parameters()) close(kv.value().grad(), pr[kv.key()].grad(), "gradient of " + kv.key());
      auto br = reference->named_buffers();
      for (const auto& kv : fused->named_buffers()) {
        if (kv.value().is_floating_point()) close(kv.value(), br[kv.key()], "buffer " + kv.key());
        else EXPECT_TRUE(torch::equal(kv.value(), br[kv.key()])) << kv.key();
      }
    }
  }
}

// The same for one cell whose BatchNorms have affine parameters (scale and shift concatenated too).
TEST(Nb201, AFusedCellWithAffineBatchNormEqualsTheReference) {
  torch::manual_seed(9);
  Nb201Cell fused(6, BnOptions{true, true});
  torch::manual_seed(9);
  Nb201Cell reference(6, BnOptions{true, true});
  reference.set_fused(false);
  {
    torch::NoGradGuard no_grad;  // scales and shifts away from 1 and 0, the same in both
    auto pr = reference.named_parameters();
    for (const auto& kv : fused.named_parameters())
      if (kv.key().find("bn") != std::string::npos) {
        kv.value().uniform_(0.5, 1.5);
        pr[kv.key()].copy_(kv.value());
      }
  }
  const auto x = torch::randn({4, 6, 5, 5});
  const auto w = torch::softmax(torch::randn({6, 5}), -1);
  const auto a = fused.forward(x, w, nullptr), b = reference.forward(x, w, nullptr);
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * b.abs().max().item<double>());
  a.square().sum().backward();
  b.square().sum().backward();
  auto pr = reference.named_parameters();
  for (const auto& kv : fused.named_parameters()) {
    const auto& g = pr[kv.key()].grad();
    EXPECT_LE((kv.value().grad() - g).abs().max().item<double>(), 1e-4 * std::max(1e-6, g.abs().max().item<double>()))
        << kv.key();
  }
}

TEST(Nb201, AFusedCellRefusesEdgesWhoseBatchNormsDisagree) {
  torch::manual_seed(9);
  Nb201Cell cell(4, BnOptions{false, true});
  const auto x = torch::randn({2, 4, 5, 5});
  const auto w = torch::softmax(torch::randn({6, 5}), -1);
  EXPECT_NO_THROW(cell.forward(x, w, nullptr));
  // One edge's convolution BatchNorm in evaluation mode while the others train: one batch_norm call cannot serve both.
  for (const auto& kv : cell.named_modules("", /*include_self=*/false))
    if (kv.key().find("edge3_nor_conv_3x3") != std::string::npos) kv.value()->eval();
  const std::string message = test::error_of([&] { cell.forward(x, w, nullptr); });
  EXPECT_NE(message.find("differ in their options or mode"), std::string::npos) << message;
  cell.set_fused(false);  // edge by edge, each BatchNorm in its own mode
  EXPECT_NO_THROW(cell.forward(x, w, nullptr));
}

TEST(Genotype, ArgmaxGivesNb201StringAndProbabilities) {
  auto probs = torch::full({6, 5}, 0.1);
  const std::vector<int64_t> best{3, 3, 1, 2, 0, 4};
  for (int e = 0; e < 6; ++e) probs[e][best[static_cast<size_t>(e)]] = 0.6;
  const auto g = argmax_genotype("nb201", nb201_arch_shape(), {probs});
  EXPECT_EQ(g.text, "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|");
  EXPECT_EQ(genotype_choices(g, nb201_arch_shape()), (std::vector<std::vector<int64_t>>{best}));
  ASSERT_EQ(g.edges.size(), 6u);
  EXPECT_NEAR(g.edges[0].probs[3].second, 0.6, 1e-6);
  EXPECT_EQ(parse_nb201(g.text),
            (std::vector<std::string>{"nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3"}));
}

TEST(Genotype, MalformedNb201StringIsNamed) {
  for (const std::string bad : {"", "|a~0|", "|a~0|+|b~1|c~1|+|d~0|e~1|f~2|", "|a~0|+|b~0|c~1|+|d~0|e~1|"}) {
    const std::string msg = test::error_of([&] { parse_nb201(bad); });
    EXPECT_NE(msg.find("NB201"), std::string::npos) << "'" << bad << "' gave: " << msg;
  }
}

}  // namespace
}  // namespace probnas
