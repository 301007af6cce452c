#pragma once
// What a method hands the supernet (DESIGN principle 3): the architecture is an argument of
// forward, never state of the network.
#include <torch/types.h>

#include <string>
#include <vector>

namespace probnas {

// One group of edges that share a set of candidate operations and architecture parameters
// (NB201: one group "cell"; DARTS space: "normal" and "reduce").
struct ArchGroup {
  std::string name;
  std::vector<std::string> edge_names;  // "1<-0", ...
  std::vector<std::string> ops;         // candidate operation names
  int64_t edges() const { return static_cast<int64_t>(edge_names.size()); }
  int64_t num_ops() const { return static_cast<int64_t>(ops.size()); }
};
using ArchShape = std::vector<ArchGroup>;

// One operation of one edge that a sampled architecture runs.
struct ArchPath {
  int64_t edge = 0;
  int64_t op = 0;
  bool operator==(const ArchPath& o) const { return edge == o.edge && op == o.op; }
};

struct ArchSample {
  // Dense mixing weights, one [edges, ops] tensor per group (DARTS, DrNAS, GibbsNAS).
  std::vector<torch::Tensor> weights;
  // One chosen operation per edge per group (PARSEC, evaluation of a discrete cell). Only the
  // chosen operations are computed. With `weights` as well (GDAS), an edge's output is
  // op[choice](x) * weights[e][choice] + sum of its other weights: one operation runs, and the
  // gradient reaches every weight of the edge (see mixed_edge).
  std::vector<std::vector<int64_t>> choices;
  // PC-DARTS edge normalisation (optional): one [edges] tensor per group scaling each edge's output
  // (a softmax over the edges into the same node). Empty: every edge counts 1.
  std::vector<torch::Tensor> edge_weights;
  // Channel gates of the multi-branch space (PGNAS), one tensor per gated convolution in the order
  // of the space's "gates" group: [in_channels] (one architecture for the whole batch) or
  // [batch, in_channels] (a draw per example). 1 keeps an input channel, 0 drops it; values in
  // between scale it (relaxed gates in training, expected gates for the mean network). Empty: all open.
  std::vector<torch::Tensor> gates;
  // Shake-shake branch weights of the multi-branch space (PGNAS's supernet in training), one pair per
  // block: [batch, branches] each, rows summing to 1. A block's output is then sum_b forward_b h_b,
  // and the gradient reaching branch b is backward_b times the output's. Empty: every branch
  // counts 1/B (shake-shake's test-time rule).
  std::vector<std::pair<torch::Tensor, torch::Tensor>> shake;
  // Sampled paths, one list per group (PARSEC in the DARTS space, where every node picks two
  // (input, operation) pairs): only these operations run; an edge's output is the sum of its listed
  // operations (a path listed twice counts twice) and an edge without a path contributes nothing.
  std::vector<std::vector<ArchPath>> paths;

  static ArchSample dense(std::vector<torch::Tensor> w) {
    ArchSample a;
    a.weights = std::move(w);
    return a;
  }
  static ArchSample discrete(std::vector<std::vector<int64_t>> c) {
    ArchSample a;
    a.choices = std::move(c);
    return a;
  }
  static ArchSample gated(std::vector<torch::Tensor> g) {
    ArchSample a;
    a.gates = std::move(g);
    return a;
  }
  static ArchSample along(std::vector<std::vector<ArchPath>> p) {
    ArchSample a;
    a.paths = std::move(p);
    return a;
  }
  static ArchSample chosen(std::vector<std::vector<int64_t>> c, std::vector<torch::Tensor> w) {
    ArchSample a;
    a.choices = std::move(c);
    a.weights = std::move(w);
    return a;
  }
  // Choices only: the plain discrete forward.
  bool is_discrete() const { return weights.empty(); }
  bool has_choices() const { return !choices.empty(); }
  bool has_weights() const { return !weights.empty(); }
  bool has_paths() const { return !paths.empty(); }
};

}  // namespace probnas
