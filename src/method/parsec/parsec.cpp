#include "probnas/method/parsec/parsec.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/log.h"
#include "probnas/method/batchnorm_sum.h"
#include "probnas/method/gradient_sum.h"

namespace probnas {

namespace F = torch::nn::functional;

namespace {
// Summed cross entropy of a micro-batch: minus its log-likelihood.
torch::Tensor summed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum));
}
}  // namespace

torch::Tensor read_parsec_logits(const std::string& dir, const std::string& space,
                                 const std::vector<std::string>& names) {
  const std::string where = "parsec.init_from = " + dir;
  const ckpt::Directory folder(dir + "/checkpoints", {}, 1);
  const auto found = folder.newest_good();
  PROBNAS_CHECK(found.has_value(), where, ": no checkpoint in ", folder.path(),
                " (the run folder of a PARSEC search keeps its checkpoints there)");
  const auto& meta = found->state.group("meta");
  PROBNAS_CHECK(meta.attr_text("method") == "parsec", where, ": ", found->path, " is a ", meta.attr_text("method"),
                " checkpoint, not a PARSEC search's");
  PROBNAS_CHECK(meta.attr_text("space") == space, where, ": ", found->path, " searched the ", meta.attr_text("space"),
                " space, this search the ", space, " space");
  const auto& method = found->state.group("method");
  const auto theirs = method.lines("variables");
  PROBNAS_CHECK(theirs == names, where, ": ", found->path, " has ", theirs.size(), " variables (",
                theirs.empty() ? std::string() : theirs.front(), ", ...), this space's distribution ", names.size(),
                " (", names.empty() ? std::string() : names.front(), ", ...): the cells differ");
  const auto logits = method.get("logits").to(torch::kCPU, torch::kFloat32);
  PROBNAS_LOG(info) << "PARSEC: pi starts from " << found->path << " (step "
                    << ckpt::step_of(std::filesystem::path(found->path).filename().string()) << ")";
  return logits;
}

int64_t parsec_warmup_epochs(int64_t parsec_warmup, int64_t search_warmup, int64_t epochs) {
  if (parsec_warmup >= 0) return parsec_warmup;
  if (search_warmup > 0) return search_warmup;
  return std::min((3 * epochs + 9) / 10, std::max<int64_t>(epochs - 1, 0));  // pi still learns in the last epoch
}

Parsec::Parsec(std::shared_ptr<Supernet> net, ParsecOptions options, const RngKey& key)
    : net_(std::move(net)),
      options_(options),
      dist_(net_->space_name(), net_->arch_shape()),
      key_(key),
      weights_(net_->weights()),
      weight_opt_(weights_, options.weights),
      arch_opt_({}, options.arch) {
  PROBNAS_CHECK(options_.samples >= 1, "parsec.samples = ", options_.samples, " must be at least 1");
  PROBNAS_CHECK(options_.top_k >= 1, "parsec.top_k = ", options_.top_k, " must be at least 1");
  const auto& w = weights_.front();
  // Uniform prior at the start (every architecture equally probable), or the distribution transferred
  // from an earlier search (parsec.init_from).
  logits_ = torch::zeros({dist_.variables(), dist_.max_options()}, w.options());
  if (options_.initial_logits.defined()) {
    PROBNAS_CHECK(options_.initial_logits.sizes() == logits_.sizes(), "parsec.init_from: logits of shape ",
                  options_.initial_logits.sizes(), ", this space's distribution needs ", logits_.sizes());
    logits_.copy_(options_.initial_logits);
  }
  logits_.set_requires_grad(true);
  arch_opt_ = Adam({logits_}, options_.arch);
  arch_opt_.set_names({"logits"});
  std::vector<std::string> names;
  for (const auto& kv : net_->named_parameters()) names.push_back(kv.key());
  weight_opt_.set_names(std::move(names));
}

void Parsec::begin_epoch(int64_t epoch, int64_t epochs) {
  arch_active_ = epoch >= options_.warmup_epochs;
  weight_opt_.set_lr(cosine_lr(options_.weights.lr, options_.lr_min, epoch, epochs));
}

RngKey Parsec::draw_key(const StepContext& ctx, int64_t k) const {
  return ctx.key.with("parsec").with(static_cast<uint64_t>(ctx.global_step)).with(static_cast<uint64_t>(k));
}

std::vector<ArchDraw> Parsec::step_draws(const StepContext& ctx) const {
  // The one host read of the step's sampling: which modules run is decided on the host.
  const auto probs = dist_.log_probs(logits_.detach()).exp().to(torch::kCPU, torch::kFloat64);
  std::vector<ArchDraw> draws;
  for (int64_t k = 0; k < options_.samples; ++k) draws.push_back(dist_.sample(probs, draw_key(ctx, k)));
  return draws;
}

void Parsec::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                  StepMetrics& metrics) {
  const int ranks = ctx.comm ? ctx.comm->size() : 1, rank = ctx.comm ? ctx.comm->rank() : 0;
  PROBNAS_CHECK(options_.samples % ranks == 0, "parsec.samples = ", options_.samples, " must be a multiple of the ",
                ranks, " ranks (each rank computes the same number of samples)");
  const Range mine = partition(options_.samples, rank, ranks);
  const auto draws = step_draws(ctx);
  net_->train();

  // Importance weights from the validation log-likelihoods of every sample.
  torch::Tensor w;
  if (arch_active_) {
    torch::NoGradGuard no_grad;
    auto local = torch::zeros({mine.size()}, logits_.options().dtype(torch::kFloat64).requires_grad(false));
    // Every rank sees all micro-batches: a unit is (sample, micro-batch), in the order one rank runs them.
    const auto m = static_cast<int64_t>(val.size());
    BatchNormSum norms(*net_, options_.samples * m);
    for (int64_t k = mine.begin; k < mine.end; ++k) {
      const auto arch = dist_.arch_sample(draws[static_cast<size_t>(k)]);
      for (const Batch& b : val) {
        const auto logits = net_->forward(b.x, arch);
        local[k - mine.begin].sub_(summed_cross_entropy(logits, b.y).to(torch::kFloat64));
        norms.take(k * m + b.index);
        metrics.add(true, logits, b.y);
      }
    }
    norms.finish(ctx.comm);
    // [ranks, K / ranks] in rank order: sample k at k's place.
    const auto all = ctx.comm ? ctx.comm->allgather(local).reshape({-1}) : local;
    w = importance_weights(all).to(logits_.device());
    // For the report: the samples' per-image validation log-likelihoods and log prior probabilities.
    int64_t images = 0;
    for (const Batch& b : val) images += b.y.size(0);
    std::vector<double> log_prior;
    for (const auto& d : draws) log_prior.push_back(dist_.log_prob(logits_.detach(), d).item<double>());
    const auto per_image = (all.to(torch::kCPU) / static_cast<double>(std::max<int64_t>(images, 1))).contiguous();
    for (int64_t k = 0; k < per_image.numel(); ++k) {
      recent_log_lik_.push_back(per_image[k].item<double>());
      recent_log_prior_.push_back(log_prior[static_cast<size_t>(k)]);
    }
    const size_t keep = kRecentSamples;
    if (recent_log_lik_.size() > keep) {
      const auto drop = static_cast<std::ptrdiff_t>(recent_log_lik_.size() - keep);
      recent_log_lik_.erase(recent_log_lik_.begin(), recent_log_lik_.begin() + drop);
      recent_log_prior_.erase(recent_log_prior_.begin(), recent_log_prior_.begin() + drop);
    }
  } else {
    w = torch::full({options_.samples}, 1.0 / static_cast<double>(options_.samples),
                    logits_.options().dtype(torch::kFloat64).requires_grad(false));
  }
  last_weights_ = w;

  // sum_k w_k grad log p(y | X, v, alpha_k) and sum_k w_k grad log p(alpha_k | pi), as losses to minimise.
  std::vector<torch::Tensor> params = weights_;
  params.push_back(logits_);
  for (const auto& p : params) p.mutable_grad() = torch::Tensor();
  GradientSum sum(params);
  const auto m = static_cast<int64_t>(train.size());
  BatchNormSum norms(*net_, options_.samples * m);
  for (int64_t k = mine.begin; k < mine.end; ++k) {
    const auto& draw = draws[static_cast<size_t>(k)];
    const auto arch = dist_.arch_sample(draw);
    const auto wk = w[k].to(logits_.scalar_type());
    for (const Batch& b : train) {
      const auto logits = net_->forward(b.x, arch);
      (wk * summed_cross_entropy(logits, b.y) / static_cast<double>(b.global)).backward();
      sum.take();
      norms.take(k * m + b.index);
      metrics.add(false, logits, b.y);
    }
    if (arch_active_) {
      (-wk * dist_.log_prob(logits_, draw)).backward();
      sum.take();
    }
  }
  norms.finish(ctx.comm);
  sum.finish(ctx.comm);
  if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
  weight_opt_.step();
  if (arch_active_) arch_opt_.step();
  logits_.mutable_grad() = torch::Tensor();
}

ArchSample Parsec::sample(const RngKey& key) {
  const auto probs = dist_.log_probs(logits_.detach()).exp().to(torch::kCPU, torch::kFloat64);
  return dist_.arch_sample(dist_.sample(probs, key));
}

std::vector<torch::Tensor> Parsec::expected_weights() const { return dist_.path_probabilities(logits_); }

Genotype Parsec::derive() const { return net_->derive(expected_weights()); }

void Parsec::save(ckpt::State& method, ckpt::State& optim) const {
  method.put("logits", logits_);
  std::vector<std::string> names;
  for (const auto& v : dist_.variable_list()) names.push_back(v.name);
  method.put_lines("variables", names);
  // The warm-up as resolved when the search began (its default depends on search.epochs, which a resume may change).
  method.set_attr("warmup_epochs", options_.warmup_epochs);
  // The report's sample history (not part of the search's state, kept so a resumed run reports the same).
  if (!recent_log_lik_.empty()) {
    auto& recent = method.group("recent_samples");
    recent.put("log_likelihood_per_image", torch::tensor(recent_log_lik_, torch::kFloat64));
    recent.put("log_prior", torch::tensor(recent_log_prior_, torch::kFloat64));
  }
  weight_opt_.save(optim.group("weights"));
  arch_opt_.save(optim.group("logits"));
}

void Parsec::load(const ckpt::State& method, const ckpt::State& optim) {
  const auto t = method.get("logits");
  PROBNAS_CHECK(t.sizes() == logits_.sizes(), "checkpoint: ", method.path(), "/logits has shape ", t.sizes(),
                ", this search space's PARSEC distribution needs ", logits_.sizes());
  {
    torch::NoGradGuard no_grad;
    logits_.copy_(t);
  }
  weight_opt_.load(optim.group("weights"));
  arch_opt_.load(optim.group("logits"));
  options_.warmup_epochs =
      method.has_attr("warmup_epochs") ? method.attr_int("warmup_epochs") : options_.legacy_warmup_epochs;
  recent_log_lik_.clear();
  recent_log_prior_.clear();
  if (method.has_group("recent_samples")) {
    auto to_vector = [](const torch::Tensor& t) {
      const auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
      return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    };
    recent_log_lik_ = to_vector(method.group("recent_samples").get("log_likelihood_per_image"));
    recent_log_prior_ = to_vector(method.group("recent_samples").get("log_prior"));
  }
}

std::vector<std::pair<std::string, double>> Parsec::scalars() const {
  torch::NoGradGuard no_grad;
  const double entropy = dist_.entropy(logits_).item<double>();
  const auto best = dist_.most_probable(logits_, 1).front();
  std::vector<std::pair<std::string, double>> s = {
      {"arch_entropy", entropy / static_cast<double>(dist_.variables())},
      {"total_entropy", entropy},
      {"mode_log_prob", best.second}};
  // Effective sample size 1 / sum w_k^2 of the last step: K when the samples are equally likely, 1
  // when one dominates.
  if (last_weights_.defined()) s.emplace_back("ess", 1.0 / last_weights_.square().sum().item<double>());
  return s;
}

std::string Parsec::report_json() const {
  torch::NoGradGuard no_grad;
  nlohmann::ordered_json j;
  j["samples"] = options_.samples;
  const double entropy = dist_.entropy(logits_).item<double>();
  j["entropy_nats"] = entropy;
  j["mean_entropy_nats"] = entropy / static_cast<double>(dist_.variables());
  j["uniform_entropy_nats"] = dist_.entropy(torch::zeros_like(logits_)).item<double>();
  auto& top = j["most_probable"] = nlohmann::ordered_json::array();
  for (const auto& [draw, log_p] : dist_.most_probable(logits_, options_.top_k))
    top.push_back({{"probability", std::exp(log_p)}, {"log_probability", log_p}, {"architecture", dist_.describe(draw)}});
  auto& recent = j["recent_samples"];
  recent["log_likelihood_per_image"] = recent_log_lik_;
  recent["log_prior"] = recent_log_prior_;
  return j.dump();
}

std::string Parsec::report_text() const {
  torch::NoGradGuard no_grad;
  std::ostringstream o;
  o << "PARSEC distribution: entropy " << dist_.entropy(logits_).item<double>() << " nats over " << dist_.variables()
    << " choices (uniform: " << dist_.entropy(torch::zeros_like(logits_)).item<double>() << ")\n";
  const auto top = dist_.most_probable(logits_, std::min<int64_t>(options_.top_k, 5));
  for (size_t i = 0; i < top.size(); ++i)
    o << "  #" << i + 1 << " p = " << std::exp(top[i].second) << "  " << dist_.describe(top[i].first) << "\n";
  return o.str();
}

}  // namespace probnas
