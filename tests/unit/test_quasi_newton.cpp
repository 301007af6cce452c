// The quasi-Newton inverse-Hessian estimates of GibbsNAS: dense BFGS converges to the true inverse
// on a quadratic and skips pairs without positive curvature; the diagonal estimate recovers a
// separable quadratic's inverse diagonal; Gaussian draws N(x - H b, H) built from the BFGS estimate
// have the target's mean and covariance; both estimates survive a checkpoint round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "probnas/core/error.h"
#include "probnas/core/rng.h"
#include "probnas/optim/quasi_newton.h"

namespace probnas {
namespace {

// A random symmetric positive definite matrix with eigenvalues in [lo, hi].
torch::Tensor spd(int64_t n, double lo, double hi, at::Generator& gen) {
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({n, n}, gen, torch::kFloat64)));
  const auto eig = torch::linspace(lo, hi, n, torch::kFloat64);
  return q.mm(torch::diag(eig)).mm(q.t());
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

TEST(BfgsInverseHessian, ReachesTheExactInverseOnAQuadraticInNStepsWithExactLineSearch) {
  // BFGS's quadratic termination (Nocedal & Wright, Thm. 6.4): minimising f = x'Ax/2 - c'x along
  // p = -H g with exact line searches, H equals A^-1 after n steps and x is the minimiser.
  auto gen = make_generator(RngKey(1));
  const int64_t n = 6;
  const auto A = spd(n, 0.5, 20, gen);
  const auto c = torch::randn({n}, gen, torch::kFloat64);
  auto x = torch::randn({n}, gen, torch::kFloat64);
  BfgsInverseHessian h(n);
  for (int64_t k = 0; k < n; ++k) {
    const auto g = A.mv(x) - c;
    const auto p = -h.apply(g);
    const double step = -g.dot(p).item<double>() / p.dot(A.mv(p)).item<double>();
    const auto s = step * p;
    x = x + s;
    ASSERT_TRUE(h.update(s, A.mv(s)));
  }
  EXPECT_LT(relative_error(h.matrix(), torch::linalg_inv(A)), 1e-8);
  EXPECT_LT(relative_error(x, torch::linalg_solve(A, c, /*left=*/true)), 1e-8);
  // The Cholesky factor reproduces H.
  const auto eye = torch::eye(n, torch::kFloat64);
  std::vector<torch::Tensor> columns;
  for (int64_t i = 0; i < n; ++i) columns.push_back(h.correlate(eye[i]));
  const auto L = torch::stack(columns, 1);
  EXPECT_LT(relative_error(L.mm(L.t()), h.matrix()), 1e-10);
}

TEST(BfgsInverseHessian, RandomPairsOfAQuadraticSatisfyTheSecantConditionAndApproachTheInverse) {
  auto gen = make_generator(RngKey(6));
  const int64_t n = 6;
  const auto A = spd(n, 1, 4, gen);
  const auto inverse = torch::linalg_inv(A);
  BfgsInverseHessian h(n);
  double first_error = 0;
  for (int k = 0; k < 200; ++k) {
    const auto s = torch::randn({n}, gen, torch::kFloat64);
    ASSERT_TRUE(h.update(s, A.mv(s)));
    if (k == 0) first_error = relative_error(h.matrix(), inverse);
    EXPECT_LT(relative_error(h.apply(A.mv(s)), s), 1e-9) << "pair " << k;  // H y = s for the newest pair
  }
  EXPECT_GT(first_error, 0.05);
  EXPECT_LT(relative_error(h.matrix(), inverse), 1e-4);
  EXPECT_EQ(h.accepted(), 200);
  EXPECT_EQ(h.skipped(), 0);
  EXPECT_EQ(h.resets(), 0);
}

TEST(BfgsInverseHessian, MeanOnlyGaussianStepsConvergeLikeNewtonsMethod) {
  // GibbsNAS's mean-only update x <- x - H b, H built from its own steps, on f = x'Ax/2 - c'x with a
  // condition number of 40: superlinear like Newton's method. Gradient descent at its best fixed
  // step (2 / (lambda_min + lambda_max), contraction 39/41 per step) needs about 460 steps to
  // reduce the error 1e10-fold.
  auto gen = make_generator(RngKey(7));
  const int64_t n = 6;
  const auto A = spd(n, 0.5, 20, gen);
  const auto c = torch::randn({n}, gen, torch::kFloat64);
  const auto best = torch::linalg_solve(A, c, /*left=*/true);
  auto x = torch::randn({n}, gen, torch::kFloat64);
  const double start = (x - best).norm().item<double>();
  BfgsInverseHessian h(n, BfgsOptions{0.05});  // about 1 / lambda_max before the first pair
  torch::Tensor previous_x, previous_b;
  int steps = 0;
  for (; steps < 40 && (x - best).norm().item<double>() > 1e-10 * start; ++steps) {
    const auto b = A.mv(x) - c;
    if (previous_x.defined()) h.update(x - previous_x, b - previous_b);
    previous_x = x, previous_b = b;
    x = x - h.apply(b);
  }
  EXPECT_LE(steps, 25) << "error " << (x - best).norm().item<double>() / start;
}

TEST(BfgsInverseHessian, PairsWithoutPositiveCurvatureAreSkipped) {
  BfgsInverseHessian h(3, BfgsOptions{2.0});
  const auto before = h.matrix().clone();
  const auto s = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  EXPECT_FALSE(h.update(s, -s));                                               // s'y < 0
  EXPECT_FALSE(h.update(s, torch::tensor({2.0, 1.0, 0.0}, torch::kFloat64)));  // s'y = 0
  EXPECT_FALSE(h.update(s, torch::tensor({std::nan(""), 1.0, 0.0}, torch::kFloat64)));  // not finite
  EXPECT_EQ(h.skipped(), 3);
  EXPECT_EQ(h.accepted(), 0);
  EXPECT_TRUE(torch::equal(h.matrix(), before));
  EXPECT_TRUE(torch::allclose(before, 2.0 * torch::eye(3, torch::kFloat64)));
  // A good pair is taken, and H stays symmetric positive definite.
  EXPECT_TRUE(h.update(s, 3 * s));
  EXPECT_TRUE(torch::equal(h.matrix(), h.matrix().t()));
  EXPECT_GT(torch::linalg_eigvalsh(h.matrix()).min().item<double>(), 0.0);
}

TEST(BfgsInverseHessian, TheSpectrumCapBoundsANearlyFlatDirectionAndLeavesTheOthers) {
  // A quadratic with curvatures 2, 1, 0.5 and 1e-4 (an almost flat direction, as alpha's loss often
  // has), probed along its eigenvectors (conjugate directions: BFGS is then exact after 4 pairs). It
  // learns 1e4 along the flat one unless capped; the cap leaves the other three exact.
  auto gen = make_generator(RngKey(4));
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({4, 4}, gen, torch::kFloat64)));
  const auto curv = torch::tensor({2.0, 1.0, 0.5, 1e-4}, torch::kFloat64);
  const auto A = q.mm(torch::diag(curv)).mm(q.t());
  BfgsOptions capped;
  capped.max_eigenvalue = 10;
  BfgsInverseHessian free(4), cap(4, capped);
  for (int64_t k = 0; k < 4; ++k) {
    const auto s = q.select(1, k) * (k + 1.0);
    free.update(s, A.mv(s));
    cap.update(s, A.mv(s));
  }
  const auto free_eig = torch::linalg_eigvalsh(free.matrix());
  const auto cap_eig = torch::linalg_eigvalsh(cap.matrix());
  EXPECT_NEAR(free_eig.max().item<double>(), 1e4, 1e-3);
  EXPECT_EQ(free.clamped(), 0);
  EXPECT_EQ(cap.clamped(), 1);
  EXPECT_TRUE(torch::allclose(cap_eig, torch::tensor({0.5, 1.0, 2.0, 10.0}, torch::kFloat64), 1e-9, 1e-9)) << cap_eig;
  // The kept Cholesky factor is that of the capped matrix (the noise has the capped covariance).
  const auto z = torch::eye(4, torch::kFloat64);
  std::vector<torch::Tensor> cols;
  for (int64_t i = 0; i < 4; ++i) cols.push_back(cap.correlate(z[i]));
  const auto l = torch::stack(cols, 1);
  EXPECT_TRUE(torch::allclose(l.mm(l.t()), cap.matrix(), 1e-9, 1e-9));
  EXPECT_THROW(BfgsInverseHessian(4, BfgsOptions{1.0, 1e-8, true, 0.5}), Error);  // cap below the start
}

TEST(BfgsInverseHessian, GaussianDrawsHaveTheTargetMeanAndCovariance) {
  // The posterior N(mu, A^-1) of the negative log density f(x) = (x - mu)' A (x - mu) / 2; at any x,
  // b = A (x - mu) and x - H b + L z with H = A^-1 is a draw from it.
  auto gen = make_generator(RngKey(2));
  const auto A = torch::tensor({{3.0, 1.2}, {1.2, 1.0}}, torch::kFloat64);
  const auto mu = torch::tensor({0.5, -1.0}, torch::kFloat64);
  BfgsInverseHessian h(2);
  for (int k = 0; k < 40; ++k) {
    const auto s = torch::randn({2}, gen, torch::kFloat64);
    h.update(s, A.mv(s));
  }
  const auto x = torch::tensor({4.0, 2.0}, torch::kFloat64);
  const auto b = A.mv(x - mu);
  const int n = 20000;
  const auto z = torch::randn({n, 2}, gen, torch::kFloat64);
  std::vector<torch::Tensor> draws;
  const auto mean_step = x - h.apply(b);
  for (int i = 0; i < n; ++i) draws.push_back(mean_step + h.correlate(z[i]));
  const auto d = torch::stack(draws);
  const auto target_cov = torch::linalg_inv(A);
  const auto mean = d.mean(0);
  const auto centred = d - mean;
  const auto cov = centred.t().mm(centred) / (n - 1);
  // Monte-Carlo tolerance: the mean's standard error is sqrt(var / n); 5 of them.
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_NEAR(mean[i].item<double>(), mu[i].item<double>(), 5 * std::sqrt(target_cov[i][i].item<double>() / n));
  EXPECT_LT((cov - target_cov).abs().max().item<double>(), 0.05 * target_cov.abs().max().item<double>());
}

TEST(BfgsInverseHessian, CheckpointRoundTripContinuesIdentically) {
  auto gen = make_generator(RngKey(3));
  const auto A = spd(4, 1, 5, gen);
  BfgsInverseHessian a(4), b(4);
  for (int k = 0; k < 3; ++k) {
    const auto s = torch::randn({4}, gen, torch::kFloat64);
    a.update(s, A.mv(s));
  }
  ckpt::State state;
  a.save(state);
  b.load(state);
  const auto s = torch::randn({4}, gen, torch::kFloat64);
  a.update(s, A.mv(s));
  b.update(s, A.mv(s));
  EXPECT_TRUE(torch::equal(a.matrix(), b.matrix()));
  EXPECT_EQ(a.accepted(), b.accepted());
  BfgsInverseHessian wrong(5);
  EXPECT_THROW(wrong.load(state), Error);
}

TEST(DiagonalInverseHessian, RecoversASeparableQuadraticsInverseDiagonal) {
  auto gen = make_generator(RngKey(4));
  const int64_t n = 1000;
  const auto a = torch::rand({n}, gen, torch::kFloat64) * 19 + 1;  // curvatures in [1, 20]
  DiagonalInverseHessian d(n, DiagonalOptions{3, 1.0, 1e-8, 100});
  EXPECT_TRUE(torch::allclose(d.diagonal(), torch::ones({n}, torch::kFloat64)));
  for (int k = 0; k < 5; ++k) {
    const auto s = torch::randn({n}, gen, torch::kFloat64);
    ASSERT_TRUE(d.update(s, a * s));
  }
  EXPECT_EQ(d.pairs(), 3);  // the history keeps the newest 3
  EXPECT_LT(relative_error(d.diagonal(), 1 / a), 1e-6);  // the history is kept in float32
}

TEST(DiagonalInverseHessian, CoordinatesWithoutCurvatureFallBackAndEverythingIsClamped) {
  // Coordinate 0 has negative curvature and coordinate 1 none (y = 0): both take gamma = s'y / y'y;
  // coordinates 2 and 3 take their secant fits 1 and 0.5, unless the clamp around gamma says otherwise.
  const auto s = torch::ones({4}, torch::kFloat64);
  const auto y = torch::tensor({-0.5, 0.0, 1.0, 2.0}, torch::kFloat64);
  const double gamma = 2.5 / 5.25;
  DiagonalInverseHessian wide(4, DiagonalOptions{5, 1.0, 1e-8, 100});
  ASSERT_TRUE(wide.update(s, y));
  const auto w = wide.diagonal();
  EXPECT_DOUBLE_EQ(w[0].item<double>(), gamma);
  EXPECT_DOUBLE_EQ(w[1].item<double>(), gamma);
  EXPECT_DOUBLE_EQ(w[2].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(w[3].item<double>(), 0.5);
  DiagonalInverseHessian narrow(4, DiagonalOptions{5, 1.0, 1e-8, 1.5});
  ASSERT_TRUE(narrow.update(s, y));
  EXPECT_DOUBLE_EQ(narrow.diagonal()[2].item<double>(), gamma * 1.5);
  EXPECT_DOUBLE_EQ(narrow.diagonal()[3].item<double>(), 0.5);
  // A pair without curvature as a whole is skipped.
  EXPECT_FALSE(wide.update(s, -y));
  EXPECT_EQ(wide.skipped(), 1);
  EXPECT_EQ(wide.pairs(), 1);
}

TEST(DiagonalInverseHessian, CheckpointRoundTripContinuesIdentically) {
  auto gen = make_generator(RngKey(5));
  const auto a = torch::rand({50}, gen, torch::kFloat64) + 0.5;
  DiagonalInverseHessian x(50, DiagonalOptions{2}), y(50, DiagonalOptions{2});
  for (int k = 0; k < 3; ++k) {
    const auto s = torch::randn({50}, gen, torch::kFloat64);
    x.update(s, a * s + 0.01 * torch::randn({50}, gen, torch::kFloat64));
  }
  ckpt::State state;
  x.save(state);
  y.load(state);
  EXPECT_TRUE(torch::equal(x.diagonal(), y.diagonal()));
  const auto s = torch::randn({50}, gen, torch::kFloat64);
  const auto g = a * s;
  x.update(s, g);
  y.update(s, g);
  EXPECT_TRUE(torch::equal(x.diagonal(), y.diagonal()));
  EXPECT_EQ(x.pairs(), 2);
  EXPECT_EQ(y.pairs(), 2);
}

}  // namespace
}  // namespace probnas
