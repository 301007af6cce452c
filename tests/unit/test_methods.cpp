// DARTS, DrNAS and GDAS on a tiny problem: the validation loss falls, the architecture parameters
// move, keyed draws reproduce, and save/load restores everything a further step depends on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>

#include "probnas/core/error.h"
#include "probnas/method/darts/darts.h"
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/method/gibbsnas/gibbsnas.h"
#include "probnas/optim/optimizers.h"
#include "test_support.h"

namespace probnas {
namespace {

struct Problem {
  std::shared_ptr<const Dataset> data;
  std::unique_ptr<SplitLoader> train, val;
};

Problem make_problem() {
  SyntheticOptions so;
  so.count = 512, so.channels = 3, so.size = 8, so.classes = 4, so.seed = 5;
  Problem p;
  p.data = std::make_shared<const Dataset>(make_synthetic(so));
  const auto split = make_search_split(p.data->size(), 0.5, RngKey(1));
  SplitOptions lo;
  lo.global_batch = 32;
  lo.micro_batches = 2;
  lo.augment = false;
  const auto stats = ChannelStats::of(*p.data);
  p.train = std::make_unique<SplitLoader>(p.data, split.weights, stats, lo, RngKey(1).with("w"), torch::kCPU, 0, 1);
  p.val = std::make_unique<SplitLoader>(p.data, split.arch, stats, lo, RngKey(1).with("a"), torch::kCPU, 0, 1);
  return p;
}

std::shared_ptr<Supernet> tiny_net(uint64_t seed) {
  torch::manual_seed(seed);
  SpaceOptions o;
  o.channels = 4, o.cells_per_stage = 1, o.input_channels = 3, o.classes = 4;
  return make_supernet(o);
}

GradientMethodOptions fast_options() {
  GradientMethodOptions o;
  o.weights.lr = 0.05;
  o.arch.lr = 3e-3;
  return o;
}

std::unique_ptr<GradientMethod> make_with(const std::string& name, std::shared_ptr<Supernet> net,
                                          const GradientMethodOptions& o, const RngKey& key) {
  if (name == "darts") return std::make_unique<Darts>(std::move(net), o, key);
  if (name == "gdas") return std::make_unique<Gdas>(std::move(net), o, GdasOptions{}, key);
  if (name.rfind("gibbs", 0) == 0) {  // gibbs1, gibbs2 (sampled), gibbs2-mean (mean steps only)
    GibbsOptions g;
    g.order = name == "gibbs1" ? 1 : 2;
    g.sample_weights = g.sample_arch = name != "gibbs2-mean";
    return std::make_unique<GibbsNas>(std::move(net), o, g, key);
  }
  return std::make_unique<Drnas>(std::move(net), o, key);
}

std::unique_ptr<GradientMethod> make(const std::string& name, std::shared_ptr<Supernet> net, const RngKey& key) {
  return make_with(name, std::move(net), fast_options(), key);
}

double validation_loss(Supernet& net, SearchMethod& m, const std::vector<Batch>& batches) {
  torch::NoGradGuard guard;
  double total = 0;
  int64_t n = 0;
  for (const auto& b : batches) {
    auto logits = net.forward(b.x, ArchSample::dense(m.expected_weights()));
    total += torch::nn::functional::cross_entropy(logits, b.y).item<double>() * static_cast<double>(b.y.size(0));
    n += b.y.size(0);
  }
  return total / static_cast<double>(n);
}

// The loss of the architectures the method draws, over 48 keyed draws (the same before and after):
// what DrNAS and GDAS minimise in expectation.
double sampled_loss(Supernet& net, SearchMethod& m, const std::vector<Batch>& batches) {
  torch::NoGradGuard guard;
  double total = 0;
  const int draws = 48;
  for (int d = 0; d < draws; ++d) {
    auto arch = m.sample(RngKey(1234).with(static_cast<uint64_t>(d)));
    for (const auto& b : batches) total += torch::nn::functional::cross_entropy(net.forward(b.x, arch), b.y).item<double>();
  }
  return total / (draws * static_cast<double>(batches.size()));
}

// GDAS trains single paths: the dense mixture is not the network it searches, so its sampled paths are scored.
double search_loss(const std::string& name, Supernet& net, SearchMethod& m, const std::vector<Batch>& batches) {
  return name == "gdas" ? sampled_loss(net, m, batches) : validation_loss(net, m, batches);
}

void run_steps(SearchMethod& m, Problem& p, int64_t first, int64_t count, StepMetrics& metrics) {
  StepContext ctx;
  ctx.key = RngKey(42);
  for (int64_t s = first; s < first + count; ++s) {
    ctx.global_step = s;
    m.step(p.train->batch_at(s), p.val->batch_at(s), ctx, metrics);
  }
}

class GradientMethods : public ::testing::TestWithParam<std::string> {};

TEST_P(GradientMethods, ValidationLossFallsAndArchitectureMoves) {
  auto p = make_problem();
  auto net = tiny_net(0);
  auto m = make(GetParam(), net, RngKey(3));
  m->begin_epoch(0, 1);
  std::vector<Batch> held_out;
  for (int64_t s = 0; s < 4; ++s)
    for (auto& b : p.val->batch(0, s)) held_out.push_back(b);
  const auto arch_before = m->arch_parameters()[0].detach().clone();
  const double before = search_loss(GetParam(), *net, *m, held_out);
  StepMetrics metrics;
  run_steps(*m, p, 0, 40, metrics);
  const double after = search_loss(GetParam(), *net, *m, held_out);
  EXPECT_LT(after, before - 0.15) << GetParam() << ": validation loss " << before << " -> " << after;
  const double moved = (m->arch_parameters()[0].detach() - arch_before).abs().max().item<double>();
  EXPECT_GT(moved, 1e-2) << GetParam();
  const auto v = metrics.read();
  EXPECT_EQ(v.train_count, 40 * 32);
  EXPECT_EQ(v.val_count, 40 * 32);
  EXPECT_GT(v.val_acc, 0.3);  // 4 classes: chance is 0.25
}

TEST_P(GradientMethods, SaveAndLoadRestoreEverythingTheNextStepUses) {
  auto p = make_problem();
  auto net_a = tiny_net(0);
  auto a = make(GetParam(), net_a, RngKey(3));
  a->begin_epoch(0, 2);
  StepMetrics metrics;
  run_steps(*a, p, 0, 5, metrics);
  ckpt::State state;
  a->save(state.group("method"), state.group("optim"));

  auto net_b = tiny_net(99);  // other weights and architecture: everything must come from the state
  {
    torch::NoGradGuard guard;
    auto src = net_a->named_parameters(), dst = net_b->named_parameters();
    for (const auto& kv : src) dst[kv.key()].copy_(kv.value());
    auto bsrc = net_a->named_buffers(), bdst = net_b->named_buffers();
    for (const auto& kv : bsrc) bdst[kv.key()].copy_(kv.value());
  }
  auto b = make(GetParam(), net_b, RngKey(77));
  b->load(state.group("method"), state.group("optim"));
  b->begin_epoch(0, 2);
  for (size_t g = 0; g < a->expected_weights().size(); ++g)
    EXPECT_TRUE(torch::equal(a->expected_weights()[g], b->expected_weights()[g]));
  run_steps(*a, p, 5, 2, metrics);
  run_steps(*b, p, 5, 2, metrics);
  EXPECT_TRUE(torch::equal(a->arch_parameters()[0], b->arch_parameters()[0])) << GetParam();
  auto pa = net_a->parameters(), pb = net_b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << GetParam() << " weight " << i;
}

// The architecture update alone, weights frozen (learning rate 0), on one fixed validation batch:
// DARTS must descend L(softmax(alpha)); DrNAS must descend E_theta~Dir(beta)[L(theta)], estimated
// with the same 48 keyed draws before and after. Run as ascent (negative learning rate) the same
// objective must rise, which shows the check can tell the update's direction.
// GDAS is not held to this: its straight-through gradient is not the gradient of E_c~softmax(alpha)
// [L(c)] (an unchosen operation enters only as a constant shift), and on this problem 25 such steps
// change that objective by less than 0.006 either way at any tau from 10 to 0.1 (measured). Its step
// is checked against the straight-through gradient itself below.
double architecture_objective(Supernet& net, GradientMethod& m, const std::vector<Batch>& batch, bool stochastic) {
  return stochastic ? sampled_loss(net, m, batch) : validation_loss(net, m, batch);
}

double objective_change(const std::string& name, double arch_lr) {
  auto p = make_problem();
  auto net = tiny_net(0);
  GradientMethodOptions o;
  o.weights.lr = 0, o.weights.momentum = 0, o.weights.weight_decay = 0;  // the weight step changes nothing
  o.lr_min = 0;
  o.arch.lr = arch_lr, o.arch.weight_decay = 0;
  auto m = make_with(name, net, o, RngKey(3));
  m->begin_epoch(0, 1);
  const auto val = p.val->batch(0, 0);
  const auto train = p.train->batch(0, 0);
  const bool stochastic = name != "darts";
  const double before = architecture_objective(*net, *m, val, stochastic);
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = RngKey(8);
  for (int64_t s = 0; s < 25; ++s) {
    ctx.global_step = s;
    m->step(train, val, ctx, metrics);
  }
  return architecture_objective(*net, *m, val, stochastic) - before;
}

class DescendingMethods : public ::testing::TestWithParam<std::string> {};

TEST_P(DescendingMethods, ArchitectureStepDescendsTheValidationObjective) {
  const double descent = objective_change(GetParam(), 0.05);
  const double ascent = objective_change(GetParam(), -0.05);
  std::cout << GetParam() << ": objective change " << descent << " by descent, " << ascent << " by ascent\n";
  EXPECT_LT(descent, -0.01) << GetParam();
  EXPECT_GT(ascent, 0.01) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Methods, GradientMethods, ::testing::Values("darts", "drnas", "gdas"));
INSTANTIATE_TEST_SUITE_P(Gibbs, GradientMethods, ::testing::Values("gibbs1", "gibbs2", "gibbs2-mean"));
INSTANTIATE_TEST_SUITE_P(Methods, DescendingMethods, ::testing::Values("darts", "drnas"));

// GDAS's architecture step: the gradient it leaves in alpha is the sum over the validation
// micro-batches of the straight-through gradient of each micro-batch's keyed draw, computed here
// from m.draw with the same key; Adam's first move is then -lr * g / (|g| + eps).
TEST(Gdas, ArchitectureStepIsAdamOnTheStraightThroughGradientOfTheKeyedDraws) {
  auto p = make_problem();
  auto net = tiny_net(0);
  auto o = fast_options();
  o.arch.lr = 0.01, o.arch.weight_decay = 0;
  Gdas m(net, o, GdasOptions{}, RngKey(3));
  m.begin_epoch(2, 5);  // tau 5.05
  StepContext ctx;
  ctx.key = RngKey(42);
  ctx.global_step = 7;
  const auto val = p.val->batch_at(7), train = p.train->batch_at(7);
  ASSERT_EQ(val.size(), 2u);
  const auto& alpha = m.arch_parameters()[0];
  auto expected = torch::zeros(alpha.sizes(), torch::kFloat64);
  for (const auto& b : val) {
    const auto d = m.draw(m.draw_key(ctx, true, b.index));
    const auto logits = net->forward(b.x, ArchSample::chosen(d.choices, {d.groups[0].hard}));
    const auto loss = torch::nn::functional::cross_entropy(
                          logits, b.y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                      static_cast<double>(b.global);
    expected += torch::autograd::grad({loss}, {alpha})[0].to(torch::kFloat64);
  }
  const auto before = alpha.detach().clone();
  StepMetrics metrics;
  m.step(train, val, ctx, metrics);
  ASSERT_TRUE(alpha.grad().defined());
  EXPECT_GT(expected.abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(torch::allclose(alpha.grad().to(torch::kFloat64), expected, 1e-4, 1e-7))
      << alpha.grad() << "\n" << expected;
  const auto moved = (alpha.detach() - before).to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(moved, -o.arch.lr * expected / (expected.abs() + o.arch.eps), 0, 1e-6)) << moved;
}

TEST(Darts, MixingWeightsAreTheSoftmaxOfAlpha) {
  auto net = tiny_net(0);
  Darts m(net, fast_options(), RngKey(1));
  const auto w = m.expected_weights()[0];
  EXPECT_TRUE(torch::allclose(w, torch::softmax(m.arch_parameters()[0].detach(), -1)));
  EXPECT_TRUE(torch::allclose(m.sample(RngKey(5)).weights[0], w));  // DARTS has no randomness
  // Initialised N(0, 1e-3^2): nearly uniform.
  EXPECT_LT((w - 0.2).abs().max().item<float>(), 1e-2);
}

TEST(Drnas, DrawsAreDirichletWithMeanBetaOverItsSum) {
  auto net = tiny_net(0);
  Drnas m(net, fast_options(), RngKey(1));
  const auto beta = m.concentration()[0];
  EXPECT_TRUE(torch::allclose(beta, torch::elu(m.arch_parameters()[0].detach()) + 1));
  EXPECT_TRUE(torch::allclose(m.expected_weights()[0], beta / beta.sum(-1, true)));
  const auto s1 = m.sample(RngKey(8)).weights[0], s2 = m.sample(RngKey(8)).weights[0], s3 = m.sample(RngKey(9)).weights[0];
  EXPECT_TRUE(torch::equal(s1, s2));
  EXPECT_FALSE(torch::equal(s1, s3));
  EXPECT_TRUE(torch::allclose(s1.sum(-1), torch::ones({6})));
  // A draw is far from its mean at beta ~ 1 (the exploration DrNAS relies on).
  EXPECT_GT((s1 - m.expected_weights()[0]).abs().max().item<float>(), 0.05);
  const auto scalars = m.scalars();
  ASSERT_EQ(scalars.size(), 2u);
  EXPECT_EQ(scalars[1].first, "concentration");
  EXPECT_NEAR(scalars[1].second, 5.0, 0.05);  // 5 ops x beta ~ 1
}


// GibbsNAS's weight sweep, order 2: one step of a sampling method and of its mean-only twin from the
// same point differ by the noise alone. With a huge tau_w the sampling clip must bring the noise down
// to gibbs.noise_clip times the mean step; without the clip the same noise is far larger.
double gibbs_noise_over_mean_step(double noise_clip) {
  auto p = make_problem();
  std::vector<torch::Tensor> moved[2], start;
  for (const auto& w : tiny_net(0)->parameters()) start.push_back(w.detach().clone());
  for (int variant = 0; variant < 2; ++variant) {
    auto net = tiny_net(0);
    GibbsOptions g;
    g.order = 2;
    g.sample_weights = variant == 1;
    g.sample_arch = false;
    g.weight_noise = 1e3;
    g.noise_clip = noise_clip;
    GibbsNas m(net, fast_options(), g, RngKey(3));
    m.begin_epoch(0, 1);
    StepMetrics metrics;
    run_steps(m, p, 0, 1, metrics);
    for (const auto& w : net->parameters()) moved[variant].push_back(w.detach().clone());
  }
  double noise = 0, mean_step = 0;
  for (size_t i = 0; i < start.size(); ++i) {
    noise += (moved[1][i] - moved[0][i]).pow(2).sum().item<double>();
    mean_step += (moved[0][i] - start[i]).pow(2).sum().item<double>();
  }
  EXPECT_GT(mean_step, 0);
  return std::sqrt(noise / mean_step);
}

TEST(Gibbs, SamplingClipHoldsTheWeightNoiseToItsShareOfTheMeanStep) {
  EXPECT_NEAR(gibbs_noise_over_mean_step(0.5), 0.5, 1e-3);
  EXPECT_NEAR(gibbs_noise_over_mean_step(1.0), 1.0, 1e-3);
  EXPECT_GT(gibbs_noise_over_mean_step(0.0), 100.0);  // unclipped: sqrt(1e3 H) against eta H b
}

// gibbs.arch_lr_schedule: alpha's first step from H_a = I (before any pair) is -eta_a b plus, when alpha is
// sampled, sqrt(eta_a (2 - eta_a) tau_a) z. From the same start in the last of 4 epochs, the cosine's mean
// step is the constant's scaled by r = cosine_lr(0.2, 0.2 lr_min / lr, 3, 4) / 0.2 on every coordinate, and
// its noise (sampled minus mean-only step, the same z) by sqrt(r (2 - 0.2 r) / (2 - 0.2)); in the first
// epoch both are the constant's. (arch_lr 0.2 differs from gibbs.weight_lr, whose rate it must not take.)
struct ArchSteps {
  double mean_min, mean_max, count, noise;  // cosine / constant: per-coordinate mean steps, noise norms
};

ArchSteps gibbs_arch_step_ratio(int64_t epoch) {
  auto p = make_problem();
  torch::Tensor step[2][2];  // [schedule][sampled]
  const auto o = fast_options();
  for (int variant = 0; variant < 2; ++variant)
    for (int sampled = 0; sampled < 2; ++sampled) {
      auto net = tiny_net(0);
      GibbsOptions g;
      g.order = 1;
      g.arch_lr = 0.2;
      g.sample_arch = sampled == 1;
      g.arch_noise = 1e-3;
      g.arch_lr_schedule = variant == 0 ? "constant" : "cosine";
      GibbsNas m(net, o, g, RngKey(3));
      m.begin_epoch(epoch, 4);
      EXPECT_NEAR(m.arch_eta(), variant == 0 ? 0.2 : cosine_lr(0.2, 0.2 * o.lr_min / o.weights.lr, epoch, 4), 1e-12);
      const auto before = m.arch_parameters().front().detach().clone();
      StepMetrics metrics;
      run_steps(m, p, 0, 1, metrics);
      step[variant][sampled] = (m.arch_parameters().front().detach() - before).to(torch::kFloat64);
    }
  const auto big = step[0][0].abs() > 1e-2 * step[0][0].abs().max();
  const auto r = (step[1][0] / step[0][0]).masked_select(big);
  const double noise = (step[1][1] - step[1][0]).norm().item<double>() / (step[0][1] - step[0][0]).norm().item<double>();
  return {r.min().item<double>(), r.max().item<double>(), static_cast<double>(r.numel()), noise};
}

TEST(Gibbs, CosineArchScheduleScalesAlphasStepAndNoiseByTheEpochsRate) {
  const auto o = fast_options();
  const double r = cosine_lr(0.2, 0.2 * o.lr_min / o.weights.lr, 3, 4) / 0.2;
  ASSERT_LT(r, 0.2);
  const auto last = gibbs_arch_step_ratio(3);
  EXPECT_GT(last.count, 10);
  EXPECT_NEAR(last.mean_min, r, 1e-3);
  EXPECT_NEAR(last.mean_max, r, 1e-3);
  EXPECT_NEAR(last.noise, std::sqrt(r * (2 - 0.2 * r) / (2 - 0.2)), 1e-3);
  const auto first = gibbs_arch_step_ratio(0);
  EXPECT_NEAR(first.mean_min, 1.0, 1e-6);
  EXPECT_NEAR(first.mean_max, 1.0, 1e-6);
  EXPECT_NEAR(first.noise, 1.0, 1e-6);
}

// A checkpoint written before gibbs.arch_lr_schedule existed (no arch_lr_schedule attribute in its gibbs
// group) ran alpha at a constant rate: it is refused, naming the option, rather than continued under a
// config.ini that would say otherwise; today's checkpoint resumes with its schedule, and only with it.
void copy_state_without(const ckpt::State& from, ckpt::State& to, const std::string& attr) {
  for (const auto& [name, value] : from.attrs())
    if (name != attr) to.set_attr(name, value);
  for (const auto& [name, t] : from.tensors()) to.put(name, t);
  for (const auto& [name, text] : from.texts()) {
    if (text.scalar) to.put_text(name, text.lines.front());
    else to.put_lines(name, text.lines);
  }
  for (const auto& [name, g] : from.groups()) copy_state_without(g, to.group(name), attr);
}

TEST(Gibbs, ACheckpointFromBeforeTheScheduleIsRefusedNamingTheOption) {
  auto p = make_problem();
  GibbsOptions g;
  g.order = 1;
  ASSERT_EQ(g.arch_lr_schedule, "cosine");  // the default
  GibbsNas a(tiny_net(0), fast_options(), g, RngKey(3));
  a.begin_epoch(0, 4);
  StepMetrics metrics;
  run_steps(a, p, 0, 2, metrics);
  ckpt::State today, before;
  a.save(today.group("method"), today.group("optim"));
  ASSERT_TRUE(today.group("method").group("gibbs").has_attr("arch_lr_schedule"));
  copy_state_without(today, before, "arch_lr_schedule");
  GibbsNas resumed(tiny_net(0), fast_options(), g, RngKey(3));
  resumed.load(today.group("method"), today.group("optim"));
  resumed.begin_epoch(3, 4);
  EXPECT_NEAR(resumed.arch_eta(), cosine_lr(0.1, 0.1 * fast_options().lr_min / fast_options().weights.lr, 3, 4),
              1e-12);
  GibbsNas old(tiny_net(0), fast_options(), g, RngKey(3));
  EXPECT_NE(test::error_of([&] { old.load(before.group("method"), before.group("optim")); })
                .find("before gibbs.arch_lr_schedule"),
            std::string::npos);
  GibbsOptions constant = g;
  constant.arch_lr_schedule = "constant";
  GibbsNas other(tiny_net(0), fast_options(), constant, RngKey(3));
  EXPECT_NE(test::error_of([&] { other.load(today.group("method"), today.group("optim")); })
                .find("arch_lr_schedule = cosine, this run has gibbs.arch_lr_schedule = constant"),
            std::string::npos);
}

TEST(Gibbs, UnknownArchScheduleIsRefused) {
  GibbsOptions g;
  g.arch_lr_schedule = "linear";
  EXPECT_THROW(GibbsNas(tiny_net(0), fast_options(), g, RngKey(3)), std::exception);
}

// The Gauss-Newton probe behind H_w's diagonal: on a linear softmax model z = W x, the diagonal of
// the Gauss-Newton matrix of the batch-mean cross entropy is exactly (1/B) sum_i x_id^2 p_ic (1 - p_ic)
// for W[c, d]; the squared gradient of the probe loss, summed over two micro-batches, averages to it.
// (Labels kept as the data's, or a 1/B scale instead of 1/sqrt(B), would miss it by far.)
TEST(Gibbs, GaussNewtonProbeEstimatesTheExactDiagonalWithoutBias) {
  auto gen = make_generator(RngKey(11));
  const int64_t B = 6, D = 3, K = 4;
  const auto X = torch::randn({B, D}, gen, torch::kFloat64);
  const auto W = (0.7 * torch::randn({K, D}, gen, torch::kFloat64)).requires_grad_(true);
  const auto p = torch::softmax(X.mm(W.detach().t()), 1);
  const auto exact = (p * (1 - p)).t().mm(X * X) / B;  // [K, D]
  auto average = torch::zeros({K, D}, torch::kFloat64);
  const int draws = 20000;
  for (int r = 0; r < draws; ++r) {
    auto g = torch::zeros({K, D}, torch::kFloat64);
    for (int64_t half = 0; half < 2; ++half) {  // two micro-batches of the global batch
      const auto logits = X.narrow(0, half * B / 2, B / 2).mm(W.t());
      g = g + torch::autograd::grad({gauss_newton_probe_loss(logits, B, gen)}, {W})[0];
    }
    average += g * g / draws;
  }
  EXPECT_LT((average - exact).abs().max().item<double>(), 0.05 * exact.abs().max().item<double>());
}

// Partial steps sample the paper's conditional: on U(x) = (x - mu)' A (x - mu) / 2 with H = A^-1 (L-BFGS
// from conjugate pairs), the chain x <- x - eta H b + sqrt(eta (2 - eta) tau) H^(1/2) z settles to
// N(mu, tau A^-1), the law of the paper's full step (eta = 1), for a small eta too. Without the factor
// (noise tau H at eta = 0.1) its covariance would be 1 / (eta (2 - eta)) = 5.3 times too large.
TEST(Gibbs, PartialStepsSampleThePapersConditional) {
  auto gen = make_generator(RngKey(12));
  const auto A = torch::tensor({{2.0, 0.6}, {0.6, 0.5}}, torch::kFloat64);
  const auto mu = torch::tensor({1.0, -2.0}, torch::kFloat64);
  LbfgsInverseHessian h(2, LbfgsOptions{2});
  h.update(torch::tensor({1.0, 0.0}, torch::kFloat64), A.mv(torch::tensor({1.0, 0.0}, torch::kFloat64)));
  const auto second = torch::tensor({-0.6, 2.0}, torch::kFloat64);  // A-conjugate to e1: e1' A second = 0
  h.update(second, A.mv(second));
  const double eta = 0.1, tau = 0.2;
  const double factor = partial_step_noise(eta);
  EXPECT_DOUBLE_EQ(factor, 0.19);
  EXPECT_DOUBLE_EQ(partial_step_noise(1.0), 1.0);
  EXPECT_THROW(partial_step_noise(2.0), Error);
  auto x = torch::tensor({5.0, 5.0}, torch::kFloat64);
  const int burn = 200, count = 60000;
  const auto normals = torch::randn({burn + count, 2 + h.pairs()}, gen, torch::kFloat64);
  std::vector<torch::Tensor> chain;
  for (int i = 0; i < burn + count; ++i) {
    x = gaussian_step(h, x, A.mv(x - mu), eta, factor * tau, normals[i]);
    if (i >= burn) chain.push_back(x);
  }
  const auto d = torch::stack(chain);
  const auto mean = d.mean(0);
  const auto centred = d - mean;
  const auto cov = centred.t().mm(centred) / (count - 1);
  const auto target = tau * torch::linalg_inv(A);
  // The chain's draws are correlated (lag-1 factor 0.9), so the tolerances allow for ~20x fewer
  // independent draws than the chain has.
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_NEAR(mean[i].item<double>(), mu[i].item<double>(), 5 * std::sqrt(20 * target[i][i].item<double>() / count));
  EXPECT_LT((cov - target).abs().max().item<double>(), 0.08 * target.abs().max().item<double>());
}

// The paper's update rule with its defaults (eta_w = eta_a = 0.1, decays 1e-4, L-BFGS from the
// Gauss-Newton diagonal) trains the tiny problem: the held-out loss falls and stays finite.
TEST(Gibbs, ThePapersDefaultsTrainTheWeights) {
  auto p = make_problem();
  auto net = tiny_net(0);
  GibbsNas m(net, fast_options(), GibbsOptions{}, RngKey(3));
  m.begin_epoch(0, 1);
  std::vector<Batch> held_out;
  for (int64_t s = 0; s < 4; ++s)
    for (auto& b : p.val->batch(0, s)) held_out.push_back(b);
  const double first = validation_loss(*net, m, held_out);
  StepMetrics metrics;
  run_steps(m, p, 0, 40, metrics);
  const double last = validation_loss(*net, m, held_out);
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, 0.8 * first) << "from " << first;
  EXPECT_GT(m.weight_inverse_hessian().pairs(), 0);
  EXPECT_EQ(m.weight_curvature().estimates(), 40);
  // H_w's initial diagonal is bounded by 1 / (decay + mu).
  EXPECT_LE(m.weight_inverse_hessian().initial().max().item<double>(), 1 / (1e-4 + 0.1) + 1e-12);
}

// The final report: alpha's posterior spread per edge and operation, sqrt(tau_a diag H).
TEST(Gibbs, ReportGivesAlphasPosteriorSpreadPerEdgeAndOperation) {
  auto p = make_problem();
  auto net = tiny_net(0);
  GibbsOptions g;
  GibbsNas m(net, fast_options(), g, RngKey(3));
  m.begin_epoch(0, 1);
  StepMetrics metrics;
  run_steps(m, p, 0, 6, metrics);
  const auto report = nlohmann::json::parse(m.report_json());
  const auto& shape = net->arch_shape().front();
  const auto& spread = report["alpha_std"][shape.name];
  ASSERT_EQ(static_cast<int64_t>(spread.size()), shape.edges());
  const auto h = m.arch_inverse_hessian().matrix();
  EXPECT_GT(m.arch_inverse_hessian().accepted(), 0);
  for (int64_t e = 0; e < shape.edges(); ++e)
    for (int64_t o = 0; o < shape.num_ops(); ++o) {
      const int64_t i = e * shape.num_ops() + o;
      EXPECT_NEAR(spread[shape.edge_names[static_cast<size_t>(e)]][shape.ops[static_cast<size_t>(o)]].get<double>(),
                  std::sqrt(g.arch_noise * h[i][i].item<double>()), 1e-12);
    }
}

}  // namespace
}  // namespace probnas
