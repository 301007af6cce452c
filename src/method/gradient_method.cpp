#include "probnas/method/gradient_method.h"

#include <torch/torch.h>

#include <limits>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/log.h"
#include "probnas/method/batchnorm_sum.h"
#include "probnas/method/gradient_sum.h"

namespace probnas {

GradientMethodOptions gradient_method_options(const MethodBuild& b, double arch_decay) {
  GradientMethodOptions o;
  apply_weight_training(b.shared.weights, o);
  o.arch.lr = b.shared.arch.lr;
  o.arch.beta1 = b.shared.arch.beta1;
  o.arch.beta2 = b.shared.arch.beta2;
  o.arch.weight_decay = arch_decay;
  o.init_std = b.shared.arch.init_std;
  o.warmup_epochs = b.shared.arch.warmup_epochs;
  o.stages = progressive_stages(b.shared.progressive, b.space, b.epochs, b.net->arch_shape().front().num_ops());
  o.edge_norm = b.shared.arch.edge_norm;
  PROBNAS_CHECK(!o.edge_norm || b.space.space == "darts",
                "search.edge_norm = true: edge normalisation is built for the DARTS space (search.space = darts)");
  return o;
}

namespace F = torch::nn::functional;

GradientMethod::GradientMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : net_(std::move(net)),
      options_(options),
      arch_(),
      weights_(net_->weights()),
      weight_opt_(weights_, options.weights),
      arch_opt_({}, options.arch),
      key_(key) {
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
  std::vector<std::string> groups;
  for (const auto& group : net_->arch_shape()) groups.push_back(group.name);
  auto arch_params = arch_;
  if (options_.edge_norm) {
    // PC-DARTS: beta per edge, N(0, init_std^2); edges into the same node ("j<-i" with the same j)
    // are contiguous in every space's edge order.
    auto edge_gen = make_generator(key.with("edge-init"));
    for (const auto& group : net_->arch_shape()) {
      auto p = (torch::randn({group.edges()}, edge_gen, torch::kFloat32) * options_.init_std).to(device, dtype);
      edge_.push_back(p.set_requires_grad(true));
      arch_params.push_back(edge_.back());
      std::vector<std::pair<int64_t, int64_t>> nodes;
      std::string previous;
      for (int64_t e = 0; e < group.edges(); ++e) {
        const auto& name = group.edge_names[static_cast<size_t>(e)];
        const std::string target = name.substr(0, name.find("<-"));
        if (target != previous) nodes.emplace_back(e, 0);
        ++nodes.back().second;
        previous = target;
      }
      node_edges_.push_back(std::move(nodes));
    }
    for (const auto& group : net_->arch_shape()) groups.push_back("edge_" + group.name);
  }
  arch_opt_ = Adam(arch_params, options_.arch);
  std::vector<std::string> names;
  for (const auto& kv : net_->named_parameters()) names.push_back(kv.key());
  weight_opt_.set_names(std::move(names));
  arch_opt_.set_names(std::move(groups));
}

std::vector<torch::Tensor> GradientMethod::edge_weights(bool differentiable) const {
  std::vector<torch::Tensor> weights;
  for (size_t g = 0; g < edge_.size(); ++g) {
    const auto beta = differentiable ? edge_[g] : edge_[g].detach();
    std::vector<torch::Tensor> parts;
    for (const auto& [first, count] : node_edges_[g]) parts.push_back(torch::softmax(beta.narrow(0, first, count), 0));
    weights.push_back(torch::cat(parts));
  }
  return weights;
}

std::vector<torch::Tensor> GradientMethod::all_arch_parameters() const {
  std::vector<torch::Tensor> params = arch_;
  params.insert(params.end(), edge_.begin(), edge_.end());
  return params;
}

ArchSample GradientMethod::with_edge_weights(ArchSample sample, bool differentiable) const {
  if (!edge_.empty()) sample.edge_weights = edge_weights(differentiable);
  return sample;
}

Genotype GradientMethod::derive() const {
  auto probs = expected_weights();
  if (!edge_.empty()) {
    const auto edges = edge_weights(false);
    for (size_t g = 0; g < probs.size(); ++g) probs[g] = probs[g] * edges[g].unsqueeze(1);
  }
  return net_->derive(probs);
}

int64_t GradientMethod::stage_start(int64_t stage) const {
  int64_t start = 0;
  for (int64_t s = 0; s < stage; ++s) start += options_.stages[static_cast<size_t>(s)].epochs;
  return start;
}

void GradientMethod::begin_epoch(int64_t epoch, int64_t epochs) {
  epoch_ = epoch;
  while (stage_ + 1 < static_cast<int64_t>(options_.stages.size()) && epoch >= stage_start(stage_ + 1))
    advance_stage(stage_ + 1);
  // The weight-only warm-up opens every stage (DrNAS: architecture steps from epoch 10 of each stage).
  arch_active_ = epoch - stage_start(stage_) >= options_.warmup_epochs;
  weight_opt_.set_lr(cosine_lr(options_.weights.lr, options_.lr_min, epoch, epochs));
}

torch::Tensor GradientMethod::masked(size_t g, torch::Tensor weights) const {
  if (masks_.empty()) return weights;
  weights = weights * masks_[g].to(weights.scalar_type());
  return weights / weights.sum(-1, true);
}

void GradientMethod::rebind_weights(const Widener* widener) {
  weights_ = net_->weights();
  std::vector<std::string> names;
  for (const auto& kv : net_->named_parameters()) names.push_back(kv.key());
  weight_opt_.rebind(weights_, std::move(names), [&](const torch::Tensor& p, const torch::Tensor& m) {
    return widener ? widener->apply(p, m) : m;
  });
}

void GradientMethod::advance_stage(int64_t stage) {
  PROBNAS_CHECK(stage == stage_ + 1 && stage < static_cast<int64_t>(options_.stages.size()),
                "progressive learning: cannot go from stage ", stage_ + 1, " to stage ", stage + 1);
  const auto& next = options_.stages[static_cast<size_t>(stage)];
  torch::NoGradGuard no_grad;
  // Prune: per edge, the `keep` operations with the largest expected weight among those still kept.
  const auto probs = expected_weights();
  std::vector<torch::Tensor> masks;
  for (size_t g = 0; g < probs.size(); ++g) {
    auto p = probs[g].to(torch::kCPU, torch::kFloat64);
    if (!masks_.empty()) p = p.masked_fill(masks_[g].to(torch::kCPU).logical_not(), -1.0);
    // Stable sort: equal weights keep the earlier operation, the same on every rank and device.
    const auto order = std::get<1>(p.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true));
    const auto top = order.narrow(1, 0, next.keep);
    masks.push_back(torch::zeros(p.sizes(), torch::kBool).scatter(1, top, true).to(arch_[g].device()));
  }
  for (auto& w : weights_) w.mutable_grad() = torch::Tensor();
  net_->prune_operations(masks);
  masks_ = std::move(masks);
  Widener widener(key_.with("widen").with(static_cast<uint64_t>(stage)));
  net_->set_partial_channels(next.k, widener);
  rebind_weights(&widener);
  stage_ = stage;
  int64_t count = 0;
  for (const auto& w : weights_) count += w.numel();
  PROBNAS_LOG(info) << "progressive learning: stage " << stage + 1 << " of " << options_.stages.size() << " from epoch "
                    << epoch_ + 1 << ": kept the " << next.keep << " strongest operations per edge, partial channels K = "
                    << next.k << " (" << count << " weights)";
}

void GradientMethod::restore_structure(const ckpt::State& method) {
  const int64_t stage = method.has_attr("stage") ? method.attr_int("stage") : 0;
  PROBNAS_CHECK(stage < std::max<int64_t>(1, static_cast<int64_t>(options_.stages.size())), "checkpoint: ",
                method.path(), " is at progressive stage ", stage + 1, ", but this run has ", options_.stages.size(),
                " stages (progressive.k)");
  if (stage == 0) return;
  const auto& group = method.group("mask");
  std::vector<torch::Tensor> masks;
  for (size_t g = 0; g < arch_.size(); ++g) {
    const auto& name = net_->arch_shape()[g].name;
    auto m = group.get(name);
    PROBNAS_CHECK(m.sizes() == arch_[g].sizes(), "checkpoint: ", group.path(), "/", name, " has shape ", m.sizes(),
                  ", this search space needs ", arch_[g].sizes());
    masks.push_back(m.to(torch::kBool).to(arch_[g].device()));
  }
  net_->prune_operations(masks);
  masks_ = std::move(masks);
  // The shapes of the checkpoint's stage; the values come from the checkpoint right after.
  Widener widener(key_.with("widen").with(static_cast<uint64_t>(stage)));
  net_->set_partial_channels(options_.stages[static_cast<size_t>(stage)].k, widener);
  rebind_weights(nullptr);
  stage_ = stage;
}

namespace {
// Sum-reduced cross entropy over the micro-batch divided by the global batch: the micro-batches'
// gradients then add up (over micro-batches and ranks) to the gradient of the global-batch mean.
torch::Tensor scaled_loss(const torch::Tensor& logits, const Batch& b) {
  return F::cross_entropy(logits, b.y, F::CrossEntropyFuncOptions().reduction(torch::kSum)) /
         static_cast<double>(b.global);
}

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

torch::Tensor GradientMethod::host_draw(const RngKey&) const { return {}; }

torch::Tensor GradientMethod::device_draw(const RngKey& key) const {
  auto staged = staged_.find(key);
  if (staged.defined()) return staged;
  const auto host = host_draw(key);
  return host.defined() ? host_to_device(host, arch_.front().device()) : host;
}

void GradientMethod::stage_draws(const std::vector<Batch>& train, const std::vector<Batch>& val,
                                 const StepContext& ctx) {
  std::vector<RngKey> keys;
  if (arch_active_)
    for (const Batch& b : val) keys.push_back(draw_key(ctx, true, b.index));
  for (const Batch& b : train) keys.push_back(draw_key(ctx, false, b.index));
  staged_.stage(keys, [this](const RngKey& key) { return host_draw(key); }, arch_.front().device());
}

std::vector<torch::Tensor> GradientMethod::summed_gradient(const std::vector<Batch>& batches, bool architecture_phase,
                                                           const std::vector<torch::Tensor>& wrt, bool through_arch,
                                                           const StepContext& ctx, StepMetrics* metrics) {
  // backward() adds to what a parameter holds: drop what the previous step's optimisers left there.
  for (const auto& p : wrt) p.mutable_grad() = torch::Tensor();
  GradientSum sum(wrt);
  BatchNormSum norms(*net_, architecture_phase ? ctx.val_micro_batches : ctx.train_micro_batches);
  for (const Batch& b : batches) {
    ArchSample arch;
    if (through_arch) {
      arch = with_edge_weights(mixing_weights(draw_key(ctx, architecture_phase, b.index), true), true);
    } else {
      torch::NoGradGuard no_grad;
      arch = with_edge_weights(mixing_weights(draw_key(ctx, architecture_phase, b.index), false), false);
    }
    auto logits = net_->forward(b.x, arch);
    // Gradients only into `wrt`: asked for the architecture alone, no weight-gradient kernels run.
    scaled_loss(logits, b).backward({}, false, false, wrt);
    sum.take();
    norms.take(b.index);
    if (metrics) metrics->add(architecture_phase, logits, b.y);
  }
  norms.finish(ctx.comm);
  return sum.reduce(ctx.comm);
}

std::vector<torch::Tensor> GradientMethod::architecture_gradient(const std::vector<Batch>& train,
                                                                 const std::vector<Batch>& val,
                                                                 const StepContext& ctx, StepMetrics* metrics) {
  if (options_.second_order) return second_order_gradient(train, val, ctx, metrics);
  return summed_gradient(val, true, all_arch_parameters(), true, ctx, metrics);
}

// With w'(alpha) = w - xi (mu buf + grad_w L_train(w, alpha) + wd w), the gradient of L_val(w'(alpha), alpha)
// is grad_alpha L_val(w', alpha) - xi H dw', with dw' = grad_w' L_val(w', alpha) and H the mixed second
// derivative d2 L_train / d alpha d w at w; H dw' is a central difference of grad_alpha L_train along
// dw'. Every gradient is fully reduced (micro-batches and ranks, float64) before it is used, so the
// unrolled weights, the norm and the perturbations are the same numbers on every rank. In training
// mode the three extra forwards also move BatchNorm's running statistics (so do the DARTS code's),
// each pass in micro-batch order as on one rank; the search normalises by batch statistics.
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
  const auto arch = all_arch_parameters();
  std::vector<torch::Tensor> arch_and_weights(arch);
  arch_and_weights.insert(arch_and_weights.end(), weights_.begin(), weights_.end());
  const auto val_grad = summed_gradient(val, true, arch_and_weights, true, ctx, metrics);
  const auto groups = static_cast<std::ptrdiff_t>(arch.size());
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
    return summed_gradient(train, false, arch, true, ctx, nullptr);
  };
  const auto plus = arch_gradient_at(1.0);
  const auto minus = arch_gradient_at(-1.0);
  w.restore();

  std::vector<torch::Tensor> grad;
  for (size_t g = 0; g < arch.size(); ++g) grad.push_back(direct[g] - xi * (plus[g] - minus[g]) / (2 * radius));
  return grad;
}

void GradientMethod::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                          StepMetrics& metrics) {
  net_->train();
  // Every draw of the step, made on the host and copied to the device before any of its work.
  stage_draws(train, val, ctx);

  // 1. Architecture step on the validation micro-batches (second order: and the training ones).
  if (arch_active_) {
    const auto params = all_arch_parameters();
    const auto grad = architecture_gradient(train, val, ctx, &metrics);
    for (size_t g = 0; g < params.size(); ++g) params[g].mutable_grad() = grad[g].to(params[g].scalar_type());
    arch_opt_.step();
  }

  // 2. Weight step on the training micro-batches, architecture fixed.
  weight_opt_.zero_grad();
  GradientSum weight_grads(weights_);
  BatchNormSum norms(*net_, ctx.train_micro_batches);
  for (const Batch& b : train) {
    ArchSample arch;
    {
      torch::NoGradGuard no_grad;
      arch = with_edge_weights(mixing_weights(draw_key(ctx, false, b.index), false), false);
    }
    auto logits = net_->forward(b.x, arch);
    scaled_loss(logits, b).backward();
    weight_grads.take();
    norms.take(b.index);
    metrics.add(false, logits, b.y);
  }
  norms.finish(ctx.comm);
  weight_grads.finish(ctx.comm);
  if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
  weight_opt_.step();
  staged_.clear();
}

void GradientMethod::save(ckpt::State& method, ckpt::State& optim) const {
  auto& arch = method.group(arch_parameter_name());
  const auto& shape = net_->arch_shape();
  for (size_t g = 0; g < arch_.size(); ++g) arch.put(shape[g].name, arch_[g]);
  for (size_t g = 0; g < edge_.size(); ++g) method.group("edge_beta").put(shape[g].name, edge_[g]);
  method.set_attr("epoch", epoch_);
  method.set_attr("stage", stage_);
  for (size_t g = 0; g < masks_.size(); ++g) method.group("mask").put(shape[g].name, masks_[g]);
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
  for (size_t g = 0; g < edge_.size(); ++g) {
    PROBNAS_CHECK(method.has_group("edge_beta"), "checkpoint: ", method.path(), " has no edge_beta group, but "
                  "search.edge_norm = true (edge normalisation needs its edge parameters)");
    auto t = method.group("edge_beta").get(shape[g].name);
    PROBNAS_CHECK(t.sizes() == edge_[g].sizes(), "checkpoint: ", method.path(), "/edge_beta/", shape[g].name,
                  " has shape ", t.sizes(), ", this search space needs ", edge_[g].sizes());
    edge_[g].copy_(t);
  }
  weight_opt_.load(optim.group("weights"));
  arch_opt_.load(optim.group(arch_parameter_name()));
  epoch_ = method.attr_int("epoch");
}

}  // namespace probnas
