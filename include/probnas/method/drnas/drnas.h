#pragma once
// DrNAS (Chen et al., ICLR 2021): mixing weights theta ~ Dir(beta), beta = ELU(eta) + 1, a fresh
// draw for every forward pass, gradients through the draw by the pathwise derivative; eta is
// anchored by an L2 penalty (Adam's weight decay, lambda = 1e-3, as the reference code).
#include "probnas/method/gradient_method.h"

namespace probnas {

class Drnas : public GradientMethod {
 public:
  Drnas(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key);
  std::string name() const override { return "drnas"; }
  ArchSample sample(const RngKey& key) override;
  // The Dirichlet mean beta / sum(beta).
  std::vector<torch::Tensor> expected_weights() const override;
  std::vector<torch::Tensor> concentration() const;  // beta per group
  std::vector<std::pair<std::string, double>> scalars() const override;
  // gamma_noise of every operation of every group (method/dirichlet.h), from the keyed host generator.
  torch::Tensor host_draw(const RngKey& key) const override;

 protected:
  ArchSample mixing_weights(const RngKey& key, bool differentiable) override;
  std::string arch_parameter_name() const override { return "eta"; }
};

}  // namespace probnas
