#pragma once
// Primitive operations of the NB201 space, with NAS-Bench-201's compositions (ReLU-Conv-BN,
// bias-free convolutions, search-time BN without affine parameters).
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "probnas/core/rng.h"

namespace probnas {

// Widening operations to more channels by DrNAS's random mapping (Eq. 7-8, after Net2Net):
// new channel j of a layer with c_old channels takes the weights of channel g(j), where
// g(j) = j for j < c_old and g(j) is drawn uniformly from the old channels otherwise; nothing is
// rescaled. Layers that read a widened layer's channels use the same g for their input dimension.
// Tensors are widened in place (set_data), so parameter names and optimiser references survive;
// every expansion is recorded so optimiser state (momentum) can be widened the same way.
class Widener {
 public:
  explicit Widener(const RngKey& key);
  // g for c_old -> c_new channels: [c_new] int64 on the CPU.
  torch::Tensor mapping(int64_t c_old, int64_t c_new);
  // t <- t.index_select(dim, map), keeping t's identity; recorded for `apply`.
  void expand(torch::Tensor& t, int64_t dim, const torch::Tensor& map);
  // `state` (shaped like `tensor` before widening) with the expansions `tensor` went through.
  torch::Tensor apply(const torch::Tensor& tensor, torch::Tensor state) const;

 private:
  at::Generator gen_;
  std::map<const void*, std::vector<std::pair<int64_t, torch::Tensor>>> log_;
};

struct BnOptions {
  bool affine = true;
  bool track_running_stats = true;
};

class Op : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // True for the `none` operation: its output is identically zero, so mixed edges skip it.
  virtual bool is_zero() const { return false; }
  // Widens the operation from its channels to `channels` in and out (DrNAS progressive learning).
  virtual void widen(int64_t channels, Widener& widener);
};
using OpPtr = std::shared_ptr<Op>;

torch::nn::BatchNorm2d make_bn(int64_t channels, const BnOptions& bn);

class ReLUConvBN : public Op {
 public:
  ReLUConvBN(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
             const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::nn::Conv2dImpl& conv_layer() { return *conv_; }
  torch::nn::BatchNorm2dImpl& bn_layer() { return *bn_; }

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};

class Identity : public Op {
 public:
  torch::Tensor forward(const torch::Tensor& x) override { return x; }
  void widen(int64_t, Widener&) override {}
};

class Zero : public Op {
 public:
  Zero(int64_t c_in, int64_t c_out, int64_t stride) : c_in_(c_in), c_out_(c_out), stride_(stride) {}
  torch::Tensor forward(const torch::Tensor& x) override;
  bool is_zero() const override { return true; }
  void widen(int64_t channels, Widener&) override { c_in_ = c_out_ = channels; }

 private:
  int64_t c_in_, c_out_, stride_;
};

// Stride 2: ReLU, two offset 1x1 stride-2 convolutions concatenated, BN. Stride 1: 1x1 conv, BN.
class FactorizedReduce : public Op {
 public:
  FactorizedReduce(int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;
  void widen(int64_t channels, Widener& widener) override;
  int64_t stride() const { return stride_; }
  // Stride 2: the two half-width convolutions; stride 1: conv_a alone (conv_b null).
  torch::nn::Conv2dImpl* conv_a() { return conv_a_.get(); }
  torch::nn::Conv2dImpl* conv_b() { return conv_b_ ? conv_b_.get() : nullptr; }
  torch::nn::BatchNorm2dImpl& bn_layer() { return *bn_; }

 private:
  int64_t stride_;
  torch::nn::Conv2d conv_a_{nullptr}, conv_b_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};

// 3x3 average (count_include_pad = false) or max pooling, after a 1x1 ReLU-Conv-BN when the
// channel count changes.
class Pooling : public Op {
 public:
  Pooling(int64_t c_in, int64_t c_out, int64_t stride, bool average, const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  std::shared_ptr<ReLUConvBN> preprocess_;
  int64_t stride_;
  bool average_;
};

// NB201's reduction block between stages: two 3x3 ReLU-Conv-BN and a shortcut
// (stride 2: 2x2 average pool + 1x1 conv; channel change: 1x1 ReLU-Conv-BN).
class ResNetBasicBlock : public Op {
 public:
  ResNetBasicBlock(int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn = {});
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  std::shared_ptr<ReLUConvBN> conv_a_, conv_b_;
  torch::nn::Sequential downsample_{nullptr};
  std::shared_ptr<ReLUConvBN> project_;
};

// Memory format: every 4-D parameter and buffer of `module` made channels-last (NHWC) or, with
// false, contiguous (NCHW), in place (the tensors keep their identity, so optimiser state that
// refers to them stays valid).
void to_memory_format(torch::nn::Module& module, bool channels_last);
// 4-D images in that format (others unchanged).
torch::Tensor images_in_format(const torch::Tensor& x, bool channels_last);

// In-place widening of layers by a channel mapping g (see Widener): a convolution's output or
// input channels, a depthwise convolution's channels (and groups), a BatchNorm's channels.
void widen_conv_out(torch::nn::Conv2dImpl& conv, const torch::Tensor& map, Widener& widener);
void widen_conv_in(torch::nn::Conv2dImpl& conv, const torch::Tensor& map, Widener& widener);
void widen_depthwise(torch::nn::Conv2dImpl& conv, const torch::Tensor& map, Widener& widener);
void widen_bn(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& map, Widener& widener);

// One mixed edge's output. `choice` alone: the chosen operation alone (`none` computes nothing).
// `weights` alone: sum_k weights[k] * op_k(x) over the operations other than `none` (w * 0 adds
// nothing to the output or any gradient). Both (GDAS): op_c(x) * weights[c] + sum_{k != c}
// weights[k], c = *choice, as GDAS's reference code forms it: only op_c runs, and each other
// weight, a broadcast scalar in the output, receives the sum of the output's gradient. Undefined
// when nothing contributes. Pruned operations are null: skipped (their weight is 0).
torch::Tensor mixed_edge(const std::vector<OpPtr>& ops, const torch::Tensor& x, const torch::Tensor& weights,
                         const int64_t* choice);
// Fused supernets (one call for all the edges that leave a node):
// `convs` are T convolutions of the same shape and options (one per edge); their weights are
// stacked along the output channels and applied in one call. `x` is either the edges' common input
// (C_in channels; each convolution must then have groups 1) or their inputs stacked along the
// channels (T * C_in channels, edge t's at t * C_in), which runs as a grouped convolution (a
// depthwise convolution stays depthwise). The output is [B, T * C_out, H, W], edge by edge.
torch::Tensor stacked_conv2d(const torch::Tensor& x, const std::vector<torch::nn::Conv2dImpl*>& convs);
// T BatchNorms of C channels each applied to `y` [B, T * C, H, W] (edge t's at t * C) in one call,
// as each one's own forward would: the same options and mode are required (`what` names the
// place in the error), and in training the updated running statistics go back to each one.
torch::Tensor stacked_batch_norm(const torch::Tensor& y, const std::vector<torch::nn::BatchNorm2dImpl*>& bns,
                                 const std::string& what);
// `sum + term`, where either may be undefined (no contribution).
torch::Tensor add_defined(const torch::Tensor& sum, const torch::Tensor& term);

// The NB201 candidate operations by name: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
OpPtr make_nb201_op(const std::string& name, int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn);
extern const std::vector<std::string> kNb201Ops;

}  // namespace probnas
