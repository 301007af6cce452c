#pragma once
// GibbsNAS (Xue et al., "Rethinking Bi-Level Optimization in Neural Architecture Search: A Gibbs
// Sampling Perspective", AAAI 2021): instead of DARTS's alternating gradient steps, alternately
// sample the weights and the architecture from Gaussian approximations of their conditionals,
//   omega_t     ~ N(omega_{t-1} - eta_w D b_w, tau_w D),   D ~ diag(Hessian of U_w)^-1 (diagonal secant),
//   alpha_{t+1} ~ N(alpha_t   - eta_a H b_a, tau_a H),     H ~ (Hessian of U_a)^-1   (dense BFGS),
// where U is the negative log joint, the batch's mean cross entropy plus the Gaussian prior's
// decay/2 ||x||^2 (omega: search.weight_decay; alpha: gibbs.arch_prior_decay), and b its gradient: b_w
// on the weight split's batch with alpha fixed, b_a on the architecture split's batch
// (search.arch_batch_size, 2048 in the paper) with omega fixed.
//
// Curvature pairs: every gibbs.pair_every steps, after the move x -> x', the same batch's gradient is
// computed again at x' and (s, y) = (x' - x, b(x') - b(x)) updates the estimate. Pairs of consecutive
// steps on different mini-batches (the textbook L-BFGS pair) mix two batches' gradient noise into y;
// on Fashion-MNIST (3 short epochs, gibbs.weight_step 1) that reached 23% validation accuracy where
// same-batch pairs reach 52%.
//
// Variants (the paper's Table 2): order 2 samples (or, mean only, steps) omega as above; order 1
// trains omega by the shared momentum SGD and samples alpha. sample_weights / sample_arch = false
// drop the noise (the mean-only ablations).
//
// Choices of ours, where the paper defers to a supplement we do not have (docs/methods/gibbsnas.md):
// eta_w follows the weights' cosine schedule scaled by gibbs.weight_step / search.lr, and a trust
// region caps eta_w d_i at gibbs.max_step times that schedule's learning rate; the noise is
// scaled by tau (gibbs.weight_noise, gibbs.arch_noise) and omega's noise vector is clipped to
// gibbs.noise_clip times the norm of its mean step ("sampling clipping"); H's eigenvalues are capped
// (gibbs.arch_max_inverse_curvature: alpha's loss is nearly flat along some directions, where one pair
// would otherwise add an unbounded ||s||^2 / s'y); before the first pair D = search.lr and H = I.
#include "probnas/method/softmax_method.h"
#include "probnas/optim/quasi_newton.h"

namespace probnas {

struct GibbsOptions {
  int64_t order = 2;
  bool sample_weights = true;
  bool sample_arch = true;
  double arch_prior_decay = 1e-4;    // sigma^-2 of alpha's Gaussian prior (omega's: search.weight_decay)
  double weight_step = 5.0;          // eta_w at the schedule's start (order 2)
  double max_step = 10.0;            // eta_w d_i <= max_step x the scheduled learning rate (0: no cap)
  double arch_step = 0.01;           // eta_a
  double weight_noise = 1e-4;        // tau_w
  double arch_noise = 1e-6;          // tau_a
  double arch_max_inverse_curvature = 1000;  // cap on H's eigenvalues (0: none)
  double noise_clip = 1.0;           // omega's noise norm <= noise_clip * ||mean step|| (0: no clipping)
  int64_t history = 5;               // pairs of the diagonal estimate
  int64_t pair_every = 1;            // same-batch curvature pairs every N steps (one more gradient each)
};

class GibbsNas : public SoftmaxMethod {
 public:
  GibbsNas(std::shared_ptr<Supernet> net, GradientMethodOptions options, GibbsOptions gibbs, const RngKey& key);
  std::string name() const override { return "gibbsnas"; }
  // The paper's architecture batch: 2048 images per alpha sweep.
  int64_t default_arch_batch() const override { return 2048; }
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  // One Gibbs sweep: omega given alpha on the training micro-batches, then alpha given omega on the
  // validation ones.
  void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
            StepMetrics& metrics) override;
  void save(ckpt::State& method, ckpt::State& optim) const override;
  void load(const ckpt::State& method, const ckpt::State& optim) override;
  std::vector<std::pair<std::string, double>> scalars() const override;
  std::string report_json() const override;

  const BfgsInverseHessian& arch_inverse_hessian() const { return arch_h_; }
  const DiagonalInverseHessian& weight_inverse_hessian() const { return weight_d_; }
  // The noise key of step `step`'s `what` ("weights" or "arch"): a function of (seed, step) alone.
  RngKey noise_key(const StepContext& ctx, const char* what) const;

 private:
  void weight_sweep(const std::vector<Batch>& train, const StepContext& ctx, StepMetrics& metrics);
  void arch_sweep(const std::vector<Batch>& val, const StepContext& ctx, StepMetrics& metrics);
  torch::Tensor flat_arch() const;
  torch::Tensor flat_weights() const;

  GibbsOptions gibbs_;
  BfgsInverseHessian arch_h_;
  DiagonalInverseHessian weight_d_;
  double weight_eta_ = 1, weight_lr_ = 0;
};

}  // namespace probnas
