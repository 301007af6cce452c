#include "probnas/space/ops.h"

#include "probnas/core/error.h"

namespace probnas {

namespace nn = torch::nn;

const std::vector<std::string> kNb201Ops = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};

nn::BatchNorm2d make_bn(int64_t channels, const BnOptions& bn) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).affine(bn.affine).track_running_stats(bn.track_running_stats));
}

namespace {
nn::Conv2d conv(int64_t c_in, int64_t c_out, int64_t k, int64_t stride, int64_t padding, int64_t dilation = 1) {
  return nn::Conv2d(nn::Conv2dOptions(c_in, c_out, k).stride(stride).padding(padding).dilation(dilation).bias(false));
}
}  // namespace

ReLUConvBN::ReLUConvBN(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding,
                       int64_t dilation, const BnOptions& bn) {
  conv_ = register_module("conv", conv(c_in, c_out, kernel, stride, padding, dilation));
  bn_ = register_module("bn", make_bn(c_out, bn));
}

torch::Tensor ReLUConvBN::forward(const torch::Tensor& x) { return bn_->forward(conv_->forward(torch::relu(x))); }

torch::Tensor add_defined(const torch::Tensor& sum, const torch::Tensor& term) {
  if (!term.defined()) return sum;
  return sum.defined() ? sum + term : term;
}

torch::Tensor mixed_edge(const std::vector<OpPtr>& ops, const torch::Tensor& x, const torch::Tensor& weights,
                         const int64_t* choice) {
  if (choice) {
    const int64_t c = *choice;
    PROBNAS_CHECK(c >= 0 && c < static_cast<int64_t>(ops.size()), "mixed edge: choice ", c, " is not one of the ",
                  ops.size(), " operations");
    const auto& op = ops[static_cast<size_t>(c)];
    PROBNAS_CHECK(op, "an architecture chose operation ", c, " of an edge where it was pruned");
    if (!weights.defined()) return op->is_zero() ? torch::Tensor() : op->forward(x);
    // GDAS: with one-hot straight-through weights `others` is exactly 0 and weights[c] exactly 1,
    // so the value is op_c(x); the gradient is that of the reference's sum over all k of
    // (k == c ? weights[k] * op_k(x) : weights[k]). A chosen `none` contributes zeros (its
    // weight's gradient is 0, as w * 0's), but still carries `others` at the output's shape.
    const auto others = weights.sum() - weights[c];
    return (op->is_zero() ? op->forward(x) : op->forward(x) * weights[c]) + others;
  }
  torch::Tensor sum;
  for (size_t k = 0; k < ops.size(); ++k)
    if (ops[k] && !ops[k]->is_zero()) sum = add_defined(sum, ops[k]->forward(x) * weights[static_cast<int64_t>(k)]);
  return sum;
}

namespace {
// A convolution's explicit padding (null for "same"/"valid"), and whether it pads with zeros. The
// options hold c10::variant in LibTorch 1.x and std::variant in 2.x: the unqualified calls find
// either (argument-dependent lookup beside the std names).
template <class Variant>
const torch::ExpandingArray<2>* explicit_padding(const Variant& padding) {
  using std::get_if;
  return get_if<torch::ExpandingArray<2>>(&padding);
}
template <class Variant>
bool pads_with_zeros(const Variant& mode) {
  using std::holds_alternative;
  return holds_alternative<torch::enumtype::kZeros>(mode);
}
}  // namespace

torch::Tensor stacked_conv2d(const torch::Tensor& x, const std::vector<nn::Conv2dImpl*>& convs) {
  PROBNAS_CHECK(!convs.empty(), "stacked convolution of no edges");
  const auto& first = *convs.front();
  const auto& o = first.options;
  if (convs.size() == 1) return convs.front()->forward(x);
  const auto t = static_cast<int64_t>(convs.size());
  const auto* pad = explicit_padding(o.padding());
  PROBNAS_CHECK(pad, "stacked convolution: explicit padding needed");
  std::vector<torch::Tensor> w;
  for (auto* c : convs) {
    const auto* p = explicit_padding(c->options.padding());
    PROBNAS_CHECK(c->weight.sizes() == first.weight.sizes() && *c->options.stride() == *o.stride() &&
                      p && **p == **pad && *c->options.dilation() == *o.dilation() &&
                      c->options.groups() == o.groups() && !c->options.bias() &&
                      pads_with_zeros(c->options.padding_mode()),
                  "stacked convolution: the edges' convolutions differ in shape or options");
    w.push_back(c->weight);
  }
  const int64_t c_in = first.weight.size(1) * o.groups();
  int64_t groups = 0;
  if (x.size(1) == c_in) {
    PROBNAS_CHECK(o.groups() == 1, "stacked convolution: a grouped convolution needs each edge's own input");
    groups = 1;
  } else {
    PROBNAS_CHECK(x.size(1) == t * c_in, "stacked convolution: input of ", x.size(1), " channels for ", t,
                  " edges of ", c_in);
    groups = t * o.groups();
  }
  return torch::conv2d(x, torch::cat(w), {}, o.stride(), *pad, o.dilation(), groups);
}

torch::Tensor stacked_batch_norm(const torch::Tensor& y, const std::vector<nn::BatchNorm2dImpl*>& bns,
                                 const std::string& what) {
  PROBNAS_CHECK(!bns.empty(), "stacked BatchNorm of no edges");
  auto& first = *bns.front();
  if (bns.size() == 1) return bns.front()->forward(y);
  std::vector<torch::Tensor> mean, var, gamma, beta;
  for (auto* bn : bns) {
    // One batch_norm call serves them all: their options and mode must agree.
    PROBNAS_CHECK(bn->options.affine() == first.options.affine() &&
                      bn->options.track_running_stats() == first.options.track_running_stats() &&
                      bn->options.momentum() == first.options.momentum() && bn->options.eps() == first.options.eps() &&
                      bn->options.num_features() == first.options.num_features() &&
                      bn->is_training() == first.is_training(),
                  what, ": the BatchNorms of the edges leaving one node differ in their options or mode; "
                  "compute such a cell edge by edge (set_fused(false))");
    if (bn->options.affine()) {
      gamma.push_back(bn->weight);
      beta.push_back(bn->bias);
    }
    if (bn->options.track_running_stats()) {
      mean.push_back(bn->running_mean);
      var.push_back(bn->running_var);
    }
  }
  const bool training = first.is_training();  // the BatchNorm's own mode, as its forward would read it
  const bool track = first.options.track_running_stats(), update = track && training;
  PROBNAS_CHECK(!training || y.size(0) * y.size(2) * y.size(3) > 1,
                "BatchNorm in training needs more than one value per channel, got input of size ", y.sizes());
  PROBNAS_CHECK(first.options.momentum().has_value(), what, ": a cumulative-average BatchNorm (momentum unset) "
                "cannot be stacked");
  torch::Tensor running_mean = track ? torch::cat(mean) : torch::Tensor();
  torch::Tensor running_var = track ? torch::cat(var) : torch::Tensor();
  const auto out = torch::batch_norm(y, gamma.empty() ? torch::Tensor() : torch::cat(gamma),
                                     beta.empty() ? torch::Tensor() : torch::cat(beta), running_mean, running_var,
                                     training || !track, first.options.momentum().value(), first.options.eps(),
                                     at::globalContext().userEnabledCuDNN());
  if (update) {  // the updated statistics back into each BatchNorm, as its own forward would leave them
    torch::NoGradGuard no_grad;
    const int64_t c = first.options.num_features();
    // Through .data() (a new version counter), as batch_norm's own in-place update is invisible to
    // autograd: a graph of an earlier forward that saved these buffers (BatchNorm's backward keeps
    // them) must stay valid, e.g. PARSEC's paths forward followed by a dense forward before backward.
    for (size_t t = 0; t < bns.size(); ++t) {
      bns[t]->running_mean.data().copy_(running_mean.narrow(0, static_cast<int64_t>(t) * c, c));
      bns[t]->running_var.data().copy_(running_var.narrow(0, static_cast<int64_t>(t) * c, c));
      bns[t]->num_batches_tracked.data().add_(1);
    }
  }
  return out;
}

Widener::Widener(const RngKey& key) : gen_(make_generator(key)) {}

torch::Tensor Widener::mapping(int64_t c_old, int64_t c_new) {
  PROBNAS_CHECK(c_old >= 1 && c_new >= c_old, "widening from ", c_old, " to ", c_new, " channels");
  auto extra = torch::randint(c_old, {c_new - c_old}, gen_, torch::kInt64);
  return torch::cat({torch::arange(c_old, torch::kInt64), extra});
}

void Widener::expand(torch::Tensor& t, int64_t dim, const torch::Tensor& map) {
  torch::NoGradGuard no_grad;
  t.set_data(t.detach().index_select(dim, map.to(t.device())).clone());
  log_[t.unsafeGetTensorImpl()].emplace_back(dim, map);
}

torch::Tensor Widener::apply(const torch::Tensor& tensor, torch::Tensor state) const {
  const auto it = log_.find(tensor.unsafeGetTensorImpl());
  if (it == log_.end() || !state.defined()) return state;
  for (const auto& [dim, map] : it->second) state = state.index_select(dim, map.to(state.device()));
  return state;
}

void Op::widen(int64_t, Widener&) {
  PROBNAS_FAIL("operation ", name(), " cannot be widened (progressive learning widens the DARTS-space operations)");
}

void to_memory_format(torch::nn::Module& module, bool channels_last) {
  torch::NoGradGuard no_grad;
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto convert = [&](torch::Tensor& t) {
    if (t.defined() && t.dim() == 4 && !t.is_contiguous(format)) t.set_data(t.data().contiguous(format));
  };
  for (auto& p : module.parameters()) convert(p);
  for (auto& b : module.buffers()) convert(b);
}

torch::Tensor images_in_format(const torch::Tensor& x, bool channels_last) {
  if (x.dim() != 4) return x;
  return x.contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

void widen_conv_out(nn::Conv2dImpl& conv, const torch::Tensor& map, Widener& widener) {
  widener.expand(conv.weight, 0, map);
  conv.options.out_channels(map.size(0));
}

void widen_conv_in(nn::Conv2dImpl& conv, const torch::Tensor& map, Widener& widener) {
  widener.expand(conv.weight, 1, map);
  conv.options.in_channels(map.size(0));
}

void widen_depthwise(nn::Conv2dImpl& conv, const torch::Tensor& map, Widener& widener) {
  // [c, 1, k, k]: channel j filters input channel j, with the kernel of channel g(j).
  widener.expand(conv.weight, 0, map);
  conv.options.in_channels(map.size(0)).out_channels(map.size(0)).groups(map.size(0));
}

void widen_bn(nn::BatchNorm2dImpl& bn, const torch::Tensor& map, Widener& widener) {
  if (bn.options.affine()) {
    widener.expand(bn.weight, 0, map);
    widener.expand(bn.bias, 0, map);
  }
  if (bn.options.track_running_stats()) {
    widener.expand(bn.running_mean, 0, map);
    widener.expand(bn.running_var, 0, map);
  }
  bn.options.num_features(map.size(0));
}

void FactorizedReduce::widen(int64_t channels, Widener& widener) {
  const int64_t c_in = conv_a_->weight.size(1);
  const auto in = widener.mapping(c_in, channels);
  if (stride_ == 1) {
    widen_conv_in(*conv_a_, in, widener);
    const auto out = widener.mapping(conv_a_->weight.size(0), channels);
    widen_conv_out(*conv_a_, out, widener);
    widen_bn(*bn_, out, widener);
    return;
  }
  // Two half-width paths concatenated before one BN: BN channel a_j follows conv_a's map, b_j conv_b's.
  const int64_t a_old = conv_a_->weight.size(0), b_old = conv_b_->weight.size(0);
  const auto a = widener.mapping(a_old, channels / 2), b = widener.mapping(b_old, channels - channels / 2);
  widen_conv_in(*conv_a_, in, widener);
  widen_conv_in(*conv_b_, in, widener);
  widen_conv_out(*conv_a_, a, widener);
  widen_conv_out(*conv_b_, b, widener);
  widen_bn(*bn_, torch::cat({a, b + a_old}), widener);
}

torch::Tensor Zero::forward(const torch::Tensor& x) {
  if (c_in_ == c_out_) {
    if (stride_ == 1) return x.mul(0.0);
    using torch::indexing::Slice;
    return x.index({Slice(), Slice(), Slice(torch::indexing::None, torch::indexing::None, stride_),
                    Slice(torch::indexing::None, torch::indexing::None, stride_)})
        .mul(0.0);
  }
  const int64_t h = (x.size(2) + stride_ - 1) / stride_, w = (x.size(3) + stride_ - 1) / stride_;
  return torch::zeros({x.size(0), c_out_, h, w}, x.options());
}

FactorizedReduce::FactorizedReduce(int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn)
    : stride_(stride) {
  PROBNAS_CHECK(stride == 1 || stride == 2, "FactorizedReduce: stride ", stride, " (allowed: 1, 2)");
  if (stride == 2) {
    conv_a_ = register_module("conv_a", conv(c_in, c_out / 2, 1, 2, 0));
    conv_b_ = register_module("conv_b", conv(c_in, c_out - c_out / 2, 1, 2, 0));
  } else {
    conv_a_ = register_module("conv", conv(c_in, c_out, 1, 1, 0));
  }
  bn_ = register_module("bn", make_bn(c_out, bn));
}

torch::Tensor FactorizedReduce::forward(const torch::Tensor& x) {
  if (stride_ == 1) return bn_->forward(conv_a_->forward(x));
  auto r = torch::relu(x);
  // The second path sees the input shifted by one pixel (pad right/bottom, drop first row/column).
  auto shifted = torch::constant_pad_nd(r, {0, 1, 0, 1}, 0.0).narrow(2, 1, r.size(2)).narrow(3, 1, r.size(3));
  return bn_->forward(torch::cat({conv_a_->forward(r), conv_b_->forward(shifted)}, 1));
}

Pooling::Pooling(int64_t c_in, int64_t c_out, int64_t stride, bool average, const BnOptions& bn)
    : stride_(stride), average_(average) {
  if (c_in != c_out) preprocess_ = register_module("preprocess", std::make_shared<ReLUConvBN>(c_in, c_out, 1, 1, 0, 1, bn));
}

torch::Tensor Pooling::forward(const torch::Tensor& x) {
  auto y = preprocess_ ? preprocess_->forward(x) : x;
  if (average_) return torch::avg_pool2d(y, 3, stride_, 1, /*ceil_mode=*/false, /*count_include_pad=*/false);
  return torch::max_pool2d(y, 3, stride_, 1);
}

ResNetBasicBlock::ResNetBasicBlock(int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn) {
  PROBNAS_CHECK(stride == 1 || stride == 2, "ResNetBasicBlock: stride ", stride, " (allowed: 1, 2)");
  conv_a_ = register_module("conv_a", std::make_shared<ReLUConvBN>(c_in, c_out, 3, stride, 1, 1, bn));
  conv_b_ = register_module("conv_b", std::make_shared<ReLUConvBN>(c_out, c_out, 3, 1, 1, 1, bn));
  if (stride == 2) {
    downsample_ = register_module(
        "downsample", nn::Sequential(nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(2).padding(0)), conv(c_in, c_out, 1, 1, 0)));
  } else if (c_in != c_out) {
    project_ = register_module("downsample", std::make_shared<ReLUConvBN>(c_in, c_out, 1, 1, 0, 1, bn));
  }
}

torch::Tensor ResNetBasicBlock::forward(const torch::Tensor& x) {
  auto out = conv_b_->forward(conv_a_->forward(x));
  torch::Tensor residual = x;
  if (downsample_) residual = downsample_->forward(x);
  else if (project_) residual = project_->forward(x);
  return residual + out;
}

OpPtr make_nb201_op(const std::string& name, int64_t c_in, int64_t c_out, int64_t stride, const BnOptions& bn) {
  if (name == "none") return std::make_shared<Zero>(c_in, c_out, stride);
  if (name == "skip_connect") {
    if (stride == 1 && c_in == c_out) return std::make_shared<Identity>();
    return std::make_shared<FactorizedReduce>(c_in, c_out, stride, bn);
  }
  if (name == "nor_conv_1x1") return std::make_shared<ReLUConvBN>(c_in, c_out, 1, stride, 0, 1, bn);
  if (name == "nor_conv_3x3") return std::make_shared<ReLUConvBN>(c_in, c_out, 3, stride, 1, 1, bn);
  if (name == "avg_pool_3x3") return std::make_shared<Pooling>(c_in, c_out, stride, true, bn);
  PROBNAS_FAIL("unknown NB201 operation '", name, "' (allowed: none, skip_connect, nor_conv_1x1, nor_conv_3x3, "
               "avg_pool_3x3)");
}

}  // namespace probnas
