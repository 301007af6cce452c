#pragma once
// Gradient sums over micro-batches and ranks in float64, shared by the gradient-based methods.
#include <torch/torch.h>

#include <vector>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"

namespace probnas {

// Sums the micro-batches' gradients in float64, then over ranks, then sets each parameter's
// gradient once. Sums of float gradients in double are exact in practice, so the result does not
// depend on how micro-batches are grouped into ranks: 1 and P ranks apply bitwise the same update
// (which DrNAS needs: its gamma rejection sampler turns a last-bit difference in eta into a
// different draw).
class GradientSum {
 public:
  explicit GradientSum(const std::vector<torch::Tensor>& params) : params_(params) {}
  // Moves the gradients the last backward left in the parameters into the float64 sums. The sums
  // are one flat buffer, and the gradients enter it in one concatenation and one add: a few
  // operations (GPU kernels) per micro-batch rather than one per parameter.
  void take() {
    torch::NoGradGuard guard;
    allocate();
    std::vector<torch::Tensor> flat;
    flat.reserve(params_.size());
    bool all = true;
    for (const auto& p : params_) all = all && p.grad().defined();
    if (all) {
      for (const auto& p : params_) flat.push_back(p.grad().reshape(-1));
      sum_.add_(torch::cat(flat));
    } else {
      for (size_t i = 0; i < params_.size(); ++i)
        if (params_[i].grad().defined()) view(sum_, i).add_(params_[i].grad());
    }
    for (const auto& p : params_) p.mutable_grad() = torch::Tensor();
  }
  // Reduces over ranks and leaves the total as each parameter's gradient: views of one flat buffer
  // of the parameters' type (so that clipping and the optimiser can treat them as one).
  void finish(Communicator* comm) {
    if (!sum_.defined()) return;
    reduce_flat(comm);
    const auto flat = sum_.to(params_.front().scalar_type());
    for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad() = view(flat, i);
  }
  // Reduces over ranks and returns the float64 totals, leaving the parameters without gradient.
  // Every rank joins the reduction, also one that had no micro-batch (its sums are zeros).
  std::vector<torch::Tensor> reduce(Communicator* comm) {
    allocate();
    reduce_flat(comm);
    std::vector<torch::Tensor> out;
    for (size_t i = 0; i < params_.size(); ++i) out.push_back(view(sum_, i));
    return out;
  }

 private:
  void allocate() {
    if (sum_.defined() || params_.empty()) return;
    int64_t total = 0;
    for (const auto& p : params_) {
      PROBNAS_CHECK(p.scalar_type() == params_.front().scalar_type() && p.device() == params_.front().device(),
                    "gradient sums: parameters of one type and device expected, got ", p.scalar_type(), " on ",
                    p.device().str(), " beside ", params_.front().scalar_type(), " on ", params_.front().device().str());
      offsets_.push_back(total);
      total += p.numel();
    }
    sum_ = torch::zeros({total}, params_.front().options().dtype(torch::kFloat64));
  }
  void reduce_flat(Communicator* comm) {
    if (!comm || !sum_.defined()) return;
    std::vector<torch::Tensor> one{sum_};
    comm->allreduce(one, ReduceOp::sum);
  }
  torch::Tensor view(const torch::Tensor& flat, size_t i) const {
    return flat.narrow(0, offsets_[i], params_[i].numel()).view(params_[i].sizes());
  }

  const std::vector<torch::Tensor>& params_;
  torch::Tensor sum_;  // float64, every parameter's sum back to back
  std::vector<int64_t> offsets_;
};

}  // namespace probnas
