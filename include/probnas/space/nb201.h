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

 private:
  std::vector<std::vector<OpPtr>> edges_;  // [edge][op]
};

class Nb201Supernet : public Supernet {
 public:
  explicit Nb201Supernet(const SpaceOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) override;
  const ArchShape& arch_shape() const override { return shape_; }
  std::string space_name() const override { return "nb201"; }

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
