#include "probnas/space/darts_space.h"

#include <algorithm>
#include <sstream>

#include "probnas/core/error.h"

namespace probnas {

namespace nn = torch::nn;

const std::vector<std::string> kDartsOps = {"none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                            "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};

namespace {
nn::Conv2d cell_conv(int64_t c_in, int64_t c_out, int64_t k, int64_t stride, int64_t padding, int64_t dilation = 1,
                int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(c_in, c_out, k)
                        .stride(stride)
                        .padding(padding)
                        .dilation(dilation)
                        .groups(groups)
                        .bias(false));
}
}  // namespace

SepConv::SepConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, const BnOptions& bn) {
  body_ = register_module("body", nn::Sequential(nn::ReLU(), cell_conv(c_in, c_in, kernel, stride, padding, 1, c_in),
                                                 cell_conv(c_in, c_in, 1, 1, 0), make_bn(c_in, bn), nn::ReLU(),
                                                 cell_conv(c_in, c_in, kernel, 1, padding, 1, c_in),
                                                 cell_conv(c_in, c_out, 1, 1, 0), make_bn(c_out, bn)));
}

torch::Tensor SepConv::forward(const torch::Tensor& x) { return body_->forward(x); }

namespace {
nn::Conv2dImpl& conv_at(nn::Sequential& body, size_t i) { return *body->ptr(i)->as<nn::Conv2dImpl>(); }
nn::BatchNorm2dImpl& bn_at(nn::Sequential& body, size_t i) { return *body->ptr(i)->as<nn::BatchNorm2dImpl>(); }

// Widens the (depthwise `first`, pointwise first+1, BN first+2) run of `body` whose input channels
// map by `in`; returns the map of its output channels. Each layer's input follows the map of the
// layer before it, so a new channel stays the copy of its source through the run.
torch::Tensor widen_separable(nn::Sequential& body, size_t first, const torch::Tensor& in, int64_t channels,
                              Widener& w) {
  widen_depthwise(conv_at(body, first), in, w);
  widen_conv_in(conv_at(body, first + 1), in, w);
  const auto out = w.mapping(conv_at(body, first + 1).weight.size(0), channels);
  widen_conv_out(conv_at(body, first + 1), out, w);
  widen_bn(bn_at(body, first + 2), out, w);
  return out;
}
}  // namespace

void SepConv::widen(int64_t channels, Widener& w) {
  // (ReLU, depthwise 1, pointwise 2, BN 3) x 2; the second run's input is the first run's output.
  const auto in = w.mapping(conv_at(body_, 1).weight.size(0), channels);
  widen_separable(body_, 5, widen_separable(body_, 1, in, channels, w), channels, w);
}

DilConv::DilConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                 const BnOptions& bn) {
  body_ = register_module("body", nn::Sequential(nn::ReLU(), cell_conv(c_in, c_in, kernel, stride, padding, dilation, c_in),
                                                 cell_conv(c_in, c_out, 1, 1, 0), make_bn(c_out, bn)));
}

torch::Tensor DilConv::forward(const torch::Tensor& x) { return body_->forward(x); }

void DilConv::widen(int64_t channels, Widener& w) {
  widen_separable(body_, 1, w.mapping(conv_at(body_, 1).weight.size(0), channels), channels, w);
}

DartsPool::DartsPool(int64_t channels, int64_t stride, bool average, const BnOptions& bn)
    : stride_(stride), average_(average) {
  bn_ = register_module("bn", make_bn(channels, bn));
}

torch::Tensor DartsPool::pool(const torch::Tensor& x) const {
  return average_ ? torch::avg_pool2d(x, {3, 3}, {stride_, stride_}, {1, 1}, /*ceil_mode=*/false,
                                      /*count_include_pad=*/false)
                  : torch::max_pool2d(x, {3, 3}, {stride_, stride_}, {1, 1});
}

torch::Tensor DartsPool::forward(const torch::Tensor& x) { return bn_->forward(pool(x)); }

void DartsPool::widen(int64_t channels, Widener& w) {
  // Pooling is per channel: new channel j pools input channel j; its BN statistics start as g(j)'s.
  widen_bn(*bn_, w.mapping(bn_->options.num_features(), channels), w);
}

OpPtr make_darts_op(const std::string& name, int64_t c, int64_t stride, const BnOptions& bn) {
  if (name == "none") return std::make_shared<Zero>(c, c, stride);
  if (name == "max_pool_3x3") return std::make_shared<DartsPool>(c, stride, false, bn);
  if (name == "avg_pool_3x3") return std::make_shared<DartsPool>(c, stride, true, bn);
  if (name == "skip_connect") {
    if (stride == 1) return std::make_shared<Identity>();
    return std::make_shared<FactorizedReduce>(c, c, stride, bn);
  }
  if (name == "sep_conv_3x3") return std::make_shared<SepConv>(c, c, 3, stride, 1, bn);
  if (name == "sep_conv_5x5") return std::make_shared<SepConv>(c, c, 5, stride, 2, bn);
  if (name == "dil_conv_3x3") return std::make_shared<DilConv>(c, c, 3, stride, 2, 2, bn);
  if (name == "dil_conv_5x5") return std::make_shared<DilConv>(c, c, 5, stride, 4, 2, bn);
  PROBNAS_FAIL("unknown DARTS operation '", name, "'");
}

ArchShape darts_arch_shape(const std::vector<std::string>& ops) {
  ArchShape shape;
  for (const char* name : {"normal", "reduce"}) {
    ArchGroup g;
    g.name = name;
    for (int node = 2; node < 2 + DartsCell::kSteps; ++node)
      for (int from = 0; from < node; ++from) g.edge_names.push_back(std::to_string(node) + "<-" + std::to_string(from));
    g.ops = ops;
    shape.push_back(g);
  }
  return shape;
}

std::vector<std::string> darts_op_subset(const std::vector<std::string>& names, const std::string& key) {
  if (names.empty()) return kDartsOps;
  for (size_t i = 0; i < names.size(); ++i) {
    PROBNAS_CHECK(std::find(kDartsOps.begin(), kDartsOps.end(), names[i]) != kDartsOps.end(), key, ": unknown DARTS operation '",
                  names[i], "' (allowed: none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, "
                  "dil_conv_3x3, dil_conv_5x5)");
    PROBNAS_CHECK(std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) ==
                      names.begin() + static_cast<std::ptrdiff_t>(i),
                  key, ": operation '", names[i], "' is listed twice");
  }
  std::vector<std::string> subset;
  for (const auto& op : kDartsOps)
    if (std::find(names.begin(), names.end(), op) != names.end()) subset.push_back(op);
  PROBNAS_CHECK(subset.size() >= 2 || (subset.size() == 1 && subset[0] != "none"), key,
                " must leave at least one operation other than none");
  return subset;
}

torch::Tensor shuffle_channels(const torch::Tensor& x, int64_t groups) {
  const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  return x.view({b, groups, c / groups, h, w}).transpose(1, 2).contiguous().view({b, c, h, w});
}

DartsCell::DartsCell(int64_t c_prev_prev, int64_t c_prev, int64_t c, bool reduction, bool reduction_prev,
                     const BnOptions& bn, const std::vector<std::string>& ops, int64_t k)
    : reduction_(reduction), channels_(c), k_(k), ops_(ops) {
  PROBNAS_CHECK(k >= 1 && c % k == 0, "partial channels K = ", k, " must divide the cell's ", c,
                " channels (choose K dividing space.channels)");
  // The previous-previous output is halved in size when the previous cell reduced.
  if (reduction_prev)
    pre0_ = register_module("preprocess0", std::make_shared<FactorizedReduce>(c_prev_prev, c, 2, bn));
  else
    pre0_ = register_module("preprocess0", std::make_shared<ReLUConvBN>(c_prev_prev, c, 1, 1, 0, 1, bn));
  pre1_ = register_module("preprocess1", std::make_shared<ReLUConvBN>(c_prev, c, 1, 1, 0, 1, bn));
  int e = 0;
  for (int node = 0; node < kSteps; ++node) {
    for (int from = 0; from < node + 2; ++from, ++e) {
      const int64_t stride = reduction && from < 2 ? 2 : 1;
      strides_.push_back(stride);
      std::vector<OpPtr> edge;
      for (const auto& name : ops_)
        edge.push_back(register_module("edge" + std::to_string(e) + "_" + name, make_darts_op(name, c / k, stride, bn)));
      edges_.push_back(std::move(edge));
    }
  }
}

torch::Tensor DartsCell::edge_output(int64_t e, const torch::Tensor& x, const torch::Tensor& weights,
                                      const std::vector<int64_t>* choice) {
  const auto& ops = edges_[static_cast<size_t>(e)];
  const int64_t* chosen = choice ? &(*choice)[static_cast<size_t>(e)] : nullptr;
  const auto w = weights.defined() ? weights[e] : torch::Tensor();
  if (k_ == 1) return mixed_edge(ops, x, w, chosen);
  // PC-DARTS: the first C/K channels through the operations, the rest passed by; then shuffled.
  const int64_t part = x.size(1) / k_;
  const auto through = x.narrow(1, 0, part);
  auto by = x.narrow(1, part, x.size(1) - part);
  auto out = mixed_edge(ops, through, w, chosen);
  if (strides_[static_cast<size_t>(e)] == 2) by = torch::max_pool2d(by, {2, 2}, {2, 2}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
  if (!out.defined()) out = torch::zeros({x.size(0), part, by.size(2), by.size(3)}, x.options());
  return shuffle_channels(torch::cat({out, by}, 1), k_);
}

torch::Tensor DartsCell::forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& weights,
                                 const std::vector<int64_t>* choice, const torch::Tensor& edge_weights) {
  if (fused_ && weights.defined() && choice == nullptr) return fused_forward(s0, s1, weights, edge_weights);
  std::vector<torch::Tensor> states{pre0_->forward(s0), pre1_->forward(s1)};
  int e = 0;
  for (int node = 0; node < kSteps; ++node) {
    torch::Tensor sum;
    for (int from = 0; from < node + 2; ++from, ++e) {
      auto out = edge_output(e, states[static_cast<size_t>(from)], weights, choice);
      if (out.defined() && edge_weights.defined()) out = out * edge_weights[e];
      sum = add_defined(sum, out);
    }
    // Every incoming edge chose `none`: the node is zero.
    states.push_back(sum.defined() ? sum : zero_node(states[1]));
  }
  return torch::cat({states[2], states[3], states[4], states[5]}, 1);
}

torch::Tensor DartsCell::zero_node(const torch::Tensor& s1) const {
  // At the reduced size in reduction cells.
  const int64_t h = reduction_ ? (s1.size(2) + 1) / 2 : s1.size(2), w = reduction_ ? (s1.size(3) + 1) / 2 : s1.size(3);
  return torch::zeros({s1.size(0), channels_, h, w}, s1.options());
}

torch::Tensor DartsCell::forward_paths(const torch::Tensor& s0, const torch::Tensor& s1,
                                       const std::vector<ArchPath>& paths) {
  PROBNAS_CHECK(k_ == 1, "DARTS space: sampled paths need all channels through the operations (partial channels K = ",
                k_, ")");
  std::vector<torch::Tensor> states{pre0_->forward(s0), pre1_->forward(s1)};
  int64_t first = 0;  // the node's first edge
  for (int node = 0; node < kSteps; ++node) {
    const int64_t inputs = node + 2;
    torch::Tensor sum;
    // Each distinct (edge, op) of the node once, times the number of times it was drawn.
    for (size_t i = 0; i < paths.size(); ++i) {
      const auto& p = paths[i];
      if (p.edge < first || p.edge >= first + inputs) continue;
      bool seen = false;
      int64_t count = 0;
      for (size_t j = 0; j < paths.size(); ++j) {
        if (!(paths[j] == p)) continue;
        if (j < i) seen = true;
        ++count;
      }
      if (seen) continue;
      const auto& op = edges_[static_cast<size_t>(p.edge)][static_cast<size_t>(p.op)];
      if (op->is_zero()) continue;
      auto out = op->forward(states[static_cast<size_t>(p.edge - first)]);
      sum = add_defined(sum, count == 1 ? out : out * static_cast<double>(count));
    }
    states.push_back(sum.defined() ? sum : zero_node(states[1]));
    first += inputs;
  }
  return torch::cat({states[2], states[3], states[4], states[5]}, 1);
}

void DartsCell::prune(const torch::Tensor& keep) {
  PROBNAS_CHECK(keep.dim() == 2 && keep.size(0) == kEdges && keep.size(1) == static_cast<int64_t>(ops_.size()),
                "pruning mask must be [14, ", ops_.size(), "], got ", keep.sizes());
  const auto k = keep.to(torch::kCPU, torch::kBool).contiguous();
  const auto a = k.accessor<bool, 2>();
  for (int64_t e = 0; e < kEdges; ++e)
    for (size_t o = 0; o < ops_.size(); ++o) {
      auto& op = edges_[static_cast<size_t>(e)][o];
      if (a[e][static_cast<int64_t>(o)] || !op) continue;
      unregister_module("edge" + std::to_string(e) + "_" + ops_[o]);
      op.reset();
    }
}

void DartsCell::set_partial_channels(int64_t k, Widener& widener) {
  PROBNAS_CHECK(k >= 1 && channels_ % k == 0, "partial channels K = ", k, " must divide the cell's ", channels_,
                " channels (choose K dividing space.channels)");
  PROBNAS_CHECK(k <= k_, "partial channels can only grow the operations: K ", k_, " -> ", k, " would narrow them");
  if (k == k_) return;
  for (auto& edge : edges_)
    for (auto& op : edge)
      if (op) op->widen(channels_ / k, widener);
  k_ = k;
}

DartsSupernet::DartsSupernet(const SpaceOptions& o)
    : k_(o.partial_channels), shape_(darts_arch_shape(darts_op_subset(o.ops, "space.ops"))) {
  PROBNAS_CHECK(o.partial_channels >= 1 && o.channels % o.partial_channels == 0, "space.partial_channels = ",
                o.partial_channels, " must divide space.channels = ", o.channels,
                " (channel shuffle splits every cell's channels into K groups)");
  PROBNAS_CHECK(o.channels >= 1, "space.channels = ", o.channels, " must be at least 1");
  PROBNAS_CHECK(o.cells >= 3, "space.cells = ", o.cells, " must be at least 3 (two of them reduce)");
  constexpr int64_t kStemMultiplier = 3, kMultiplier = DartsCell::kSteps;
  PROBNAS_CHECK(o.stem == "cifar" || o.stem == "imagenet", "space.stem = '", o.stem, "' (allowed: cifar, imagenet)");
  const int64_t C = o.channels, c_stem = kStemMultiplier * C;
  auto conv3x3 = [](int64_t c_in, int64_t c_out, int64_t stride) {
    return nn::Conv2d(nn::Conv2dOptions(c_in, c_out, 3).stride(stride).padding(1).bias(false));
  };
  // After the ImageNet stem both inputs of the first cell have 3C channels, s0 at twice s1's size:
  // the first cell treats s0 as if a reduction came before it (factorized reduce), as in DrNAS's
  // and PC-DARTS's ImageNet search networks.
  bool reduction_prev = false;
  if (o.stem == "cifar") {
    stem_ = register_module("stem", nn::Sequential(conv3x3(o.input_channels, c_stem, 1), nn::BatchNorm2d(c_stem)));
  } else {
    stem0_ = register_module("stem0",
                             nn::Sequential(conv3x3(o.input_channels, c_stem / 2, 2), nn::BatchNorm2d(c_stem / 2),
                                            nn::ReLU(), conv3x3(c_stem / 2, c_stem, 2), nn::BatchNorm2d(c_stem)));
    stem1_ = register_module("stem1", nn::Sequential(nn::ReLU(), conv3x3(c_stem, c_stem, 2), nn::BatchNorm2d(c_stem)));
    reduction_prev = true;
  }
  const BnOptions cell_bn{false, true};  // search-time BN: no affine parameters (DARTS, DrNAS)
  int64_t c_pp = c_stem, c_p = c_stem, c = C;
  for (int64_t i = 0; i < o.cells; ++i) {
    const bool reduction = i == o.cells / 3 || i == 2 * o.cells / 3;
    if (reduction) c *= 2;
    cells_.push_back(register_module("cell" + std::to_string(i),
                                     std::make_shared<DartsCell>(c_pp, c_p, c, reduction, reduction_prev, cell_bn,
                                                                 shape_[0].ops, o.partial_channels)));
    reduction_prev = reduction;
    c_pp = c_p;
    c_p = kMultiplier * c;
  }
  classifier_ = register_module("classifier", nn::Linear(c_p, o.classes));
}

std::pair<torch::Tensor, torch::Tensor> DartsSupernet::stem(const torch::Tensor& x) {
  if (stem_) {
    auto s = stem_->forward(x);
    return {s, s};
  }
  auto s0 = stem0_->forward(x);
  return {s0, stem1_->forward(s0)};
}

torch::Tensor DartsSupernet::forward(const torch::Tensor& x, const ArchSample& arch) {
  // Sampled paths alone (PARSEC); or choices, weights, or both (GDAS: the chosen operations scaled
  // by their weights).
  const bool with_paths = arch.has_paths(), with_choices = arch.has_choices(), with_weights = arch.has_weights();
  if (with_paths) {
    PROBNAS_CHECK(!with_choices && !with_weights && arch.edge_weights.empty() && arch.paths.size() == 2,
                  "the DARTS space takes sampled paths alone, for two groups (normal, reduce)");
    for (size_t g = 0; g < 2; ++g)
      for (const auto& p : arch.paths[g])
        PROBNAS_CHECK(p.edge >= 0 && p.edge < DartsCell::kEdges && p.op >= 0 && p.op < shape_[g].num_ops(),
                      "DARTS space: ", shape_[g].name, " path (edge ", p.edge, ", operation ", p.op,
                      ") is outside the 14 edges x ", shape_[g].num_ops(), " operations");
  } else {
    PROBNAS_CHECK((with_choices || with_weights) && (!with_choices || arch.choices.size() == 2) &&
                      (!with_weights || arch.weights.size() == 2),
                  "the DARTS space takes two architecture groups (normal, reduce)");
  }
  PROBNAS_CHECK(arch.edge_weights.empty() || (arch.edge_weights.size() == 2 &&
                                              arch.edge_weights[0].numel() == DartsCell::kEdges &&
                                              arch.edge_weights[1].numel() == DartsCell::kEdges),
                "DARTS space: edge weights must be two [14] tensors");
  for (size_t g = 0; g < 2; ++g) {
    if (with_choices)
      PROBNAS_CHECK(arch.choices[g].size() == DartsCell::kEdges, "DARTS space: ", shape_[g].name, " needs 14 choices, got ",
                    arch.choices[g].size());
    if (with_weights)
      PROBNAS_CHECK(arch.weights[g].dim() == 2 && arch.weights[g].size(0) == DartsCell::kEdges &&
                        arch.weights[g].size(1) == shape_[g].num_ops(),
                    "DARTS space: ", shape_[g].name, " mixing weights must be [14, ", shape_[g].num_ops(), "], got ",
                    arch.weights[g].sizes());
  }
  auto [s0, s1] = stem(in_memory_format(x));
  for (auto& cell : cells_) {
    const size_t g = cell->reduction() ? 1 : 0;
    auto out = with_paths ? cell->forward_paths(s0, s1, arch.paths[g])
                          : cell->forward(s0, s1, with_weights ? arch.weights[g] : torch::Tensor(),
                                          with_choices ? &arch.choices[g] : nullptr,
                                          arch.edge_weights.empty() ? torch::Tensor() : arch.edge_weights[g]);
    s0 = s1;
    s1 = out;
  }
  return classifier_->forward(torch::adaptive_avg_pool2d(s1, {1, 1}).flatten(1));
}

std::vector<std::pair<std::string, int64_t>> darts_parse(const torch::Tensor& weights,
                                                         const std::vector<std::string>& names) {
  PROBNAS_CHECK(weights.dim() == 2 && weights.size(0) == DartsCell::kEdges &&
                    weights.size(1) == static_cast<int64_t>(names.size()),
                "DARTS genotype: weights must be [14, ", names.size(), "], got ", weights.sizes());
  const auto w = weights.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto a = w.accessor<double, 2>();
  const auto none_at = std::find(names.begin(), names.end(), "none");
  const int64_t none = none_at == names.end() ? -1 : none_at - names.begin(), ops = w.size(1);
  // The strongest non-`none` operation of an edge (first maximum wins, as DARTS's loop).
  auto best_op = [&](int64_t e) {
    int64_t best = -1;
    for (int64_t k = 0; k < ops; ++k)
      if (k != none && (best < 0 || a[e][k] > a[e][best])) best = k;
    return best;
  };
  std::vector<std::pair<std::string, int64_t>> gene;
  int64_t start = 0;
  for (int64_t node = 0; node < DartsCell::kSteps; ++node) {
    const int64_t n = node + 2;
    std::vector<int64_t> inputs(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) inputs[static_cast<size_t>(j)] = j;
    // Python's sorted() is stable: among equally strong edges the lower input comes first.
    std::stable_sort(inputs.begin(), inputs.end(), [&](int64_t x, int64_t y) {
      return a[start + x][best_op(start + x)] > a[start + y][best_op(start + y)];
    });
    for (size_t t = 0; t < 2; ++t) {
      const int64_t j = inputs[t];
      gene.emplace_back(names[static_cast<size_t>(best_op(start + j))], j);
    }
    start += n;
  }
  return gene;
}

Genotype DartsSupernet::derive(const std::vector<torch::Tensor>& probs) const {
  PROBNAS_CHECK(probs.size() == 2, "DARTS genotype: two probability tables (normal, reduce), got ", probs.size());
  // Every edge with its probabilities; the edges DARTS keeps get their operation, the rest `none`.
  Genotype g = argmax_genotype("darts", shape_, probs);
  std::vector<std::pair<std::string, int64_t>> genes[2];
  for (size_t gi = 0; gi < 2; ++gi) {
    genes[gi] = darts_parse(probs[gi], shape_[gi].ops);
    for (auto& edge : g.edges) {
      if (edge.group != shape_[gi].name) continue;
      edge.op = "none";
      for (size_t t = 0; t < genes[gi].size(); ++t) {
        const std::string name = std::to_string(t / 2 + 2) + "<-" + std::to_string(genes[gi][t].second);
        if (edge.edge == name) edge.op = genes[gi][t].first;
      }
    }
  }
  g.text = format_darts(genes[0], genes[1]);
  return g;
}

void DartsSupernet::prune_operations(const std::vector<torch::Tensor>& keep) {
  PROBNAS_CHECK(keep.size() == 2, "DARTS space: pruning takes two masks (normal, reduce), got ", keep.size());
  for (auto& cell : cells_) cell->prune(keep[cell->reduction() ? 1 : 0]);
}

void DartsSupernet::set_fused(bool fused) {
  for (auto& cell : cells_) cell->set_fused(fused);
}

void DartsSupernet::set_partial_channels(int64_t k, Widener& widener) {
  for (auto& cell : cells_) cell->set_partial_channels(k, widener);
  k_ = k;
  // The widened operations' new weights. Today's are depthwise [C,1,k,k] and 1x1 weights, which are
  // contiguous in both layouts; an operation with full k x k kernels would need it.
  apply_memory_format();
}

}  // namespace probnas
