#pragma once
// Quasi-Newton inverse-Hessian estimates for GibbsNAS (Xue et al., AAAI 2021), whose Gaussian
// approximations N(x - H b, H) need H ~ (Hessian of the negative log joint)^-1: a dense BFGS estimate
// for the architecture parameters alpha (a few hundred values) and a diagonal one for the network
// weights omega (millions), both built from pairs s = x_{k+1} - x_k, y = g_{k+1} - g_k of steps and
// gradient changes. Both work on one flat vector in float64 and are checkpointable.
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

struct DiagonalOptions {
  int64_t history = 5;  // pairs kept (m)
  double initial_scale = 1;
  double curvature_eps = 1e-8;
  // Each coordinate's estimate is clamped to [gamma / max_ratio, gamma * max_ratio] around the
  // newest pair's scalar estimate gamma = s'y / y'y, so one coordinate with a tiny y cannot produce
  // an enormous step or noise.
  double max_ratio = 100;
};

// Diagonal inverse Hessian from the last m pairs, coordinate by coordinate: the least-squares secant
// fit of s_i ~ d_i y_i over the history,
//   d_i = sum_k s_ki y_ki / sum_k y_ki^2,
// which is exact on a separable quadratic (y_i = a_i s_i gives d_i = 1 / a_i) and needs only the
// products s*y and y*y of each pair. Where a coordinate shows no positive curvature (sum s_i y_i <= 0
// or sum y_i^2 = 0) d_i falls back to gamma = s'y / y'y of the newest pair (L-BFGS's initial
// scaling), and every d_i is clamped around gamma (DiagonalOptions::max_ratio). Pairs failing the
// curvature condition as a whole are skipped.
class DiagonalInverseHessian {
 public:
  // Pairs, history and diagonal live on `device` (omega's).
  DiagonalInverseHessian(int64_t n, DiagonalOptions options = {}, c10::Device device = c10::Device(c10::kCPU));
  int64_t size() const { return n_; }
  bool update(const torch::Tensor& s, const torch::Tensor& y);
  // The current diagonal [n] (float64; initial_scale before any pair).
  const torch::Tensor& diagonal() const { return d_; }
  int64_t pairs() const { return static_cast<int64_t>(sy_.size()); }
  int64_t skipped() const { return skipped_; }
  void save(ckpt::State& state) const;
  void load(const ckpt::State& state);

 private:
  void recompute(double gamma);
  int64_t n_;
  DiagonalOptions options_;
  std::vector<torch::Tensor> sy_, yy_;  // per kept pair, oldest first (float32)
  torch::Tensor d_;
  double gamma_;
  int64_t skipped_ = 0;
};

}  // namespace probnas
