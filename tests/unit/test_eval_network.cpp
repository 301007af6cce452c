// The evaluation networks of probnas train: parameter and multiply-add counts against independent
// counts and published figures, drop-path, cutout and the auxiliary head each doing something, and
// a PGNAS candidate trained as a module computing exactly what the candidate computes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "probnas/app/options.h"
#include "probnas/core/rng.h"
#include "probnas/data/loader.h"
#include "probnas/engine/train_engine.h"
#include "probnas/engine/train_protocol.h"
#include "probnas/optim/optimizers.h"
#include "probnas/space/eval_network.h"
#include "probnas/space/multibranch.h"
#include "test_support.h"

namespace {

using namespace probnas;

// DARTS's published V2 genotype (Liu et al. 2019, genotypes.py).
const char* kDartsV2 =
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
const char* kBestNb201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";

Genotype genotype(const std::string& space, const std::string& text) {
  Genotype g;
  g.space = space;
  g.text = text;
  return g;
}

// ---- independent counts, written from the layer definitions (not from the network code) ----

int64_t bn(int64_t c) { return 2 * c; }

// Parameters of a DARTS operation on C channels (pooling and identity have none).
int64_t darts_op_params(const std::string& op, int64_t c, bool reduce_input) {
  if (op == "sep_conv_3x3") return 2 * (c * 9 + c * c + bn(c));
  if (op == "sep_conv_5x5") return 2 * (c * 25 + c * c + bn(c));
  if (op == "dil_conv_3x3") return c * 9 + c * c + bn(c);
  if (op == "dil_conv_5x5") return c * 25 + c * c + bn(c);
  if (op == "skip_connect" && reduce_input) return 2 * (c * (c / 2)) + bn(c);  // factorized reduce
  return 0;
}

using Pairs = std::vector<std::pair<std::string, int64_t>>;

int64_t darts_network_params(const Pairs& normal, const Pairs& reduce, int64_t C, int64_t layers, int64_t classes,
                             int64_t in) {
  int64_t n = in * 3 * C * 9 + bn(3 * C);  // stem
  int64_t c_pp = 3 * C, c_p = 3 * C, c = C;
  bool reduction_prev = false;
  for (int64_t i = 0; i < layers; ++i) {
    const bool reduction = i == layers / 3 || i == 2 * layers / 3;
    if (reduction) c *= 2;
    n += reduction_prev ? 2 * (c_pp * (c / 2)) + bn(c) : c_pp * c + bn(c);  // preprocess0
    n += c_p * c + bn(c);                                                     // preprocess1
    for (const auto& [op, from] : reduction ? reduce : normal) n += darts_op_params(op, c, reduction && from < 2);
    reduction_prev = reduction;
    c_pp = c_p;
    c_p = 4 * c;
  }
  return n + c_p * classes + classes;
}

const Pairs kV2Normal = {{"sep_conv_3x3", 0}, {"sep_conv_3x3", 1}, {"sep_conv_3x3", 0}, {"sep_conv_3x3", 1},
                         {"sep_conv_3x3", 1}, {"skip_connect", 0}, {"skip_connect", 0}, {"dil_conv_3x3", 2}};
const Pairs kV2Reduce = {{"max_pool_3x3", 0}, {"max_pool_3x3", 1}, {"skip_connect", 2}, {"max_pool_3x3", 1},
                         {"max_pool_3x3", 0}, {"skip_connect", 2}, {"skip_connect", 2}, {"max_pool_3x3", 1}};

int64_t nb201_network_params(const std::vector<std::string>& ops, int64_t C, int64_t N, int64_t classes) {
  int64_t n = 3 * C * 9 + bn(C);
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t c = C << stage;
    if (stage > 0) n += (c / 2) * c * 9 + bn(c) + c * c * 9 + bn(c) + (c / 2) * c;  // ResNet block
    for (int64_t i = 0; i < N; ++i)
      for (const auto& op : ops) {
        if (op == "nor_conv_3x3") n += c * c * 9 + bn(c);
        if (op == "nor_conv_1x1") n += c * c + bn(c);
      }
  }
  return n + bn(4 * C) + 4 * C * classes + classes;
}

TEST(EvalNetwork, DartsV2HasThePublishedParameterCount) {
  EvalNetworkOptions o;
  o.channels = 36;
  o.cells = 20;
  o.classes = 10;
  o.auxiliary = true;
  const auto net = make_eval_network(genotype("darts", kDartsV2), o);
  // DARTS reports 3.3M parameters for DARTS-V2 on CIFAR-10 (its train.py logs 3.349342 MB, the
  // auxiliary head left out).
  EXPECT_EQ(net->parameters_main(), darts_network_params(kV2Normal, kV2Reduce, 36, 20, 10, 3));
  EXPECT_EQ(net->parameters_main(), 3349342);
  // The auxiliary head after the second reduction cell (4 x 144 = 576 channels in).
  EXPECT_EQ(net->parameters_auxiliary(), 576 * 128 + bn(128) + 128 * 768 * 4 + bn(768) + 768 * 10 + 10);
  // Multiply-adds: DARTS-V2 is reported at about 528M FLOPs (multiply-adds) on 32x32 images.
  EXPECT_NEAR(static_cast<double>(net->multiply_adds(32, 32)) / 1e6, 528, 5);
  // Smaller networks and other inputs follow the same formula.
  o.channels = 8;
  o.cells = 5;
  o.input_channels = 1;
  o.classes = 7;
  EXPECT_EQ(make_eval_network(genotype("darts", kDartsV2), o)->parameters_main(),
            darts_network_params(kV2Normal, kV2Reduce, 8, 5, 7, 1));
}

TEST(EvalNetwork, Nb201ParametersMatchTheBenchmarksNetwork) {
  EvalNetworkOptions o;  // NB201: C = 16, N = 5, CIFAR-10
  const std::vector<std::string> all_conv(6, "nor_conv_3x3");
  const auto largest = make_eval_network(genotype("nb201", format_nb201(all_conv)), o);
  // NAS-Bench-201's largest cell (all 3x3 convolutions) has 1.531546 M parameters on CIFAR-10.
  EXPECT_EQ(largest->parameters_main(), 1531546);
  EXPECT_EQ(largest->parameters_auxiliary(), 0);
  const auto best = make_eval_network(genotype("nb201", kBestNb201), o);
  EXPECT_EQ(best->parameters_main(), nb201_network_params(parse_nb201(kBestNb201), 16, 5, 10));
  const std::string mixed = "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|";
  o.classes = 100;
  EXPECT_EQ(make_eval_network(genotype("nb201", mixed), o)->parameters_main(),
            nb201_network_params(parse_nb201(mixed), 16, 5, 100));
  // Multiply-adds of the largest cell against the layer-by-layer count.
  int64_t macs = 3 * 16 * 9 * 32 * 32;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t c = 16 << stage, hw = (32 >> stage) * (32 >> stage);
    if (stage > 0) macs += (c / 2) * c * 9 * hw + c * c * 9 * hw + (c / 2) * c * hw;
    macs += 5 * 6 * c * c * 9 * hw;
  }
  macs += 64 * 10;
  EXPECT_EQ(largest->multiply_adds(32, 32), macs);
}

TEST(EvalNetwork, ForwardShapesAndACellNodeWithoutInputs) {
  torch::manual_seed(0);
  EvalNetworkOptions o;
  o.channels = 4;
  o.cells = 1;
  o.input_channels = 1;
  // Node 1 has no operation: node 2 and 3 see zeros through it, the network still runs.
  auto net = make_eval_network(genotype("nb201", "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"), o);
  net->eval();
  const auto out = net->forward(torch::randn({3, 1, 16, 16}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_FALSE(out.aux_logits.defined());
  o.cells = 3;
  o.auxiliary = true;
  auto darts = make_eval_network(genotype("darts", kDartsV2), o);
  darts->train();
  auto gen = make_generator(RngKey(1));
  const auto t = darts->forward(torch::randn({2, 1, 16, 16}), 0.2, &gen);
  EXPECT_EQ(t.logits.sizes(), (std::vector<int64_t>{2, 10}));
  ASSERT_TRUE(t.aux_logits.defined());  // the auxiliary head answers in training only
  EXPECT_EQ(t.aux_logits.sizes(), (std::vector<int64_t>{2, 10}));
  darts->eval();
  EXPECT_FALSE(darts->forward(torch::randn({2, 1, 16, 16})).aux_logits.defined());
}

TEST(EvalNetwork, GenotypeStringsAreCheckedWithTheirProblemNamed) {
  const auto message = [](const std::string& space, const std::string& text) {
    try {
      make_eval_network(genotype(space, text), EvalNetworkOptions{});
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("nb201", "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|").find("unknown operation 'conv_7x7'"),
            std::string::npos);
  EXPECT_NE(message("darts", "Genotype(normal=[('sep_conv_3x3', 0)], reduce=[])").find("the normal list has 1"),
            std::string::npos);
  EXPECT_NE(message("darts", std::string(kDartsV2).replace(std::string(kDartsV2).find("('dil_conv_3x3', 2)"), 18,
                                                           "('dil_conv_3x3', 5)"))
                .find("node 5 takes input 5"),
            std::string::npos);
  EXPECT_NE(message("multibranch", "x").find("no evaluation network"), std::string::npos);
  EXPECT_NE(message("darts", "Genotype(reduce=[])").find("has no normal=[...] list"), std::string::npos);
}

// Drop-path: per example, an operation's output is zeroed with probability p or scaled by 1/(1-p).
TEST(EvalNetwork, DropPathDropsWholeExamplesOfAnOperationAndKeepsTheExpectation) {
  const auto x = torch::ones({4, 3, 2, 2});
  const auto mask = torch::tensor({0.0, 2.0, 0.0, 2.0});
  const auto y = apply_drop_path(x, mask);
  EXPECT_TRUE(torch::equal(y[0], torch::zeros({3, 2, 2})));
  EXPECT_TRUE(torch::equal(y[1], torch::full({3, 2, 2}, 2.0)));

  torch::manual_seed(0);
  EvalNetworkOptions o;
  o.channels = 4;
  o.cells = 3;
  auto net = std::dynamic_pointer_cast<DartsNetwork>(make_eval_network(genotype("darts", kDartsV2), o));
  ASSERT_TRUE(net);
  // Every operation but the stride-1 skips: 6 in a normal cell, 8 in a reduction cell (its skips reduce
  // or take reduced nodes: 3 skips of node 2 are identities, so 5).
  EXPECT_EQ(net->drop_path_sites(), 6 + 5 + 5);
  net->train();
  const auto input = torch::randn({8, 3, 8, 8});
  auto g1 = make_generator(RngKey(7)), g2 = make_generator(RngKey(7)), g3 = make_generator(RngKey(8));
  auto run = [&](double p, at::Generator* g) {
    torch::NoGradGuard no_grad;
    return net->forward(input, p, g).logits;
  };
  const auto none = run(0, &g1);
  EXPECT_TRUE(torch::equal(none, run(0, &g1)));                 // no drop-path: deterministic
  const auto a = run(0.5, &g1), b = run(0.5, &g2), c = run(0.5, &g3);
  EXPECT_FALSE(torch::allclose(a, none));                       // drop-path changes the output
  EXPECT_TRUE(torch::equal(run(0.5, &g2), run(0.5, &g1)));      // the same key, the same masks
  EXPECT_FALSE(torch::allclose(b, c));                          // another key, other masks
  net->eval();
  EXPECT_TRUE(torch::equal(run(0.5, &g1), run(0, &g1)));        // evaluation never drops
}

TEST(EvalNetwork, CutoutZeroesOneClippedSquarePerImageOnlyWhenAugmenting) {
  ChannelStats stats;
  stats.mean = torch::zeros({1});
  stats.std = torch::ones({1});
  TransformOptions t;
  t.crop = false;
  t.flip = false;
  t.cutout = 8;
  const auto images = torch::full({64, 1, 16, 16}, 200, torch::kUInt8);
  auto gen = make_generator(RngKey(3));
  const auto x = transform_images(images, t, stats, true, &gen);
  int64_t clipped = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const auto zero = x[i][0].eq(0);
    const int64_t n = zero.sum().item<int64_t>();
    ASSERT_GE(n, 16) << "image " << i;  // a corner centre keeps a quarter of the 8x8 square
    ASSERT_LE(n, 64) << "image " << i;
    if (n < 64) ++clipped;
    // The zeros form one rectangle: rows x columns with zeros multiply to the count.
    const int64_t rows = zero.any(1).sum().item<int64_t>(), cols = zero.any(0).sum().item<int64_t>();
    EXPECT_EQ(rows * cols, n) << "image " << i;
  }
  EXPECT_GT(clipped, 0);   // centres near the border clip the square
  EXPECT_LT(clipped, 64);  // ... and central ones do not
  // Without augmentation (the test split), or with cutout 0, nothing is cut out.
  EXPECT_EQ(transform_images(images, t, stats, false, nullptr).eq(0).sum().item<int64_t>(), 0);
  t.cutout = 0;
  EXPECT_EQ(transform_images(images, t, stats, true, &gen).eq(0).sum().item<int64_t>(), 0);
}

TEST(EvalNetwork, AuxiliaryHeadSendsItsLossIntoTheTrunk) {
  torch::manual_seed(0);
  EvalNetworkOptions o;
  o.channels = 4;
  o.cells = 3;
  o.auxiliary = true;
  auto net = make_eval_network(genotype("darts", kDartsV2), o);
  net->train();
  const auto x = torch::randn({4, 3, 8, 8});
  const auto y = torch::tensor({1, 2, 3, 4}, torch::kInt64);
  // The gradient of the first cell's weights with and without the auxiliary loss (weight 0.4).
  auto gradient = [&](double aux_weight) {
    net->zero_grad();
    const auto out = net->forward(x);
    auto loss = torch::nn::functional::cross_entropy(out.logits, y);
    if (aux_weight > 0) loss = loss + aux_weight * torch::nn::functional::cross_entropy(out.aux_logits, y);
    loss.backward();
    std::map<std::string, torch::Tensor> g;
    for (const auto& p : net->named_parameters())
      if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
    return g;
  };
  const auto without = gradient(0), with = gradient(0.4);
  int64_t aux_params = 0, trunk_changed = 0, after_head_same = 0;
  for (const auto& [name, g] : with) {
    if (name.rfind("auxiliary", 0) == 0) {
      ++aux_params;
      EXPECT_GT(g.abs().sum().item<double>(), 0) << name;
      continue;
    }
    ASSERT_TRUE(without.count(name)) << name;
    if (!torch::allclose(g, without.at(name))) ++trunk_changed;
    // The last cell and the classifier come after the head: their gradients are the main loss's.
    if (name.rfind("classifier", 0) == 0 || name.rfind("cell2.", 0) == 0)
      after_head_same += torch::allclose(g, without.at(name), 1e-5, 1e-7) ? 1 : 0;
  }
  EXPECT_GT(aux_params, 0);
  EXPECT_GT(trunk_changed, 10);  // the stem and cells before the head learn from it
  EXPECT_GT(after_head_same, 0);
}

TEST(EvalNetwork, APgnasCandidateAsAModuleComputesWhatTheCandidateComputes) {
  torch::manual_seed(0);
  SpaceOptions s;
  s.space = "multibranch";
  s.channels = 4;
  s.cells_per_stage = 1;
  s.kernels = {1, 3};
  MultiBranchNet supernet(s);
  // Train-mode passes move the BN running statistics off their initial values.
  supernet.train();
  for (int i = 0; i < 3; ++i) supernet.forward(torch::randn({8, 3, 8, 8}), ArchSample{});
  supernet.eval();
  std::vector<torch::Tensor> gates;
  for (size_t gi = 0; gi < supernet.gate_groups().size(); ++gi) {
    const auto& g = supernet.gate_groups()[gi];
    gates.push_back((torch::arange(g.channels) % 3 != 0).to(torch::kFloat32));  // every third channel dropped
  }
  const PrunedNet candidate = supernet.prune(gates);
  PrunedModule module(candidate);
  EXPECT_EQ(module.parameters_main(), candidate.parameters());
  module.eval();
  const auto x = torch::randn({5, 3, 8, 8});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(module.forward(x).logits, candidate.forward(x), 1e-6, 1e-6));
  // Training mode uses batch statistics: another function of x.
  module.train();
  EXPECT_FALSE(torch::allclose(module.forward(x).logits, candidate.forward(x), 1e-4, 1e-4));
}

TEST(TrainProtocol, AutomaticValuesFollowTheSpacesProtocolsAndOptionsWin) {
  Config c(train_option_table());
  auto darts = resolve_train_protocol(train_options().read(c), "darts", 32);
  EXPECT_EQ(darts.name, "darts");
  EXPECT_EQ(darts.epochs, 600);
  EXPECT_EQ(darts.batch_size, 96);
  EXPECT_DOUBLE_EQ(darts.lr, 0.025);
  EXPECT_DOUBLE_EQ(darts.weight_decay, 3e-4);
  EXPECT_DOUBLE_EQ(darts.auxiliary_weight, 0.4);
  EXPECT_DOUBLE_EQ(darts.drop_path, 0.2);
  EXPECT_EQ(darts.cutout, 16);
  EXPECT_EQ(darts.channels, 36);
  EXPECT_EQ(darts.cells, 20);
  EXPECT_DOUBLE_EQ(darts.grad_clip, 5);
  EXPECT_FALSE(darts.nesterov);
  auto nb201 = resolve_train_protocol(train_options().read(c), "nb201", 32);
  EXPECT_EQ(nb201.epochs, 200);
  EXPECT_EQ(nb201.batch_size, 256);
  EXPECT_DOUBLE_EQ(nb201.lr, 0.1);
  EXPECT_DOUBLE_EQ(nb201.weight_decay, 5e-4);
  EXPECT_TRUE(nb201.nesterov);
  EXPECT_EQ(nb201.cutout, 0);
  EXPECT_EQ(nb201.channels, 16);
  EXPECT_EQ(nb201.cells, 5);
  EXPECT_EQ(resolve_train_protocol(train_options().read(c), "multibranch", 32).epochs, 0);  // PGNAS: as sampled
  EXPECT_EQ(resolve_train_protocol(train_options().read(c), "darts", 224).name, "darts-imagenet");
  c.set("train.epochs", "3");
  c.set("train.cutout", "0");
  c.set("train.auxiliary_weight", "0");
  c.set("train.nesterov", "true");
  darts = resolve_train_protocol(train_options().read(c), "darts", 32);
  EXPECT_EQ(darts.epochs, 3);
  EXPECT_EQ(darts.cutout, 0);
  EXPECT_DOUBLE_EQ(darts.auxiliary_weight, 0);
  EXPECT_TRUE(darts.nesterov);
  c.set("train.drop_path", "0.3");
  EXPECT_THROW(resolve_train_protocol(train_options().read(c), "nb201", 32), std::exception);  // drop-path is DARTS's
}

TEST(TrainProtocol, DrnasGenotypesTrainWithDrnasProtocolOthersWithDarts) {
  Config c(train_option_table());
  // DrNAS's section 4.1 (CIFAR-10): DARTS's protocol with drop-path 0.3.
  const auto cifar = resolve_train_protocol(train_options().read(c), "darts", 32, "drnas");
  EXPECT_EQ(cifar.name, "drnas");
  EXPECT_DOUBLE_EQ(cifar.drop_path, 0.3);
  EXPECT_EQ(cifar.epochs, 600);
  EXPECT_DOUBLE_EQ(cifar.lr, 0.025);
  EXPECT_EQ(cifar.lr_schedule, "cosine");
  EXPECT_EQ(cifar.warmup_epochs, 0);
  EXPECT_EQ(cifar.cutout, 16);
  // Section 4.2 (ImageNet): 250 epochs, lr 0.5 decayed linearly, 5 warm-up epochs, weight decay 3e-5, label smoothing.
  const auto imagenet = resolve_train_protocol(train_options().read(c), "darts", 224, "drnas");
  EXPECT_EQ(imagenet.name, "drnas-imagenet");
  EXPECT_EQ(imagenet.epochs, 250);
  EXPECT_EQ(imagenet.batch_size, 768);
  EXPECT_DOUBLE_EQ(imagenet.lr, 0.5);
  EXPECT_EQ(imagenet.lr_schedule, "linear");
  EXPECT_EQ(imagenet.warmup_epochs, 5);
  EXPECT_DOUBLE_EQ(imagenet.weight_decay, 3e-5);
  {
    Config small(train_option_table());
    small.set("train.batch_size", "256");  // DrNAS's code warms up for batches above 256 only
    EXPECT_EQ(resolve_train_protocol(train_options().read(small), "darts", 224, "drnas").warmup_epochs, 0);
  }
  EXPECT_DOUBLE_EQ(imagenet.label_smoothing, 0.1);
  EXPECT_DOUBLE_EQ(imagenet.auxiliary_weight, 0.4);
  EXPECT_DOUBLE_EQ(imagenet.drop_path, 0);
  // Other methods' genotypes and strings: DARTS's (ImageNet: lr 0.1 x 0.97 per epoch, batch 128, no warm-up).
  for (const std::string method : {"", "darts", "gdas", "parsec", "gibbsnas", "random"}) {
    EXPECT_EQ(resolve_train_protocol(train_options().read(c), "darts", 32, method).name, "darts") << method;
    const auto d = resolve_train_protocol(train_options().read(c), "darts", 224, method);
    EXPECT_EQ(d.name, "darts-imagenet") << method;
    EXPECT_EQ(d.lr_schedule, "exponential");
    EXPECT_DOUBLE_EQ(d.lr_decay, 0.97);
    EXPECT_EQ(d.batch_size, 128);
    EXPECT_EQ(d.warmup_epochs, 0);
  }
  // NB201 and PGNAS have one protocol each, whatever the method.
  EXPECT_EQ(resolve_train_protocol(train_options().read(c), "nb201", 32, "drnas").name, "nb201");
  // train.protocol overrides the method.
  c.set("train.protocol", "drnas");
  EXPECT_EQ(resolve_train_protocol(train_options().read(c), "darts", 32, "gdas").name, "drnas");
  c.set("train.protocol", "darts");
  EXPECT_EQ(resolve_train_protocol(train_options().read(c), "darts", 224, "drnas").name, "darts-imagenet");
  const std::string message =
      test::error_of([&] { resolve_train_protocol(train_options().read(c), "nb201", 32, "drnas"); });
  EXPECT_NE(message.find("train.protocol = darts"), std::string::npos) << message;
  EXPECT_NE(message.find("nb201 space"), std::string::npos) << message;
  c.set("train.protocol", "auto");
  c.set("train.lr_decay", "-0.5");
  EXPECT_NE(test::error_of([&] { resolve_train_protocol(train_options().read(c), "darts", 32); }).find("above 0"),
            std::string::npos);
  c.set("train.lr_decay", "0.9");
  EXPECT_NE(test::error_of([&] { resolve_train_protocol(train_options().read(c), "darts", 32); }).find("train.lr_decay"),
            std::string::npos);
  c.set("train.lr_schedule", "exponential");
  EXPECT_DOUBLE_EQ(resolve_train_protocol(train_options().read(c), "darts", 32).lr_decay, 0.9);
}

TEST(TrainProtocol, LearningRateSchedulesFollowTheReferenceCode) {
  TrainProtocol p;
  p.lr = 0.5;
  // DrNAS's train_imagenet.py: adjust_lr, then lr (e + 1) / 5 in the first 5 epochs.
  p.lr_schedule = "linear";
  p.warmup_epochs = 5;
  const int64_t n = 250;
  auto adjust_lr = [&](int64_t e) { return n - e > 5 ? 0.5 * (n - 5 - e) / (n - 5) : 0.5 * (n - e) / ((n - 5) * 5.0); };
  for (int64_t e = 0; e < n; ++e) {
    const double expected = e < 5 ? 0.5 * (e + 1) / 5.0 : adjust_lr(e);
    EXPECT_NEAR(p.lr_at(e, n), expected, 1e-15) << e;
  }
  EXPECT_NEAR(p.lr_at(5, n), 0.5 * 240 / 245, 1e-15);
  EXPECT_NEAR(p.lr_at(n - 1, n), 0.5 / (245 * 5), 1e-15);
  EXPECT_GT(p.lr_at(n - 1, n), 0);
  for (int64_t e = 6; e < n; ++e) EXPECT_LE(p.lr_at(e, n), p.lr_at(e - 1, n)) << e;  // never rises after the warm-up
  // Fewer epochs than the gentle tail: plain linear decay.
  p.warmup_epochs = 0;
  EXPECT_NEAR(p.lr_at(0, 4), 0.5, 1e-15);
  EXPECT_NEAR(p.lr_at(3, 4), 0.125, 1e-15);
  // DARTS's train_imagenet.py: StepLR(step 1, gamma 0.97). Its loop steps the scheduler before each epoch, which on
  // the PyTorch it was written for runs epoch e at lr 0.97^(e + 1); probnas runs epoch e at lr 0.97^e, as its other
  // schedules start at train.lr (docs/usage.md).
  p.lr = 0.1;
  p.lr_schedule = "exponential";
  p.lr_decay = 0.97;
  EXPECT_NEAR(p.lr_at(0, 250), 0.1, 1e-15);
  EXPECT_NEAR(p.lr_at(10, 250), 0.1 * std::pow(0.97, 10), 1e-15);
  // Cosine: the search's schedule.
  p.lr_schedule = "cosine";
  p.lr_min = 0.001;
  for (int64_t e : {0, 7, 99}) EXPECT_DOUBLE_EQ(p.lr_at(e, 100), cosine_lr(0.1, 0.001, e, 100));
}

TEST(TrainProtocol, ACheckpointFromBeforeTheSchedulesKeepsItsCosine) {
  Config c(train_option_table());
  auto p = resolve_train_protocol(train_options().read(c), "darts", 224, "darts");
  ASSERT_EQ(p.lr_schedule, "exponential");
  // The protocol JSON of a checkpoint written before train.lr_schedule existed (every schedule a cosine then).
  const std::string before = R"({"name":"darts-imagenet","epochs":250,"batch_size":128,"lr":0.1})";
  EXPECT_TRUE(adopt_older_schedule(p, before, train_options().read(c)));
  EXPECT_EQ(p.lr_schedule, "cosine");
  EXPECT_EQ(p.warmup_epochs, 0);
  EXPECT_DOUBLE_EQ(p.lr_at(100, 250), cosine_lr(0.1, 0, 100, 250));
  // A checkpoint that records its schedule keeps the resolved one; so does an explicit train.lr_schedule.
  auto q = resolve_train_protocol(train_options().read(c), "darts", 224, "drnas");
  EXPECT_FALSE(adopt_older_schedule(q, q.to_json(), train_options().read(c)));
  EXPECT_EQ(q.lr_schedule, "linear");
  c.set("train.lr_schedule", "linear");
  auto r = resolve_train_protocol(train_options().read(c), "darts", 224, "darts");
  EXPECT_FALSE(adopt_older_schedule(r, before, train_options().read(c)));
  EXPECT_EQ(r.lr_schedule, "linear");
}

TEST(TrainProtocol, TheSearchMethodIsReadFromGenotypeJson) {
  test::TempDir dir;
  const std::string genotype =
      "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
      "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), "
      "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
      "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";
  nlohmann::json j = {{"space", "darts"}, {"genotype", genotype}, {"method", "drnas"}};
  std::ofstream(dir.file("genotype.json")) << j.dump();
  EXPECT_EQ(resolve_train_target(dir.path()).method, "drnas");
  EXPECT_EQ(resolve_train_target(dir.file("genotype.json")).method, "drnas");
  j.erase("method");  // an older genotype.json, or another writer
  std::ofstream(dir.file("genotype.json")) << j.dump();
  EXPECT_EQ(resolve_train_target(dir.path()).method, "");
  EXPECT_EQ(resolve_train_target(genotype).method, "");
}

}  // namespace
