#pragma once
// SGD with momentum and Adam with PyTorch's exact update rules, written here so that their
// state (momentum buffers, moments, step count) is named, checkpointable and identical across
// LibTorch 1.13 and 2.x. Updates run on the parameters' device without host synchronisation.
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "probnas/ckpt/state.h"

namespace probnas {

struct SgdOptions {
  double lr = 0.025, momentum = 0.9, weight_decay = 3e-4;
  bool nesterov = false;
};

class Sgd {
 public:
  Sgd(std::vector<torch::Tensor> params, SgdOptions options);
  void step();  // uses each parameter's .grad(); parameters without a gradient are skipped
  void zero_grad();
  void set_lr(double lr) { options_.lr = lr; }
  double lr() const { return options_.lr; }
  const SgdOptions& options() const { return options_; }
  // One buffer per parameter, undefined until that parameter's first step (read by second-order
  // DARTS, which unrolls the next step).
  const std::vector<torch::Tensor>& momentum_buffers() const { return momentum_; }
  // Names of the parameters in checkpoints (momentum/<name>); default: their index.
  void set_names(std::vector<std::string> names);
  void save(ckpt::State& state) const;
  void load(const ckpt::State& state);
  // The network changed shape (progressive learning pruned operations and widened others in
  // place): `params` replace the parameter list; a parameter that was there before keeps its
  // momentum, passed through `remap(param, momentum)` (the widening's channel mapping).
  void rebind(std::vector<torch::Tensor> params, std::vector<std::string> names,
              const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& remap);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> momentum_;  // undefined until the first step, as in PyTorch
  std::vector<std::string> names_;
  SgdOptions options_;
};

struct AdamOptions {
  double lr = 3e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};

class Adam {
 public:
  Adam(std::vector<torch::Tensor> params, AdamOptions options);
  void step();
  void zero_grad();
  int64_t steps() const { return step_; }
  // Names of the parameters in checkpoints (exp_avg/<name>, exp_avg_sq/<name>); default: their index.
  void set_names(std::vector<std::string> names);
  void save(ckpt::State& state) const;
  void load(const ckpt::State& state);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<std::string> names_;
  AdamOptions options_;
  int64_t step_ = 0;
};

// Cosine annealing per epoch, as torch.optim.lr_scheduler.CosineAnnealingLR(T_max = epochs).
double cosine_lr(double lr_max, double lr_min, int64_t epoch, int64_t epochs);

// Scales gradients so their joint L2 norm is at most max_norm (torch.nn.utils.clip_grad_norm_),
// entirely on the device; returns the norm before clipping as a 0-d tensor (read it only when logging).
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace probnas
