#pragma once
// DARTS (Liu et al., ICLR 2019): mixing weights softmax(alpha), alpha updated by Adam on the
// validation loss, with the weights held fixed (first order) or through one unrolled weight step
// (second order, GradientMethodOptions::second_order).
#include "probnas/method/gradient_method.h"

namespace probnas {

class Darts : public GradientMethod {
 public:
  Darts(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key);
  std::string name() const override { return "darts"; }
  std::string title() const override { return options_.second_order ? name() + " (second order)" : name(); }
  ArchSample sample(const RngKey& key) override;
  std::vector<torch::Tensor> expected_weights() const override;
  std::vector<std::pair<std::string, double>> scalars() const override;

 protected:
  ArchSample mixing_weights(const RngKey& key, bool differentiable) override;
  std::string arch_parameter_name() const override { return "alpha"; }
};

}  // namespace probnas
