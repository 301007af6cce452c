#include "probnas/method/drnas/drnas.h"

#include <torch/torch.h>

#include "probnas/method/dirichlet.h"

namespace probnas {

Drnas::Drnas(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key)
    : GradientMethod(std::move(net), options, key) {}

torch::Tensor Drnas::host_draw(const RngKey& key) const {
  // One gamma draw's noise per operation of every group (pruned ones too: fixed shapes).
  int64_t count = 0;
  for (const auto& a : arch_) count += a.numel();
  auto gen = make_generator(key);
  return gamma_noise(count, gen, arch_.front().scalar_type());
}

ArchSample Drnas::mixing_weights(const RngKey& key, bool differentiable) {
  const auto noise = device_draw(key);
  std::vector<torch::Tensor> w;
  int64_t offset = 0;
  for (size_t g = 0; g < arch_.size(); ++g) {
    auto beta = torch::elu(differentiable ? arch_[g] : arch_[g].detach()) + 1.0;
    const auto z = noise.narrow(1, offset, beta.numel());
    offset += beta.numel();
    w.push_back(masked(g, differentiable ? dirichlet_rsample(beta, z) : dirichlet_sample(beta, z)));
  }
  return ArchSample::dense(std::move(w));
}

ArchSample Drnas::sample(const RngKey& key) {
  torch::NoGradGuard no_grad;
  return with_edge_weights(mixing_weights(key, false), false);
}

std::vector<torch::Tensor> Drnas::concentration() const {
  // Pruned operations have no concentration (0), as if the Dirichlet were over the kept ones.
  std::vector<torch::Tensor> b;
  for (size_t g = 0; g < arch_.size(); ++g) {
    auto beta = torch::elu(arch_[g].detach()) + 1.0;
    b.push_back(masks_.empty() ? beta : beta * masks_[g].to(beta.scalar_type()));
  }
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
