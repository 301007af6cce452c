#pragma once
// PARSEC (Casale, Gordon, Fusi, "Probabilistic Neural Architecture Search", 2019): a distribution
// p(alpha | pi) over discrete architectures (method/categorical.h) learned by importance-weighted
// Monte-Carlo empirical Bayes. Only sampled paths are computed, so memory is that of one
// architecture, not of the supernet. Per step (the paper's Algorithm 1):
//   1. K architectures alpha_k ~ p(alpha | pi), the k-th from the generator keyed by
//      (seed, "parsec", step, k);
//   2. importance weights w_k = p(y | X, v, alpha_k) / sum_j p(y | X, v, alpha_j) on the global batch of
//      the architecture (validation) split: log p(y | X, v, alpha) is minus the summed cross entropy,
//      normalised with log-sum-exp;
//   3. weights v by one SGD step along sum_k w_k grad_v log p(y | X, v, alpha_k) on the global batch of
//      the weight (training) split (the log-likelihood divided by the batch size: a mean, so the
//      learning rate means what it means for the other methods);
//   4. logits pi by one Adam step along sum_k w_k grad_pi log p(alpha_k | pi).
// Ranks split the K samples (P must divide K); every rank sees the whole global batches, the
// log-likelihoods are all-gathered for the normalisation and both gradients are summed in one
// allreduce. Weight-only warm-up epochs (parsec.warmup_epochs) use w_k = 1/K and leave pi alone.
#include "probnas/method/categorical.h"
#include "probnas/method/method.h"
#include "probnas/optim/optimizers.h"

namespace probnas {

struct ParsecOptions {
  SgdOptions weights;
  double lr_min = 0.001;
  double grad_clip = 5;
  AdamOptions arch{3e-2, 0.9, 0.999, 1e-8, 0};  // Adam on the logits (parsec.arch_lr's default)
  int64_t samples = 8;                            // K
  int64_t warmup_epochs = 0;
  // The warm-up of a checkpoint from before parsec.warmup_epochs (search.warmup_epochs as it was then).
  int64_t legacy_warmup_epochs = 0;
  int64_t top_k = 10;  // most probable architectures reported
  // The distribution to start from (parsec.init_from): logits [variables, max options] of an earlier
  // search of the same space, or undefined for the uniform start.
  torch::Tensor initial_logits;
};

// The logits pi of the PARSEC search in run folder `dir` (its newest good checkpoint), checked against
// `space` and its variables `names`: the transfer of a learned distribution to another problem
// (parsec.init_from). Throws naming the folder and what does not match.
torch::Tensor read_parsec_logits(const std::string& dir, const std::string& space,
                                 const std::vector<std::string>& names);

// PARSEC's weight-only warm-up in epochs: parsec.warmup_epochs where it is set (>= 0), else
// search.warmup_epochs where above 0, else ceil(3 epochs / 10) but at most epochs - 1.
int64_t parsec_warmup_epochs(int64_t parsec_warmup, int64_t search_warmup, int64_t epochs);

class Parsec : public SearchMethod {
 public:
  Parsec(std::shared_ptr<Supernet> net, ParsecOptions options, const RngKey& key);
  std::string name() const override { return "parsec"; }
  bool splits_samples() const override { return true; }
  int64_t samples_per_step() const override { return options_.samples; }
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  // `train` and `val` hold every micro-batch of the global batches (the ranks split samples).
  void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
            StepMetrics& metrics) override;
  // A discrete architecture drawn from p(alpha | pi).
  ArchSample sample(const RngKey& key) override;
  std::vector<torch::Tensor> expected_weights() const override;  // path probabilities
  Genotype derive() const override;
  void save(ckpt::State& method, ckpt::State& optim) const override;
  void load(const ckpt::State& method, const ckpt::State& optim) override;
  bool updates_architecture() const override { return arch_active_; }
  std::vector<std::pair<std::string, double>> scalars() const override;
  std::string report_json() const override;
  std::string report_text() const override;

  const ArchCategoricals& distribution() const { return dist_; }
  const torch::Tensor& logits() const { return logits_; }
  // The K draws of a step (all of them, whichever rank computes them).
  std::vector<ArchDraw> step_draws(const StepContext& ctx) const;
  RngKey draw_key(const StepContext& ctx, int64_t k) const;
  // The last step's normalised importance weights ([K] float64; undefined before the first step).
  const torch::Tensor& last_weights() const { return last_weights_; }

 private:
  std::shared_ptr<Supernet> net_;
  ParsecOptions options_;
  ArchCategoricals dist_;
  RngKey key_;
  torch::Tensor logits_;  // [variables, max options]
  std::vector<torch::Tensor> weights_;
  Sgd weight_opt_;
  Adam arch_opt_;
  bool arch_active_ = true;
  torch::Tensor last_weights_;
  // The most recent samples' per-image validation log-likelihoods and log prior probabilities (the report's histogram).
  static constexpr size_t kRecentSamples = 1024;
  std::vector<double> recent_log_lik_, recent_log_prior_;
};

}  // namespace probnas
