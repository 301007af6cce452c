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

std::vector<torch::Tensor> defined_grads(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> g;
  for (const auto& p : params)
    if (p.grad().defined()) g.push_back(p.grad());
  return g;
}
}  // namespace

void GradientMethod::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                          StepMetrics& metrics) {
  net_->train();
  const RngKey step_key = ctx.key.with(name()).with(static_cast<uint64_t>(ctx.global_step));

  // 1. Architecture step on the validation micro-batches, weights fixed (first-order).
  if (epoch_ >= options_.warmup_epochs) {
    arch_opt_.zero_grad();
    for (const Batch& b : val) {
      auto logits = net_->forward(b.x, mixing_weights(step_key.with("arch").with(static_cast<uint64_t>(b.index)), true));
      // Gradients only into the architecture parameters: no weight-gradient kernels run here.
      scaled_loss(logits, b).backward({}, false, false, arch_);
      metrics.add(true, logits, b.y);
    }
    if (ctx.comm) {
      auto grads = defined_grads(arch_);
      ctx.comm->allreduce_sum(grads);
    }
    arch_opt_.step();
  }

  // 2. Weight step on the training micro-batches, architecture fixed.
  weight_opt_.zero_grad();
  for (const Batch& b : train) {
    ArchSample arch;
    {
      torch::NoGradGuard no_grad;
      arch = mixing_weights(step_key.with("weights").with(static_cast<uint64_t>(b.index)), false);
    }
    auto logits = net_->forward(b.x, arch);
    scaled_loss(logits, b).backward();
    metrics.add(false, logits, b.y);
  }
  if (ctx.comm) {
    auto grads = defined_grads(weights_);
    ctx.comm->allreduce_sum(grads);
  }
  if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
  weight_opt_.step();
}

void GradientMethod::save(ckpt::State& state) const {
  auto& arch = state.group("arch");
  const auto& shape = net_->arch_shape();
  for (size_t g = 0; g < arch_.size(); ++g) arch.put(shape[g].name, arch_[g]);
  weight_opt_.save(state.group("weight_optimizer"));
  arch_opt_.save(state.group("arch_optimizer"));
  state.set_attr("epoch", epoch_);
}

void GradientMethod::load(const ckpt::State& state) {
  const auto& arch = state.group("arch");
  const auto& shape = net_->arch_shape();
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < arch_.size(); ++g) {
    auto t = arch.get(shape[g].name);
    PROBNAS_CHECK(t.sizes() == arch_[g].sizes(), "checkpoint: ", arch.path(), "/", shape[g].name, " has shape ",
                  t.sizes(), ", this search space needs ", arch_[g].sizes());
    arch_[g].copy_(t);
  }
  weight_opt_.load(state.group("weight_optimizer"));
  arch_opt_.load(state.group("arch_optimizer"));
  epoch_ = state.attr_int("epoch");
}

}  // namespace probnas
