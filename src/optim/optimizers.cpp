#include "probnas/optim/optimizers.h"

#include <torch/torch.h>

#include <cmath>

#include "probnas/core/error.h"

namespace probnas {

namespace {
void zero_grads(std::vector<torch::Tensor>& params) {
  for (auto& p : params) {
    auto& g = p.mutable_grad();
    if (g.defined()) g = torch::Tensor();
  }
}
}  // namespace

Sgd::Sgd(std::vector<torch::Tensor> params, SgdOptions options)
    : params_(std::move(params)), momentum_(params_.size()), options_(options) {}

void Sgd::step() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    auto d = p.grad();
    if (options_.weight_decay != 0) d = d.add(p, options_.weight_decay);
    if (options_.momentum != 0) {
      auto& buf = momentum_[i];
      if (!buf.defined()) buf = d.clone();
      else buf.mul_(options_.momentum).add_(d);
      d = options_.nesterov ? d.add(buf, options_.momentum) : buf;
    }
    p.add_(d, -options_.lr);
  }
}

void Sgd::zero_grad() { zero_grads(params_); }

void Sgd::save(ckpt::State& state) const {
  state.set_attr("lr", options_.lr);
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_[i].defined()) state.put("momentum_" + std::to_string(i), momentum_[i]);
}

void Sgd::load(const ckpt::State& state) {
  options_.lr = state.attr_real("lr");
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string name = "momentum_" + std::to_string(i);
    momentum_[i] = state.has(name) ? state.get(name).to(params_[i].device()) : torch::Tensor();
  }
}

Adam::Adam(std::vector<torch::Tensor> params, AdamOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
  }
}

void Adam::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(options_.beta2, static_cast<double>(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!p.grad().defined()) continue;
    auto g = p.grad();
    if (options_.weight_decay != 0) g = g.add(p, options_.weight_decay);  // L2 penalty, as torch.optim.Adam
    exp_avg_[i].mul_(options_.beta1).add_(g, 1 - options_.beta1);
    exp_avg_sq_[i].mul_(options_.beta2).addcmul_(g, g, 1 - options_.beta2);
    auto denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bc2)).add_(options_.eps);
    p.addcdiv_(exp_avg_[i], denom, -options_.lr / bc1);
  }
}

void Adam::zero_grad() { zero_grads(params_); }

void Adam::save(ckpt::State& state) const {
  state.set_attr("step", step_);
  for (size_t i = 0; i < params_.size(); ++i) {
    state.put("exp_avg_" + std::to_string(i), exp_avg_[i]);
    state.put("exp_avg_sq_" + std::to_string(i), exp_avg_sq_[i]);
  }
}

void Adam::load(const ckpt::State& state) {
  step_ = state.attr_int("step");
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_[i] = state.get("exp_avg_" + std::to_string(i)).to(params_[i].device());
    exp_avg_sq_[i] = state.get("exp_avg_sq_" + std::to_string(i)).to(params_[i].device());
  }
}

double cosine_lr(double lr_max, double lr_min, int64_t epoch, int64_t epochs) {
  if (epochs <= 0) return lr_max;
  return lr_min + (lr_max - lr_min) * (1 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs))) / 2;
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).unsqueeze(0));
  if (norms.empty()) return torch::zeros({});
  auto total = torch::cat(norms).norm(2);
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : params)
    if (p.grad().defined()) p.grad().mul_(coef);
  return total;
}

}  // namespace probnas
