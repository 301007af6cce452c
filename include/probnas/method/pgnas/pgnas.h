#pragma once
// PGNAS (Zhou et al., "Posterior-Guided Neural Architecture Search", AAAI 2020): the supernet's
// weights and architecture as one variational posterior. Each convolution's input channels carry
// Bernoulli gates, phi = m * eps; q(eps) is learned by concrete (variational) dropout with one
// probability per gated group (layer l, kernel size s). After training, candidates (gates, weights)
// are drawn from q and ranked on held-out data (engine/pgnas_ranking.h).
//
// Which probability is which: p = sigmoid(drop_logit) is the DROP probability of every gate of a
// group; a gate is 1 (channel KEPT) with probability 1 - p and 0 (dropped) with probability p.
// Gates multiply the channels without rescaling by 1 / (1 - p) (phi = m * eps, as the paper and its
// code); the mean network uses the expected gate 1 - p.
//
// Objective per step (the paper's Eq. 14-16, concrete dropout's form with prior u = 0):
//   L = mean cross entropy over the global batch
//     + sum_g [ l^2 (1 - p_g) / (2 N) ||m_g||^2  -  K_g / N * H(p_g) ],
//   H(p) = -p log p - (1 - p) log(1 - p), K_g the group's input channels, m_g its convolution
//   kernel, N the training examples, l the prior length scale. The gated kernels carry no other
//   weight decay (the term above is their prior); the other weights keep search.weight_decay.
// Relaxation: drop = sigmoid((logit p + log u - log(1 - u)) / tau), u ~ U(0, 1), gate = 1 - drop,
// one draw per example and channel (a dropout layer), keyed by (seed, "pgnas", step, phase, micro-batch).
#include "probnas/method/method.h"
#include "probnas/optim/optimizers.h"
#include "probnas/space/multibranch.h"

namespace probnas {

// After training: how candidates are drawn and ranked (method/pgnas/ranking.h). These may change
// on resume: a finished search can be ranked again with others (probnas sample).
struct PgnasRankingConfig {
  int64_t candidates = 1500;
  std::string sampling = "both";  // guided, random, both
  double random_drop = -1;        // < 0: the learned mean drop probability
  std::string bn = "running";     // running, recalibrate
  int64_t bn_images = 512, eval_images = 0, eval_batch = 500;
  bool test = true;
};

struct PgnasOptions {
  SgdOptions weights;
  double lr_min = 0.001;
  double grad_clip = 5;
  AdamOptions drop{1e-3, 0.9, 0.999, 1e-8, 0};  // Adam on the drop logits
  double temperature = 0.2;     // tau
  double length_scale = 1;      // l
  double init_drop = 0.1;       // p at the start
  bool shake = true;            // shake-shake branch weights in training (the paper's supernets are shake-shake ResNets)
  std::string prior = "spike_slab";  // "spike_slab": Eq. 15's l^2 (1 - p) / (2N) ||m||^2; "constant_l2": the ablation's l^2 / (2N) ||m||^2
  PgnasRankingConfig ranking;
};

// Relaxed gates of one group with drop logit `logit` (0-d): [rows, channels] in (0, 1), differentiable
// with respect to `logit`. Uniforms from `gen`.
torch::Tensor relaxed_gates(const torch::Tensor& logit, int64_t rows, int64_t channels, double tau, at::Generator& gen);
// Hard Bernoulli gates of one group with drop probability `drop` (0-d): [channels] float, 1 (keep)
// where u >= drop for u ~ U(0, 1) from `gen`, so a gate is kept with probability 1 - drop.
torch::Tensor hard_gates(const torch::Tensor& drop, int64_t channels, at::Generator& gen);
// The KL regulariser sum_g [l^2 (1 - p_g) / (2N) ||m_g||^2 - K_g / N H(p_g)] as a differentiable scalar
// (Eq. 15). With constant_l2 (the paper's "constant L2 term" ablation, Table 2) the kernels' term is
// l^2 / (2N) ||m_g||^2: a weight decay that no longer depends on p.
torch::Tensor pgnas_regulariser(const torch::Tensor& drop_logits, const std::vector<torch::Tensor>& kernels,
                                const std::vector<int64_t>& channels, double length_scale, int64_t examples,
                                bool constant_l2 = false);
// Shake-shake weights for `blocks` blocks of `branches` branches: per block a pair of [rows, branches]
// tensors (forward, backward), each row an independent draw from Dirichlet(1, ..., 1), which for two
// branches is shake-shake's (alpha, 1 - alpha) with alpha ~ U(0, 1). Uniforms from `gen`.
std::vector<std::pair<torch::Tensor, torch::Tensor>> shake_weights(int64_t blocks, int64_t rows, int64_t branches,
                                                                   const torch::TensorOptions& options,
                                                                   at::Generator& gen);

class Pgnas : public SearchMethod {
 public:
  Pgnas(std::shared_ptr<MultiBranchNet> net, PgnasOptions options, const RngKey& key);
  std::string name() const override { return "pgnas"; }
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  // Weights and drop logits by one gradient step of L on the training micro-batches; the
  // validation micro-batches only measure (one hard candidate each, evaluation-mode BN).
  void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
            StepMetrics& metrics) override;
  // Hard gates for a whole batch drawn from q: candidate `key`.
  ArchSample sample(const RngKey& key) override;
  // Hard gates with every gate kept with probability 1 - drop (the fixed-rate "Random" baseline).
  ArchSample sample_fixed(const RngKey& key, double drop) const;
  // The expected gates 1 - p (the mean network).
  ArchSample expected() const;
  // One [groups, 2] tensor: (keep, drop) probability per gated convolution.
  std::vector<torch::Tensor> expected_weights() const override;
  Genotype derive() const override;
  void save(ckpt::State& method, ckpt::State& optim) const override;
  void load(const ckpt::State& method, const ckpt::State& optim) override;
  std::vector<std::pair<std::string, double>> scalars() const override;
  // The candidate ranking (method/pgnas/ranking.cpp): candidates.csv, genotype.json, best_network.h5.
  bool has_after_search() const override { return true; }
  AfterSearchOutcome after_search(const AfterSearchContext& context) override;
  const PgnasOptions& options() const { return options_; }

  torch::Tensor drop_probabilities() const;  // [groups]
  // The drop probability averaged over gates (each group weighted by its channels).
  double mean_drop() const;
  const torch::Tensor& drop_logits() const { return logits_; }
  MultiBranchNet& net() { return *net_; }
  // The KL term of the last step (0-d, on the device; undefined before the first step).
  const torch::Tensor& last_regulariser() const { return reg_value_; }
  RngKey draw_key(const StepContext& ctx, const char* phase, int64_t index) const;

 private:
  std::vector<torch::Tensor> gates_for(const torch::Tensor& logits, int64_t rows, at::Generator& gen) const;

  std::shared_ptr<MultiBranchNet> net_;
  PgnasOptions options_;
  RngKey key_;
  torch::Tensor logits_;  // [groups] drop logits
  std::vector<int64_t> channels_;
  std::vector<torch::Tensor> gated_, other_;  // the gated kernels; every other weight
  Sgd gated_opt_, other_opt_;
  Adam drop_opt_;
  torch::Tensor reg_value_;
};

}  // namespace probnas
