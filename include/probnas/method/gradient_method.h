#pragma once
// The bi-level gradient scheme DARTS and DrNAS share: per step, one architecture step (Adam on the
// validation micro-batches) and one weight step (momentum SGD with cosine schedule and gradient
// clipping on the training micro-batches). The architecture gradient is first order (weights held
// fixed) or DARTS's second order (through one unrolled weight step). Subclasses say how the mixing
// weights come from the architecture parameters.
#include "probnas/method/method.h"
#include "probnas/optim/optimizers.h"

namespace probnas {

struct GradientMethodOptions {
  SgdOptions weights;     // lr is the schedule's maximum
  double lr_min = 0.001;  // cosine schedule's minimum
  double grad_clip = 5;
  AdamOptions arch{3e-4, 0.5, 0.999, 1e-8, 1e-3};
  int64_t warmup_epochs = 0;  // epochs of weight-only training before architecture steps
  double init_std = 1e-3;     // architecture parameters start at N(0, init_std^2)
  // DARTS's second-order gradient (Liu et al., ICLR 2019, Eq. 6-8): the validation loss at the
  // weights after one unrolled SGD step, w' = w - lr (momentum buf + grad_w L_train + decay w); the
  // Hessian-vector product through w' by central differences. The architecture step then runs four
  // forward and four backward passes per micro-batch instead of one of each: a step takes ~3x as long.
  bool second_order = false;
  // The central difference steps the weights by +-R dw' with R = hvp_radius / ||dw'||, DARTS's 0.01: a
  // step of norm 0.01, small per weight in a real supernet (a tiny test net needs less to be linear).
  double hvp_radius = 0.01;
};

class GradientMethod : public SearchMethod {
 public:
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
            StepMetrics& metrics) override;
  Genotype derive() const override { return net_->derive(expected_weights()); }
  void save(ckpt::State& method, ckpt::State& optim) const override;
  void load(const ckpt::State& method, const ckpt::State& optim) override;
  const std::vector<torch::Tensor>& arch_parameters() const { return arch_; }
  const Sgd& weight_optimizer() const { return weight_opt_; }
  // The architecture gradient this step would apply (first or second order, as configured), per
  // group in float64, summed over this rank's micro-batches and over ranks. Changes no parameter
  // (second order moves the weights and puts them back bitwise) and no optimiser state; the
  // network's mode (train/eval) is the caller's. Adds the validation forwards to `metrics` if given.
  std::vector<torch::Tensor> architecture_gradient(const std::vector<Batch>& train, const std::vector<Batch>& val,
                                                   const StepContext& ctx, StepMetrics* metrics = nullptr);
  // The key of the mixing-weight draw for micro-batch `index` of a step's architecture or weight
  // phase: a function of (seed, method, step, phase, micro-batch) alone, never of the rank.
  RngKey draw_key(const StepContext& ctx, bool architecture_phase, int64_t index) const;

 protected:
  GradientMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key);
  // Mixing weights for one forward pass; differentiable w.r.t. the architecture parameters when asked.
  virtual ArchSample mixing_weights(const RngKey& key, bool differentiable) = 0;
  // The paper's name of the architecture parameters (checkpoint group /method/<name>).
  virtual std::string arch_parameter_name() const = 0;

  // Gradient w.r.t. `wrt` of the scaled loss over `batches` (one phase's micro-batches), summed in
  // float64 over the micro-batches and over ranks. The mixing weights are differentiable only when
  // `through_arch` (the backward then reaches the architecture parameters).
  std::vector<torch::Tensor> summed_gradient(const std::vector<Batch>& batches, bool architecture_phase,
                                             const std::vector<torch::Tensor>& wrt, bool through_arch,
                                             const StepContext& ctx, StepMetrics* metrics);
  std::vector<torch::Tensor> second_order_gradient(const std::vector<Batch>& train, const std::vector<Batch>& val,
                                                   const StepContext& ctx, StepMetrics* metrics);

  std::shared_ptr<Supernet> net_;
  GradientMethodOptions options_;
  std::vector<torch::Tensor> arch_;  // one [edges, ops] parameter per group
  std::vector<torch::Tensor> weights_;
  Sgd weight_opt_;
  Adam arch_opt_;
  int64_t epoch_ = 0;
};

}  // namespace probnas
