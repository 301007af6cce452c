#pragma once
// The DARTS search space (Liu et al., ICLR 2019), as DARTS, PC-DARTS and DrNAS search it: cells
// with two inputs (the two previous cells' outputs), 4 intermediate nodes and 14 mixed edges over
// 8 primitives; the cell's output concatenates the 4 nodes. Normal and reduction cells have
// separate architecture parameters ("normal", "reduce"); reduction cells sit at 1/3 and 2/3 of
// the depth; a 3x3 conv stem with 3C channels (stem multiplier 3); global average pooling and a
// linear classifier. Search-time BatchNorm has no affine parameters.
#include <vector>

#include "probnas/space/ops.h"
#include "probnas/space/supernet.h"

namespace probnas {

// DARTS's PRIMITIVES, in its order: none, max_pool_3x3, avg_pool_3x3, skip_connect,
// sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5.
extern const std::vector<std::string> kDartsOps;

// Depthwise-separable convolution applied twice: (ReLU, k x k depthwise (stride), 1x1, BN) x 2,
// the stride only in the first half.
class SepConv : public Op {
 public:
  SepConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  torch::nn::Sequential body_{nullptr};
};

// Dilated depthwise-separable convolution: ReLU, k x k depthwise with dilation (stride), 1x1, BN.
class DilConv : public Op {
 public:
  DilConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
          const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  torch::nn::Sequential body_{nullptr};
};

// 3x3 max or average pooling (count_include_pad = false), followed by BN as DARTS's mixed op does.
class DartsPool : public Op {
 public:
  DartsPool(int64_t channels, int64_t stride, bool average, const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  int64_t stride_;
  bool average_;
  torch::nn::BatchNorm2d bn_{nullptr};
};

// A DARTS primitive by name, on `channels` channels with `stride` (1, or 2 in reduction cells).
OpPtr make_darts_op(const std::string& name, int64_t channels, int64_t stride, const BnOptions& bn);

class DartsCell : public torch::nn::Module {
 public:
  static constexpr int kSteps = 4;   // intermediate nodes
  static constexpr int kEdges = 14;  // 2 + 3 + 4 + 5
  DartsCell(int64_t c_prev_prev, int64_t c_prev, int64_t channels, bool reduction, bool reduction_prev,
            const BnOptions& bn);
  // `weights` [14, 8] mixing weights (undefined: none), `choice` 14 indices (null: none), or both (GDAS).
  torch::Tensor forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& weights,
                        const std::vector<int64_t>* choice);
  bool reduction() const { return reduction_; }

 private:
  bool reduction_;
  std::shared_ptr<Op> pre0_, pre1_;
  std::vector<std::vector<OpPtr>> edges_;  // [edge][op]
};

class DartsSupernet : public Supernet {
 public:
  explicit DartsSupernet(const SpaceOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) override;
  const ArchShape& arch_shape() const override { return shape_; }
  std::string space_name() const override { return "darts"; }
  // DARTS's derivation: per node the two incoming edges with the strongest non-`none` operation,
  // each with that operation; the other edges become `none`.
  Genotype derive(const std::vector<torch::Tensor>& probs) const override;

 private:
  ArchShape shape_;
  torch::nn::Sequential stem_{nullptr};
  std::vector<std::shared_ptr<DartsCell>> cells_;
  torch::nn::Linear classifier_{nullptr};
};

// Two groups, "normal" and "reduce", of 14 edges ("2<-0", "2<-1", "3<-0", ...; nodes 0 and 1 are
// the cell's inputs) over kDartsOps.
ArchShape darts_arch_shape();
// DARTS's genotype derivation on one group's [14, 8] weights: (op, input node) pairs, two per node.
std::vector<std::pair<std::string, int64_t>> darts_parse(const torch::Tensor& weights);
// "Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))"
std::string darts_genotype_string(const std::vector<std::pair<std::string, int64_t>>& normal,
                                  const std::vector<std::pair<std::string, int64_t>>& reduce);

}  // namespace probnas
