#include "probnas/method/drnas.h"

#include <torch/torch.h>

#include "probnas/method/dirichlet.h"

namespace probnas {

Drnas::Drnas(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : GradientMethod(std::move(net), options, key) {}

ArchSample Drnas::mixing_weights(const RngKey& key, bool differentiable) {
  auto gen = make_generator(key, arch_.front().device());
  std::vector<torch::Tensor> w;
  for (const auto& eta : arch_) {
    auto beta = torch::elu(differentiable ? eta : eta.detach()) + 1.0;
    w.push_back(differentiable ? dirichlet_rsample(beta, gen) : at::_sample_dirichlet(beta, gen));
  }
  return ArchSample::dense(std::move(w));
}

ArchSample Drnas::sample(const RngKey& key) {
  torch::NoGradGuard no_grad;
  return mixing_weights(key, false);
}

std::vector<torch::Tensor> Drnas::concentration() const {
  std::vector<torch::Tensor> b;
  for (const auto& eta : arch_) b.push_back(torch::elu(eta.detach()) + 1.0);
  return b;
}

std::vector<torch::Tensor> Drnas::expected_weights() const {
  std::vector<torch::Tensor> w;
  for (const auto& beta : concentration()) w.push_back(beta / beta.sum(-1, true));
  return w;
}

std::vector<std::pair<std::string, double>> Drnas::scalars() const {
  double total = 0;
  int64_t edges = 0;
  for (const auto& beta : concentration()) {
    total += beta.sum().item<double>();
    edges += beta.size(0);
  }
  return {{"arch_entropy", mean_edge_entropy(expected_weights())},
          {"concentration", edges ? total / static_cast<double>(edges) : 0.0}};
}

}  // namespace probnas
