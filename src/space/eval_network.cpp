#include "probnas/space/eval_network.h"

#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/host_draws.h"
#include "probnas/space/darts_space.h"
#include "probnas/space/multibranch.h"

namespace probnas {

namespace nn = torch::nn;

namespace {

// Output size of a convolution or pooling along one dimension.
int64_t out_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation = 1) {
  return (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
}

nn::Conv2d plain_conv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(c_in, c_out, kernel).stride(stride).padding(padding).bias(false));
}

int64_t count(const std::vector<torch::Tensor>& tensors) {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

}  // namespace

std::vector<NodeInputs> darts_cell_nodes(const Genotype& g, const std::string& group) {
  PROBNAS_CHECK(g.space == "darts", "genotype of the ", g.space, " space where a DARTS genotype was expected");
  const DartsGene gene = parse_darts_cell(g.text, group);
  std::vector<NodeInputs> nodes(static_cast<size_t>(kDartsCellNodes));
  for (size_t i = 0; i < gene.size(); ++i) {
    const auto& [op, from] = gene[i];
    PROBNAS_CHECK(std::find(kDartsOps.begin(), kDartsOps.end(), op) != kDartsOps.end() && op != "none",
                  "DARTS genotype: unknown operation '", op, "' in the ", group, " cell");
    nodes[i / 2].emplace_back(op, from);
  }
  return nodes;
}

std::vector<std::string> nb201_cell_ops(const Genotype& g) {
  PROBNAS_CHECK(g.space == "nb201", "genotype of the ", g.space, " space where an NB201 genotype was expected");
  auto ops = parse_nb201(g.text);
  for (const auto& op : ops)
    PROBNAS_CHECK(std::find(kNb201Ops.begin(), kNb201Ops.end(), op) != kNb201Ops.end(), "NB201 genotype '", g.text,
                  "': unknown operation '", op, "'");
  return ops;
}

int64_t EvalNetwork::parameters_main() const {
  int64_t n = 0;
  for (const auto& p : named_parameters())
    if (p.key().rfind("auxiliary", 0) != 0) n += p.value().numel();
  return n;
}

int64_t EvalNetwork::parameters_auxiliary() const { return count(parameters()) - parameters_main(); }

torch::Tensor apply_drop_path(const torch::Tensor& x, const torch::Tensor& mask) {
  return x * mask.view({-1, 1, 1, 1}).to(x.scalar_type());
}

// ---------------------------------------------------------------------------------------------
// NB201

Nb201Network::Nb201Network(const std::vector<std::string>& cell_ops, const EvalNetworkOptions& o)
    : ops_(cell_ops), options_(o) {
  PROBNAS_CHECK(cell_ops.size() == 6, "an NB201 cell has 6 edges, got ", cell_ops.size());
  PROBNAS_CHECK(o.channels >= 1 && o.cells >= 1, "NB201 network: channels = ", o.channels, ", cells per stage = ",
                o.cells, " (both at least 1)");
  const int64_t C = o.channels;
  stem_ = register_module("stem", nn::Sequential(plain_conv(o.input_channels, C, 3, 1, 1), nn::BatchNorm2d(C)));
  const BnOptions bn{true, true};
  int64_t c_prev = C;
  int index = 0;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t c = C << stage;
    if (stage > 0) {
      blocks_.push_back(register_module("layer" + std::to_string(index++), std::make_shared<ResNetBasicBlock>(c_prev, c, 2, bn)));
      cells_.emplace_back();
    }
    for (int64_t i = 0; i < o.cells; ++i) {
      std::vector<OpPtr> cell;
      const std::string name = "layer" + std::to_string(index++);
      for (size_t e = 0; e < 6; ++e) {
        // `none` edges are left out of the cell (NB201's InferCell).
        if (cell_ops[e] == "none")
          cell.push_back(nullptr);
        else
          cell.push_back(register_module(name + "_edge" + std::to_string(e), make_nb201_op(cell_ops[e], c, c, 1, bn)));
      }
      blocks_.push_back(nullptr);
      cells_.push_back(std::move(cell));
    }
    c_prev = c;
  }
  last_bn_ = register_module("lastact_bn", nn::BatchNorm2d(c_prev));
  classifier_ = register_module("classifier", nn::Linear(c_prev, o.classes));
}

EvalOutput Nb201Network::forward(const torch::Tensor& x, double, at::Generator*) {
  auto h = stem_->forward(x);
  for (size_t l = 0; l < blocks_.size(); ++l) {
    if (blocks_[l]) {
      h = blocks_[l]->forward(h);
      continue;
    }
    std::vector<torch::Tensor> nodes{h};
    size_t e = 0;
    for (int to = 1; to <= 3; ++to) {
      torch::Tensor sum;
      for (int from = 0; from < to; ++from, ++e) {
        if (!cells_[l][e]) continue;
        auto y = cells_[l][e]->forward(nodes[static_cast<size_t>(from)]);
        sum = sum.defined() ? sum + y : y;
      }
      nodes.push_back(sum.defined() ? sum : torch::zeros_like(h));
    }
    h = nodes.back();
  }
  h = torch::relu(last_bn_->forward(h));
  h = torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
  return {classifier_->forward(h), torch::Tensor()};
}

int64_t Nb201Network::multiply_adds(int64_t height, int64_t width) const {
  const int64_t C = options_.channels;
  int64_t h = height, w = width;
  int64_t macs = options_.input_channels * C * 9 * h * w;  // stem
  int64_t c_prev = C;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t c = C << stage;
    if (stage > 0) {  // ResNet basic block, stride 2: two 3x3 convs and the pooled 1x1 shortcut
      const int64_t ho = out_size(h, 3, 2, 1), wo = out_size(w, 3, 2, 1);
      macs += c_prev * c * 9 * ho * wo + c * c * 9 * ho * wo + c_prev * c * (h / 2) * (w / 2);
      h = ho;
      w = wo;
    }
    for (int64_t i = 0; i < options_.cells; ++i)
      for (const auto& op : ops_) {
        if (op == "nor_conv_3x3") macs += c * c * 9 * h * w;
        if (op == "nor_conv_1x1") macs += c * c * h * w;
      }
    c_prev = c;
  }
  return macs + c_prev * options_.classes;
}

// ---------------------------------------------------------------------------------------------
// DARTS

AuxiliaryHead::AuxiliaryHead(int64_t channels, int64_t classes) {
  features_ = register_module("features", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(channels, 128, 1).bias(false)),
                                                         nn::BatchNorm2d(128), nn::ReLU(),
                                                         nn::Conv2d(nn::Conv2dOptions(128, 768, 2).bias(false)),
                                                         nn::BatchNorm2d(768), nn::ReLU()));
  classifier_ = register_module("classifier", nn::Linear(768, classes));
}

torch::Tensor AuxiliaryHead::forward(const torch::Tensor& x) {
  auto h = torch::relu(x);
  // DARTS pools CIFAR's 8x8 maps with a 5x5 window at stride 3 to 2x2; other sizes are pooled to 2x2 adaptively.
  if (out_size(h.size(2), 5, 3, 0) == 2 && out_size(h.size(3), 5, 3, 0) == 2)
    h = torch::avg_pool2d(h, 5, 3, 0, /*ceil_mode=*/false, /*count_include_pad=*/false);
  else
    h = torch::adaptive_avg_pool2d(h, {2, 2});
  return classifier_->forward(features_->forward(h).flatten(1));
}

namespace {

// A DARTS operation of the evaluation network: affine BN, pooling without BN (DARTS's OPS table).
OpPtr make_darts_eval_op(const std::string& name, int64_t c, int64_t stride) {
  const BnOptions bn{true, true};
  if (name == "max_pool_3x3") return std::make_shared<Pooling>(c, c, stride, false, bn);
  if (name == "avg_pool_3x3") return std::make_shared<Pooling>(c, c, stride, true, bn);
  return make_darts_op(name, c, stride, bn);
}

int64_t darts_op_macs(const std::string& op, int64_t c, int64_t stride, int64_t h, int64_t w) {
  auto macs_of = [&](int64_t kernel, int64_t padding, int64_t dilation) {
    const int64_t ho = out_size(h, kernel, stride, padding, dilation), wo = out_size(w, kernel, stride, padding, dilation);
    return (c * kernel * kernel + c * c) * ho * wo;  // depthwise, then pointwise
  };
  if (op == "sep_conv_3x3") return 2 * macs_of(3, 1, 1);  // (the second half at the output size)
  if (op == "sep_conv_5x5") return 2 * macs_of(5, 2, 1);
  if (op == "dil_conv_3x3") return macs_of(3, 2, 2);
  if (op == "dil_conv_5x5") return macs_of(5, 4, 2);
  if (op == "skip_connect" && stride == 2) return c * c * out_size(h, 1, 2, 0) * out_size(w, 1, 2, 0);
  return 0;  // identity and pooling
}

}  // namespace

DartsEvalCell::DartsEvalCell(const std::vector<NodeInputs>& nodes, int64_t c_prev_prev, int64_t c_prev,
                             int64_t channels, bool reduction, bool reduction_prev)
    : nodes_(nodes), reduction_(reduction), channels_(channels) {
  PROBNAS_CHECK(static_cast<int64_t>(nodes.size()) == kDartsCellNodes, "DARTS cell: ", nodes.size(), " nodes, expected ", kDartsCellNodes);
  const BnOptions bn{true, true};
  if (reduction_prev)
    pre0_ = register_module("preprocess0", std::make_shared<FactorizedReduce>(c_prev_prev, channels, 2, bn));
  else
    pre0_ = register_module("preprocess0", std::make_shared<ReLUConvBN>(c_prev_prev, channels, 1, 1, 0, 1, bn));
  pre1_ = register_module("preprocess1", std::make_shared<ReLUConvBN>(c_prev, channels, 1, 1, 0, 1, bn));
  for (size_t n = 0; n < nodes.size(); ++n) {
    ops_.emplace_back();
    site_.emplace_back();
    for (size_t i = 0; i < nodes[n].size(); ++i) {
      const auto& [name, from] = nodes[n][i];
      const int64_t stride = reduction && from < 2 ? 2 : 1;
      auto op = make_darts_eval_op(name, channels, stride);
      ops_[n].push_back(register_module("node" + std::to_string(n + 2) + "_" + std::to_string(i) + "_" + name, op));
      const bool identity = std::dynamic_pointer_cast<Identity>(op) != nullptr;
      site_[n].push_back(identity ? -1 : sites_++);
    }
  }
}

torch::Tensor DartsEvalCell::forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& masks) {
  std::vector<torch::Tensor> states{pre0_->forward(s0), pre1_->forward(s1)};
  for (size_t n = 0; n < nodes_.size(); ++n) {
    torch::Tensor sum;
    for (size_t i = 0; i < nodes_[n].size(); ++i) {
      auto y = ops_[n][i]->forward(states[static_cast<size_t>(nodes_[n][i].second)]);
      if (masks.defined() && site_[n][i] >= 0) y = apply_drop_path(y, masks[site_[n][i]]);
      sum = sum.defined() ? sum + y : y;
    }
    if (!sum.defined()) {  // a node without inputs contributes zeros at the cell's output size
      auto ref = states[1];
      if (reduction_) ref = torch::max_pool2d(ref, 3, 2, 1);
      sum = torch::zeros_like(ref);
    }
    states.push_back(sum);
  }
  return torch::cat({states[2], states[3], states[4], states[5]}, 1);
}

int64_t DartsEvalCell::multiply_adds(int64_t c_prev_prev, int64_t c_prev, int64_t h, int64_t w) const {
  // (h, w): the size of the cell's second input s1; s0 is twice as large after a reduction.
  const int64_t c = channels_;
  // preprocess1 (1x1 conv); preprocess0: a 1x1 conv, or after a reduction the factorized reduce's two
  // stride-2 halves of C/2 channels each, at the same output size: the same count either way.
  int64_t macs = c_prev * c * h * w + c_prev_prev * c * h * w;
  for (size_t n = 0; n < nodes_.size(); ++n)
    for (const auto& [name, from] : nodes_[n]) {
      const int64_t stride = reduction_ && from < 2 ? 2 : 1;
      // Inputs of a reduction cell's later nodes are already reduced.
      const int64_t hh = reduction_ && from >= 2 ? out_size(h, 3, 2, 1) : h;
      const int64_t ww = reduction_ && from >= 2 ? out_size(w, 3, 2, 1) : w;
      macs += darts_op_macs(name, c, stride, hh, ww);
    }
  return macs;
}

DartsNetwork::DartsNetwork(const std::vector<NodeInputs>& normal, const std::vector<NodeInputs>& reduce,
                           const EvalNetworkOptions& o)
    : options_(o) {
  PROBNAS_CHECK(o.cells >= 3, "DARTS network: ", o.cells, " cells (at least 3: two of them reduce)");
  PROBNAS_CHECK(o.stem == "cifar" || o.stem == "imagenet", "DARTS network: stem '", o.stem,
                "' (allowed: cifar, imagenet)");
  const int64_t C = o.channels;
  int64_t c_pp = 0, c_p = 0;
  bool reduction_prev = false;
  if (o.stem == "cifar") {
    stem_ = register_module("stem", nn::Sequential(plain_conv(o.input_channels, 3 * C, 3, 1, 1), nn::BatchNorm2d(3 * C)));
    c_pp = c_p = 3 * C;
  } else {  // NetworkImageNet: C/2 and C channels at 1/2 and 1/4, then C at 1/8
    stem0_ = register_module("stem0", nn::Sequential(plain_conv(o.input_channels, C / 2, 3, 2, 1), nn::BatchNorm2d(C / 2),
                                                     nn::ReLU(), plain_conv(C / 2, C, 3, 2, 1), nn::BatchNorm2d(C)));
    stem1_ = register_module("stem1", nn::Sequential(nn::ReLU(), plain_conv(C, C, 3, 2, 1), nn::BatchNorm2d(C)));
    c_pp = c_p = C;
    reduction_prev = true;
  }
  int64_t c = C;
  for (int64_t i = 0; i < o.cells; ++i) {
    const bool reduction = i == o.cells / 3 || i == 2 * o.cells / 3;
    if (reduction) c *= 2;
    cells_.push_back(register_module("cell" + std::to_string(i),
                                     std::make_shared<DartsEvalCell>(reduction ? reduce : normal, c_pp, c_p, c,
                                                                     reduction, reduction_prev)));
    reduction_prev = reduction;
    c_pp = c_p;
    c_p = kDartsCellNodes * c;
    if (i == 2 * o.cells / 3 && o.auxiliary) {
      aux_after_ = i;
      aux_ = register_module("auxiliary", std::make_shared<AuxiliaryHead>(c_p, o.classes));
    }
  }
  classifier_ = register_module("classifier", nn::Linear(c_p, o.classes));
}

int64_t DartsNetwork::drop_path_sites() const {
  int64_t n = 0;
  for (const auto& cell : cells_) n += cell->drop_path_sites();
  return n;
}

EvalOutput DartsNetwork::forward(const torch::Tensor& x, double drop_path, at::Generator* gen) {
  torch::Tensor s0, s1;
  if (stem_) {
    s0 = s1 = stem_->forward(x);
  } else {
    s0 = stem0_->forward(x);
    s1 = stem1_->forward(s0);
  }
  // Every drop-path mask of the pass in one draw: [sites, batch], 0 or 1/keep.
  torch::Tensor masks;
  if (is_training() && drop_path > 0) {
    PROBNAS_CHECK(gen != nullptr, "internal: drop-path needs a generator");
    const double keep = 1.0 - drop_path;
    // Drawn on the host generator and copied without a sync (core/host_draws.h).
    masks = host_to_device(
        torch::bernoulli(torch::full({drop_path_sites(), x.size(0)}, keep, torch::kFloat64), *gen).div_(keep).to(
            torch::kFloat32),
        x.device());
  }
  EvalOutput out;
  int64_t first_site = 0;
  for (size_t i = 0; i < cells_.size(); ++i) {
    const auto& cell = cells_[i];
    const int64_t sites = cell->drop_path_sites();
    const auto m = masks.defined() && sites > 0 ? masks.narrow(0, first_site, sites) : torch::Tensor();
    first_site += sites;
    auto next = cell->forward(s0, s1, m);
    s0 = s1;
    s1 = next;
    if (static_cast<int64_t>(i) == aux_after_ && aux_ && is_training()) out.aux_logits = aux_->forward(s1);
  }
  out.logits = classifier_->forward(torch::adaptive_avg_pool2d(s1, {1, 1}).flatten(1));
  return out;
}

int64_t DartsNetwork::multiply_adds(int64_t height, int64_t width) const {
  const int64_t C = options_.channels;
  int64_t macs = 0, h = height, w = width, c_pp = 0, c_p = 0;
  if (options_.stem == "cifar") {
    macs += options_.input_channels * 3 * C * 9 * h * w;
    c_pp = c_p = 3 * C;
  } else {
    const int64_t h1 = out_size(h, 3, 2, 1), w1 = out_size(w, 3, 2, 1);
    const int64_t h2 = out_size(h1, 3, 2, 1), w2 = out_size(w1, 3, 2, 1);
    const int64_t h3 = out_size(h2, 3, 2, 1), w3 = out_size(w2, 3, 2, 1);
    macs += options_.input_channels * (C / 2) * 9 * h1 * w1 + (C / 2) * C * 9 * h2 * w2 + C * C * 9 * h3 * w3;
    h = h3;
    w = w3;
    c_pp = c_p = C;
  }
  int64_t c = C;
  for (const auto& cell : cells_) {
    if (cell->reduction()) c *= 2;
    macs += cell->multiply_adds(c_pp, c_p, h, w);
    if (cell->reduction()) {
      h = out_size(h, 3, 2, 1);
      w = out_size(w, 3, 2, 1);
    }
    c_pp = c_p;
    c_p = kDartsCellNodes * c;
  }
  return macs + c_p * options_.classes;
}

// ---------------------------------------------------------------------------------------------
// PGNAS candidates

PrunedModule::ConvBn PrunedModule::adopt(const std::string& name, const PrunedConvBn& c) {
  ConvBn m;
  m.weight = register_parameter(name + "_weight", c.weight.detach().clone());
  m.bn_weight = register_parameter(name + "_bn_weight", c.bn_weight.detach().clone());
  m.bn_bias = register_parameter(name + "_bn_bias", c.bn_bias.detach().clone());
  m.bn_mean = register_buffer(name + "_bn_running_mean", c.bn_mean.detach().clone());
  m.bn_var = register_buffer(name + "_bn_running_var", c.bn_var.detach().clone());
  m.stride = c.stride;
  m.padding = c.padding;
  return m;
}

PrunedModule::PrunedModule(const PrunedNet& net) : eps_(net.bn_eps) {
  stem_ = adopt("stem", net.stem);
  for (size_t i = 0; i < net.blocks.size(); ++i) {
    const auto& b = net.blocks[i];
    Block block;
    block.total_branches = b.total_branches;
    block.projection = b.projection;
    const std::string prefix = "block" + std::to_string(i);
    for (const auto& br : b.branches) {
      Branch branch;
      const std::string bp = prefix + "_k" + std::to_string(br.kernel);
      branch.input_channels = register_buffer(bp + "_input_channels", br.input_channels.clone());
      branch.conv1 = adopt(bp + "_conv1", br.conv1);
      branch.conv2 = adopt(bp + "_conv2", br.conv2);
      block.branches.push_back(std::move(branch));
    }
    if (b.projection) block.shortcut = adopt(prefix + "_shortcut", b.shortcut);
    blocks_.push_back(std::move(block));
  }
  fc_weight_ = register_parameter("fc_weight", net.fc_weight.detach().clone());
  fc_bias_ = register_parameter("fc_bias", net.fc_bias.detach().clone());
}

torch::Tensor PrunedModule::conv_bn(const ConvBn& c, const torch::Tensor& x) {
  const auto y = torch::conv2d(x, c.weight, {}, c.stride, c.padding);
  return torch::batch_norm(y, c.bn_weight, c.bn_bias, c.bn_mean, c.bn_var, is_training(), 0.1, eps_, true);
}

EvalOutput PrunedModule::forward(const torch::Tensor& x, double, at::Generator*) {
  auto h = torch::relu(conv_bn(stem_, x));
  for (const auto& block : blocks_) {
    const auto r = torch::relu(h);
    torch::Tensor sum;
    for (const auto& b : block.branches) {
      auto a = torch::relu(conv_bn(b.conv1, r.index_select(1, b.input_channels)));
      a = conv_bn(b.conv2, a);
      sum = sum.defined() ? sum + a : a;
    }
    const auto shortcut = block.projection ? conv_bn(block.shortcut, r) : h;
    h = sum.defined() ? shortcut + sum / static_cast<double>(block.total_branches) : shortcut;
  }
  h = torch::adaptive_avg_pool2d(torch::relu(h), {1, 1}).flatten(1);
  return {torch::linear(h, fc_weight_, fc_bias_), torch::Tensor()};
}

int64_t PrunedModule::multiply_adds(int64_t height, int64_t width) const {
  auto conv_macs = [](const ConvBn& c, int64_t& h, int64_t& w) {
    const int64_t k = c.weight.size(2);
    h = out_size(h, k, c.stride, c.padding);
    w = out_size(w, k, c.stride, c.padding);
    return c.weight.numel() * h * w;
  };
  int64_t h = height, w = width;
  int64_t macs = conv_macs(stem_, h, w);
  for (const auto& block : blocks_) {
    int64_t out_h = h, out_w = w;
    for (const auto& b : block.branches) {
      int64_t bh = h, bw = w;
      macs += conv_macs(b.conv1, bh, bw);
      macs += conv_macs(b.conv2, bh, bw);
      out_h = bh;
      out_w = bw;
    }
    if (block.projection) {
      int64_t sh = h, sw = w;
      macs += conv_macs(block.shortcut, sh, sw);
      out_h = sh;
      out_w = sw;
    }
    h = out_h;
    w = out_w;
  }
  return macs + fc_weight_.numel();
}

std::shared_ptr<EvalNetwork> make_eval_network(const Genotype& g, const EvalNetworkOptions& options) {
  if (g.space == "nb201") return std::make_shared<Nb201Network>(nb201_cell_ops(g), options);
  if (g.space == "darts") {
    const auto normal = darts_cell_nodes(g, "normal");  // checked first, so errors name the normal cell first
    return std::make_shared<DartsNetwork>(normal, darts_cell_nodes(g, "reduce"), options);
  }
  PROBNAS_FAIL("no evaluation network for genotypes of the '", g.space, "' space (allowed: nb201, darts)");
}

}  // namespace probnas
