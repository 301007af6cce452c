#pragma once
// GibbsNAS (Xue et al., "Rethinking Bi-Level Optimization in Neural Architecture Search: A Gibbs
// Sampling Perspective", AAAI 2021): instead of DARTS's alternating gradient steps, alternately
// sample the weights and the architecture from the Gaussian approximations of their conditionals
// (the paper's Eq. 15-16),
//   omega_t     ~ N(omega_{t-1} - eta_w H_w b_w, tau_w H_w),  H_w: L-BFGS from Becker-LeCun's diagonal,
//   alpha_{t+1} ~ N(alpha_t     - eta_a H_a b_a, tau_a H_a),  H_a: dense BFGS,
// where b is the gradient of the negative log joint U, the batch's mean cross entropy plus the
// Gaussian prior's decay/2 ||x||^2 (both decays 1e-4, the paper's), b_w on the weight split's batch
// with alpha fixed and b_a on the architecture split's batch (search.arch_batch_size, the paper's
// 2048) with omega fixed. eta is the paper's initial learning rate (0.1 for both), decaying on a cosine
// over the epochs (gibbs.arch_lr_schedule = constant keeps eta_a at gibbs.arch_lr, as probnas did before
// 2026-12-07; chosen on validation accuracy, docs/methods/gibbsnas.md).
//
// H_w is L-BFGS (gibbs.history pairs) whose initial matrix is the inverse of the weights' diagonal
// Hessian, (h + decay + mu)^-1, with h the running average of Monte-Carlo estimates of the Gauss-Newton
// diagonal: each weight sweep adds one backward pass with labels drawn from the network's own
// softmax, whose squared gradient estimates the diagonal without bias (Becker & Le Cun 1988 derive
// the same diagonal by back-propagating second derivatives), and mu = gibbs.curvature_damping the
// damping that LeCun et al.'s stochastic diagonal Levenberg-Marquardt method (Efficient BackProp, 1998,
// Sec. 9.1) adds to Becker-LeCun's diagonal, since a coordinate whose estimated curvature is near zero
// would otherwise take a step of eta g / decay (with mu = 0 the quick start's search diverged within
// its first 20 steps; docs/methods/gibbsnas.md). H_a's eigenvalues are capped at the prior variance 1 / decay
// (gibbs.arch_max_inverse_curvature, 0: that bound), since the Hessian of U is at least decay I.
//
// Curvature pairs: every gibbs.pair_every steps, after the move x -> x', the same batch's gradient is
// computed again at x' and (s, y) = (x' - x, b(x') - b(x)) updates the estimate. Pairs of consecutive
// steps on different mini-batches (the textbook L-BFGS pair) mix two batches' gradient noise into y.
//
// Variants (the paper's Table 2): order 2 samples (or, mean only, steps) omega as above; order 1
// trains omega by the shared momentum SGD and samples alpha. sample_weights / sample_arch = false
// drop the noise (the mean-only ablations).
//
// Where the paper defers to a supplement we do not have (docs/methods/gibbsnas.md): the noise is
// scaled by tau (gibbs.weight_noise, gibbs.arch_noise; tau plays 1 / N for a batch-mean U) and, for a
// learning rate eta < 1, by eta (2 - eta), so that repeated partial steps sample the conditional the
// paper's full step samples (partial_step_noise below), and
// omega's noise vector is clipped to gibbs.noise_clip times the norm of its mean step (the paper's
// "sampling clipping"); before the first pair H_a = I.
#include "probnas/method/softmax_method.h"
#include "probnas/optim/quasi_newton.h"

namespace probnas {

struct GibbsOptions {
  int64_t order = 2;
  bool sample_weights = true;
  bool sample_arch = true;
  double weight_lr = 0.1;            // eta_w at the schedule's start (order 2; the paper's)
  double arch_lr = 0.1;              // eta_a at the schedule's start (the paper's)
  std::string arch_lr_schedule = "cosine";  // like eta_w, or "constant" (gibbs.arch_lr_schedule)
  double weight_prior_decay = 1e-4;  // sigma_w^-2 of omega's Gaussian prior (the paper's)
  double arch_prior_decay = 1e-4;    // sigma_a^-2 of alpha's Gaussian prior (the paper's)
  double weight_noise = 1e-4;        // tau_w
  double arch_noise = 1e-6;          // tau_a
  double arch_max_inverse_curvature = 0;  // cap on H_a's eigenvalues (0: the prior variance 1 / arch_prior_decay)
  double noise_clip = 1.0;           // omega's noise norm <= noise_clip * ||mean step|| (0: no clipping)
  int64_t history = 5;               // L-BFGS pairs of H_w
  double curvature_average = 0.1;    // weight of a new Gauss-Newton diagonal estimate in h's running average
  double curvature_damping = 0.1;    // mu of H_w's initial matrix (h + decay + mu)^-1 (LeCun et al.'s damping)
  int64_t pair_every = 1;            // same-batch curvature pairs every N steps (one more gradient each)
};

// The noise factor of a partial step: x' = x - eta H b + sqrt(eta (2 - eta) tau) H^(1/2) z. On a quadratic
// with minimiser m and H its inverse Hessian, x' - m = (1 - eta)(x - m) + noise, an AR(1) process whose
// stationary law is N(m, tau H) for every eta in (0, 2): repeated partial steps sample the same
// conditional as the paper's full step (eta = 1, noise tau H). Throws outside [0, 2).
double partial_step_noise(double eta);

// The loss of the Monte-Carlo Gauss-Newton probe: the cross entropy of `logits` (a micro-batch of a
// global batch of `global_batch` images) against labels drawn from softmax(logits), summed and divided
// by sqrt(global_batch). Its gradient g, summed over the global batch, has E[g * g] = the diagonal of
// the Gauss-Newton matrix of the batch-mean cross entropy: a drawn label's score has mean zero and
// covariance diag(p) - p p', and different images' draws are independent. `gen` is a CPU generator (the
// labels are drawn on the host and copied to the logits' device).
torch::Tensor gauss_newton_probe_loss(const torch::Tensor& logits, int64_t global_batch, at::Generator& gen);

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
  const LbfgsInverseHessian& weight_inverse_hessian() const { return weight_h_; }
  const DiagonalCurvature& weight_curvature() const { return weight_c_; }
  // eta_a of the current epoch (gibbs.arch_lr_schedule; metrics.jsonl's arch_lr).
  double arch_eta() const { return arch_eta_; }
  // The noise key of step `step`'s `what` ("weights" or "arch"): a function of (seed, step) alone.
  RngKey noise_key(const StepContext& ctx, const char* what) const;

 private:
  void weight_sweep(const std::vector<Batch>& train, const StepContext& ctx, StepMetrics& metrics);
  void arch_sweep(const std::vector<Batch>& val, const StepContext& ctx, StepMetrics& metrics);
  torch::Tensor flat_arch() const;
  torch::Tensor flat_weights() const;
  // The weights' gradient on `train` (alpha fixed) and, from the same forwards, the Monte-Carlo
  // estimate of the Gauss-Newton diagonal of the batch-mean cross entropy: both flat, float64,
  // summed over micro-batches and ranks.
  std::pair<torch::Tensor, torch::Tensor> weight_gradient_and_curvature(const std::vector<Batch>& train,
                                                                        const StepContext& ctx, StepMetrics& metrics);

  GibbsOptions gibbs_;
  BfgsInverseHessian arch_h_;
  LbfgsInverseHessian weight_h_;
  DiagonalCurvature weight_c_;
  double weight_eta_ = 0;
  double arch_eta_ = 0;  // eta_a of the current epoch (gibbs.arch_lr_schedule)
};

}  // namespace probnas
