#pragma once
// Primitive operations of the NB201 space, with NAS-Bench-201's compositions (ReLU-Conv-BN,
// bias-free convolutions, search-time BN without affine parameters).
#include <torch/torch.h>

#include <memory>
#include <string>

namespace probnas {

struct BnOptions {
  bool affine = true;
  bool track_running_stats = true;
};

class Op : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // True for the `none` operation: its output is identically zero, so mixed edges skip it.
  virtual bool is_zero() const { return false; }
};
using OpPtr = std::shared_ptr<Op>;

torch::nn::BatchNorm2d make_bn(int64_t channels, const BnOptions& bn);

class ReLUConvBN : public Op {
 public:
  ReLUConvBN(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
             const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};

class Identity : public Op {
 public:
  torch::Tensor forward(const torch::Tensor& x) override { return x; }
};

class Zero : public Op {
 public:
  Zero(int64_t c_in, int64_t c_out, int64_t stride) : c_in_(c_in), c_out_(c_out), stride_(stride) {}
  torch::Tensor forward(const torch::Tensor& x) override;
  bool is_zero() const override { return true; }

 private:
  int64_t c_in_, c_out_, stride_;
};

// Stride 2: ReLU, two offset 1x1 stride-2 convolutions concatenated, BN. Stride 1: 1x1 conv, BN.
class FactorizedReduce : public Op {
 public:
  FactorizedReduce(int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn);
  torch::Tensor forward(const torch::Tensor& x) override;

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

// One mixed edge's output. `choice` alone: the chosen operation alone (`none` computes nothing).
// `weights` alone: sum_k weights[k] * op_k(x) over the operations other than `none` (w * 0 adds
// nothing to the output or any gradient). Both (GDAS): op_c(x) * weights[c] + sum_{k != c}
// weights[k], c = *choice, as GDAS's reference code forms it: only op_c runs, and each other
// weight, a broadcast scalar in the output, receives the sum of the output's gradient. Undefined
// when nothing contributes.
torch::Tensor mixed_edge(const std::vector<OpPtr>& ops, const torch::Tensor& x, const torch::Tensor& weights,
                         const int64_t* choice);
// `sum + term`, where either may be undefined (no contribution).
torch::Tensor add_defined(const torch::Tensor& sum, const torch::Tensor& term);

// The NB201 candidate operations by name: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
OpPtr make_nb201_op(const std::string& name, int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn);
extern const std::vector<std::string> kNb201Ops;

}  // namespace probnas
