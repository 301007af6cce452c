// The quasi-Newton inverse-Hessian estimates of GibbsNAS: dense BFGS converges to the true inverse
// on a quadratic and skips pairs without positive curvature; L-BFGS's two-loop product equals the
// dense BFGS matrix and, with conjugate pairs, the exact inverse; its draws have covariance H and
// the Gaussian step the update rule's mean and covariance; all survive a checkpoint round trip.
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

// The BFGS recursion written out densely, H+ = (I - rho s y') H (I - rho y s') + rho s s', from H0.
torch::Tensor dense_bfgs(torch::Tensor h, const std::vector<torch::Tensor>& s, const std::vector<torch::Tensor>& y) {
  const auto eye = torch::eye(h.size(0), torch::kFloat64);
  for (size_t k = 0; k < s.size(); ++k) {
    const double rho = 1.0 / s[k].dot(y[k]).item<double>();
    const auto v = eye - rho * torch::outer(y[k], s[k]);
    h = v.t().mm(h).mm(v) + rho * torch::outer(s[k], s[k]);
  }
  return h;
}

// A-conjugate directions (s_i' A s_j = 0 for i != j): Gram-Schmidt in A's inner product.
std::vector<torch::Tensor> conjugate_directions(const torch::Tensor& A, at::Generator& gen) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < A.size(0); ++i) {
    auto v = torch::randn({A.size(0)}, gen, torch::kFloat64);
    for (const auto& d : out) v = v - (v.dot(A.mv(d)) / d.dot(A.mv(d))) * d;
    out.push_back(v);
  }
  return out;
}

TEST(LbfgsInverseHessian, TheTwoLoopProductEqualsTheDenseBfgsMatrixFromTheSameDiagonal) {
  auto gen = make_generator(RngKey(4));
  const int64_t n = 7;
  const auto A = spd(n, 0.5, 10, gen);
  const auto h0 = torch::rand({n}, gen, torch::kFloat64) + 0.2;
  LbfgsInverseHessian lbfgs(n, LbfgsOptions{3});
  lbfgs.set_initial(h0);
  std::vector<torch::Tensor> s, y;
  for (int k = 0; k < 5; ++k) {
    s.push_back(torch::randn({n}, gen, torch::kFloat64));
    y.push_back(A.mv(s.back()) + 0.05 * torch::randn({n}, gen, torch::kFloat64));
    ASSERT_TRUE(lbfgs.update(s.back(), y.back()));
  }
  EXPECT_EQ(lbfgs.pairs(), 3);  // the newest 3 of 5
  const std::vector<torch::Tensor> s3(s.end() - 3, s.end()), y3(y.end() - 3, y.end());
  const auto dense = dense_bfgs(torch::diag(h0), s3, y3);
  EXPECT_LT(relative_error(lbfgs.dense(), dense), 1e-12);
  const auto g = torch::randn({n}, gen, torch::kFloat64);
  EXPECT_LT(relative_error(lbfgs.apply(g), dense.mv(g)), 1e-12);
  // The dense BFGS class, started from the same H0 = I, agrees as long as the history holds every pair.
  LbfgsInverseHessian all(n, LbfgsOptions{10});
  BfgsOptions plain;
  plain.scale_first = false;
  BfgsInverseHessian bfgs(n, plain);
  for (size_t k = 0; k < s.size(); ++k) {
    all.update(s[k], y[k]);
    bfgs.update(s[k], y[k]);
  }
  EXPECT_LT(relative_error(all.dense(), bfgs.matrix()), 1e-12);
}

TEST(LbfgsInverseHessian, ConjugatePairsOfAQuadraticGiveItsExactInverse) {
  // BFGS's hereditary property: with y_j = A s_j and A-conjugate s_j, H y_j = s_j for every kept pair,
  // so n pairs make H = A^-1 whatever H0 was.
  auto gen = make_generator(RngKey(7));
  const int64_t n = 6;
  const auto A = spd(n, 0.3, 30, gen);
  LbfgsInverseHessian lbfgs(n, LbfgsOptions{n});
  lbfgs.set_initial(torch::rand({n}, gen, torch::kFloat64) * 5 + 0.1);
  for (const auto& d : conjugate_directions(A, gen)) ASSERT_TRUE(lbfgs.update(d, A.mv(d)));
  EXPECT_LT(relative_error(lbfgs.dense(), torch::linalg_inv(A)), 1e-9);
  const auto g = torch::randn({n}, gen, torch::kFloat64);
  EXPECT_LT(relative_error(lbfgs.apply(g), torch::linalg_solve(A, g, /*left=*/true)), 1e-9);
}

TEST(LbfgsInverseHessian, ItsDrawsHaveExactlyTheCovarianceH) {
  // correlate() is linear in its normals [u; xi]: with M its matrix, the draws' covariance is M M'.
  auto gen = make_generator(RngKey(8));
  const int64_t n = 5;
  const auto A = spd(n, 1, 8, gen);
  LbfgsInverseHessian lbfgs(n, LbfgsOptions{4});
  lbfgs.set_initial(torch::rand({n}, gen, torch::kFloat64) + 0.5);
  for (int k = 0; k < 6; ++k) {
    const auto s = torch::randn({n}, gen, torch::kFloat64);
    lbfgs.update(s, A.mv(s));
  }
  const int64_t m = lbfgs.pairs();
  ASSERT_EQ(m, 4);
  const auto eye = torch::eye(n + m, torch::kFloat64);
  std::vector<torch::Tensor> columns;
  for (int64_t i = 0; i < n + m; ++i) columns.push_back(lbfgs.correlate(eye[i].narrow(0, 0, n), eye[i].narrow(0, n, m)));
  const auto M = torch::stack(columns, 1);
  EXPECT_LT(relative_error(M.mm(M.t()), lbfgs.dense()), 1e-12);
}

TEST(LbfgsInverseHessian, GaussianStepsHaveTheUpdateRulesMeanAndCovariance) {
  // GibbsNAS's Eq. 15 on the quadratic U(x) = (x - mu)' A (x - mu) / 2, whose conditional is
  // N(mu, A^-1): with H = A^-1 (conjugate pairs), draws x - eta H b + sqrt(tau) H^(1/2)[u; xi] have mean
  // x - eta A^-1 A (x - mu) and covariance tau A^-1 (moments of 40,000 draws).
  auto gen = make_generator(RngKey(9));
  const int64_t n = 3;
  const auto A = torch::tensor({{3.0, 1.2, 0.2}, {1.2, 1.0, -0.1}, {0.2, -0.1, 0.5}}, torch::kFloat64);
  const auto mu = torch::tensor({0.5, -1.0, 2.0}, torch::kFloat64);
  LbfgsInverseHessian h(n, LbfgsOptions{n});
  for (const auto& d : conjugate_directions(A, gen)) ASSERT_TRUE(h.update(d, A.mv(d)));
  const auto x = torch::tensor({4.0, 2.0, -1.0}, torch::kFloat64);
  const auto b = A.mv(x - mu);
  const double eta = 0.7, tau = 0.3;
  const int count = 40000;
  const auto normals = torch::randn({count, n + h.pairs()}, gen, torch::kFloat64);
  std::vector<torch::Tensor> draws;
  for (int i = 0; i < count; ++i) draws.push_back(gaussian_step(h, x, b, eta, tau, normals[i]));
  const auto d = torch::stack(draws);
  const auto target_mean = x - eta * (x - mu);
  const auto target_cov = tau * torch::linalg_inv(A);
  const auto mean = d.mean(0);
  const auto centred = d - mean;
  const auto cov = centred.t().mm(centred) / (count - 1);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(mean[i].item<double>(), target_mean[i].item<double>(),
                5 * std::sqrt(target_cov[i][i].item<double>() / count));
  EXPECT_LT((cov - target_cov).abs().max().item<double>(), 0.04 * target_cov.abs().max().item<double>());
  // tau = 0 is the mean itself, and the sampling clip bounds the noise by its share of the mean step.
  EXPECT_LT(relative_error(gaussian_step(h, x, b, eta, 0.0, normals[0]), target_mean), 1e-12);
  const auto clipped = gaussian_step(h, x, b, eta, 1e6, normals[0], 0.5);
  EXPECT_NEAR((clipped - target_mean).norm().item<double>(), 0.5 * (eta * (x - mu)).norm().item<double>(), 1e-9);
}

TEST(LbfgsInverseHessian, PairsWithoutPositiveCurvatureAreSkippedAndCheckpointsRoundTrip) {
  auto gen = make_generator(RngKey(5));
  const int64_t n = 20;
  const auto a = torch::rand({n}, gen, torch::kFloat64) + 0.5;
  LbfgsInverseHessian x(n, LbfgsOptions{2}), y(n, LbfgsOptions{2});
  x.set_initial(1 / a);
  const auto s0 = torch::randn({n}, gen, torch::kFloat64);
  EXPECT_FALSE(x.update(s0, -a * s0));
  EXPECT_EQ(x.skipped(), 1);
  EXPECT_EQ(x.pairs(), 0);
  for (int k = 0; k < 3; ++k) {
    const auto s = torch::randn({n}, gen, torch::kFloat64);
    x.update(s, a * s + 0.01 * torch::randn({n}, gen, torch::kFloat64));
  }
  ckpt::State state;
  x.save(state);
  y.load(state);
  const auto g = torch::randn({n}, gen, torch::kFloat64);
  EXPECT_TRUE(torch::equal(x.apply(g), y.apply(g)));
  const auto s = torch::randn({n}, gen, torch::kFloat64);
  x.update(s, a * s);
  y.update(s, a * s);
  EXPECT_TRUE(torch::equal(x.apply(g), y.apply(g)));
  EXPECT_EQ(y.pairs(), 2);
  EXPECT_EQ(y.skipped(), 1);
  LbfgsInverseHessian wrong(n + 1);
  EXPECT_THROW(wrong.load(state), Error);
}

TEST(DiagonalCurvature, KeepsARunningAverageThatSurvivesACheckpoint) {
  DiagonalCurvature c(3, 0.25), d(3, 0.25);
  c.add(torch::tensor({4.0, 0.0, 8.0}, torch::kFloat64));  // the first estimate is taken as it is
  c.add(torch::tensor({0.0, 4.0, 8.0}, torch::kFloat64));
  EXPECT_TRUE(torch::allclose(c.diagonal(), torch::tensor({3.0, 1.0, 8.0}, torch::kFloat64)));
  ckpt::State state;
  c.save(state);
  d.load(state);
  EXPECT_EQ(d.estimates(), 2);
  EXPECT_TRUE(torch::equal(c.diagonal(), d.diagonal()));
  EXPECT_THROW(DiagonalCurvature(3, 0.0), Error);
  EXPECT_THROW(DiagonalCurvature(4, 0.5).load(state), Error);
}

}  // namespace
}  // namespace probnas
