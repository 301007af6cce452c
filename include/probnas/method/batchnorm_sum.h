#pragma once
// BatchNorm running statistics that do not depend on the number of ranks.
//
// A training-mode forward moves each BatchNorm's running statistics by r <- (1 - m) r + m s (s: the
// micro-batch's mean, or its unbiased variance). The update is affine in r, so a pass over a global
// batch's micro-batches ("units", in their global order) composes into
//
//   r_end = (1 - m)^N r_start + sum_u (1 - m)^(N_after(u)) b_u,
//
// where b_u is what unit u's forwards alone make of r = 0, N the updates of the whole pass and
// N_after(u) those of the units after u. Each rank runs its own units from zeroed statistics (b_u),
// one small reduction sums the update counts, a second the weighted b_u; every rank then holds the
// statistics one rank would have reached running all units in order. 1 and P ranks differ only in
// how the float64 sum is grouped (a last-bit difference in float64, below float32's resolution);
// before this, each rank kept the statistics of its own micro-batches only, and an evaluation with
// running statistics (PGNAS's candidates, validation, train's test) depended on the world size.
//
// Use: construct before a pass's first forward (the statistics are saved and zeroed), call
// take(unit) after each unit's forwards and finish(comm) after the last. Every rank constructs and
// finishes, also one without a unit. All training-mode forwards between construction and finish must
// belong to a unit. A pass left unfinished (an exception) puts the saved statistics back. BatchNorms
// in evaluation mode at construction are left out (they read their statistics and do not move them):
// a pass run in evaluation mode changes nothing.
#include <torch/torch.h>

#include <vector>

#include "probnas/comm/communicator.h"

namespace probnas {

// The momentum of the functional BatchNorm (torch::batch_norm) of pruned PGNAS networks, which
// have no module to read it from: PyTorch's default, as the BatchNorm modules.
constexpr double kFunctionalBatchNormMomentum = 0.1;

class BatchNormSum {
 public:
  // `units`: the pass's units over all ranks (0: only this rank's, allowed on one rank only).
  BatchNormSum(torch::nn::Module& net, int64_t units);
  BatchNormSum(const BatchNormSum&) = delete;
  BatchNormSum& operator=(const BatchNormSum&) = delete;
  ~BatchNormSum();

  // Records what unit `unit`'s forwards did to the (zeroed) statistics and zeroes them again.
  void take(int64_t unit);
  // Composes the units of every rank in unit order onto the saved statistics (`comm`: nullptr on
  // one rank).
  void finish(Communicator* comm);

 private:
  struct Norm {
    torch::Tensor mean, var, count;  // count: undefined for the functional BatchNorm (one update per unit)
    double momentum = kFunctionalBatchNormMomentum;
  };
  torch::Tensor flat() const;  // every mean and variance, back to back (float64)
  void zero();
  // num_batches_tracked of every norm as one int64 tensor; `without` for a norm that has none.
  torch::Tensor stacked_counts(const torch::Tensor& without) const;
  void restore(const torch::Tensor& values, const torch::Tensor& counts);

  std::vector<Norm> norms_;
  int64_t units_ = 0;
  torch::Tensor start_;         // float64, the statistics before the pass
  torch::Tensor start_counts_;  // int64 [norms], num_batches_tracked before the pass (0 without)
  torch::Tensor owner_;         // int64 [elements]: the norm each element of flat() belongs to
  torch::Tensor decay_;         // float64 [norms]: 1 - momentum
  std::vector<std::pair<int64_t, torch::Tensor>> taken_;  // (unit, b_u: flat() after the unit alone)
  std::vector<torch::Tensor> taken_counts_;               // float64 [norms]: the unit's updates per norm
  bool finished_ = false;
};

}  // namespace probnas
