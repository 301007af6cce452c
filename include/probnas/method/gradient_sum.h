#pragma once
// Gradient sums over micro-batches and ranks in float64, shared by the gradient-based methods.
#include <torch/torch.h>

#include <vector>

#include "probnas/comm/communicator.h"

namespace probnas {

// Sums the micro-batches' gradients in float64, then over ranks, then sets each parameter's
// gradient once. Sums of float gradients in double are exact in practice, so the result does not
// depend on how micro-batches are grouped into ranks: 1 and P ranks apply bitwise the same update
// (which DrNAS needs: its gamma rejection sampler turns a last-bit difference in eta into a
// different draw).
class GradientSum {
 public:
  explicit GradientSum(const std::vector<torch::Tensor>& params) : params_(params) {}
  // Moves the gradients the last backward left in the parameters into the float64 sums.
  void take() {
    torch::NoGradGuard guard;
    if (sums_.empty())
      for (const auto& p : params_) sums_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& g = params_[i].mutable_grad();
      if (!g.defined()) continue;
      sums_[i].add_(g);
      g = torch::Tensor();
    }
  }
  // Reduces over ranks and leaves the total as each parameter's gradient.
  void finish(Communicator* comm) {
    if (sums_.empty()) return;
    if (comm) comm->allreduce(sums_, ReduceOp::sum);
    for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad() = sums_[i].to(params_[i].scalar_type());
  }
  // Reduces over ranks and returns the float64 totals, leaving the parameters without gradient.
  // Every rank joins the reduction, also one that had no micro-batch (its sums are zeros).
  std::vector<torch::Tensor> reduce(Communicator* comm) {
    if (sums_.empty())
      for (const auto& p : params_) sums_.push_back(torch::zeros(p.sizes(), p.options().dtype(torch::kFloat64)));
    if (comm) comm->allreduce(sums_, ReduceOp::sum);
    return sums_;
  }

 private:
  const std::vector<torch::Tensor>& params_;
  std::vector<torch::Tensor> sums_;
};

}  // namespace probnas
