#include "probnas/method/pgnas/pgnas.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/host_draws.h"
#include "probnas/core/log.h"
#include "probnas/method/batchnorm_sum.h"
#include "probnas/method/gradient_sum.h"

namespace probnas {

namespace F = torch::nn::functional;

torch::Tensor relaxed_gates(const torch::Tensor& logit, int64_t rows, int64_t channels, double tau, at::Generator& gen) {
  constexpr double eps = 1e-7;
  auto u = host_rand({rows, channels}, gen, logit.options().requires_grad(false)).clamp(eps, 1 - eps);
  const auto drop = torch::sigmoid((logit + torch::log(u) - torch::log1p(-u)) / tau);
  return 1 - drop;
}

torch::Tensor hard_gates(const torch::Tensor& drop, int64_t channels, at::Generator& gen) {
  auto u = host_rand({channels}, gen, drop.options().requires_grad(false));
  return (u >= drop.detach()).to(drop.scalar_type());
}

torch::Tensor pgnas_regulariser(const torch::Tensor& drop_logits, const std::vector<torch::Tensor>& kernels,
                                const std::vector<int64_t>& channels, double length_scale, int64_t examples,
                                bool constant_l2) {
  PROBNAS_CHECK(examples > 0, "PGNAS: the KL term needs the number of training examples N (got ", examples, ")");
  PROBNAS_CHECK(kernels.size() == static_cast<size_t>(drop_logits.numel()) && channels.size() == kernels.size(),
                "PGNAS: ", drop_logits.numel(), " drop logits for ", kernels.size(), " gated kernels");
  const double n = static_cast<double>(examples);
  const auto p = torch::sigmoid(drop_logits);
  // H(p) from the logit (stable at both ends): log p = -softplus(-x), log(1-p) = -softplus(x).
  const auto entropy = p * F::softplus(-drop_logits) + (1 - p) * F::softplus(drop_logits);
  std::vector<torch::Tensor> squares;
  for (const auto& k : kernels) squares.push_back(k.square().sum());
  const auto sq = torch::stack(squares).to(p.scalar_type());
  const auto k = torch::tensor(channels, torch::TensorOptions().dtype(torch::kFloat64)).to(p.options());
  const auto kept = constant_l2 ? torch::ones_like(p) : 1 - p;
  return (length_scale * length_scale / (2 * n) * kept * sq - k / n * entropy).sum();
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> shake_weights(int64_t blocks, int64_t rows, int64_t branches,
                                                                   const torch::TensorOptions& options,
                                                                   at::Generator& gen) {
  constexpr double eps = 1e-12;
  auto dirichlet = [&] {
    // Normalised unit exponentials are Dirichlet(1, ..., 1).
    const auto e = -torch::log(host_rand({rows, branches}, gen, options.requires_grad(false)).clamp_min(eps));
    return e / e.sum(1, true);
  };
  std::vector<std::pair<torch::Tensor, torch::Tensor>> w;
  for (int64_t b = 0; b < blocks; ++b) {
    auto forward = dirichlet();
    w.emplace_back(std::move(forward), dirichlet());
  }
  return w;
}

namespace {
bool contains(const std::vector<torch::Tensor>& list, const torch::Tensor& t) {
  for (const auto& x : list)
    if (x.unsafeGetTensorImpl() == t.unsafeGetTensorImpl()) return true;
  return false;
}
}  // namespace

Pgnas::Pgnas(std::shared_ptr<MultiBranchNet> net, PgnasOptions options, const RngKey& key)
    : net_(std::move(net)),
      options_(options),
      key_(key),
      gated_opt_({}, options.weights),
      other_opt_({}, options.weights),
      drop_opt_({}, options.drop) {
  PROBNAS_CHECK(options_.temperature > 0, "pgnas.temperature = ", options_.temperature, " must be positive");
  PROBNAS_CHECK(options_.init_drop > 0 && options_.init_drop < 1, "pgnas.init_drop = ", options_.init_drop,
                " must lie strictly between 0 and 1");
  for (const auto& g : net_->gate_groups()) channels_.push_back(g.channels);
  gated_ = net_->gated_weights();
  std::vector<std::string> gated_names, other_names;
  for (const auto& kv : net_->named_parameters()) {
    if (contains(gated_, kv.value())) {
      gated_names.push_back(kv.key());
    } else {
      other_.push_back(kv.value());
      other_names.push_back(kv.key());
    }
  }
  // gated_names follow named_parameters' order, which is gated_weights' order (conv1, conv2 per branch).
  SgdOptions gated = options_.weights;
  gated.weight_decay = 0;  // their prior is the KL term's l^2 (1 - p) / (2N) ||m||^2
  gated_opt_ = Sgd(gated_, gated);
  gated_opt_.set_names(gated_names);
  other_opt_ = Sgd(other_, options_.weights);
  other_opt_.set_names(other_names);
  const auto& w = gated_.front();
  const double logit = std::log(options_.init_drop) - std::log1p(-options_.init_drop);
  logits_ = torch::full({static_cast<int64_t>(channels_.size())}, logit, w.options()).set_requires_grad(true);
  drop_opt_ = Adam({logits_}, options_.drop);
  drop_opt_.set_names({"drop_logit"});
}

RngKey Pgnas::draw_key(const StepContext& ctx, const char* phase, int64_t index) const {
  return ctx.key.with("pgnas").with(static_cast<uint64_t>(ctx.global_step)).with(phase).with(static_cast<uint64_t>(index));
}

std::vector<torch::Tensor> Pgnas::gates_for(const torch::Tensor& logits, int64_t rows, at::Generator& gen) const {
  std::vector<torch::Tensor> gates;
  for (size_t g = 0; g < channels_.size(); ++g)
    gates.push_back(relaxed_gates(logits[static_cast<int64_t>(g)], rows, channels_[g], options_.temperature, gen));
  return gates;
}

void Pgnas::begin_epoch(int64_t epoch, int64_t epochs) {
  const double lr = cosine_lr(options_.weights.lr, options_.lr_min, epoch, epochs);
  gated_opt_.set_lr(lr);
  other_opt_.set_lr(lr);
}

void Pgnas::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                 StepMetrics& metrics) {
  net_->train();
  std::vector<torch::Tensor> params = gated_;
  params.insert(params.end(), other_.begin(), other_.end());
  params.push_back(logits_);
  for (const auto& p : params) p.mutable_grad() = torch::Tensor();
  GradientSum sum(params);
  BatchNormSum norms(*net_, ctx.train_micro_batches);
  for (const Batch& b : train) {
    auto gen = make_generator(draw_key(ctx, "train", b.index));
    ArchSample arch = ArchSample::gated(gates_for(logits_, b.x.size(0), gen));
    if (options_.shake && net_->kernels().size() > 1) {
      auto shake_gen = make_generator(draw_key(ctx, "shake", b.index));
      arch.shake = shake_weights(net_->blocks(), b.x.size(0), static_cast<int64_t>(net_->kernels().size()),
                                 b.x.options().dtype(torch::kFloat32), shake_gen);
    }
    const auto logits = net_->forward(b.x, arch);
    (F::cross_entropy(logits, b.y, F::CrossEntropyFuncOptions().reduction(torch::kSum)) / static_cast<double>(b.global))
        .backward();
    sum.take();
    norms.take(b.index);
    metrics.add(false, logits, b.y);
  }
  norms.finish(ctx.comm);
  sum.finish(ctx.comm);
  // The KL term once per global step, on every rank alike (its inputs are identical on all ranks).
  const double l = options_.length_scale > 0
                       ? options_.length_scale
                       : std::sqrt(static_cast<double>(ctx.train_examples) * options_.weights.weight_decay);
  const auto reg = pgnas_regulariser(logits_, gated_, channels_, l, ctx.train_examples, options_.prior == "constant_l2");
  reg.backward();
  reg_value_ = reg.detach();
  std::vector<torch::Tensor> weights = gated_;
  weights.insert(weights.end(), other_.begin(), other_.end());
  if (options_.grad_clip > 0) clip_grad_norm(weights, options_.grad_clip);
  gated_opt_.step();
  other_opt_.step();
  drop_opt_.step();

  // Validation: one hard candidate per micro-batch with the supernet's running BN statistics.
  if (!val.empty()) {
    torch::NoGradGuard no_grad;
    net_->eval();
    for (const Batch& b : val) {
      const auto logits = net_->forward(b.x, sample(draw_key(ctx, "val", b.index)));
      metrics.add(true, logits, b.y);
    }
    net_->train();
  }
}

ArchSample Pgnas::sample(const RngKey& key) {
  torch::NoGradGuard no_grad;
  auto gen = make_generator(key);
  const auto p = drop_probabilities();
  std::vector<torch::Tensor> gates;
  for (size_t g = 0; g < channels_.size(); ++g) gates.push_back(hard_gates(p[static_cast<int64_t>(g)], channels_[g], gen));
  return ArchSample::gated(std::move(gates));
}

ArchSample Pgnas::sample_fixed(const RngKey& key, double drop) const {
  torch::NoGradGuard no_grad;
  auto gen = make_generator(key);
  const auto p = torch::full({}, drop, logits_.options().requires_grad(false));
  std::vector<torch::Tensor> gates;
  for (const int64_t c : channels_) gates.push_back(hard_gates(p, c, gen));
  return ArchSample::gated(std::move(gates));
}

ArchSample Pgnas::expected() const {
  torch::NoGradGuard no_grad;
  const auto keep = 1 - drop_probabilities();
  std::vector<torch::Tensor> gates;
  for (size_t g = 0; g < channels_.size(); ++g) gates.push_back(keep[static_cast<int64_t>(g)].expand({channels_[g]}).clone());
  return ArchSample::gated(std::move(gates));
}

torch::Tensor Pgnas::drop_probabilities() const { return torch::sigmoid(logits_.detach()); }

double Pgnas::mean_drop() const {
  const auto p = drop_probabilities().to(torch::kCPU, torch::kFloat64);
  const auto k = torch::tensor(channels_, torch::kFloat64);
  return ((p * k).sum() / k.sum()).item<double>();
}

std::vector<torch::Tensor> Pgnas::expected_weights() const {
  const auto p = drop_probabilities();
  return {torch::stack({1 - p, p}, 1)};
}

Genotype Pgnas::derive() const { return net_->derive(expected_weights()); }

void Pgnas::save(ckpt::State& method, ckpt::State& optim) const {
  method.put("drop_logit", logits_);
  std::vector<std::string> names;
  for (const auto& g : net_->gate_groups()) names.push_back(g.name);
  method.put_lines("groups", names);
  method.set_attr("shake", static_cast<int64_t>(options_.shake ? 1 : 0));
  gated_opt_.save(optim.group("gated_weights"));
  other_opt_.save(optim.group("other_weights"));
  drop_opt_.save(optim.group("drop_logit"));
}

void Pgnas::load(const ckpt::State& method, const ckpt::State& optim) {
  const auto t = method.get("drop_logit");
  PROBNAS_CHECK(t.sizes() == logits_.sizes(), "checkpoint: ", method.path(), "/drop_logit has shape ", t.sizes(),
                ", this multi-branch network has ", logits_.numel(), " gated convolutions");
  {
    torch::NoGradGuard no_grad;
    logits_.copy_(t);
  }
  // A search keeps the supernet training it began with: a checkpoint from before pgnas.shake trained without it.
  const bool shaken = method.has_attr("shake") && method.attr_int("shake") != 0;
  if (shaken != options_.shake) {
    PROBNAS_CHECK(!method.has_attr("shake"), "checkpoint: ", method.path(), " was trained with pgnas.shake = ",
                  shaken ? "true" : "false", "; this run has ", options_.shake ? "true" : "false");
    PROBNAS_LOG(warn) << "the checkpoint predates pgnas.shake: the search goes on without shake-shake, as it began";
    options_.shake = false;
  }
  gated_opt_.load(optim.group("gated_weights"));
  other_opt_.load(optim.group("other_weights"));
  drop_opt_.load(optim.group("drop_logit"));
}

std::vector<std::pair<std::string, double>> Pgnas::scalars() const {
  const auto p = drop_probabilities().to(torch::kCPU, torch::kFloat64);
  std::vector<std::pair<std::string, double>> s = {{"mean_drop", mean_drop()},
                                                   {"min_drop", p.min().item<double>()},
                                                   {"max_drop", p.max().item<double>()}};
  if (reg_value_.defined()) s.emplace_back("kl_term", reg_value_.item<double>());
  return s;
}

}  // namespace probnas
