#include "probnas/method/random/random_search.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/method/batchnorm_sum.h"
#include "probnas/method/gradient_sum.h"

namespace probnas {

namespace F = torch::nn::functional;

RandomSearch::RandomSearch(std::shared_ptr<Supernet> net, RandomSearchOptions options, const RngKey& key)
    : net_(std::move(net)),
      options_(options),
      dist_(net_->space_name(), net_->arch_shape()),
      key_(key),
      weights_(net_->weights()),
      weight_opt_(weights_, options.weights) {
  PROBNAS_CHECK(options_.candidates >= 1, "random.candidates = ", options_.candidates, " must be at least 1");
  PROBNAS_CHECK(options_.eval_epochs >= 1, "random.eval_epochs = ", options_.eval_epochs, " must be at least 1");
  uniform_ = dist_.log_probs(torch::zeros({dist_.variables(), dist_.max_options()}, torch::kFloat64)).exp();
  scores_ = torch::zeros({options_.candidates, 3}, weights_.front().options().dtype(torch::kFloat64));
  std::vector<std::string> names;
  for (const auto& kv : net_->named_parameters()) names.push_back(kv.key());
  weight_opt_.set_names(std::move(names));
}

void RandomSearch::begin_epoch(int64_t epoch, int64_t epochs) {
  scoring_ = epoch >= epochs - options_.eval_epochs;
  weight_opt_.set_lr(cosine_lr(options_.weights.lr, options_.lr_min, epoch, epochs));
}

bool RandomSearch::valid(const ArchDraw& draw) const {
  // DARTS space: a node's input slots must take distinct inputs, and none of them `none`, so that the
  // draw is a DARTS cell (two operations per node) and its genotype is the draw itself.
  const auto& vars = dist_.variable_list();
  const auto& shape = net_->arch_shape();
  std::map<std::string, std::vector<int64_t>> node_edges;
  for (size_t v = 0; v < vars.size(); ++v) {
    const ArchPath& p = vars[v].options[static_cast<size_t>(draw[v])];
    if (shape[vars[v].group].ops[static_cast<size_t>(p.op)] == "none") return false;
    const auto slash = vars[v].name.rfind('/');
    auto& edges = node_edges[vars[v].name.substr(0, slash)];
    if (std::find(edges.begin(), edges.end(), p.edge) != edges.end()) return false;
    edges.push_back(p.edge);
  }
  return true;
}

ArchDraw RandomSearch::uniform_draw(const RngKey& key) const {
  ArchDraw draw = dist_.sample(uniform_, key);
  if (net_->space_name() != "darts") return draw;
  // Rejection: uniform over the valid cells. A DARTS node's two slots collide or pick `none` with
  // probability well under 1/2, so a few attempts suffice.
  for (uint64_t attempt = 1; !valid(draw); ++attempt) {
    PROBNAS_CHECK(attempt < 100000, "random search: no valid DARTS cell drawn in 100000 attempts (space.ops = none only?)");
    draw = dist_.sample(uniform_, key.with("retry").with(attempt));
  }
  return draw;
}

ArchDraw RandomSearch::candidate(int64_t i) const {
  return uniform_draw(key_.with("random-candidate").with(static_cast<uint64_t>(i)));
}

ArchSample RandomSearch::sample(const RngKey& key) { return dist_.arch_sample(uniform_draw(key)); }

void RandomSearch::step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                        StepMetrics& metrics) {
  net_->train();
  for (const auto& p : weights_) p.mutable_grad() = torch::Tensor();
  GradientSum sum(weights_);
  BatchNormSum norms(*net_, ctx.train_micro_batches);
  for (const Batch& b : train) {
    const auto arch = sample(key_.with("random").with(static_cast<uint64_t>(ctx.global_step)).with(
        static_cast<uint64_t>(b.index)));
    const auto logits = net_->forward(b.x, arch);
    (F::cross_entropy(logits, b.y, F::CrossEntropyFuncOptions().reduction(torch::kSum)) /
     static_cast<double>(b.global))
        .backward();
    sum.take();
    norms.take(b.index);
    metrics.add(false, logits, b.y);
  }
  norms.finish(ctx.comm);
  sum.finish(ctx.comm);
  if (options_.grad_clip > 0) clip_grad_norm(weights_, options_.grad_clip);
  weight_opt_.step();

  if (!scoring_) return;
  // One candidate of the pool, in turn, on this step's validation batch with the shared weights.
  const int64_t i = ctx.global_step % options_.candidates;
  const auto arch = dist_.arch_sample(candidate(i));
  // BatchNorm with the batch's statistics (as the search trains); the forwards move the running
  // statistics as the training forwards do.
  torch::NoGradGuard no_grad;
  auto part = torch::zeros({3}, scores_.options());
  BatchNormSum val_norms(*net_, ctx.val_micro_batches);
  for (const Batch& b : val) {
    const auto logits = net_->forward(b.x, arch);
    part[0] += logits.argmax(1).eq(b.y).sum().to(torch::kFloat64);
    part[1] += F::cross_entropy(logits, b.y, F::CrossEntropyFuncOptions().reduction(torch::kSum)).to(torch::kFloat64);
    part[2] += static_cast<double>(b.y.size(0));
    val_norms.take(b.index);
    metrics.add(true, logits, b.y);
  }
  val_norms.finish(ctx.comm);
  if (ctx.comm) {
    std::vector<torch::Tensor> t{part};
    ctx.comm->allreduce(t, ReduceOp::sum);
    part = t[0];
  }
  scores_[i] += part;
}

std::vector<torch::Tensor> RandomSearch::expected_weights() const {
  return dist_.path_probabilities(torch::zeros({dist_.variables(), dist_.max_options()}, scores_.options()));
}

std::vector<int64_t> RandomSearch::ranking() const {
  const auto s = scores();
  auto a = s.accessor<double, 2>();
  std::vector<int64_t> order;
  for (int64_t i = 0; i < s.size(0); ++i)
    if (a[i][2] > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    const double ax = a[x][0] / a[x][2], ay = a[y][0] / a[y][2];
    if (ax != ay) return ax > ay;
    return a[x][1] / a[x][2] < a[y][1] / a[y][2];
  });
  return order;
}

Genotype RandomSearch::genotype_of(const ArchDraw& draw) const {
  // Logits that make `draw` the certain outcome: the genotype is derived from its path probabilities.
  auto logits = torch::full({dist_.variables(), dist_.max_options()}, -1e9, torch::kFloat64);
  for (int64_t v = 0; v < dist_.variables(); ++v) logits[v][draw[static_cast<size_t>(v)]] = 0.0;
  return net_->derive(dist_.path_probabilities(logits));
}

Genotype RandomSearch::derive() const {
  const auto order = ranking();
  return genotype_of(candidate(order.empty() ? 0 : order.front()));
}

void RandomSearch::save(ckpt::State& method, ckpt::State& optim) const {
  method.put("scores", scores_);
  method.set_attr("candidates", options_.candidates);
  weight_opt_.save(optim.group("weights"));
}

void RandomSearch::load(const ckpt::State& method, const ckpt::State& optim) {
  const auto s = method.get("scores");
  PROBNAS_CHECK(s.sizes() == scores_.sizes(), "checkpoint: ", method.path(), "/scores has shape ", s.sizes(),
                ", this search scores ", options_.candidates, " candidates (random.candidates)");
  scores_.copy_(s);
  weight_opt_.load(optim.group("weights"));
}

std::string RandomSearch::report_json() const {
  nlohmann::ordered_json j;
  j["candidates"] = options_.candidates;
  const auto order = ranking();
  j["scored"] = order.size();
  const auto s = scores();
  auto a = s.accessor<double, 2>();
  auto& top = j["best"] = nlohmann::ordered_json::array();
  for (size_t r = 0; r < std::min<size_t>(order.size(), 10); ++r) {
    const int64_t i = order[r];
    top.push_back({{"candidate", i}, {"val_acc", a[i][0] / a[i][2]}, {"val_loss", a[i][1] / a[i][2]},
                   {"val_images", static_cast<int64_t>(a[i][2])}, {"architecture", dist_.describe(candidate(i))}});
  }
  return j.dump();
}

std::string RandomSearch::report_text() const {
  const auto order = ranking();
  std::ostringstream o;
  o << "random search: " << order.size() << " of " << options_.candidates << " candidates scored on validation data\n";
  const auto s = scores();
  auto a = s.accessor<double, 2>();
  for (size_t r = 0; r < std::min<size_t>(order.size(), 3); ++r)
    o << "  #" << r + 1 << " candidate " << order[r] << ": val acc " << 100 * a[order[r]][0] / a[order[r]][2] << "% on "
      << static_cast<int64_t>(a[order[r]][2]) << " images  " << dist_.describe(candidate(order[r])) << "\n";
  return o.str();
}

std::vector<std::pair<std::string, double>> RandomSearch::scalars() const {
  const auto order = ranking();
  const auto s = scores();
  double best = 0;
  if (!order.empty()) best = s[order.front()][0].item<double>() / s[order.front()][2].item<double>();
  return {{"candidates_scored", static_cast<double>(order.size())}, {"best_candidate_acc", best}};
}

}  // namespace probnas
