#include "probnas/method/gradient_method.h"

#include <torch/torch.h>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"

namespace probnas {

namespace F = torch::nn::functional;

GradientMethod::GradientMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : net_(std::move(net)),
      options_(options),
      arch_(),
      weights_(net_->weights()),
      weight_opt_(weights_, options.weights),
      arch_opt_({}, options.arch) {
  auto gen = make_generator(key.with("arch-init"));
  const auto device = weights_.front().device();
  for (const auto& group : net_->arch_shape()) {
    auto p = (torch::randn({group.edges(), group.num_ops()}, gen, torch::kFloat32) * options_.init_std).to(device);
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

 private:
  const std::vector<torch::Tensor>& params_;
  std::vector<torch::Tensor> sums_;
};
}  // namespace

RngKey GradientMethod::draw_key(const StepContext& ctx, bool architecture_phase, int64_t index) const {
  return ctx.key.with(name())
      .with(static_cast<uint64_t>(ctx.global_step))
      .with(architecture_phase ? "arch" : "weights")
      .with(static_cast<uint64_t>(index));
}

void GradientMethod::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                          StepMetrics& metrics) {
  net_->train();

  // 1. Architecture step on the validation micro-batches, weights fixed (first-order).
  if (epoch_ >= options_.warmup_epochs) {
    arch_opt_.zero_grad();
    GradientSum arch_grads(arch_);
    for (const Batch& b : val) {
      auto logits = net_->forward(b.x, mixing_weights(draw_key(ctx, true, b.index), true));
      // Gradients only into the architecture parameters: no weight-gradient kernels run here.
      scaled_loss(logits, b).backward({}, false, false, arch_);
      arch_grads.take();
      metrics.add(true, logits, b.y);
    }
    arch_grads.finish(ctx.comm);
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
