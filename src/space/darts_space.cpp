#include "probnas/space/darts_space.h"

#include <algorithm>
#include <sstream>

#include "probnas/core/error.h"

namespace probnas {

namespace nn = torch::nn;

const std::vector<std::string> kDartsOps = {"none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                            "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};

namespace {
nn::Conv2d conv(int64_t c_in, int64_t c_out, int64_t k, int64_t stride, int64_t padding, int64_t dilation = 1,
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
  body_ = register_module("body", nn::Sequential(nn::ReLU(), conv(c_in, c_in, kernel, stride, padding, 1, c_in),
                                                 conv(c_in, c_in, 1, 1, 0), make_bn(c_in, bn), nn::ReLU(),
                                                 conv(c_in, c_in, kernel, 1, padding, 1, c_in),
                                                 conv(c_in, c_out, 1, 1, 0), make_bn(c_out, bn)));
}

torch::Tensor SepConv::forward(const torch::Tensor& x) { return body_->forward(x); }

DilConv::DilConv(int64_t c_in, int64_t c_out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                 const BnOptions& bn) {
  body_ = register_module("body", nn::Sequential(nn::ReLU(), conv(c_in, c_in, kernel, stride, padding, dilation, c_in),
                                                 conv(c_in, c_out, 1, 1, 0), make_bn(c_out, bn)));
}

torch::Tensor DilConv::forward(const torch::Tensor& x) { return body_->forward(x); }

DartsPool::DartsPool(int64_t channels, int64_t stride, bool average, const BnOptions& bn)
    : stride_(stride), average_(average) {
  bn_ = register_module("bn", make_bn(channels, bn));
}

torch::Tensor DartsPool::forward(const torch::Tensor& x) {
  const auto pooled =
      average_ ? torch::avg_pool2d(x, {3, 3}, {stride_, stride_}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false)
               : torch::max_pool2d(x, {3, 3}, {stride_, stride_}, {1, 1});
  return bn_->forward(pooled);
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

ArchShape darts_arch_shape() {
  ArchShape shape;
  for (const char* name : {"normal", "reduce"}) {
    ArchGroup g;
    g.name = name;
    for (int node = 2; node < 2 + DartsCell::kSteps; ++node)
      for (int from = 0; from < node; ++from) g.edge_names.push_back(std::to_string(node) + "<-" + std::to_string(from));
    g.ops = kDartsOps;
    shape.push_back(g);
  }
  return shape;
}

DartsCell::DartsCell(int64_t c_prev_prev, int64_t c_prev, int64_t c, bool reduction, bool reduction_prev,
                     const BnOptions& bn)
    : reduction_(reduction) {
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
      std::vector<OpPtr> ops;
      for (const auto& name : kDartsOps)
        ops.push_back(register_module("edge" + std::to_string(e) + "_" + name, make_darts_op(name, c, stride, bn)));
      edges_.push_back(std::move(ops));
    }
  }
}

torch::Tensor DartsCell::forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& weights,
                                 const std::vector<int64_t>* choice) {
  std::vector<torch::Tensor> states{pre0_->forward(s0), pre1_->forward(s1)};
  int e = 0;
  for (int node = 0; node < kSteps; ++node) {
    torch::Tensor sum;
    const int first_edge = e;
    for (int from = 0; from < node + 2; ++from, ++e)
      sum = add_defined(sum, mixed_edge(edges_[static_cast<size_t>(e)], states[static_cast<size_t>(from)],
                                        weights.defined() ? weights[e] : torch::Tensor(),
                                        choice ? &(*choice)[static_cast<size_t>(e)] : nullptr));
    if (!sum.defined()) {
      // Every incoming edge chose `none`: the node is zero, at the reduced size in reduction cells.
      sum = edges_[static_cast<size_t>(first_edge + 1)][0]->forward(states[1]);  // `none` from input 1
    }
    states.push_back(sum);
  }
  return torch::cat({states[2], states[3], states[4], states[5]}, 1);
}

DartsSupernet::DartsSupernet(const SpaceOptions& o) : shape_(darts_arch_shape()) {
  PROBNAS_CHECK(o.channels >= 1, "space.channels = ", o.channels, " must be at least 1");
  PROBNAS_CHECK(o.cells >= 3, "space.cells = ", o.cells, " must be at least 3 (two of them reduce)");
  constexpr int64_t kStemMultiplier = 3, kMultiplier = DartsCell::kSteps;
  const int64_t C = o.channels;
  stem_ = register_module(
      "stem", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(o.input_channels, kStemMultiplier * C, 3).padding(1).bias(false)),
                             nn::BatchNorm2d(kStemMultiplier * C)));
  const BnOptions cell_bn{false, true};  // search-time BN: no affine parameters (DARTS, DrNAS)
  int64_t c_pp = kStemMultiplier * C, c_p = kStemMultiplier * C, c = C;
  bool reduction_prev = false;
  for (int64_t i = 0; i < o.cells; ++i) {
    const bool reduction = i == o.cells / 3 || i == 2 * o.cells / 3;
    if (reduction) c *= 2;
    cells_.push_back(register_module("cell" + std::to_string(i),
                                     std::make_shared<DartsCell>(c_pp, c_p, c, reduction, reduction_prev, cell_bn)));
    reduction_prev = reduction;
    c_pp = c_p;
    c_p = kMultiplier * c;
  }
  classifier_ = register_module("classifier", nn::Linear(c_p, o.classes));
}

torch::Tensor DartsSupernet::forward(const torch::Tensor& x, const ArchSample& arch) {
  // Choices, weights, or both (GDAS: the chosen operations scaled by their weights).
  const bool with_choices = arch.has_choices(), with_weights = arch.has_weights();
  PROBNAS_CHECK((with_choices || with_weights) && (!with_choices || arch.choices.size() == 2) &&
                    (!with_weights || arch.weights.size() == 2),
                "the DARTS space takes two architecture groups (normal, reduce)");
  for (size_t g = 0; g < 2; ++g) {
    if (with_choices)
      PROBNAS_CHECK(arch.choices[g].size() == DartsCell::kEdges, "DARTS space: ", shape_[g].name, " needs 14 choices, got ",
                    arch.choices[g].size());
    if (with_weights)
      PROBNAS_CHECK(arch.weights[g].dim() == 2 && arch.weights[g].size(0) == DartsCell::kEdges &&
                        arch.weights[g].size(1) == static_cast<int64_t>(kDartsOps.size()),
                    "DARTS space: ", shape_[g].name, " mixing weights must be [14, 8], got ", arch.weights[g].sizes());
  }
  auto s0 = stem_->forward(x);
  auto s1 = s0;
  for (auto& cell : cells_) {
    const size_t g = cell->reduction() ? 1 : 0;
    auto out = cell->forward(s0, s1, with_weights ? arch.weights[g] : torch::Tensor(),
                             with_choices ? &arch.choices[g] : nullptr);
    s0 = s1;
    s1 = out;
  }
  return classifier_->forward(torch::adaptive_avg_pool2d(s1, {1, 1}).flatten(1));
}

std::vector<std::pair<std::string, int64_t>> darts_parse(const torch::Tensor& weights) {
  PROBNAS_CHECK(weights.dim() == 2 && weights.size(0) == DartsCell::kEdges &&
                    weights.size(1) == static_cast<int64_t>(kDartsOps.size()),
                "DARTS genotype: weights must be [14, 8], got ", weights.sizes());
  const auto w = weights.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto a = w.accessor<double, 2>();
  const int64_t none = 0, ops = w.size(1);
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
      gene.emplace_back(kDartsOps[static_cast<size_t>(best_op(start + j))], j);
    }
    start += n;
  }
  return gene;
}

std::string darts_genotype_string(const std::vector<std::pair<std::string, int64_t>>& normal,
                                  const std::vector<std::pair<std::string, int64_t>>& reduce) {
  auto list = [](const std::vector<std::pair<std::string, int64_t>>& gene) {
    std::ostringstream o;
    o << "[";
    for (size_t i = 0; i < gene.size(); ++i) o << (i ? ", " : "") << "('" << gene[i].first << "', " << gene[i].second << ")";
    o << "]";
    return o.str();
  };
  return "Genotype(normal=" + list(normal) + ", normal_concat=range(2, 6), reduce=" + list(reduce) +
         ", reduce_concat=range(2, 6))";
}

Genotype DartsSupernet::derive(const std::vector<torch::Tensor>& probs) const {
  PROBNAS_CHECK(probs.size() == 2, "DARTS genotype: two probability tables (normal, reduce), got ", probs.size());
  // Every edge with its probabilities; the edges DARTS keeps get their operation, the rest `none`.
  Genotype g = argmax_genotype("darts", shape_, probs);
  std::vector<std::pair<std::string, int64_t>> genes[2];
  for (size_t gi = 0; gi < 2; ++gi) {
    genes[gi] = darts_parse(probs[gi]);
    for (auto& edge : g.edges) {
      if (edge.group != shape_[gi].name) continue;
      edge.op = "none";
      for (size_t t = 0; t < genes[gi].size(); ++t) {
        const std::string name = std::to_string(t / 2 + 2) + "<-" + std::to_string(genes[gi][t].second);
        if (edge.edge == name) edge.op = genes[gi][t].first;
      }
    }
  }
  g.text = darts_genotype_string(genes[0], genes[1]);
  return g;
}

}  // namespace probnas
