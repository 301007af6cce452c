#pragma once
// The NAS-Bench-201 search space: cells of 4 nodes and 6 edges over {none, skip_connect,
// nor_conv_1x1, nor_conv_3x3, avg_pool_3x3}; stem conv3x3+BN; three stages of N cells joined by
// stride-2 ResNet basic blocks; BN-ReLU, global average pooling, linear classifier.
#include <vector>

#include "probnas/space/ops.h"
#include "probnas/space/supernet.h"

namespace probnas {

class Nb201Cell : public torch::nn::Module {
 public:
  Nb201Cell(int64_t channels, const BnOptions& bn);
  // `weights` [6, 5] mixing weights (undefined: none), `choice` 6 indices (null: none), or both (GDAS).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& weights, const std::vector<int64_t>* choice);
  static constexpr int kNodes = 4;
  static constexpr int kEdges = 6;
  static int edge_index(int to, int from) { return (to - 1) * to / 2 + from; }
  // Mixing weights alone (DrNAS, DARTS) run the fused forward: per source node one ReLU, one
  // convolution per kernel size for all its outgoing edges (weights stacked along the output
  // channels, one BatchNorm over them) and one pooling. false: one edge and operation at a time
  // (the reference the tests compare with). Parameters and buffers are the same either way.
  void set_fused(bool fused) { fused_ = fused; }

 private:
  torch::Tensor fused_forward(const torch::Tensor& x, const torch::Tensor& weights);
  // The ReLU-Conv-BN outputs of kernel-size operation `op` on every edge from node `from`:
  // [B, T * C, H, W], target by target.
  torch::Tensor stacked_conv(const torch::Tensor& relu_x, int from, size_t op);

  std::vector<std::vector<OpPtr>> edges_;  // [edge][op]
  bool fused_ = true;
};

class Nb201Supernet : public Supernet {
 public:
  explicit Nb201Supernet(const SpaceOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) override;
  const ArchShape& arch_shape() const override { return shape_; }
  std::string space_name() const override { return "nb201"; }
  void set_fused(bool fused) override;  // see Nb201Cell::set_fused

 private:
  ArchShape shape_;
  torch::nn::Sequential stem_{nullptr};
  std::vector<std::shared_ptr<torch::nn::Module>> layers_;  // cells and reduction blocks in order
  std::vector<bool> is_cell_;
  torch::nn::BatchNorm2d last_bn_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};

ArchShape nb201_arch_shape();

}  // namespace probnas
