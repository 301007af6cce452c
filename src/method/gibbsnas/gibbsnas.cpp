#include "probnas/method/gibbsnas/gibbsnas.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>

#include "probnas/core/error.h"

namespace probnas {

namespace {
int64_t numel(const std::vector<torch::Tensor>& list) {
  int64_t n = 0;
  for (const auto& t : list) n += t.numel();
  return n;
}

// Writes the flat float64 vector `x` back into `params` (in their dtype and device).
void unflatten_into(const torch::Tensor& x, const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& p : params) {
    p.copy_(x.narrow(0, offset, p.numel()).reshape(p.sizes()));
    offset += p.numel();
  }
}

// min(1, limit / ||v||), on v's device (no host synchronisation); `limit` a number or a 0-d tensor.
template <typename Limit>
torch::Tensor clip_factor(const torch::Tensor& v, const Limit& limit) {
  return torch::clamp_max(limit / v.norm().clamp_min(1e-300), 1.0);
}

BfgsOptions arch_bfgs_options(const GibbsOptions& gibbs) {
  BfgsOptions o;
  o.max_eigenvalue = gibbs.arch_max_inverse_curvature;
  return o;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& list, const c10::Device& device) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : list) parts.push_back(t.detach().reshape({-1}).to(device, torch::kFloat64));
  return torch::cat(parts);
}
}  // namespace

GibbsNas::GibbsNas(std::shared_ptr<Supernet> net, GradientMethodOptions options, GibbsOptions gibbs, const RngKey& key)
    : SoftmaxMethod(std::move(net), options, key),
      gibbs_(gibbs),
      arch_h_(numel(arch_), arch_bfgs_options(gibbs)),
      weight_d_(gibbs.order == 2 ? numel(weights_) : 1,
                DiagonalOptions{gibbs.history, options.weights.lr > 0 ? options.weights.lr : 1.0},
                weights_.front().device()) {
  PROBNAS_CHECK(gibbs_.order == 1 || gibbs_.order == 2, "gibbs.order = ", gibbs_.order, " (allowed: 1, 2)");
  PROBNAS_CHECK(gibbs_.order == 2 || gibbs_.sample_weights, "gibbs.sample_weights = false with gibbs.order = 1: the "
                "first-order variant trains the weights by SGD and never samples them");
  PROBNAS_CHECK(edge_.empty() && options_.stages.empty() && !options_.second_order,
                "GibbsNAS samples alpha and the weights as they are: no edge normalisation, progressive stages or "
                "second-order DARTS gradient");
}

void GibbsNas::begin_epoch(int64_t epoch, int64_t epochs) {
  GradientMethod::begin_epoch(epoch, epochs);
  // The weights' step follows their cosine schedule, scaled to start at gibbs.weight_step.
  const double lr = options_.weights.lr;
  weight_lr_ = cosine_lr(lr, options_.lr_min, epoch, epochs);
  weight_eta_ = lr > 0 ? gibbs_.weight_step * weight_lr_ / lr : 0.0;
}

RngKey GibbsNas::noise_key(const StepContext& ctx, const char* what) const {
  return ctx.key.with("gibbs").with(static_cast<uint64_t>(ctx.global_step)).with(what);
}

torch::Tensor GibbsNas::flat_arch() const { return flatten(arch_, torch::kCPU); }

torch::Tensor GibbsNas::flat_weights() const { return flatten(weights_, weights_.front().device()); }

void GibbsNas::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                    StepMetrics& metrics) {
  net_->train();
  weight_sweep(train, ctx, metrics);  // omega_t ~ p(omega | D, alpha_t)
  if (arch_active_) arch_sweep(val, ctx, metrics);  // alpha_{t+1} ~ p(alpha | D, omega_t)
}

void GibbsNas::weight_sweep(const std::vector<Batch>& train, const StepContext& ctx, StepMetrics& metrics) {
  const auto grads = summed_gradient(train, false, weights_, false, ctx, &metrics);
  if (gibbs_.order == 1) {
    // Momentum SGD with the shared options (its decay is the prior's), clipping included.
    for (size_t i = 0; i < weights_.size(); ++i) weights_[i].mutable_grad() = grads[i].to(weights_[i].scalar_type());
    if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
    weight_opt_.step();
    return;
  }
  const auto device = weights_.front().device();
  const auto x = flat_weights();
  const auto b = flatten(grads, device) + options_.weights.weight_decay * x;
  // The trust region: no coordinate steps more than max_step times the scheduled learning rate.
  // It also bounds the noise, whose covariance is tau_w D.
  const auto d = gibbs_.max_step > 0 && weight_eta_ > 0
                     ? weight_d_.diagonal().clamp_max(gibbs_.max_step * weight_lr_ / weight_eta_)
                     : weight_d_.diagonal();
  // search.grad_clip caps the gradient of the step as it caps SGD's (the pair below keeps the true one).
  const auto clipped = options_.grad_clip > 0 ? b * clip_factor(b, options_.grad_clip) : b;
  const auto mean_step = weight_eta_ * d * clipped;
  auto next = x - mean_step;
  if (gibbs_.sample_weights) {
    auto gen = make_generator(noise_key(ctx, "weights"), device);
    auto noise = (gibbs_.weight_noise * d).sqrt() * torch::randn({x.numel()}, gen, x.options());
    if (gibbs_.noise_clip > 0) {
      // Sampling clipping, on the device: the noise is at most noise_clip times the mean step.
      noise = noise * clip_factor(noise, gibbs_.noise_clip * mean_step.norm());
    }
    next = next + noise;
  }
  unflatten_into(next, weights_);
  if (ctx.global_step % gibbs_.pair_every != 0) return;
  // The curvature pair on the same batch (see the header): s = next - x, y = b(next) - b(x).
  const auto again = summed_gradient(train, false, weights_, false, ctx, nullptr);
  const auto x_new = flat_weights();
  weight_d_.update(x_new - x, flatten(again, device) + options_.weights.weight_decay * x_new - b);
}

void GibbsNas::arch_sweep(const std::vector<Batch>& val, const StepContext& ctx, StepMetrics& metrics) {
  const auto gradient = [&](StepMetrics* m) {
    const auto grads = summed_gradient(val, true, arch_, true, ctx, m);
    for (const auto& a : arch_) a.mutable_grad() = torch::Tensor();
    const auto x = flat_arch();
    return std::make_pair(x, flatten(grads, torch::kCPU) + gibbs_.arch_prior_decay * x);
  };
  const auto [x, b] = gradient(&metrics);
  auto next = x - gibbs_.arch_step * arch_h_.apply(b);
  if (gibbs_.sample_arch) {
    auto gen = make_generator(noise_key(ctx, "arch"));
    next = next + std::sqrt(gibbs_.arch_noise) * arch_h_.correlate(torch::randn({x.numel()}, gen, torch::kFloat64));
  }
  unflatten_into(next.to(arch_.front().device()), arch_);
  if (ctx.global_step % gibbs_.pair_every != 0) return;
  const auto [x_new, b_new] = gradient(nullptr);  // the same batch at the new point
  arch_h_.update(x_new - x, b_new - b);
}

void GibbsNas::save(ckpt::State& method, ckpt::State& optim) const {
  GradientMethod::save(method, optim);
  auto& g = method.group("gibbs");
  arch_h_.save(g.group("arch_inverse_hessian"));
  if (gibbs_.order == 2) weight_d_.save(g.group("weight_inverse_hessian"));
}

void GibbsNas::load(const ckpt::State& method, const ckpt::State& optim) {
  GradientMethod::load(method, optim);
  PROBNAS_CHECK(method.has_group("gibbs"), "checkpoint: ", method.path(), " has no gibbs group (not a GibbsNAS search)");
  const auto& g = method.group("gibbs");
  arch_h_.load(g.group("arch_inverse_hessian"));
  if (gibbs_.order == 2) weight_d_.load(g.group("weight_inverse_hessian"));
}

std::vector<std::pair<std::string, double>> GibbsNas::scalars() const {
  auto s = SoftmaxMethod::scalars();
  const auto spread = arch_h_.matrix().diagonal();
  s.emplace_back("arch_variance_mean", gibbs_.arch_noise * spread.mean().item<double>());
  s.emplace_back("bfgs_skipped", static_cast<double>(arch_h_.skipped()));
  s.emplace_back("bfgs_clamped", static_cast<double>(arch_h_.clamped()));
  if (gibbs_.order == 2) s.emplace_back("weight_inverse_curvature_mean", weight_d_.diagonal().mean().item<double>());
  return s;
}

std::string GibbsNas::report_json() const {
  // The posterior spread of alpha per edge and operation: the sampling variance tau_a diag(H).
  const auto var = (gibbs_.arch_noise * arch_h_.matrix().diagonal()).contiguous();
  nlohmann::ordered_json j;
  j["order"] = gibbs_.order;
  j["sample_weights"] = gibbs_.sample_weights;
  j["sample_arch"] = gibbs_.sample_arch;
  auto& groups = j["alpha_std"];
  const auto& shape = net_->arch_shape();
  int64_t offset = 0;
  for (size_t gi = 0; gi < shape.size(); ++gi) {
    const auto& group = shape[gi];
    for (int64_t e = 0; e < group.edges(); ++e) {
      nlohmann::ordered_json ops;
      for (int64_t o = 0; o < group.num_ops(); ++o)
        ops[group.ops[static_cast<size_t>(o)]] = std::sqrt(var[offset + e * group.num_ops() + o].item<double>());
      groups[group.name][group.edge_names[static_cast<size_t>(e)]] = ops;
    }
    offset += group.edges() * group.num_ops();
  }
  return j.dump();
}

}  // namespace probnas
