#pragma once
// The gradient scheme with mixing weights softmax(alpha) per edge, shared by DARTS (which steps
// alpha by Adam) and GibbsNAS (which samples alpha): the mixing weights, the expected weights they
// derive the genotype from, and the edge entropy.
#include "probnas/method/gradient_method.h"

namespace probnas {

class SoftmaxMethod : public GradientMethod {
 public:
  ArchSample sample(const RngKey& key) override;
  std::vector<torch::Tensor> expected_weights() const override;  // softmax(alpha), pruned operations at 0
  std::vector<std::pair<std::string, double>> scalars() const override;

 protected:
  SoftmaxMethod(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key);
  ArchSample mixing_weights(const RngKey& key, bool differentiable) override;
  std::string arch_parameter_name() const override { return "alpha"; }
};

}  // namespace probnas
