#include "probnas/method/darts.h"

#include <torch/torch.h>

namespace probnas {

Darts::Darts(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : GradientMethod(std::move(net), options, key) {}

ArchSample Darts::mixing_weights(const RngKey&, bool differentiable) {
  std::vector<torch::Tensor> w;
  for (const auto& a : arch_) w.push_back(torch::softmax(differentiable ? a : a.detach(), -1));
  return ArchSample::dense(std::move(w));
}

ArchSample Darts::sample(const RngKey& key) {
  torch::NoGradGuard no_grad;
  return mixing_weights(key, false);
}

std::vector<torch::Tensor> Darts::expected_weights() const {
  std::vector<torch::Tensor> w;
  for (const auto& a : arch_) w.push_back(torch::softmax(a.detach(), -1));
  return w;
}

std::vector<std::pair<std::string, double>> Darts::scalars() const {
  return {{"arch_entropy", mean_edge_entropy(expected_weights())}};
}

}  // namespace probnas
