#pragma once
// DARTS (Liu et al., ICLR 2019): mixing weights softmax(alpha) (method/softmax_method.h), alpha
// updated by Adam on the validation loss, with the weights held fixed (first order) or through one
// unrolled weight step (second order, GradientMethodOptions::second_order).
#include "probnas/method/softmax_method.h"

namespace probnas {

class Darts : public SoftmaxMethod {
 public:
  Darts(std::shared_ptr<Supernet> net, GradientMethodOptions options, const RngKey& key);
  std::string name() const override { return "darts"; }
  std::string title() const override { return options_.second_order ? name() + " (second order)" : name(); }
};

}  // namespace probnas
