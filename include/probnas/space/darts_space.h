#pragma once
// The DARTS search space (Liu et al., ICLR 2019), as DARTS, PC-DARTS and DrNAS search it: cells
// with two inputs (the two previous cells' outputs), 4 intermediate nodes and 14 mixed edges over
// 8 primitives; the cell's output concatenates the 4 nodes. Normal and reduction cells have
// separate architecture parameters ("normal", "reduce"); reduction cells sit at 1/3 and 2/3 of
// the depth; a 3x3 conv stem with 3C channels (stem multiplier 3), or for large images the ImageNet
// stem of DrNAS's and PC-DARTS's 224x224 search (three stride-2 3x3 convs, 3C channels, the cells
// start at 1/8 resolution); global average pooling and a linear classifier. Search-time BatchNorm
// has no affine parameters.
#include <utility>
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
  void widen(int64_t channels, Widener& widener) override;
  // ReLU 0, depthwise 1, pointwise 2, BN 3, ReLU 4, depthwise 5, pointwise 6, BN 7.
  torch::nn::Sequential& body() { return body_; }

 private:
  torch::nn::Sequential body_{nullptr};
};

// Dilated depthwise-separable convolution: ReLU, k x k depthwise with dilation (stride), 1x1, BN.
class DilConv : public Op {
 public:
  DilConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
          const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;
  void widen(int64_t channels, Widener& widener) override;
  // ReLU 0, depthwise 1, pointwise 2, BN 3.
  torch::nn::Sequential& body() { return body_; }

 private:
  torch::nn::Sequential body_{nullptr};
};

// 3x3 max or average pooling (count_include_pad = false), followed by BN as DARTS's mixed op does.
class DartsPool : public Op {
 public:
  DartsPool(int64_t channels, int64_t stride, bool average, const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;
  void widen(int64_t channels, Widener& widener) override;
  // The pooling alone, without the BN.
  torch::Tensor pool(const torch::Tensor& x) const;
  torch::nn::BatchNorm2dImpl& bn_layer() { return *bn_; }

 private:
  int64_t stride_;
  bool average_;
  torch::nn::BatchNorm2d bn_{nullptr};
};

// A DARTS primitive by name, on `channels` channels with `stride` (1, or 2 in reduction cells).
OpPtr make_darts_op(const std::string& name, int64_t channels, int64_t stride, const BnOptions& bn);

// A DARTS cell. With partial channels (PC-DARTS, K > 1) each mixed edge sends only the first C/K
// channels of its input through the operations and passes the rest by (max-pooled in reduction
// edges), then shuffles channels in K groups so the next edge sees other channels.
class DartsCell : public torch::nn::Module {
 public:
  static constexpr int kSteps = 4;   // intermediate nodes
  static constexpr int kEdges = 14;  // 2 + 3 + 4 + 5
  DartsCell(int64_t c_prev_prev, int64_t c_prev, int64_t channels, bool reduction, bool reduction_prev,
            const BnOptions& bn, const std::vector<std::string>& ops = kDartsOps, int64_t partial_channels = 1);
  // `weights` [14, ops] mixing weights (undefined: none), `choice` 14 indices (null: none), or both
  // (GDAS);
  // `edge_weights` [14] (optional) scale the edges' outputs (PC-DARTS edge normalisation).
  torch::Tensor forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& weights,
                        const std::vector<int64_t>* choice, const torch::Tensor& edge_weights = {});
  // Only the operations of `paths` (edge, op) run; a path listed twice counts twice (PARSEC's
  // sampled cells, where both inputs of a node may pick the same edge). Needs K = 1.
  torch::Tensor forward_paths(const torch::Tensor& s0, const torch::Tensor& s1, const std::vector<ArchPath>& paths);
  bool reduction() const { return reduction_; }
  int64_t channels() const { return channels_; }
  int64_t partial_channels() const { return k_; }
  // Removes the operations whose `keep` entry ([14, ops] bool) is false; their weights must be 0.
  void prune(const torch::Tensor& keep);
  // Re-splits the edges with K = `k` (<= the current K): the operations widen to C/k channels.
  void set_partial_channels(int64_t k, Widener& widener);
  // The operations of edge `e` (null where pruned).
  const std::vector<OpPtr>& edge(int64_t e) const { return edges_[static_cast<size_t>(e)]; }
  // Mixing weights alone (DrNAS, DARTS) run the fused forward, per source node: one ReLU for all
  // the convolutions of all its outgoing edges, each pooling once (one BatchNorm per edge), the
  // factorized reductions of all edges in one convolution per half (weights stacked along the
  // output channels, one BatchNorm over them) and the partial-channel bypass once. The separable
  // and dilated convolutions run edge by edge: stacked as grouped convolutions they were slower on
  // the CPU (docs/benchmarks.md). Pruned operations are skipped. false: one edge and operation at a
  // time (the reference the tests compare with). Parameters and buffers are the same either way.
  void set_fused(bool fused) { fused_ = fused; }

  // Edge `e`'s output for input `x` (weights [14, ops] or choices as in forward).
  torch::Tensor edge_output(int64_t e, const torch::Tensor& x, const torch::Tensor& weights,
                            const std::vector<int64_t>* choice);

 private:
  bool reduction_;
  int64_t channels_, k_;
  std::vector<std::string> ops_;
  std::shared_ptr<Op> pre0_, pre1_;
  std::vector<std::vector<OpPtr>> edges_;  // [edge][op]
  std::vector<int64_t> strides_;           // per edge: 2 for a reduction cell's edges from its inputs
  bool fused_ = true;

  torch::Tensor fused_forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& weights,
                              const torch::Tensor& edge_weights);
  // The mixed outputs of `edges` (all leaving state `x`, in order), fused as set_fused describes;
  // undefined where nothing contributes (K = 1, every operation `none` or pruned).
  std::vector<torch::Tensor> fused_edges(const torch::Tensor& x, const std::vector<int64_t>& edges,
                                         const torch::Tensor& weights);

  // A node whose every input contributes nothing: zeros at the node's size.
  torch::Tensor zero_node(const torch::Tensor& s1) const;
};

// PC-DARTS's channel shuffle: [B, C, H, W] viewed as [B, groups, C/groups, H, W], transposed.
torch::Tensor shuffle_channels(const torch::Tensor& x, int64_t groups);

class DartsSupernet : public Supernet {
 public:
  explicit DartsSupernet(const SpaceOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) override;
  // The stem's two outputs, the first cell's inputs (s0, s1). CIFAR stem: one 3x3 conv + BN, both
  // the same tensor at full size. ImageNet stem (space.stem = imagenet): s0 at 1/4, s1 at 1/8.
  std::pair<torch::Tensor, torch::Tensor> stem(const torch::Tensor& x);
  const ArchShape& arch_shape() const override { return shape_; }
  std::string space_name() const override { return "darts"; }
  // DARTS's derivation: per node the two incoming edges with the strongest non-`none` operation,
  // each with that operation; the other edges become `none`.
  Genotype derive(const std::vector<torch::Tensor>& probs) const override;
  void prune_operations(const std::vector<torch::Tensor>& keep) override;
  void set_partial_channels(int64_t k, Widener& widener) override;
  int64_t partial_channels() const override { return k_; }
  void set_fused(bool fused) override;  // see DartsCell::set_fused
  const std::vector<std::shared_ptr<DartsCell>>& cells() const { return cells_; }

 private:
  int64_t k_ = 1;
  ArchShape shape_;
  torch::nn::Sequential stem_{nullptr};                    // CIFAR stem
  torch::nn::Sequential stem0_{nullptr}, stem1_{nullptr};  // ImageNet stem
  std::vector<std::shared_ptr<DartsCell>> cells_;
  torch::nn::Linear classifier_{nullptr};
};

// Two groups, "normal" and "reduce", of 14 edges ("2<-0", "2<-1", "3<-0", ...; nodes 0 and 1 are
// the cell's inputs) over `ops` (a subset of kDartsOps, in kDartsOps's order).
ArchShape darts_arch_shape(const std::vector<std::string>& ops = kDartsOps);
// `names` (space.ops: comma-separated, empty for all) as a subset of kDartsOps in its order;
// unknown or repeated names are errors naming `key`.
std::vector<std::string> darts_op_subset(const std::vector<std::string>& names, const std::string& key);
// DARTS's genotype derivation on one group's [14, ops] weights: (op, input node) pairs, two per
// node, never `none` (when `ops` has it).
std::vector<std::pair<std::string, int64_t>> darts_parse(const torch::Tensor& weights,
                                                         const std::vector<std::string>& ops = kDartsOps);

}  // namespace probnas
