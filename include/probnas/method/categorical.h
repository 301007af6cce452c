#pragma once
// PARSEC's architecture distribution p(alpha | pi): independent categorical variables, each choosing
// one (edge, operation) path of the supernet. NB201: one variable per edge over its operations. DARTS
// space: per node and input slot one variable over every (previous node, operation) pair, as the
// PARSEC paper's cells (two slots per node; both may pick the same pair). The class holds the
// structure only; the logits are the method's parameter ([variables, max options], padded options
// masked to probability 0).
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "probnas/core/rng.h"
#include "probnas/space/arch.h"

namespace probnas {

struct CategoricalVariable {
  std::string name;             // "cell/1<-0", "normal/node3/input2"
  size_t group = 0;             // the architecture group its paths belong to
  std::vector<ArchPath> options;
};

// One draw: the chosen option of every variable.
using ArchDraw = std::vector<int64_t>;

class ArchCategoricals {
 public:
  // `space` nb201 (a variable per edge) or darts (inputs_per_node variables per node).
  ArchCategoricals(const std::string& space, const ArchShape& shape, int64_t inputs_per_node = 2);
  int64_t variables() const { return static_cast<int64_t>(vars_.size()); }
  int64_t max_options() const { return max_options_; }
  const std::vector<CategoricalVariable>& variable_list() const { return vars_; }

  // log p of every option: [variables, max options], -inf on the padding (differentiable).
  torch::Tensor log_probs(const torch::Tensor& logits) const;
  // log p(alpha | pi) of one draw, a differentiable 0-d tensor.
  torch::Tensor log_prob(const torch::Tensor& logits, const ArchDraw& draw) const;
  // Total entropy (nats) of the distribution, a differentiable 0-d tensor.
  torch::Tensor entropy(const torch::Tensor& logits) const;
  // A draw by inverse CDF from `probs` ([variables, max options] float64 on the CPU) with uniforms
  // from the CPU generator keyed by `key`: the same draw on every rank and device.
  ArchDraw sample(const torch::Tensor& probs, const RngKey& key) const;
  // The most probable option of every variable (the first on ties).
  ArchDraw mode(const torch::Tensor& logits) const;
  // The `k` most probable draws (fewer when the space has fewer), most probable first, with their
  // log-probabilities.
  std::vector<std::pair<ArchDraw, double>> most_probable(const torch::Tensor& logits, int64_t k) const;

  // What the supernet runs for a draw: one choice per edge (NB201) or the paths (DARTS space).
  ArchSample arch_sample(const ArchDraw& draw) const;
  // Per group [edges, ops]: the probability that a variable of the edge's node picks the path (NB201:
  // the edge's operation probabilities; DARTS space: averaged over the node's input slots, so a node's
  // entries sum to 1). What the genotype is derived from.
  std::vector<torch::Tensor> path_probabilities(const torch::Tensor& logits) const;
  // A draw in the space's notation: NB201 string, or DARTS's Genotype(normal=[(op, input), ...], ...)
  // with each node's inputs in slot order.
  std::string describe(const ArchDraw& draw) const;

 private:
  void check(const ArchDraw& draw) const;
  std::string space_;
  ArchShape shape_;
  std::vector<CategoricalVariable> vars_;
  int64_t max_options_ = 0;
  torch::Tensor mask_;  // [variables, max options] float: 0 where an option exists, -inf on the padding
};

// PARSEC's normalised importance weights softmax(log_likelihoods) in float64, computed with the
// log-sum-exp shift so that very negative log-likelihoods stay finite.
torch::Tensor importance_weights(const torch::Tensor& log_likelihoods);

}  // namespace probnas
