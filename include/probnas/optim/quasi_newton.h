#pragma once
// Quasi-Newton inverse-Hessian estimates for GibbsNAS (Xue et al., AAAI 2021), whose Gaussian
// approximations N(x - H b, H) need H ~ (Hessian of the negative log joint)^-1: as the paper says, a
// dense BFGS estimate for the architecture parameters alpha (a few hundred values), and for the network
// weights omega (millions) L-BFGS seeded with Becker and Le Cun's diagonal Hessian. The quasi-Newton
// estimates are built from pairs s = x_{k+1} - x_k, y = g_{k+1} - g_k of steps and gradient changes.
// All work on one flat vector in float64 and are checkpointable.
#include <c10/core/Device.h>
#include <torch/types.h>

#include <vector>

#include "probnas/ckpt/state.h"

namespace probnas {

// The curvature condition of a pair: s'y > eps ||s|| ||y||. A pair failing it would make the BFGS
// update indefinite (or carries no curvature information); both estimators skip it.
bool curvature_ok(const torch::Tensor& s, const torch::Tensor& y, double eps);

struct BfgsOptions {
  double initial_scale = 1;  // H before the first accepted pair: initial_scale * I
  double curvature_eps = 1e-8;
  // Before the first update H is rescaled to (s'y / y'y) I (Nocedal & Wright, Eq. 6.20): the
  // inverse curvature along the first step, so the first update starts at the right scale.
  bool scale_first = true;
  // Spectrum cap (0: none): eigenvalues of H above it are clamped after every update, so a pair along
  // a direction of almost no curvature cannot make H (the step and the sampling covariance) explode.
  double max_eigenvalue = 0;
};

// Dense BFGS inverse Hessian: H+ = (I - rho s y') H (I - rho y s') + rho s s', rho = 1 / y's.
// Positive-definiteness safeguard: the update keeps H symmetric positive definite whenever s'y > 0,
// so pairs failing the curvature condition are skipped; H is re-symmetrised after every update, and
// if rounding ever makes it lose positive definiteness (its Cholesky factorisation fails) H is reset
// to (s'y / y'y) I of the newest pair. The factor is kept, so sampling N(0, H) costs one product.
class BfgsInverseHessian {
 public:
  BfgsInverseHessian(int64_t n, BfgsOptions options = {});
  int64_t size() const { return n_; }
  // Adds a pair; returns false (and changes nothing) when it fails the curvature condition.
  bool update(const torch::Tensor& s, const torch::Tensor& y);
  const torch::Tensor& matrix() const { return h_; }  // [n, n] float64 on the CPU
  // H g, in g's dtype and device.
  torch::Tensor apply(const torch::Tensor& g) const;
  // L z with H = L L' (lower Cholesky factor): a draw from N(0, H) for z ~ N(0, I).
  torch::Tensor correlate(const torch::Tensor& z) const;
  int64_t accepted() const { return accepted_; }
  int64_t skipped() const { return skipped_; }
  int64_t resets() const { return resets_; }
  int64_t clamped() const { return clamped_; }  // updates whose spectrum was capped
  void save(ckpt::State& state) const;
  void load(const ckpt::State& state);

 private:
  void factorise(const torch::Tensor& s, const torch::Tensor& y);
  int64_t n_;
  BfgsOptions options_;
  torch::Tensor h_, chol_;
  int64_t accepted_ = 0, skipped_ = 0, resets_ = 0, clamped_ = 0;
};

struct LbfgsOptions {
  int64_t history = 5;  // pairs kept (m)
  double curvature_eps = 1e-8;
};

// Limited-memory BFGS inverse Hessian (Liu & Nocedal 1989; Nocedal & Wright, Algorithm 7.4): the
// BFGS recursion H_{k+1} = V_k' H_k V_k + rho_k s_k s_k', V_k = I - rho_k y_k s_k', rho_k = 1 / s_k'y_k,
// applied to the newest m pairs from a diagonal H_0, and never formed: H g is the two-loop recursion
// (4 m n flops), and a draw from N(0, H) unrolls the same recursion on a draw from N(0, H_0),
//   z_0 = H_0^(1/2) u,   z_{k+1} = V_k' z_k + sqrt(rho_k) xi_k s_k,   u ~ N(0, I_n), xi ~ N(0, I_m),
// whose covariance is V_k' H_k V_k + rho_k s_k s_k' = H_{k+1} at every k (exact, 4 m n flops).
// H_0 is the caller's (GibbsNAS: the inverse of the weights' Becker-LeCun diagonal curvature); it
// may change between steps, and H then changes with it. Pairs failing the curvature condition are
// skipped, which keeps H positive definite. Pairs are kept in float64 on the device of H_0.
class LbfgsInverseHessian {
 public:
  LbfgsInverseHessian(int64_t n, LbfgsOptions options = {}, c10::Device device = c10::Device(c10::kCPU));
  int64_t size() const { return n_; }
  // Sets H_0 = diag(h0): [n] positive values.
  void set_initial(const torch::Tensor& h0);
  const torch::Tensor& initial() const { return h0_; }  // [n] float64 (ones until set)
  // Adds a pair; returns false (and changes nothing) when it fails the curvature condition.
  bool update(const torch::Tensor& s, const torch::Tensor& y);
  // H g by the two-loop recursion, as float64 on H_0's device.
  torch::Tensor apply(const torch::Tensor& g) const;
  // A draw from N(0, H) for u ~ N(0, I_n) and xi ~ N(0, I_pairs()).
  torch::Tensor correlate(const torch::Tensor& u, const torch::Tensor& xi) const;
  // H as a dense [n, n] matrix (H applied to the identity's columns): for tests and small n.
  torch::Tensor dense() const;
  int64_t pairs() const { return static_cast<int64_t>(s_.size()); }
  int64_t skipped() const { return skipped_; }
  void save(ckpt::State& state) const;
  void load(const ckpt::State& state);

 private:
  int64_t n_;
  LbfgsOptions options_;
  std::vector<torch::Tensor> s_, y_;  // oldest first, float64
  std::vector<double> rho_;
  torch::Tensor h0_;
  int64_t skipped_ = 0;
};

// GibbsNAS's Gaussian step from an L-BFGS estimate (the paper's Eq. 15): for normals = [u; xi] ~ N(0, I)
// (size() + pairs() values) it returns x - eta H b + sqrt(tau) H^(1/2)[u; xi], a draw from
// N(x - eta H b, tau H). With noise_clip > 0 the noise is scaled down to at most noise_clip times the
// norm of the mean step eta H b (the paper's "sampling clipping"); tau = 0 or normals undefined: the
// mean alone. Float64, on H's device, with no host synchronisation.
torch::Tensor gaussian_step(const LbfgsInverseHessian& h, const torch::Tensor& x, const torch::Tensor& b, double eta,
                            double tau, const torch::Tensor& normals, double noise_clip = 0);

// Becker & Le Cun's (1988) diagonal of the Hessian in its stochastic form (LeCun, Bottou, Orr &
// Mueller, "Efficient BackProp", 1998, Sec. 9.1): a running average h <- (1 - gamma) h + gamma h_t of
// per-step estimates h_t of the Gauss-Newton diagonal. Becker & Le Cun obtain h_t by back-propagating
// second derivatives with the off-diagonal terms dropped; probnas takes the Gauss-Newton diagonal's
// unbiased Monte-Carlo estimate instead (GibbsNAS: one backward pass with labels drawn from the
// network's own prediction), which needs no second-derivative rule per layer type.
class DiagonalCurvature {
 public:
  DiagonalCurvature(int64_t n, double average, c10::Device device = c10::Device(c10::kCPU));
  // Adds one estimate [n] (float64 on the device); the first sets the average outright.
  void add(const torch::Tensor& estimate);
  const torch::Tensor& diagonal() const { return h_; }  // [n] float64, zeros before the first estimate
  int64_t estimates() const { return count_; }
  void save(ckpt::State& state) const;
  void load(const ckpt::State& state);

 private:
  int64_t n_;
  double average_;
  torch::Tensor h_;
  int64_t count_ = 0;
};

}  // namespace probnas
