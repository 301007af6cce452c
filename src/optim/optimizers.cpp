#include "probnas/optim/optimizers.h"

#include <torch/torch.h>

#include <cmath>
#include <unordered_map>

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
  // One foreach operation per stage over all parameters (a few fused kernels on a GPU instead of
  // several per parameter); on the CPU each computes exactly what the per-tensor loop did.
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params, grads;
  std::vector<size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    params.push_back(params_[i]);
    grads.push_back(params_[i].grad());
    index.push_back(i);
  }
  if (params.empty()) return;
  auto d = options_.weight_decay != 0 ? at::_foreach_add(grads, params, options_.weight_decay) : grads;
  if (options_.momentum != 0) {
    std::vector<torch::Tensor> old_bufs, old_d, bufs;
    for (size_t k = 0; k < index.size(); ++k) {
      auto& buf = momentum_[index[k]];
      if (!buf.defined()) {
        buf = d[k].clone();
      } else {
        old_bufs.push_back(buf);
        old_d.push_back(d[k]);
      }
      bufs.push_back(buf);
    }
    if (!old_bufs.empty()) {
      at::_foreach_mul_(old_bufs, options_.momentum);
      at::_foreach_add_(old_bufs, old_d);
    }
    d = options_.nesterov ? at::_foreach_add(d, bufs, options_.momentum) : bufs;
  }
  at::_foreach_add_(params, d, -options_.lr);
}

void Sgd::zero_grad() { zero_grads(params_); }

namespace {
std::vector<std::string> checked_names(std::vector<std::string> names, size_t count) {
  PROBNAS_CHECK(names.size() == count, "optimiser: ", names.size(), " names for ", count, " parameters");
  return names;
}

std::vector<std::string> index_names(size_t count) {
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

// A saved tensor that must match the parameter it belongs to.
torch::Tensor restored(const ckpt::State& group, const std::string& name, const torch::Tensor& like) {
  auto t = group.get(name);
  PROBNAS_CHECK(t.sizes() == like.sizes() && t.scalar_type() == like.scalar_type(), "checkpoint: ", group.path(),
                "/", name, " is ", t.sizes(), " ", t.scalar_type(), ", the parameter is ", like.sizes(), " ",
                like.scalar_type());
  return t.to(like.device());
}
}  // namespace

void Sgd::set_names(std::vector<std::string> names) { names_ = checked_names(std::move(names), params_.size()); }

void Sgd::save(ckpt::State& state) const {
  state.set_attr("lr", options_.lr);
  state.set_attr("momentum_factor", options_.momentum);
  const auto names = names_.empty() ? index_names(params_.size()) : names_;
  auto& buffers = state.group("momentum");
  for (size_t i = 0; i < params_.size(); ++i)
    if (momentum_[i].defined()) buffers.put(names[i], momentum_[i]);
}

void Sgd::load(const ckpt::State& state) {
  options_.lr = state.attr_real("lr");
  const auto names = names_.empty() ? index_names(params_.size()) : names_;
  const auto& buffers = state.group("momentum");
  for (size_t i = 0; i < params_.size(); ++i)
    momentum_[i] = buffers.has(names[i]) ? restored(buffers, names[i], params_[i]) : torch::Tensor();
}

void Sgd::rebind(std::vector<torch::Tensor> params, std::vector<std::string> names,
                 const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& remap) {
  std::unordered_map<const void*, size_t> before;
  for (size_t j = 0; j < params_.size(); ++j) before[params_[j].unsafeGetTensorImpl()] = j;
  std::vector<torch::Tensor> momentum(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = before.find(params[i].unsafeGetTensorImpl());
    if (it != before.end() && momentum_[it->second].defined()) momentum[i] = remap(params[i], momentum_[it->second]);
  }
  params_ = std::move(params);
  momentum_ = std::move(momentum);
  names_ = checked_names(std::move(names), params_.size());
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
  std::vector<torch::Tensor> params, grads, m, v;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    params.push_back(params_[i]);
    grads.push_back(params_[i].grad());
    m.push_back(exp_avg_[i]);
    v.push_back(exp_avg_sq_[i]);
  }
  if (params.empty()) return;
  // L2 penalty, as torch.optim.Adam
  const auto g = options_.weight_decay != 0 ? at::_foreach_add(grads, params, options_.weight_decay) : grads;
  at::_foreach_mul_(m, options_.beta1);
  at::_foreach_add_(m, g, 1 - options_.beta1);
  at::_foreach_mul_(v, options_.beta2);
  at::_foreach_addcmul_(v, g, g, 1 - options_.beta2);
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, options_.eps);
  at::_foreach_addcdiv_(params, m, denom, -options_.lr / bc1);
}

void Adam::zero_grad() { zero_grads(params_); }

void Adam::set_names(std::vector<std::string> names) { names_ = checked_names(std::move(names), params_.size()); }

void Adam::save(ckpt::State& state) const {
  state.set_attr("step", step_);
  state.set_attr("lr", options_.lr);
  const auto names = names_.empty() ? index_names(params_.size()) : names_;
  auto& m = state.group("exp_avg");
  auto& v = state.group("exp_avg_sq");
  for (size_t i = 0; i < params_.size(); ++i) {
    m.put(names[i], exp_avg_[i]);
    v.put(names[i], exp_avg_sq_[i]);
  }
}

void Adam::load(const ckpt::State& state) {
  step_ = state.attr_int("step");
  const auto names = names_.empty() ? index_names(params_.size()) : names_;
  const auto& m = state.group("exp_avg");
  const auto& v = state.group("exp_avg_sq");
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_[i] = restored(m, names[i], params_[i]);
    exp_avg_sq_[i] = restored(v, names[i], params_[i]);
  }
}

double cosine_lr(double lr_max, double lr_min, int64_t epoch, int64_t epochs) {
  if (epochs <= 0) return lr_max;
  return lr_min + (lr_max - lr_min) * (1 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs))) / 2;
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({});
  auto total = torch::stack(at::_foreach_norm(grads, 2)).norm(2);
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  // Scaling by a device tensor keeps the host out of it (no read of the norm).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  at::_foreach_mul_(grads, coef);
#else
  for (auto& g : grads) g.mul_(coef);
#endif
  return total;
}

}  // namespace probnas
