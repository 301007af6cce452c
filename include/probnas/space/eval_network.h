#pragma once
// The discrete networks a searched genotype is trained as from scratch (probnas train):
//
// - NB201: NAS-Bench-201's evaluation network. Stem 3x3 conv (C) + BN; three stages of N cells
//   with C, 2C, 4C channels joined by stride-2 ResNet basic blocks; BN, ReLU, global average pool,
//   linear. A cell's node j sums op_ij(node i) over its non-`none` edges; operations have affine BN.
// - DARTS: DARTS's NetworkCIFAR (and NetworkImageNet's stem for large images). A 3x3 conv stem with
//   3C channels (or the ImageNet stem: three stride-2 3x3 convs); L cells, the reduction cells at
//   L/3 and 2L/3 doubling the channels; each cell preprocesses its two inputs to C channels
//   (factorized reduce after a reduction), computes its 4 nodes as sums of the genotype's operations
//   (stride 2 on the inputs of a reduction cell), concatenates them; drop-path on every operation
//   that is not an identity; an auxiliary classifier after the second reduction cell; global
//   average pool, linear.
//
// Both report their parameters (the auxiliary head apart, as DARTS counts) and multiply-adds of
// one forward pass at a given image size.
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probnas/space/genotype.h"
#include "probnas/space/ops.h"

namespace probnas {

// A cell's node: the (operation, input node) pairs summed into it.
using NodeInputs = std::vector<std::pair<std::string, int64_t>>;

// The per-node inputs of a DARTS-space genotype group ("normal" or "reduce"): intermediate nodes
// 2..5, each the list of its non-`none` edges. Fails naming the group and edge on malformed input.
std::vector<NodeInputs> darts_cell_nodes(const Genotype& genotype, const std::string& group);
// The NB201 cell of a genotype: its six edge operations in NB201 order ("1<-0", "2<-0", "2<-1", ...).
std::vector<std::string> nb201_cell_ops(const Genotype& genotype);

struct EvalOutput {
  torch::Tensor logits;
  torch::Tensor aux_logits;  // undefined when the network has no auxiliary head or is not training
};

class EvalNetwork : public torch::nn::Module {
 public:
  // `drop_path`: probability of dropping an operation's output per example (training only);
  // its masks are drawn from `gen` (CPU), so they are keyed like every other draw.
  virtual EvalOutput forward(const torch::Tensor& x, double drop_path = 0, at::Generator* gen = nullptr) = 0;
  // Parameters of the network without the auxiliary head, and of the auxiliary head.
  int64_t parameters_main() const;
  int64_t parameters_auxiliary() const;
  // Multiply-adds of one image's forward pass (convolutions and the classifier; no auxiliary head).
  virtual int64_t multiply_adds(int64_t height, int64_t width) const = 0;
  virtual std::string space() const = 0;
};

struct EvalNetworkOptions {
  int64_t channels = 16;        // C
  int64_t cells = 5;            // NB201: cells per stage N; DARTS: cells L
  int64_t input_channels = 3;
  int64_t classes = 10;
  bool auxiliary = false;       // DARTS: the auxiliary head after the second reduction cell
  std::string stem = "cifar";   // DARTS: cifar or imagenet
};

class Nb201Network : public EvalNetwork {
 public:
  Nb201Network(const std::vector<std::string>& cell_ops, const EvalNetworkOptions& options);
  EvalOutput forward(const torch::Tensor& x, double drop_path = 0, at::Generator* gen = nullptr) override;
  int64_t multiply_adds(int64_t height, int64_t width) const override;
  std::string space() const override { return "nb201"; }

 private:
  std::vector<std::string> ops_;
  EvalNetworkOptions options_;
  torch::nn::Sequential stem_{nullptr};
  std::vector<OpPtr> blocks_;               // per layer: the reduction block, or null for a cell
  std::vector<std::vector<OpPtr>> cells_;   // per layer: a cell's six edge operations (null: none)
  torch::nn::BatchNorm2d last_bn_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};

// DARTS's auxiliary classifier: ReLU, 5x5 average pooling with stride 3 (for CIFAR's 8x8 maps; other
// sizes are pooled adaptively to 2x2), 1x1 conv to 128 + BN + ReLU, 2x2 conv to 768 + BN + ReLU, linear.
class AuxiliaryHead : public torch::nn::Module {
 public:
  AuxiliaryHead(int64_t channels, int64_t classes);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential features_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};

class DartsEvalCell : public torch::nn::Module {
 public:
  DartsEvalCell(const std::vector<NodeInputs>& nodes, int64_t c_prev_prev, int64_t c_prev, int64_t channels,
                bool reduction, bool reduction_prev);
  // `masks`: per-example keep masks already divided by the keep probability, one row per
  // drop-path site of this cell (undefined: no drop-path).
  torch::Tensor forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& masks);
  int64_t drop_path_sites() const { return sites_; }
  int64_t multiply_adds(int64_t c_prev_prev, int64_t c_prev, int64_t height, int64_t width) const;
  bool reduction() const { return reduction_; }

 private:
  std::vector<NodeInputs> nodes_;
  bool reduction_;
  int64_t channels_, sites_ = 0;
  std::shared_ptr<Op> pre0_, pre1_;
  std::vector<std::vector<OpPtr>> ops_;    // [node][input]
  std::vector<std::vector<int64_t>> site_;  // [node][input]: drop-path row, -1 for identities
};

class DartsNetwork : public EvalNetwork {
 public:
  DartsNetwork(const std::vector<NodeInputs>& normal, const std::vector<NodeInputs>& reduce,
               const EvalNetworkOptions& options);
  EvalOutput forward(const torch::Tensor& x, double drop_path = 0, at::Generator* gen = nullptr) override;
  int64_t multiply_adds(int64_t height, int64_t width) const override;
  std::string space() const override { return "darts"; }
  int64_t drop_path_sites() const;

 private:
  EvalNetworkOptions options_;
  torch::nn::Sequential stem_{nullptr}, stem0_{nullptr}, stem1_{nullptr};
  std::vector<std::shared_ptr<DartsEvalCell>> cells_;
  int64_t aux_after_ = -1;  // the cell whose output feeds the auxiliary head
  std::shared_ptr<AuxiliaryHead> aux_;
  torch::nn::Linear classifier_{nullptr};
};

struct PrunedNet;
struct PrunedConvBn;

// A PGNAS candidate (a pruned multi-branch network, best_network.h5) as a trainable module: its
// tensors become parameters (weights, BN scale and shift) and buffers (BN running statistics); in
// training mode BN uses batch statistics and updates the running ones (momentum 0.1), in evaluation
// mode it computes exactly PrunedNet::forward.
class PrunedModule : public EvalNetwork {
 public:
  explicit PrunedModule(const PrunedNet& net);
  EvalOutput forward(const torch::Tensor& x, double drop_path = 0, at::Generator* gen = nullptr) override;
  int64_t multiply_adds(int64_t height, int64_t width) const override;
  std::string space() const override { return "multibranch"; }

 private:
  struct ConvBn {
    torch::Tensor weight, bn_weight, bn_bias, bn_mean, bn_var;
    int64_t stride = 1, padding = 0;
  };
  struct Branch {
    torch::Tensor input_channels;
    ConvBn conv1, conv2;
  };
  struct Block {
    int64_t total_branches = 0;
    std::vector<Branch> branches;
    bool projection = false;
    ConvBn shortcut;
  };
  ConvBn stem_;
  std::vector<Block> blocks_;
  torch::Tensor fc_weight_, fc_bias_;
  double eps_ = 1e-5;

  ConvBn adopt(const std::string& name, const PrunedConvBn& c);
  torch::Tensor conv_bn(const ConvBn& c, const torch::Tensor& x);
};

// The network of a genotype (NB201 or DARTS space).
std::shared_ptr<EvalNetwork> make_eval_network(const Genotype& genotype, const EvalNetworkOptions& options);

// DARTS's drop-path on one operation's output: x * mask, the mask [B] (0 or 1/keep per example).
torch::Tensor apply_drop_path(const torch::Tensor& x, const torch::Tensor& mask);

}  // namespace probnas
