#include "probnas/method/gradient_method.h"

#include <torch/torch.h>

#include <limits>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/log.h"

namespace probnas {

namespace F = torch::nn::functional;

GradientMethod::GradientMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : net_(std::move(net)),
      options_(options),
      arch_(),
      weights_(net_->weights()),
      weight_opt_(weights_, options.weights),
      arch_opt_({}, options.arch) {
  PROBNAS_CHECK(!(options_.second_order && options_.weights.nesterov),
                "second-order DARTS unrolls plain momentum SGD; the weight optimiser is Nesterov");
  PROBNAS_CHECK(options_.hvp_radius > 0, "second-order DARTS: the finite-difference radius is ", options_.hvp_radius,
                " (must be positive)");
  auto gen = make_generator(key.with("arch-init"));
  const auto device = weights_.front().device();
  // Drawn in float32 whatever the weights' type (the same start for a float and a double network);
  // stored in the weights' type so that a double network (gradient checks) is double throughout.
  const auto dtype = weights_.front().scalar_type();
  for (const auto& group : net_->arch_shape()) {
    auto p = (torch::randn({group.edges(), group.num_ops()}, gen, torch::kFloat32) * options_.init_std).to(device, dtype);
    arch_.push_back(p.set_requires_grad(true));
  }
  arch_opt_ = Adam(arch_, options_.arch);
  std::vector<std::string> names;
  for (const auto& kv : net_->named_parameters()) names.push_back(kv.key());
  weight_opt_.set_names(std::move(names));
  std::vector<std::string> groups;
  for (const auto& group : net_->arch_shape()) groups.push_back(group.name);
  arch_opt_.set_names(std::move(groups));
}

void GradientMethod::begin_epoch(int64_t epoch, int64_t epochs) {
  epoch_ = epoch;
  weight_opt_.set_lr(cosine_lr(options_.weights.lr, options_.lr_min, epoch, epochs));
}

namespace {
// Sum-reduced cross entropy over the micro-batch divided by the global batch: the micro-batches'
// gradients then add up (over micro-batches and ranks) to the gradient of the global-batch mean.
torch::Tensor scaled_loss(const torch::Tensor& logits, const Batch& b) {
  return F::cross_entropy(logits, b.y, F::CrossEntropyFuncOptions().reduction(torch::kSum)) /
         static_cast<double>(b.global);
}

// Sums the micro-batches' gradients in float64, then over ranks, then sets each parameter's
// gradient once. Sums of float gradients in double are exact in practice, so the result does not
// depend on how micro-batches are grouped into ranks: 1 and P ranks apply bitwise the same update
// (which DrNAS needs: its gamma rejection sampler turns a last-bit difference in eta into a
// different draw).
class GradientSum {
 public:
  explicit GradientSum(const std::vector<torch::Tensor>& params) : params_(params) {}
  // Moves the gradients the last backward left in the parameters into the float64 sums.
  void take() {
    torch::NoGradGuard guard;
    if (sums_.empty())
      for (const auto& p : params_) sums_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& g = params_[i].mutable_grad();
      if (!g.defined()) continue;
      sums_[i].add_(g);
      g = torch::Tensor();
    }
  }
  // Reduces over ranks and leaves the total as each parameter's gradient.
  void finish(Communicator* comm) {
    if (sums_.empty()) return;
    if (comm) comm->allreduce(sums_, ReduceOp::sum);
    for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad() = sums_[i].to(params_[i].scalar_type());
  }
  // Reduces over ranks and returns the float64 totals, leaving the parameters without gradient.
  // Every rank joins the reduction, also one that had no micro-batch (its sums are zeros).
  std::vector<torch::Tensor> reduce(Communicator* comm) {
    if (sums_.empty())
      for (const auto& p : params_) sums_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
    if (comm) comm->allreduce(sums_, ReduceOp::sum);
    return sums_;
  }

 private:
  const std::vector<torch::Tensor>& params_;
  std::vector<torch::Tensor> sums_;
};

// Copies of parameters, put back bitwise by restore() or, should a forward throw half-way, when
// leaving the scope: second-order DARTS moves the weights to w', w + R dw' and w - R dw'.
class SavedParameters {
 public:
  explicit SavedParameters(const std::vector<torch::Tensor>& params) : params_(params) {
    torch::NoGradGuard no_grad;
    for (const auto& p : params_) saved_.push_back(p.detach().clone());
  }
  SavedParameters(const SavedParameters&) = delete;
  SavedParameters& operator=(const SavedParameters&) = delete;
  ~SavedParameters() {
    if (restored_) return;
    try {
      restore();
    } catch (const std::exception& e) {
      PROBNAS_LOG(error) << "second-order DARTS: putting the weights back failed: " << e.what();
    }
  }
  const std::vector<torch::Tensor>& values() const { return saved_; }
  void restore() {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) params_[i].copy_(saved_[i]);
    restored_ = true;
  }

 private:
  const std::vector<torch::Tensor>& params_;
  std::vector<torch::Tensor> saved_;
  bool restored_ = false;
};
}  // namespace

RngKey GradientMethod::draw_key(const StepContext& ctx, bool architecture_phase, int64_t index) const {
  return ctx.key.with(name())
      .with(static_cast<uint64_t>(ctx.global_step))
      .with(architecture_phase ? "arch" : "weights")
      .with(static_cast<uint64_t>(index));
}

std::vector<torch::Tensor> GradientMethod::summed_gradient(const std::vector<Batch>& batches, bool architecture_phase,
                                                           const std::vector<torch::Tensor>& wrt, bool through_arch,
                                                           const StepContext& ctx, StepMetrics* metrics) {
  // backward() adds to what a parameter holds: drop what the previous step's optimisers left there.
  for (const auto& p : wrt) p.mutable_grad() = torch::Tensor();
  GradientSum sum(wrt);
  for (const Batch& b : batches) {
    ArchSample arch;
    if (through_arch) {
      arch = mixing_weights(draw_key(ctx, architecture_phase, b.index), true);
    } else {
      torch::NoGradGuard no_grad;
      arch = mixing_weights(draw_key(ctx, architecture_phase, b.index), false);
    }
    auto logits = net_->forward(b.x, arch);
    // Gradients only into `wrt`: asked for the architecture alone, no weight-gradient kernels run.
    scaled_loss(logits, b).backward({}, false, false, wrt);
    sum.take();
    if (metrics) metrics->add(architecture_phase, logits, b.y);
  }
  return sum.reduce(ctx.comm);
}

std::vector<torch::Tensor> GradientMethod::architecture_gradient(const std::vector<Batch>& train,
                                                                 const std::vector<Batch>& val,
                                                                 const StepContext& ctx, StepMetrics* metrics) {
  if (options_.second_order) return second_order_gradient(train, val, ctx, metrics);
  return summed_gradient(val, true, arch_, true, ctx, metrics);
}

// With w'(alpha) = w - xi (mu buf + grad_w L_train(w, alpha) + wd w), the gradient of L_val(w'(alpha), alpha)
// is grad_alpha L_val(w', alpha) - xi H dw', with dw' = grad_w' L_val(w', alpha) and H the mixed second
// derivative d2 L_train / d alpha d w at w; H dw' is a central difference of grad_alpha L_train along
// dw'. Every gradient is fully reduced (micro-batches and ranks, float64) before it is used, so the
// unrolled weights, the norm and the perturbations are the same numbers on every rank. In training
// mode the three extra forwards also move BatchNorm's running statistics (so do the DARTS code's);
// the search never reads them, it normalises by batch statistics.
std::vector<torch::Tensor> GradientMethod::second_order_gradient(const std::vector<Batch>& train,
                                                                 const std::vector<Batch>& val,
                                                                 const StepContext& ctx, StepMetrics* metrics) {
  const SgdOptions& sgd = weight_opt_.options();
  const double xi = sgd.lr;  // the learning rate of the weight step this one unrolls
  const auto& momentum = weight_opt_.momentum_buffers();
  SavedParameters w(weights_);

  // w': the step SGD would take next, without the gradient clipping (as in the DARTS code). Before
  // the first weight step there is no momentum buffer, and PyTorch's SGD then steps by d alone.
  const auto train_grad = summed_gradient(train, false, weights_, false, ctx, nullptr);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const auto w64 = w.values()[i].to(torch::kFloat64);
      auto d = train_grad[i] + sgd.weight_decay * w64;
      if (sgd.momentum != 0 && momentum[i].defined()) d = d + sgd.momentum * momentum[i].to(torch::kFloat64);
      weights_[i].copy_(w64 - xi * d);
    }
  }

  // At w', one backward gives both the direct term d alpha and the direction dw'.
  std::vector<torch::Tensor> arch_and_weights(arch_);
  arch_and_weights.insert(arch_and_weights.end(), weights_.begin(), weights_.end());
  const auto val_grad = summed_gradient(val, true, arch_and_weights, true, ctx, metrics);
  const auto groups = static_cast<std::ptrdiff_t>(arch_.size());
  const std::vector<torch::Tensor> direct(val_grad.begin(), val_grad.begin() + groups);
  const std::vector<torch::Tensor> dw(val_grad.begin() + groups, val_grad.end());

  // R = r / ||dw'|| over all weights (r = 0.01 in DARTS), kept on the device (no host sync). A zero dw'
  // leaves w + R dw' = w - R dw', so the difference below is exactly zero and the clamp only avoids 0 / 0.
  torch::Tensor squares = torch::zeros({}, dw.front().options());
  for (const auto& g : dw) squares = squares + g.square().sum();
  const auto radius = squares.sqrt().clamp_min(std::numeric_limits<double>::min()).reciprocal() * options_.hvp_radius;
  auto arch_gradient_at = [&](double sign) {
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < weights_.size(); ++i)
        weights_[i].copy_(w.values()[i].to(torch::kFloat64) + (sign * radius) * dw[i]);
    }
    return summed_gradient(train, false, arch_, true, ctx, nullptr);
  };
  const auto plus = arch_gradient_at(1.0);
  const auto minus = arch_gradient_at(-1.0);
  w.restore();

  std::vector<torch::Tensor> grad;
  for (size_t g = 0; g < arch_.size(); ++g) grad.push_back(direct[g] - xi * (plus[g] - minus[g]) / (2 * radius));
  return grad;
}

void GradientMethod::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                          StepMetrics& metrics) {
  net_->train();

  // 1. Architecture step on the validation micro-batches (second order: and the training ones).
  if (epoch_ >= options_.warmup_epochs) {
    const auto grad = architecture_gradient(train, val, ctx, &metrics);
    for (size_t g = 0; g < arch_.size(); ++g) arch_[g].mutable_grad() = grad[g].to(arch_[g].scalar_type());
    arch_opt_.step();
  }

  // 2. Weight step on the training micro-batches, architecture fixed.
  weight_opt_.zero_grad();
  GradientSum weight_grads(weights_);
  for (const Batch& b : train) {
    ArchSample arch;
    {
      torch::NoGradGuard no_grad;
      arch = mixing_weights(draw_key(ctx, false, b.index), false);
    }
    auto logits = net_->forward(b.x, arch);
    scaled_loss(logits, b).backward();
    weight_grads.take();
    metrics.add(false, logits, b.y);
  }
  weight_grads.finish(ctx.comm);
  if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
  weight_opt_.step();
}

void GradientMethod::save(ckpt::State& method, ckpt::State& optim) const {
  auto& arch = method.group(arch_parameter_name());
  const auto& shape = net_->arch_shape();
  for (size_t g = 0; g < arch_.size(); ++g) arch.put(shape[g].name, arch_[g]);
  method.set_attr("epoch", epoch_);
  weight_opt_.save(optim.group("weights"));
  arch_opt_.save(optim.group(arch_parameter_name()));
}

void GradientMethod::load(const ckpt::State& method, const ckpt::State& optim) {
  const auto& arch = method.group(arch_parameter_name());
  const auto& shape = net_->arch_shape();
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < arch_.size(); ++g) {
    auto t = arch.get(shape[g].name);
    PROBNAS_CHECK(t.sizes() == arch_[g].sizes(), "checkpoint: ", arch.path(), "/", shape[g].name, " has shape ",
                  t.sizes(), ", this search space needs ", arch_[g].sizes());
    arch_[g].copy_(t);
  }
  weight_opt_.load(optim.group("weights"));
  arch_opt_.load(optim.group(arch_parameter_name()));
  epoch_ = method.attr_int("epoch");
}

}  // namespace probnas
