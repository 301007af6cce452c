#pragma once
// The multi-branch residual space of PGNAS (Zhou et al., AAAI 2020), in the spirit of its SupNet-M:
// a shake-shake style ResNet whose blocks hold one branch per kernel size, every convolution's
// input channels behind a gate.
//
//   stem     conv3x3(in -> C) + BN + ReLU
//   stages   3 stages of N blocks (space.cells_per_stage) with C, 2C, 4C channels; the first block
//            of stages 2 and 3 has stride 2
//   block    y = shortcut(x) + (1/B) sum_b branch_b(x), B = number of kernel sizes (space.kernels);
//            in training with shake-shake weights (ArchSample::shake, drawn by PGNAS with pgnas.shake):
//            y = shortcut(x) + sum_b a_b branch_b(x) forward, gradient b_b to branch b (Gastaldi 2017)
//            branch_k: ReLU -> gate -> conv kxk (stride) -> BN -> ReLU -> gate -> conv kxk -> BN
//            shortcut: identity, or ReLU -> conv1x1 (stride) -> BN where the shape changes (not gated)
//   head     ReLU -> global average pool -> linear
//
// Gates: one per input channel of each branch convolution; the gates of one convolution form one
// group (layer l, kernel size s) of the paper with one drop probability. A gate of 1 keeps its
// channel; 0 drops it. A branch with every gate of either of its convolutions closed is removed: it
// contributes exactly 0 (not its BN's bias), so the pruned network below computes the same function.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "probnas/ckpt/state.h"
#include "probnas/space/supernet.h"

namespace probnas {

// One gated group: a branch convolution and the channels at its input.
struct GateGroup {
  std::string name;       // "s1.b1.k3.conv1": stage, block, kernel size, first or second convolution
  int64_t channels = 0;   // gated input channels K
  int64_t kernel = 0;
};

class GatedBranch : public torch::nn::Module {
 public:
  GatedBranch(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride);
  torch::Tensor forward(const torch::Tensor& relu_x, const torch::Tensor& gate1, const torch::Tensor& gate2);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  int64_t kernel, stride;
};

class MultiBranchBlock : public torch::nn::Module {
 public:
  MultiBranchBlock(int64_t c_in, int64_t c_out, int64_t stride, const std::vector<int64_t>& kernels);
  // `gates`: two per branch (conv1, conv2), undefined for all open. `shake`: the branches' forward and
  // backward weights ([batch, B] each), undefined for the plain average.
  torch::Tensor forward(const torch::Tensor& x, const std::vector<torch::Tensor>& gates,
                        const std::pair<torch::Tensor, torch::Tensor>& shake = {});
  std::vector<std::shared_ptr<GatedBranch>> branches;
  torch::nn::Conv2d shortcut_conv{nullptr};  // null: identity shortcut
  torch::nn::BatchNorm2d shortcut_bn{nullptr};
};

// A candidate cut out of the supernet: each convolution keeps only the channels its gates keep (the
// channels a dropped gate of the next convolution would discard are cut from the previous one's
// output as well), each gate value multiplied into the kept input channels of its weight, removed
// branches gone. Plain tensors, no autograd: what candidate ranking runs and what is exported.
struct PrunedConvBn {
  torch::Tensor weight;                        // [out, in, k, k]
  int64_t stride = 1, padding = 0;
  torch::Tensor bn_weight, bn_bias, bn_mean, bn_var;  // [out]
};

struct PrunedBranch {
  int64_t kernel = 0;
  torch::Tensor input_channels;  // int64: the block input channels conv1 reads
  PrunedConvBn conv1, conv2;
};

struct PrunedBlock {
  int64_t total_branches = 0;  // B of the supernet (the average's divisor)
  std::vector<PrunedBranch> branches;  // the branches still present
  bool projection = false;
  PrunedConvBn shortcut;
};

struct PrunedNet {
  PrunedConvBn stem;
  std::vector<PrunedBlock> blocks;
  torch::Tensor fc_weight, fc_bias;
  double bn_eps = 1e-5;

  torch::Tensor forward(const torch::Tensor& x) const;
  // Recomputes every BatchNorm's statistics on `batches` (the average of their batch means and
  // unbiased variances, as PyTorch's momentum = None), each layer seeing the recalibrated layers before it.
  void recalibrate(const std::vector<torch::Tensor>& batches);
  int64_t parameters() const;  // weights and BN affine parameters
  PrunedNet to(const c10::Device& device) const;
  // HDF5 layout (documented in docs/methods/pgnas.md): stem/, block<i>/branch_k<k>/{conv1,conv2}/, block<i>/shortcut/, fc.
  void save(ckpt::State& state) const;
  static PrunedNet load(const ckpt::State& state);
};

class MultiBranchNet : public Supernet {
 public:
  explicit MultiBranchNet(const SpaceOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) override;
  // One group "gates" whose edges are the gated convolutions and whose operations are keep and drop.
  const ArchShape& arch_shape() const override { return shape_; }
  std::string space_name() const override { return "multibranch"; }
  // probs: one [groups, 2] tensor (keep, drop). The text lists each convolution's keep probability.
  Genotype derive(const std::vector<torch::Tensor>& probs) const override;

  const std::vector<GateGroup>& gate_groups() const { return groups_; }
  int64_t gated_channels() const;  // sum of the groups' channels
  // The weight each group's gates multiply (its convolution's kernel), in group order.
  std::vector<torch::Tensor> gated_weights() const;
  // The candidate for per-group gates ([channels] each; 0 drops, anything else keeps and scales).
  PrunedNet prune(const std::vector<torch::Tensor>& gates) const;
  const std::vector<int64_t>& kernels() const { return kernels_; }
  int64_t blocks() const { return static_cast<int64_t>(blocks_.size()); }

 private:
  ArchShape shape_;
  std::vector<GateGroup> groups_;
  std::vector<int64_t> kernels_;
  torch::nn::Conv2d stem_conv_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  std::vector<std::shared_ptr<MultiBranchBlock>> blocks_;
  torch::nn::Linear fc_{nullptr};
};

// Parses space.kernels ("1,3,5,7"): 1 to 4 distinct odd sizes, named errors otherwise.
std::vector<int64_t> parse_kernels(const std::string& text);

}  // namespace probnas
