// GDAS: the straight-through Gumbel-softmax weights (one-hot value, the soft sample's gradient),
// Gumbel-max draws that follow softmax(alpha) whatever tau, the edge rule of the reference code,
// a forward that runs only the chosen operations (equal to the discrete forward) and still sends
// a gradient to alpha, on both spaces, and the temperature schedule.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "probnas/core/error.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/space/darts_space.h"
#include "probnas/space/nb201.h"

namespace probnas {
namespace {

std::shared_ptr<Supernet> tiny(const std::string& space, uint64_t seed) {
  torch::manual_seed(seed);
  SpaceOptions o;
  o.space = space;
  o.channels = 4, o.cells_per_stage = 1, o.cells = 3, o.input_channels = 3, o.classes = 4;
  return make_supernet(o);
}

torch::Tensor one_hot(const std::vector<int64_t>& choice, int64_t ops) {
  auto h = torch::zeros({static_cast<int64_t>(choice.size()), ops});
  auto acc = h.accessor<float, 2>();
  for (size_t e = 0; e < choice.size(); ++e) acc[static_cast<int64_t>(e)][choice[e]] = 1.0f;
  return h;
}

torch::Tensor grad_of(const torch::Tensor& y, const torch::Tensor& x) {
  return torch::autograd::grad({y}, {x}, {}, /*retain_graph=*/true)[0];
}

// --- 1. straight-through weights ---------------------------------------------------------------

TEST(GdasGumbelSoftmax, HardIsOneHotAndCarriesTheSoftSamplesGradient) {
  torch::manual_seed(3);
  auto alpha = torch::randn({6, 5}).requires_grad_(true);
  auto gen = make_generator(RngKey(4));
  const auto g = -torch::empty({6, 5}).exponential_(1.0, gen).log();  // Gumbel(0, 1)
  const auto c = torch::randn({6, 5});  // a loss linear in the weights, with a gradient in every entry
  for (double tau : {0.3, 1.0, 10.0}) {
    const auto s = gumbel_softmax(alpha, g, tau);
    // Value: exactly one-hot at the argmax of the perturbed logits.
    const auto argmax = (torch::log_softmax(alpha.detach(), -1) + g).argmax(-1);
    EXPECT_TRUE(torch::equal(s.index, argmax));
    EXPECT_TRUE(torch::equal(s.hard.detach(), torch::zeros({6, 5}).scatter_(-1, argmax.unsqueeze(-1), 1.0)));
    // Gradient: that of the soft sample softmax((log_softmax(alpha) + g) / tau), written out here.
    const auto soft = torch::softmax((torch::log_softmax(alpha, -1) + g) / tau, -1);
    EXPECT_TRUE(torch::allclose(s.soft, soft));
    const auto via_hard = grad_of((s.hard * c).sum(), alpha), via_soft = grad_of((soft * c).sum(), alpha);
    EXPECT_GT(via_soft.abs().max().item<double>(), 1e-4) << "tau " << tau;
    EXPECT_TRUE(torch::allclose(via_hard, via_soft, 1e-5, 1e-7)) << "tau " << tau << "\n" << via_hard << via_soft;
  }
}

TEST(GdasGumbelSoftmax, TheMethodsDrawUsesItsNoiseAndTheCurrentTau) {
  auto net = tiny("darts", 0);  // two groups
  Gdas m(net, GradientMethodOptions{}, GdasOptions{}, RngKey(1));
  m.begin_epoch(3, 10);
  ASSERT_NEAR(m.tau(), 10 - 9.9 * 3 / 9, 1e-12);
  const auto d = m.draw(RngKey(9));
  ASSERT_EQ(d.choices.size(), 2u);
  for (size_t g = 0; g < 2; ++g) {
    const auto& alpha = m.arch_parameters()[g];
    ASSERT_EQ(d.choices[g].size(), 14u);
    EXPECT_TRUE(torch::equal(d.groups[g].hard.detach(), one_hot(d.choices[g], 8)));
    const auto c = torch::randn({14, 8});
    const auto soft = torch::softmax((torch::log_softmax(alpha, -1) + d.gumbel[g]) / m.tau(), -1);
    const auto via_hard = grad_of((d.groups[g].hard * c).sum(), alpha), via_soft = grad_of((soft * c).sum(), alpha);
    EXPECT_GT(via_soft.abs().max().item<double>(), 1e-5);
    EXPECT_TRUE(torch::allclose(via_hard, via_soft, 1e-5, 1e-8)) << "group " << g;
  }
  // Keyed: the same key draws the same noise and choices, another key other ones.
  const auto again = m.draw(RngKey(9)), other = m.draw(RngKey(10));
  EXPECT_TRUE(torch::equal(again.gumbel[0], d.gumbel[0]));
  EXPECT_EQ(again.choices, d.choices);
  EXPECT_FALSE(torch::equal(other.gumbel[0], d.gumbel[0]));
}

// --- 2. Gumbel-max: the choices follow softmax(alpha), whatever tau ----------------------------

TEST(GdasDraws, ChoicesFollowSoftmaxAlphaAndDoNotDependOnTau) {
  auto net = tiny("nb201", 0);
  Gdas m(net, GradientMethodOptions{}, GdasOptions{}, RngKey(1));
  const std::vector<float> base{1.2f, 0.3f, -0.5f, 0.9f, -1.0f};
  auto alpha = torch::empty({6, 5});
  auto a_acc = alpha.accessor<float, 2>();
  for (int64_t e = 0; e < 6; ++e)
    for (int64_t k = 0; k < 5; ++k)
      a_acc[e][k] = base[static_cast<size_t>((k + e) % 5)] * (1.0f + 0.2f * static_cast<float>(e));
  {
    torch::NoGradGuard no_grad;
    m.arch_parameters()[0].copy_(alpha);
  }
  const auto p = torch::softmax(alpha, -1).to(torch::kFloat64);
  // At tau = tau_max = 10: a draw that scaled the noise or the logits by tau would be near uniform here.
  m.begin_epoch(0, 10);
  ASSERT_DOUBLE_EQ(m.tau(), 10.0);
  const int n = 4000;
  auto counts = torch::zeros({6, 5}, torch::kFloat64);
  auto c_acc = counts.accessor<double, 2>();
  for (int d = 0; d < n; ++d) {
    const auto a = m.sample(RngKey(11).with(static_cast<uint64_t>(d)));
    ASSERT_TRUE(a.has_choices() && !a.has_weights());
    for (int64_t e = 0; e < 6; ++e) c_acc[e][a.choices[0][static_cast<size_t>(e)]] += 1;
  }
  const auto freq = counts / n;
  const auto tolerance = 4.5 * (p * (1 - p) / n).sqrt();  // 4.5 standard errors per cell
  EXPECT_TRUE((freq - p).abs().le(tolerance).all().item<bool>()) << "frequencies\n" << freq << "\nsoftmax(alpha)\n" << p;

  // The argmax of (log_softmax(alpha) + g) / tau is that of log_softmax(alpha) + g: the same key
  // chooses the same operations at tau 10 and tau 0.1, while the soft sample sharpens.
  std::vector<std::vector<std::vector<int64_t>>> hot;
  double hot_max = 0, cold_max = 0;
  for (int d = 0; d < 200; ++d) {
    const auto draw = m.draw(RngKey(12).with(static_cast<uint64_t>(d)));
    hot.push_back(draw.choices);
    hot_max += draw.groups[0].soft.amax(-1).mean().item<double>() / 200;
  }
  m.begin_epoch(9, 10);
  ASSERT_DOUBLE_EQ(m.tau(), 0.1);
  for (int d = 0; d < 200; ++d) {
    const auto draw = m.draw(RngKey(12).with(static_cast<uint64_t>(d)));
    EXPECT_EQ(draw.choices, hot[static_cast<size_t>(d)]) << "draw " << d;
    cold_max += draw.groups[0].soft.amax(-1).mean().item<double>() / 200;
  }
  EXPECT_LT(hot_max, 0.5);
  EXPECT_GT(cold_max, 0.9);
}

// --- the edge rule of GDAS's reference code ----------------------------------------------------

// With choice c and weights w, an edge computes op_c(x) * w[c] + sum_{k != c} w[k]: d/dw[c] is
// <G, op_c(x)>, d/dw[k] the sum of G for every other k (the broadcast scalar), 0 for a chosen `none`.
TEST(GdasEdge, OnlyTheChosenOperationRunsAndEveryWeightGetsTheReferenceGradient) {
  torch::manual_seed(5);
  std::vector<OpPtr> ops;
  for (const auto& name : kNb201Ops) ops.push_back(make_nb201_op(name, 3, 3, 1, BnOptions{false, true}));
  const auto x = torch::randn({2, 3, 5, 5});
  for (int64_t c = 0; c < 5; ++c) {
    auto w = torch::rand({5}).requires_grad_(true);
    const auto out = mixed_edge(ops, x, w, &c);
    const auto op_out = ops[static_cast<size_t>(c)]->forward(x).detach();
    const auto others = w.detach().sum() - w.detach()[c];
    EXPECT_TRUE(torch::allclose(out.detach(), op_out * w.detach()[c] + others)) << kNb201Ops[static_cast<size_t>(c)];
    const auto G = torch::randn_like(out);
    (out * G).sum().backward();
    for (int64_t k = 0; k < 5; ++k) {
      const double expected = k == c ? (G * op_out).sum().item<double>() : G.sum().item<double>();
      EXPECT_NEAR(w.grad()[k].item<double>(), expected, 1e-4) << "choice " << c << ", weight " << k;
    }
    // The unchosen operations' parameters took no part.
    for (size_t k = 0; k < ops.size(); ++k)
      for (const auto& p : ops[k]->parameters())
        EXPECT_EQ(p.grad().defined(), static_cast<int64_t>(k) == c) << "choice " << c << ", op " << kNb201Ops[k];
    for (auto& op : ops) op->zero_grad(/*set_to_none=*/true);
  }
}

// --- 3. the GDAS forward on both spaces --------------------------------------------------------

// The group and operation of a parameter inside a cell's mixed edge ("...edge<e>_<op>.<...>"), or
// {-1, "", -1} for the stem, preprocessing, reduction blocks and classifier.
struct EdgeParam {
  int64_t group = -1;
  std::string op;
  int64_t edge = -1;
};
EdgeParam edge_param(const std::string& name, const std::map<std::string, int64_t>& cell_group) {
  const auto pos = name.find(".edge");
  if (pos == std::string::npos) return {};
  const auto underscore = name.find('_', pos);
  const auto dot = name.find('.', underscore);
  EdgeParam r;
  r.group = cell_group.at(name.substr(0, pos));
  r.edge = std::stoll(name.substr(pos + 5, underscore - pos - 5));
  r.op = name.substr(underscore + 1, dot - underscore - 1);
  return r;
}

class GdasForward : public ::testing::TestWithParam<std::string> {};

TEST_P(GdasForward, EqualsTheDiscreteForwardRunsOnlyTheChosenOpsAndReachesAlpha) {
  auto net = tiny(GetParam(), 2);
  net->train();
  Gdas m(net, GradientMethodOptions{}, GdasOptions{}, RngKey(7));
  m.begin_epoch(1, 4);
  const auto& shape = net->arch_shape();
  std::map<std::string, int64_t> cell_group;  // module name of each cell -> its architecture group
  for (const auto& kv : net->named_children()) {
    if (auto cell = std::dynamic_pointer_cast<DartsCell>(kv.value())) cell_group[kv.key()] = cell->reduction() ? 1 : 0;
    else if (std::dynamic_pointer_cast<Nb201Cell>(kv.value())) cell_group[kv.key()] = 0;
  }
  ASSERT_FALSE(cell_group.empty());
  torch::manual_seed(8);
  const auto x = torch::randn({4, 3, 8, 8});
  const auto y = torch::tensor({0, 1, 2, 3});
  int checked_draws = 0;
  for (uint64_t key = 0; key < 4; ++key) {
    const auto d = m.draw(RngKey(100 + key));
    std::vector<torch::Tensor> hard;
    for (const auto& g : d.groups) hard.push_back(g.hard);
    const auto logits = net->forward(x, ArchSample::chosen(d.choices, hard));
    {
      torch::NoGradGuard no_grad;
      const auto discrete = net->forward(x, ArchSample::discrete(d.choices));
      EXPECT_TRUE(torch::equal(logits.detach(), discrete)) << "max |difference| "
                                                           << (logits.detach() - discrete).abs().max().item<double>();
    }
    net->zero_grad(/*set_to_none=*/true);
    for (const auto& a : m.arch_parameters()) a.mutable_grad() = torch::Tensor();
    torch::nn::functional::cross_entropy(logits, y).backward();
    for (size_t g = 0; g < shape.size(); ++g) {
      const auto& grad = m.arch_parameters()[g].grad();
      ASSERT_TRUE(grad.defined()) << shape[g].name;
      EXPECT_TRUE(torch::isfinite(grad).all().item<bool>());
      EXPECT_GT(grad.abs().max().item<double>(), 0.0) << shape[g].name;
    }
    // Only the chosen operations ran: their parameters have gradients, the others none.
    int chosen_with_params = 0;
    for (const auto& kv : net->named_parameters()) {
      const auto where = edge_param(kv.key(), cell_group);
      if (where.group < 0) continue;
      const auto& ops = shape[static_cast<size_t>(where.group)].ops;
      const auto k = std::find(ops.begin(), ops.end(), where.op) - ops.begin();
      ASSERT_LT(k, static_cast<int64_t>(ops.size())) << kv.key();
      const bool chosen = d.choices[static_cast<size_t>(where.group)][static_cast<size_t>(where.edge)] == k;
      EXPECT_EQ(kv.value().grad().defined(), chosen) << kv.key();
      chosen_with_params += chosen;
    }
    checked_draws += chosen_with_params > 0;
  }
  EXPECT_GT(checked_draws, 0);  // some draw chose operations with parameters
}

INSTANTIATE_TEST_SUITE_P(Spaces, GdasForward, ::testing::Values("nb201", "darts"));

// --- 4. the temperature ------------------------------------------------------------------------

TEST(GdasTau, FallsLinearlyFromTauMaxToTauMin) {
  EXPECT_DOUBLE_EQ(gdas_tau(10, 0.1, 0, 250), 10.0);
  EXPECT_DOUBLE_EQ(gdas_tau(10, 0.1, 249, 250), 0.1);
  EXPECT_NEAR(gdas_tau(10, 0.1, 25, 51), 5.05, 1e-12);  // the middle epoch
  for (int64_t e = 1; e < 250; ++e)
    EXPECT_NEAR(gdas_tau(10, 0.1, e, 250) - gdas_tau(10, 0.1, e - 1, 250), -9.9 / 249, 1e-12) << e;
  EXPECT_DOUBLE_EQ(gdas_tau(10, 0.1, 0, 1), 10.0);  // a one-epoch search stays at tau_max
  EXPECT_NEAR(gdas_tau(4, 2, 2, 3), 2.0, 1e-12);

  auto net = tiny("nb201", 0);
  Gdas m(net, GradientMethodOptions{}, GdasOptions{5, 0.5}, RngKey(1));
  for (int64_t e : {0, 3, 9}) {
    m.begin_epoch(e, 10);
    EXPECT_NEAR(m.tau(), 5 - 4.5 * static_cast<double>(e) / 9, 1e-12);
    const auto scalars = m.scalars();
    ASSERT_EQ(scalars.size(), 2u);
    EXPECT_EQ(scalars[0].first, "arch_entropy");
    EXPECT_EQ(scalars[1].first, "tau");
    EXPECT_DOUBLE_EQ(scalars[1].second, m.tau());
  }
}

TEST(GdasTau, BadTemperaturesAreRefusedNamingTheKey) {
  auto net = tiny("nb201", 0);
  try {
    Gdas m(net, GradientMethodOptions{}, GdasOptions{1, 2}, RngKey(1));
    FAIL() << "tau_max < tau_min accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gdas.tau_max"), std::string::npos) << e.what();
  }
  try {
    Gdas m(net, GradientMethodOptions{}, GdasOptions{1, 0}, RngKey(1));
    FAIL() << "tau_min = 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gdas.tau_min"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace probnas
