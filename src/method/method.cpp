#include "probnas/method/method.h"

#include <torch/torch.h>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"

namespace probnas {

void StepMetrics::add(bool validation, const torch::Tensor& logits, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  if (!sums_.defined()) sums_ = torch::zeros({6}, logits.options().dtype(torch::kFloat64));
  auto loss = torch::nn::functional::cross_entropy(
      logits.detach(), labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  auto correct = logits.detach().argmax(1).eq(labels).sum();
  const int64_t o = validation ? 3 : 0;
  sums_[o].add_(loss.to(torch::kFloat64));
  sums_[o + 1].add_(correct.to(torch::kFloat64));
  sums_[o + 2].add_(static_cast<double>(labels.size(0)));
}

void StepMetrics::reset() {
  if (sums_.defined()) sums_.zero_();
}

torch::Tensor StepMetrics::sums() const {
  return sums_.defined() ? sums_.detach().to(torch::kCPU).clone() : torch::zeros({6}, torch::kFloat64);
}

void StepMetrics::set_sums(const torch::Tensor& sums, const c10::Device& device) {
  PROBNAS_CHECK(sums.numel() == 6 && sums.scalar_type() == torch::kFloat64, "metric sums must be 6 float64 values, got ",
                sums.sizes(), " ", sums.scalar_type());
  sums_ = sums.to(device).clone();
}

StepMetrics::Values StepMetrics::read(Communicator* comm) const {
  Values v;
  if (!sums_.defined()) return v;
  std::vector<torch::Tensor> t{sums_.to(torch::kCPU).clone()};
  if (comm) comm->allreduce_sum(t);
  auto a = t[0].accessor<double, 1>();
  v.train_count = static_cast<int64_t>(a[2]);
  v.val_count = static_cast<int64_t>(a[5]);
  if (a[2] > 0) v.train_loss = a[0] / a[2], v.train_acc = a[1] / a[2];
  if (a[5] > 0) v.val_loss = a[3] / a[5], v.val_acc = a[4] / a[5];
  return v;
}

double mean_edge_entropy(const std::vector<torch::Tensor>& probs) {
  torch::NoGradGuard no_grad;
  double total = 0;
  int64_t edges = 0;
  for (const auto& p : probs) {
    auto q = p.detach().to(torch::kFloat64).clamp_min(1e-30);
    total += (-(q * q.log()).sum(-1)).sum().item<double>();
    edges += p.size(0);
  }
  return edges ? total / static_cast<double>(edges) : 0.0;
}

}  // namespace probnas
