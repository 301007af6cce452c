#include "probnas/method/softmax_method.h"

#include <torch/torch.h>

namespace probnas {

SoftmaxMethod::SoftmaxMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : GradientMethod(std::move(net), options, key) {}

ArchSample SoftmaxMethod::mixing_weights(const RngKey&, bool differentiable) {
  std::vector<torch::Tensor> w;
  for (size_t g = 0; g < arch_.size(); ++g)
    w.push_back(masked(g, torch::softmax(differentiable ? arch_[g] : arch_[g].detach(), -1)));
  return ArchSample::dense(std::move(w));
}

ArchSample SoftmaxMethod::sample(const RngKey& key) {
  torch::NoGradGuard no_grad;
  return with_edge_weights(mixing_weights(key, false), false);
}

std::vector<torch::Tensor> SoftmaxMethod::expected_weights() const {
  std::vector<torch::Tensor> w;
  for (size_t g = 0; g < arch_.size(); ++g) w.push_back(masked(g, torch::softmax(arch_[g].detach(), -1)));
  return w;
}

std::vector<std::pair<std::string, double>> SoftmaxMethod::scalars() const {
  return {{"arch_entropy", mean_edge_entropy(expected_weights())}};
}

}  // namespace probnas
