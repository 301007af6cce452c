#pragma once
// The bi-level gradient scheme DARTS, DrNAS and GDAS share: per step, one architecture step (Adam
// on the validation micro-batches) and one weight step (momentum SGD with cosine schedule and
// gradient clipping on the training micro-batches). The architecture gradient is first order
// (weights held fixed) or DARTS's second order (through one unrolled weight step). Subclasses say
// how the mixing weights come from the architecture parameters.
#include "probnas/core/host_draws.h"
#include "probnas/method/method.h"
#include "probnas/method/method_options.h"
#include "probnas/method/progressive.h"
#include "probnas/optim/optimizers.h"

namespace probnas {

struct GradientMethodOptions {
  SgdOptions weights;     // lr is the schedule's maximum
  double lr_min = 0.001;  // cosine schedule's minimum
  double grad_clip = 5;
  AdamOptions arch{3e-4, 0.5, 0.999, 1e-8, 1e-3};
  int64_t warmup_epochs = 0;  // epochs of weight-only training before architecture steps (per stage)
  double init_std = 1e-3;     // architecture parameters start at N(0, init_std^2)
  std::vector<ProgressiveStage> stages;  // progressive learning; empty: one stage, nothing changes
  bool edge_norm = false;  // PC-DARTS edge normalisation: learned softmax weights over each node's edges
  // DARTS's second-order gradient (Liu et al., ICLR 2019, Eq. 6-8): the validation loss at the
  // weights after one unrolled SGD step, w' = w - lr (momentum buf + grad_w L_train + decay w); the
  // Hessian-vector product through w' by central differences. The architecture step then runs four
  // forward and four backward passes per micro-batch instead of one of each: a step takes ~3x as long.
  bool second_order = false;
  // The central difference steps the weights by +-R dw' with R = hvp_radius / ||dw'||, DARTS's 0.01: a
  // step of norm 0.01, small per weight in a real supernet (a tiny test net needs less to be linear).
  double hvp_radius = 0.01;
};

// The options of a gradient method built from the shared ones: the weights' SGD, Adam on the
// architecture with weight decay `arch_decay`, the progressive stages and edge normalisation
// (checked: the stages against the space, edge normalisation on the DARTS space only).
GradientMethodOptions gradient_method_options(const MethodBuild& build, double arch_decay);

class GradientMethod : public SearchMethod {
 public:
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
            StepMetrics& metrics) override;
  // With edge normalisation each edge's operation weights are scaled by its edge weight first
  // (PC-DARTS), so the two edges kept per node are the ones the edge weights favour.
  Genotype derive() const override;
  void save(ckpt::State& method, ckpt::State& optim) const override;
  void load(const ckpt::State& method, const ckpt::State& optim) override;
  void restore_structure(const ckpt::State& method) override;
  bool updates_architecture() const override { return arch_active_; }
  const std::vector<torch::Tensor>& arch_parameters() const { return arch_; }
  // Edge normalisation's parameters (one [edges] per group; empty without it) and their softmax
  // over the edges into each node.
  const std::vector<torch::Tensor>& edge_parameters() const { return edge_; }
  std::vector<torch::Tensor> edge_weights(bool differentiable) const;
  // Progressive learning: the current stage (0-based) and the operations still searched
  // (one [edges, ops] bool mask per group; empty before the first pruning).
  int64_t stage() const { return stage_; }
  const std::vector<torch::Tensor>& masks() const { return masks_; }
  // Enters stage `stage`: prunes every edge to the stage's `keep` operations with the largest
  // expected weight (ties: the earlier operation), then sets the stage's partial-channel factor,
  // widening the operations by the random mapping keyed by (seed, stage). Weight momentum follows
  // the surviving and widened parameters.
  void advance_stage(int64_t stage);
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
  // The randomness of the mixing-weight draw keyed by `key`, drawn on the host from that key's
  // generator, as one CPU tensor; undefined for a method that draws nothing (DARTS). A step stages
  // the draws of all its keys before it runs (core/host_draws.h).
  virtual torch::Tensor host_draw(const RngKey& key) const;
  // Stages the draws of every key a step on these micro-batches uses: the architecture phase's on
  // `val` (when the architecture is being learnt), the weight phase's on `train` (which the second
  // order's passes on the training micro-batches share).
  void stage_draws(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx);
  // What step() staged (cleared when the step ends); for tests.
  const StagedDraws& staged_draws() const { return staged_; }

 protected:
  GradientMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key);
  // Mixing weights for one forward pass; differentiable w.r.t. the architecture parameters when asked.
  virtual ArchSample mixing_weights(const RngKey& key, bool differentiable) = 0;
  // host_draw(key) on the architecture's device: the staged tensor when the step staged `key`,
  // otherwise drawn and copied now (the same numbers either way).
  torch::Tensor device_draw(const RngKey& key) const;
  // The paper's name of the architecture parameters (checkpoint group /method/<name>).
  virtual std::string arch_parameter_name() const = 0;
  // Mixing weights of group `g` with pruned operations at 0 and each edge renormalised to sum 1
  // (for a Dirichlet draw this is the Dirichlet over the kept operations).
  torch::Tensor masked(size_t g, torch::Tensor weights) const;
  // `sample` with the edge weights added when edge normalisation is on.
  ArchSample with_edge_weights(ArchSample sample, bool differentiable) const;

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
  std::vector<torch::Tensor> edge_;  // edge normalisation: one [edges] parameter per group
  std::vector<std::vector<std::pair<int64_t, int64_t>>> node_edges_;  // per group: [first, count) edges per node
  std::vector<torch::Tensor> weights_;
  Sgd weight_opt_;
  Adam arch_opt_;
  int64_t epoch_ = 0;
  RngKey key_;
  int64_t stage_ = 0;
  bool arch_active_ = true;
  std::vector<torch::Tensor> masks_;

 private:
  // The parameters the architecture step updates: arch_, then edge_ (edge normalisation).
  std::vector<torch::Tensor> all_arch_parameters() const;
  // Rebuilds the weight list and optimiser after the supernet changed shape.
  void rebind_weights(const Widener* widener);
  int64_t stage_start(int64_t stage) const;

  StagedDraws staged_;
};

}  // namespace probnas
