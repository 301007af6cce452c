// The Dirichlet sampler DrNAS draws its mixing weights with: the gamma draws' moments (from host
// noise, method/dirichlet.h), sampling statistics, keyed reproducibility, and the pathwise
// gradient against finite differences with common random numbers and against the closed form.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/core/rng.h"
#include "probnas/method/dirichlet.h"

namespace probnas {
namespace {

const torch::Tensor kBeta = torch::tensor({0.6, 1.3, 2.5, 4.0}, torch::kFloat64);

TEST(Dirichlet, GammaDrawsFromHostNoiseHaveTheGammaMomentsForSmallAndLargeShapes) {
  // Mean a, variance a and E[log X] = digamma(a) for Gamma(a, 1). The log moment weighs the small
  // values that the boost U^(1/a) of a shape below 1 makes, where a wrong boost would show first.
  const int64_t n = 200000;
  for (double a : {0.05, 0.3, 1.0, 2.5, 30.0}) {
    auto gen = make_generator(RngKey(17).with(static_cast<uint64_t>(a * 100)));
    const auto alpha = torch::full({n}, a, torch::kFloat64);
    const auto x = gamma_from_noise(alpha, gamma_noise(n, gen, torch::kFloat64));
    EXPECT_GT(x.min().item<double>(), 0.0) << a;
    const double se_mean = std::sqrt(a / n);
    EXPECT_NEAR(x.mean().item<double>(), a, 5 * se_mean) << "shape " << a;
    // Var of the sample variance: (mu4 - sigma^4) / n with mu4 = 3a^2 + 6a for Gamma(a).
    const double se_var = std::sqrt((3 * a * a + 6 * a - a * a) / n);
    EXPECT_NEAR(x.var().item<double>(), a, 5 * se_var) << "shape " << a;
    const auto al = torch::full({1}, a, torch::kFloat64);
    const double digamma = torch::digamma(al).item<double>(), trigamma = torch::polygamma(1, al).item<double>();
    EXPECT_NEAR(x.log().mean().item<double>(), digamma, 5 * std::sqrt(trigamma / n)) << "shape " << a;
    // The searches' float32: the same mean and variance, every draw positive. (Its E[log X] is not
    // tested: below a = 0.1 about 1% of the draws fall under float32's smallest normal number and
    // are clamped there, as LibTorch's sampler clamps them.)
    auto gen32 = make_generator(RngKey(18).with(static_cast<uint64_t>(a * 100)));
    const auto x32 = gamma_from_noise(alpha.to(torch::kFloat32), gamma_noise(n, gen32, torch::kFloat32))
                         .to(torch::kFloat64);
    EXPECT_GT(x32.min().item<double>(), 0.0) << a;
    EXPECT_NEAR(x32.mean().item<double>(), a, 5 * se_mean) << "float32, shape " << a;
    EXPECT_NEAR(x32.var().item<double>(), a, 5 * se_var) << "float32, shape " << a;
  }
}

TEST(Dirichlet, TheNoiseIsTheKeysAloneWhateverTheDtype) {
  // float32 and float64 runs see the same candidates, so their draws agree to float32 precision.
  auto g64 = make_generator(RngKey(2)), g32 = make_generator(RngKey(2));
  const auto n64 = gamma_noise(40, g64, torch::kFloat64), n32 = gamma_noise(40, g32, torch::kFloat32);
  EXPECT_EQ(n64.sizes(), torch::IntArrayRef({2 * kGammaCandidates + 1, 40}));
  EXPECT_TRUE(torch::equal(n64.to(torch::kFloat32), n32));
  const auto beta = kBeta.repeat({10, 1});
  const auto x64 = dirichlet_sample(beta, n64), x32 = dirichlet_sample(beta.to(torch::kFloat32), n32);
  EXPECT_TRUE(torch::allclose(x64.to(torch::kFloat32), x32, 1e-4, 1e-6));
}

TEST(Dirichlet, SampleMeanAndVarianceMatchTheory) {
  const int64_t n = 40000;
  auto gen = make_generator(RngKey(7).with("test"));
  auto theta = dirichlet_rsample(kBeta.expand({n, 4}).contiguous(), gen);
  ASSERT_EQ(theta.sizes(), torch::IntArrayRef({n, 4}));
  EXPECT_TRUE(torch::allclose(theta.sum(1), torch::ones({n}, torch::kFloat64), 1e-9, 1e-9));
  EXPECT_GE(theta.min().item<double>(), 0.0);
  const double b0 = kBeta.sum().item<double>();
  for (int64_t i = 0; i < 4; ++i) {
    const double a = kBeta[i].item<double>();
    const double mean = a / b0, var = a * (b0 - a) / (b0 * b0 * (b0 + 1));
    const auto col = theta.select(1, i);
    // 5 standard errors of the mean; the variance estimate's error is about var * sqrt(2/n) for these shapes.
    EXPECT_NEAR(col.mean().item<double>(), mean, 5 * std::sqrt(var / n)) << "component " << i;
    EXPECT_NEAR(col.var().item<double>(), var, 6 * var * std::sqrt(2.0 / n) + 0.02 * var) << "component " << i;
  }
}

TEST(Dirichlet, DrawsAreKeyedNotGlobal) {
  auto a = dirichlet_rsample(kBeta.expand({8, 4}).contiguous(), make_generator(RngKey(1).with("x").with(5)));
  torch::manual_seed(123);  // the global generator must not matter
  auto b = dirichlet_rsample(kBeta.expand({8, 4}).contiguous(), make_generator(RngKey(1).with("x").with(5)));
  auto c = dirichlet_rsample(kBeta.expand({8, 4}).contiguous(), make_generator(RngKey(1).with("x").with(6)));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

// f(theta) = sum_i c_i theta_i^2 ; E[theta_i^2] = a_i (a_i + 1) / (b0 (b0 + 1)).
const torch::Tensor kC = torch::tensor({1.0, -2.0, 3.0, 0.5}, torch::kFloat64);

// Dir(beta) draws as normalised Gamma(beta_i) draws, each Gamma drawn by inverting its CDF (the
// regularised incomplete gamma function, by bisection) at fixed uniforms `u`. The draw is then a
// smooth function of beta, so a finite difference with the same `u` on both sides (common random
// numbers) estimates d E[f] / d beta without bias. (LibTorch's own sampler is a rejection sampler:
// a finite difference through it misses the moving acceptance boundary.)
torch::Tensor objective_per_draw(const torch::Tensor& beta, const torch::Tensor& u) {
  torch::NoGradGuard guard;
  auto alpha = beta.expand_as(u);
  auto lo = torch::zeros_like(u), hi = alpha + 20 * alpha.sqrt() + 40;  // P(Gamma > hi) < 1e-17 here
  for (int it = 0; it < 64; ++it) {
    auto mid = (lo + hi) / 2;
    auto below = torch::igamma(alpha, mid) < u;
    lo = torch::where(below, mid, lo);
    hi = torch::where(below, hi, mid);
  }
  auto gamma = (lo + hi) / 2;
  auto theta = gamma / gamma.sum(1, true);
  return (theta.pow(2) * kC).sum(1);
}

torch::Tensor closed_form_gradient(const torch::Tensor& beta_in) {
  auto beta = beta_in.clone().requires_grad_(true);
  auto b0 = beta.sum();
  auto expected = (kC * beta * (beta + 1) / (b0 * (b0 + 1))).sum();
  expected.backward();
  return beta.grad();
}

TEST(Dirichlet, PathwiseGradientMatchesFiniteDifferencesWithCommonRandomNumbers) {
  const int64_t n = 20000;
  const uint64_t seed = 11;
  // One row of beta per draw, so each draw's own pathwise gradient is visible: their mean is the
  // estimate of d E[f] / d beta and their spread gives its Monte-Carlo standard error.
  auto rows = kBeta.expand({n, 4}).clone().requires_grad_(true);
  auto theta = dirichlet_rsample(rows, make_generator(RngKey(seed)));
  (theta.pow(2) * kC).sum(1).sum().backward();
  const auto per_draw = rows.grad();
  const auto pathwise = per_draw.mean(0);
  const auto stderr_ = per_draw.std(0) / std::sqrt(static_cast<double>(n));

  const double h = 1e-5;
  auto u_gen = make_generator(RngKey(seed).with("uniforms"));
  const auto u = torch::rand({n, 4}, u_gen, torch::kFloat64).clamp(1e-12, 1 - 1e-12);
  const auto exact = closed_form_gradient(kBeta);
  for (int64_t i = 0; i < 4; ++i) {
    auto up = kBeta.clone(), down = kBeta.clone();
    up[i] += h;
    down[i] -= h;
    const auto fd_draws = (objective_per_draw(up, u) - objective_per_draw(down, u)) / (2 * h);
    const double fd = fd_draws.mean().item<double>();
    const double fd_se = fd_draws.std().item<double>() / std::sqrt(static_cast<double>(n));
    const double p = pathwise[i].item<double>(), se = stderr_[i].item<double>(), e = exact[i].item<double>();
    // The two estimators differentiate different sample paths of one expectation: they agree
    // within their joint Monte-Carlo error, and both agree with the closed form.
    const double joint = std::sqrt(se * se + fd_se * fd_se);
    EXPECT_NEAR(p, fd, 5 * joint) << "component " << i << " (pathwise se " << se << ", fd se " << fd_se << ")";
    EXPECT_NEAR(p, e, 5 * se) << "component " << i;
    EXPECT_NEAR(fd, e, 5 * fd_se) << "component " << i;
    EXPECT_LT(joint, 0.05 * std::abs(e) + 2e-3) << "the test lost its power: too few draws";
  }
}

TEST(Dirichlet, GradientKeepsTheSimplexConstraint) {
  // d/dbeta of sum(theta) is zero: every draw stays on the simplex.
  auto beta = kBeta.clone().requires_grad_(true);
  auto theta = dirichlet_rsample(beta.expand({1000, 4}).contiguous(), make_generator(RngKey(3)));
  theta.sum().backward();
  EXPECT_LT(beta.grad().abs().max().item<double>(), 1e-8);
}

}  // namespace
}  // namespace probnas
