#include "probnas/method/gibbsnas/gibbsnas.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>

#include "probnas/core/error.h"
#include "probnas/core/host_draws.h"
#include "probnas/method/batchnorm_sum.h"
#include "probnas/method/gradient_sum.h"

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

BfgsOptions arch_bfgs_options(const GibbsOptions& gibbs) {
  BfgsOptions o;
  // The Hessian of alpha's negative log joint is at least the prior's decay: its inverse at most 1 / decay.
  o.max_eigenvalue = gibbs.arch_max_inverse_curvature > 0 ? gibbs.arch_max_inverse_curvature
                     : gibbs.arch_prior_decay > 0       ? 1.0 / gibbs.arch_prior_decay
                                                        : 0.0;
  if (gibbs.arch_max_inverse_curvature > 0) {
    PROBNAS_CHECK(o.max_eigenvalue >= o.initial_scale, "gibbs.arch_max_inverse_curvature = ",
                  gibbs.arch_max_inverse_curvature, " is below alpha's initial inverse curvature ", o.initial_scale,
                  ": give at least that, or 0 (the prior variance 1 / gibbs.arch_prior_decay)");
  } else if (o.max_eigenvalue > 0) {
    o.initial_scale = std::min(o.initial_scale, o.max_eigenvalue);  // a prior tighter than the unit start
  }
  return o;
}

// The sum of a micro-batch's cross entropies against `labels`, over `scale`.
torch::Tensor gibbs_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels, double scale) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum)) / scale;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& list, const c10::Device& device) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : list) parts.push_back(t.detach().reshape({-1}).to(device, torch::kFloat64));
  return torch::cat(parts);
}
}  // namespace

double partial_step_noise(double eta) {
  PROBNAS_CHECK(eta >= 0 && eta < 2, "GibbsNAS: a learning rate of ", eta, " (allowed: [0, 2)); from 2 on, the mean step "
                "overshoots the Gaussian's mean by more than it started from");
  return eta * (2 - eta);
}

torch::Tensor gauss_newton_probe_loss(const torch::Tensor& logits, int64_t global_batch, at::Generator& gen) {
  torch::Tensor drawn;
  {
    torch::NoGradGuard no_grad;
    // Drawn on the host generator (GibbsNAS reads the step's finiteness on the host anyway): the
    // same labels on any device.
    const auto probs = torch::softmax(logits.detach().to(torch::kFloat64), 1).cpu();
    drawn = host_to_device(torch::multinomial(probs, 1, false, gen).squeeze(1), logits.device());
  }
  return gibbs_cross_entropy_sum(logits, drawn, std::sqrt(static_cast<double>(global_batch)));
}

GibbsNas::GibbsNas(std::shared_ptr<Supernet> net, GradientMethodOptions options, GibbsOptions gibbs, const RngKey& key)
    : SoftmaxMethod(std::move(net), options, key),
      gibbs_(gibbs),
      arch_h_(numel(arch_), arch_bfgs_options(gibbs)),
      weight_h_(gibbs.order == 2 ? numel(weights_) : 1, LbfgsOptions{gibbs.history}, weights_.front().device()),
      weight_c_(gibbs.order == 2 ? numel(weights_) : 1, gibbs.curvature_average, weights_.front().device()) {
  arch_eta_ = gibbs_.arch_lr;  // until begin_epoch applies the schedule
  PROBNAS_CHECK(gibbs_.arch_lr_schedule == "constant" || gibbs_.arch_lr_schedule == "cosine",
                "gibbs.arch_lr_schedule = ", gibbs_.arch_lr_schedule, " (allowed: constant, cosine)");
  PROBNAS_CHECK(gibbs_.order == 1 || gibbs_.order == 2, "gibbs.order = ", gibbs_.order, " (allowed: 1, 2)");
  PROBNAS_CHECK(gibbs_.order == 2 || gibbs_.sample_weights, "gibbs.sample_weights = false with gibbs.order = 1: the "
                "first-order variant trains the weights by SGD and never samples them");
  PROBNAS_CHECK(gibbs_.order == 1 || gibbs_.weight_prior_decay + gibbs_.curvature_damping > 0,
                "gibbs.weight_prior_decay = gibbs.curvature_damping = 0 with gibbs.order = 2: one of them must be "
                "positive, or a coordinate without curvature takes an unbounded step");
  PROBNAS_CHECK(edge_.empty() && options_.stages.empty() && !options_.second_order,
                "GibbsNAS samples alpha and the weights as they are: no edge normalisation, progressive stages or "
                "second-order DARTS gradient");
}

void GibbsNas::begin_epoch(int64_t epoch, int64_t epochs) {
  GradientMethod::begin_epoch(epoch, epochs);
  // A rate decays on a cosine from its start to search.lr_min scaled alike. The weights' always does;
  // alpha's too, unless constant (the paper gives both as initial rates; its decay policy is in the
  // supplement we do not have).
  const double lr = options_.weights.lr;
  const auto decayed = [&](double start) {
    return cosine_lr(start, lr > 0 ? start * options_.lr_min / lr : 0.0, epoch, epochs);
  };
  weight_eta_ = decayed(gibbs_.weight_lr);
  arch_eta_ = gibbs_.arch_lr_schedule == "cosine" ? decayed(gibbs_.arch_lr) : gibbs_.arch_lr;
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

std::pair<torch::Tensor, torch::Tensor> GibbsNas::weight_gradient_and_curvature(const std::vector<Batch>& train,
                                                                                const StepContext& ctx,
                                                                                StepMetrics& metrics) {
  for (const auto& p : weights_) p.mutable_grad() = torch::Tensor();
  GradientSum gradient(weights_), sampled(weights_);
  BatchNormSum norms(*net_, ctx.train_micro_batches);
  for (const Batch& b : train) {
    ArchSample arch;
    {
      torch::NoGradGuard no_grad;
      arch = with_edge_weights(mixing_weights(draw_key(ctx, false, b.index), false), false);
    }
    const auto logits = net_->forward(b.x, arch);
    gibbs_cross_entropy_sum(logits, b.y, static_cast<double>(b.global)).backward({}, /*retain_graph=*/true, false, weights_);
    gradient.take();
    metrics.add(false, logits, b.y);
    // The same forward, against labels drawn from the network's prediction (see the header).
    PROBNAS_CHECK(torch::isfinite(logits).all().item<bool>(), "GibbsNAS: the network's outputs are not finite at step ",
                  ctx.global_step, ": the weights' steps diverged; lower gibbs.weight_lr (now ", gibbs_.weight_lr,
                  ") or raise gibbs.curvature_damping (now ", gibbs_.curvature_damping, ")");
    auto gen = make_generator(noise_key(ctx, "labels").with(static_cast<uint64_t>(b.index)));
    gauss_newton_probe_loss(logits, b.global, gen).backward({}, false, false, weights_);
    sampled.take();
    norms.take(b.index);
  }
  norms.finish(ctx.comm);
  const auto device = weights_.front().device();
  const auto g = flatten(gradient.reduce(ctx.comm), device);
  const auto d = flatten(sampled.reduce(ctx.comm), device);
  return {g, d * d};
}

void GibbsNas::weight_sweep(const std::vector<Batch>& train, const StepContext& ctx, StepMetrics& metrics) {
  if (gibbs_.order == 1) {
    // Momentum SGD with the shared options (its decay is the prior's), clipping included.
    const auto grads = summed_gradient(train, false, weights_, false, ctx, &metrics);
    for (size_t i = 0; i < weights_.size(); ++i) weights_[i].mutable_grad() = grads[i].to(weights_[i].scalar_type());
    if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
    weight_opt_.step();
    return;
  }
  const auto device = weights_.front().device();
  const double decay = gibbs_.weight_prior_decay;
  const auto x = flat_weights();
  auto [gradient, curvature] = weight_gradient_and_curvature(train, ctx, metrics);
  const auto b = gradient + decay * x;
  // H_w's initial matrix: the inverse of the diagonal Hessian of U, Becker-LeCun's h plus the prior's
  // decay, damped by mu.
  weight_c_.add(curvature);
  weight_h_.set_initial((weight_c_.diagonal() + (decay + gibbs_.curvature_damping)).reciprocal());
  torch::Tensor normals;
  if (gibbs_.sample_weights) {
    auto gen = make_generator(noise_key(ctx, "weights"));
    normals = host_randn({x.numel() + weight_h_.pairs()}, gen, x.options());
  }
  const auto next = gaussian_step(weight_h_, x, b, weight_eta_,
                                  gibbs_.sample_weights ? partial_step_noise(weight_eta_) * gibbs_.weight_noise : 0.0,
                                  normals, gibbs_.noise_clip);
  unflatten_into(next, weights_);
  if (ctx.global_step % gibbs_.pair_every != 0) return;
  // The curvature pair on the same batch (see the header): s = next - x, y = b(next) - b(x).
  const auto again = summed_gradient(train, false, weights_, false, ctx, nullptr);
  const auto x_new = flat_weights();
  weight_h_.update(x_new - x, flatten(again, device) + decay * x_new - b);
}

void GibbsNas::arch_sweep(const std::vector<Batch>& val, const StepContext& ctx, StepMetrics& metrics) {
  const auto gradient = [&](StepMetrics* m) {
    const auto grads = summed_gradient(val, true, arch_, true, ctx, m);
    for (const auto& a : arch_) a.mutable_grad() = torch::Tensor();
    const auto x = flat_arch();
    return std::make_pair(x, flatten(grads, torch::kCPU) + gibbs_.arch_prior_decay * x);
  };
  const auto [x, b] = gradient(&metrics);
  auto next = x - arch_eta_ * arch_h_.apply(b);
  if (gibbs_.sample_arch) {
    auto gen = make_generator(noise_key(ctx, "arch"));
    const double scale = std::sqrt(partial_step_noise(arch_eta_) * gibbs_.arch_noise);
    next = next + scale * arch_h_.correlate(torch::randn({x.numel()}, gen, torch::kFloat64));
  }
  unflatten_into(next.to(arch_.front().device()), arch_);
  if (ctx.global_step % gibbs_.pair_every != 0) return;
  const auto [x_new, b_new] = gradient(nullptr);  // the same batch at the new point
  arch_h_.update(x_new - x, b_new - b);
}

void GibbsNas::save(ckpt::State& method, ckpt::State& optim) const {
  GradientMethod::save(method, optim);
  auto& g = method.group("gibbs");
  g.set_attr("arch_lr_schedule", gibbs_.arch_lr_schedule);
  arch_h_.save(g.group("arch_inverse_hessian"));
  if (gibbs_.order == 2) {
    weight_h_.save(g.group("weight_lbfgs"));
    weight_c_.save(g.group("weight_curvature"));
  }
}

void GibbsNas::load(const ckpt::State& method, const ckpt::State& optim) {
  GradientMethod::load(method, optim);
  PROBNAS_CHECK(method.has_group("gibbs"), "checkpoint: ", method.path(), " has no gibbs group (not a GibbsNAS search)");
  const auto& g = method.group("gibbs");
  // A checkpoint without the attribute was written before gibbs.arch_lr_schedule existed, when alpha's
  // rate was constant. Going on with it would leave the run folder's config.ini (today's cosine) wrong
  // about the search, so it is refused, as the order-2 checkpoints from before L-BFGS are.
  PROBNAS_CHECK(g.has_attr("arch_lr_schedule"), "checkpoint: ", g.path(), " has no arch_lr_schedule attribute: it "
                "was written by a probnas from before gibbs.arch_lr_schedule (2026-12-07), whose alpha learning rate "
                "was constant; start this search again in a new run.dir (--gibbs.arch_lr_schedule constant gives "
                "the old rate)");
  const std::string schedule = g.attr_text("arch_lr_schedule");
  PROBNAS_CHECK(schedule == gibbs_.arch_lr_schedule, "checkpoint: ", g.path(), " has arch_lr_schedule = ", schedule,
                ", this run has gibbs.arch_lr_schedule = ", gibbs_.arch_lr_schedule,
                ": resume with the checkpoint's schedule or start a new run.dir");
  arch_h_.load(g.group("arch_inverse_hessian"));
  if (gibbs_.order == 2) {
    PROBNAS_CHECK(g.has_group("weight_lbfgs"), "checkpoint: ", g.path(), " has no weight_lbfgs group: it was "
                  "written by an earlier probnas, whose GibbsNAS fitted the weights' curvature per coordinate "
                  "instead of L-BFGS; start this search again in a new run folder");
    weight_h_.load(g.group("weight_lbfgs"));
    weight_c_.load(g.group("weight_curvature"));
  }
}

std::vector<std::pair<std::string, double>> GibbsNas::scalars() const {
  auto s = SoftmaxMethod::scalars();
  const auto spread = arch_h_.matrix().diagonal();
  s.emplace_back("arch_variance_mean", gibbs_.arch_noise * spread.mean().item<double>());
  s.emplace_back("arch_lr", arch_eta_);
  s.emplace_back("bfgs_skipped", static_cast<double>(arch_h_.skipped()));
  s.emplace_back("bfgs_clamped", static_cast<double>(arch_h_.clamped()));
  if (gibbs_.order == 2) {
    s.emplace_back("weight_inverse_curvature_mean", weight_h_.initial().mean().item<double>());
    s.emplace_back("weight_curvature_mean", weight_c_.diagonal().mean().item<double>());
    s.emplace_back("lbfgs_skipped", static_cast<double>(weight_h_.skipped()));
  }
  return s;
}

std::string GibbsNas::report_json() const {
  // The posterior spread of alpha per edge and operation: the sampling variance tau_a diag(H).
  const auto var = (gibbs_.arch_noise * arch_h_.matrix().diagonal()).contiguous();
  nlohmann::ordered_json j;
  j["order"] = gibbs_.order;
  j["sample_weights"] = gibbs_.sample_weights;
  j["sample_arch"] = gibbs_.sample_arch;
  j["arch_lr_schedule"] = gibbs_.arch_lr_schedule;
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
