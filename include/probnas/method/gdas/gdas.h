#pragma once
// GDAS (Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours", CVPR 2019):
// per edge a Gumbel-softmax sample over the categorical softmax(alpha) at temperature tau; the
// forward computes only the sampled operation of each edge, scaled by its straight-through weight
// (value 1, gradient of the soft sample), so a step costs about one architecture's forward and
// backward instead of the whole supernet's. tau falls linearly from tau_max to tau_min over the
// epochs. The bi-level step is DARTS's first order one (GradientMethod); the genotype is the argmax
// of softmax(alpha), as DARTS's.
#include "probnas/method/gradient_method.h"

namespace probnas {

struct GdasOptions {
  double tau_max = 10;  // temperature in the first epoch
  double tau_min = 0.1;  // temperature in the last epoch
};

// tau(epoch) = tau_max - (tau_max - tau_min) * epoch / (epochs - 1): tau_max in the first epoch,
// tau_min in the last (GDAS's schedule; a one-epoch search stays at tau_max).
double gdas_tau(double tau_max, double tau_min, int64_t epoch, int64_t epochs);

// One group's Gumbel-softmax sample with the noise given: soft = softmax((log_softmax(alpha) +
// gumbel) / tau) per row, index = the row's argmax, hard = one_hot(index) + (soft - soft.detach()).
// `hard` is exactly one-hot in value (x - x is exactly 0), and its gradient is soft's: the
// straight-through estimator of GDAS (whose code writes one_hot - soft.detach() + soft).
struct GumbelSoftmax {
  torch::Tensor soft;   // [edges, ops]
  torch::Tensor hard;   // [edges, ops]
  torch::Tensor index;  // [edges] int64, argmax of log_softmax(alpha) + gumbel: independent of tau
};
GumbelSoftmax gumbel_softmax(const torch::Tensor& alpha, const torch::Tensor& gumbel, double tau);

class Gdas : public GradientMethod {
 public:
  Gdas(std::shared_ptr<Supernet> net, GradientMethodOptions options, GdasOptions gdas, const RngKey& key);
  std::string name() const override { return "gdas"; }
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  // The current temperature: a function of the epoch alone, so a resumed run needs no saved state.
  double tau() const;
  // The Gumbel-max draw: one operation per edge, chosen with probability softmax(alpha).
  ArchSample sample(const RngKey& key) override;
  std::vector<torch::Tensor> expected_weights() const override;  // softmax(alpha)
  std::vector<std::pair<std::string, double>> scalars() const override;
  // The Exp(1) draws whose -log is the Gumbel noise of every group (flat, group after group), from
  // the host generator keyed by `key`.
  torch::Tensor host_draw(const RngKey& key) const override;

  // One draw of every group from the host generator keyed by `key`, with the noise it used. Differentiable
  // w.r.t. alpha unless called under a NoGradGuard.
  struct Draw {
    std::vector<std::vector<int64_t>> choices;  // per group, per edge
    std::vector<torch::Tensor> gumbel;          // the noise, per group
    std::vector<GumbelSoftmax> groups;
  };
  Draw draw(const RngKey& key) const;

 protected:
  // Architecture phase: the choices with the straight-through weights (only the chosen operations
  // run, and the gradient reaches alpha). Weight phase: the choices alone, which computes the same
  // values (x * 1 + 0 is x) without the multiplications.
  ArchSample mixing_weights(const RngKey& key, bool differentiable) override;
  std::string arch_parameter_name() const override { return "alpha"; }

 private:
  // Attempt `attempt`'s Exp(1) draws (see draw()): the keyed host generator continued past the
  // earlier attempts' draws.
  torch::Tensor exponentials(const RngKey& key, int attempt) const;
  GdasOptions gdas_;
  int64_t epochs_ = 1;
};

}  // namespace probnas
