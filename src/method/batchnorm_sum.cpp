#include "probnas/method/batchnorm_sum.h"

#include <algorithm>
#include <map>
#include <string>

#include "probnas/core/error.h"
#include "probnas/core/log.h"

namespace probnas {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A BatchNorm module's running statistics: every module-owned running_mean goes to `owned` (so the
// functional scan below skips it), and those the module updates (training mode, tracked) to `out`.
template <typename Impl>
bool add_module_norm(const std::string& name, torch::nn::Module& m,
                     std::vector<std::pair<torch::Tensor, std::pair<torch::Tensor, torch::Tensor>>>& out,
                     std::vector<double>& momenta, std::vector<torch::Tensor>& owned) {
  auto* bn = dynamic_cast<Impl*>(&m);
  if (!bn) return false;
  if (bn->running_mean.defined()) owned.push_back(bn->running_mean);
  // In evaluation mode a BatchNorm reads its running statistics and leaves them alone: not ours.
  if (!bn->options.track_running_stats() || !bn->running_mean.defined() || !bn->is_training()) return true;
  PROBNAS_CHECK(bn->options.momentum().has_value(), "BatchNorm '", name,
                "' has momentum None (a cumulative average): world-size invariant running statistics need a momentum");
  out.push_back({bn->running_mean, {bn->running_var, bn->num_batches_tracked}});
  momenta.push_back(*bn->options.momentum());
  return true;
}

}  // namespace

BatchNormSum::BatchNormSum(torch::nn::Module& net, int64_t units) : units_(units) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> seen;
  std::vector<std::pair<torch::Tensor, std::pair<torch::Tensor, torch::Tensor>>> found;
  std::vector<double> momenta;
  for (const auto& item : net.named_modules()) {
    auto& m = *item.value();
    add_module_norm<torch::nn::BatchNorm2dImpl>(item.key(), m, found, momenta, seen) ||
        add_module_norm<torch::nn::BatchNorm1dImpl>(item.key(), m, found, momenta, seen) ||
        add_module_norm<torch::nn::BatchNorm3dImpl>(item.key(), m, found, momenta, seen);
  }
  // The functional BatchNorm of pruned networks: buffer pairs <prefix>running_mean / <prefix>running_var
  // (updated when the network trains). Module-owned pairs (`seen`, evaluation-mode modules too) are skipped.
  const auto buffers = net.is_training() ? net.named_buffers() : torch::OrderedDict<std::string, torch::Tensor>();
  std::map<std::string, torch::Tensor> by_name;
  for (const auto& b : buffers) by_name[b.key()] = b.value();
  for (const auto& b : buffers) {
    const std::string& name = b.key();
    if (!ends_with(name, "running_mean")) continue;
    const bool module_owned =
        std::any_of(seen.begin(), seen.end(), [&](const torch::Tensor& t) { return t.is_same(b.value()); });
    if (module_owned) continue;
    const auto var = by_name.find(name.substr(0, name.size() - 4) + "var");
    PROBNAS_CHECK(var != by_name.end(), "BatchNorm buffer '", name, "' has no running_var beside it");
    found.push_back({b.value(), {var->second, torch::Tensor()}});
    momenta.push_back(kFunctionalBatchNormMomentum);
  }
  if (found.empty()) return;
  std::vector<torch::Tensor> owner;
  for (size_t k = 0; k < found.size(); ++k) {
    Norm n;
    n.mean = found[k].first;
    n.var = found[k].second.first;
    n.count = found[k].second.second;
    n.momentum = momenta[k];
    owner.push_back(torch::full({n.mean.numel() + n.var.numel()}, static_cast<int64_t>(k),
                                torch::TensorOptions().dtype(torch::kInt64).device(n.mean.device())));
    norms_.push_back(std::move(n));
  }
  owner_ = torch::cat(owner);
  start_ = flat();
  // 1 - momentum per norm, made on the device by fills (no host-to-device copy, no stream sync).
  decay_ = torch::full({static_cast<int64_t>(norms_.size())}, 1 - norms_.front().momentum, start_.options());
  for (size_t k = 1; k < norms_.size(); ++k)
    if (norms_[k].momentum != norms_.front().momentum) decay_[static_cast<int64_t>(k)].fill_(1 - norms_[k].momentum);
  start_counts_ = stacked_counts(torch::zeros({}, owner_.options()));
  zero();
}

BatchNormSum::~BatchNormSum() {
  if (finished_ || norms_.empty()) return;
  try {
    restore(start_, start_counts_);
  } catch (const std::exception& e) {
    PROBNAS_LOG(error) << "BatchNorm statistics: putting back the statistics of an unfinished pass failed: " << e.what();
  }
}

torch::Tensor BatchNormSum::flat() const {
  std::vector<torch::Tensor> parts;
  parts.reserve(2 * norms_.size());
  for (const auto& n : norms_) {
    parts.push_back(n.mean.reshape({-1}));
    parts.push_back(n.var.reshape({-1}));
  }
  return torch::cat(parts).to(torch::kFloat64);
}

torch::Tensor BatchNormSum::stacked_counts(const torch::Tensor& without) const {
  std::vector<torch::Tensor> counts;
  counts.reserve(norms_.size());
  for (const auto& n : norms_) counts.push_back(n.count.defined() ? n.count.reshape({}) : without);
  return torch::stack(counts);
}

void BatchNormSum::zero() {
  std::vector<torch::Tensor> all;
  all.reserve(3 * norms_.size());
  for (auto& n : norms_) {
    all.push_back(n.mean);
    all.push_back(n.var);
    if (n.count.defined()) all.push_back(n.count);
  }
  at::_foreach_zero_(all);
}

void BatchNormSum::restore(const torch::Tensor& values, const torch::Tensor& counts) {
  torch::NoGradGuard no_grad;
  int64_t at = 0;
  for (size_t k = 0; k < norms_.size(); ++k) {
    auto& n = norms_[k];
    n.mean.copy_(values.narrow(0, at, n.mean.numel()).view(n.mean.sizes()));
    at += n.mean.numel();
    n.var.copy_(values.narrow(0, at, n.var.numel()).view(n.var.sizes()));
    at += n.var.numel();
    if (n.count.defined()) n.count.copy_(counts[static_cast<int64_t>(k)].view(n.count.sizes()));
  }
}

void BatchNormSum::take(int64_t unit) {
  if (norms_.empty()) return;
  torch::NoGradGuard no_grad;
  PROBNAS_CHECK(unit >= 0 && (units_ == 0 || unit < units_), "BatchNorm statistics: unit ", unit,
                " outside the pass's ", units_, " units");
  PROBNAS_CHECK(std::none_of(taken_.begin(), taken_.end(), [&](const auto& t) { return t.first == unit; }),
                "BatchNorm statistics: unit ", unit, " taken twice in one pass");
  // A functional BatchNorm (no count) is updated once per forward, and a unit is one forward.
  taken_.emplace_back(unit, flat());
  taken_counts_.push_back(stacked_counts(torch::ones({}, owner_.options())).to(torch::kFloat64));
  zero();
}

void BatchNormSum::finish(Communicator* comm) {
  if (finished_ || norms_.empty()) return;
  torch::NoGradGuard no_grad;
  int64_t units = units_;
  if (units == 0) {
    PROBNAS_CHECK(comm == nullptr || comm->size() == 1,
                  "BatchNorm statistics: a pass on several ranks must know its number of units");
    for (const auto& t : taken_) units = std::max(units, t.first + 1);
  }
  const auto k = static_cast<int64_t>(norms_.size());
  auto counts = torch::zeros({std::max<int64_t>(units, 1), k}, start_.options());
  for (size_t i = 0; i < taken_.size(); ++i) counts[taken_[i].first].copy_(taken_counts_[i]);
  if (comm) {
    std::vector<torch::Tensor> t{counts};
    comm->allreduce(t, ReduceOp::sum);
    counts = t[0];
  }
  const auto& decay = decay_;
  const auto total = counts.sum(0);
  const auto after = total.unsqueeze(0) - counts.cumsum(0);  // updates by the units after each unit
  const auto weights = decay.unsqueeze(0).pow(after);        // [units, norms]
  // This rank's units in their global order (one rank: the order one rank runs them in).
  std::vector<size_t> order(taken_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return taken_[a].first < taken_[b].first; });
  auto sum = torch::zeros_like(start_);
  for (const size_t i : order) sum.add_(taken_[i].second * weights[taken_[i].first].index_select(0, owner_));
  if (comm) {
    std::vector<torch::Tensor> t{sum};
    comm->allreduce(t, ReduceOp::sum);
    sum = t[0];
  }
  restore(start_ * decay.pow(total).index_select(0, owner_) + sum, start_counts_ + total.to(torch::kInt64));
  finished_ = true;
}

}  // namespace probnas
