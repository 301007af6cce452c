#include "probnas/space/nb201.h"

#include "probnas/core/error.h"
#include "probnas/space/darts_space.h"
#include "probnas/space/multibranch.h"

namespace probnas {

ArchShape nb201_arch_shape() {
  ArchGroup g;
  g.name = "cell";
  for (int to = 1; to < Nb201Cell::kNodes; ++to)
    for (int from = 0; from < to; ++from) g.edge_names.push_back(std::to_string(to) + "<-" + std::to_string(from));
  g.ops = kNb201Ops;
  return {g};
}

Nb201Cell::Nb201Cell(int64_t channels, const BnOptions& bn) {
  edges_.resize(kEdges);
  for (int e = 0; e < kEdges; ++e) {
    for (const auto& name : kNb201Ops) {
      auto op = make_nb201_op(name, channels, channels, 1, bn);
      edges_[static_cast<size_t>(e)].push_back(register_module("edge" + std::to_string(e) + "_" + name, op));
    }
  }
}

namespace {
constexpr size_t kSkip = 1, kConv1 = 2, kConv3 = 3, kPool = 4;  // positions in kNb201Ops
}  // namespace

torch::Tensor Nb201Cell::stacked_conv(const torch::Tensor& relu_x, int from, size_t op) {
  std::vector<torch::nn::Conv2dImpl*> convs;
  std::vector<torch::nn::BatchNorm2dImpl*> bns;
  for (int to = from + 1; to < kNodes; ++to) {
    auto* o = static_cast<ReLUConvBN*>(edges_[static_cast<size_t>(edge_index(to, from))][op].get());
    convs.push_back(&o->conv_layer());
    bns.push_back(&o->bn_layer());
  }
  return stacked_batch_norm(stacked_conv2d(relu_x, convs), bns,
                            "fused NB201 cell, node " + std::to_string(from));
}

torch::Tensor Nb201Cell::fused_forward(const torch::Tensor& x, const torch::Tensor& weights) {
  std::vector<torch::Tensor> nodes{x};
  std::vector<torch::Tensor> sums(kNodes);
  for (int from = 0; from + 1 < kNodes; ++from) {
    const torch::Tensor& in = nodes[static_cast<size_t>(from)];
    const auto r = torch::relu(in);
    const auto conv3 = stacked_conv(r, from, kConv3), conv1 = stacked_conv(r, from, kConv1);
    const auto pooled = torch::avg_pool2d(in, 3, 1, 1, /*ceil_mode=*/false, /*count_include_pad=*/false);
    const int64_t c = in.size(1);
    // Target by target, on the stacked outputs split by target (one concatenation in the backward
    // pass), with 0-dim weights (no host copy).
    const auto c3 = conv3.split(c, 1), c1 = conv1.split(c, 1);
    for (int to = from + 1; to < kNodes; ++to) {
      const auto t = static_cast<size_t>(to - from - 1);
      const auto w = weights[edge_index(to, from)];
      auto at = [&](size_t op) { return w[static_cast<int64_t>(op)]; };
      // In kNb201Ops's order, as the reference sums them.
      const auto mixed = in * at(kSkip) + c1[t] * at(kConv1) + c3[t] * at(kConv3) + pooled * at(kPool);
      sums[static_cast<size_t>(to)] = add_defined(sums[static_cast<size_t>(to)], mixed);
    }
    nodes.push_back(sums[static_cast<size_t>(from + 1)]);
  }
  return nodes.back();
}

torch::Tensor Nb201Cell::forward(const torch::Tensor& x, const torch::Tensor& weights,
                                 const std::vector<int64_t>* choice) {
  if (fused_ && weights.defined() && choice == nullptr) return fused_forward(x, weights);
  std::vector<torch::Tensor> nodes{x};
  for (int to = 1; to < kNodes; ++to) {
    torch::Tensor sum;
    for (int from = 0; from < to; ++from) {
      const int e = edge_index(to, from);
      sum = add_defined(sum, mixed_edge(edges_[static_cast<size_t>(e)], nodes[static_cast<size_t>(from)],
                                        weights.defined() ? weights[e] : torch::Tensor(),
                                        choice ? &(*choice)[static_cast<size_t>(e)] : nullptr));
    }
    nodes.push_back(sum.defined() ? sum : torch::zeros_like(x));
  }
  return nodes.back();
}

Nb201Supernet::Nb201Supernet(const SpaceOptions& o) : shape_(nb201_arch_shape()) {
  PROBNAS_CHECK(o.channels >= 1, "space.channels = ", o.channels, " must be at least 1");
  PROBNAS_CHECK(o.cells_per_stage >= 1, "space.cells_per_stage = ", o.cells_per_stage, " must be at least 1");
  const int64_t C = o.channels, N = o.cells_per_stage;
  namespace nn = torch::nn;
  stem_ = register_module("stem", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(o.input_channels, C, 3).padding(1).bias(false)),
                                                 nn::BatchNorm2d(C)));
  // Search-time cells: BN without affine parameters, running statistics tracked (as NB201/DrNAS).
  const BnOptions cell_bn{false, true};
  int64_t c_prev = C;
  int index = 0;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t c = C << stage;
    if (stage > 0) {
      layers_.push_back(register_module("layer" + std::to_string(index++), std::make_shared<ResNetBasicBlock>(c_prev, c, 2)));
      is_cell_.push_back(false);
    }
    for (int64_t i = 0; i < N; ++i) {
      layers_.push_back(register_module("layer" + std::to_string(index++), std::make_shared<Nb201Cell>(c, cell_bn)));
      is_cell_.push_back(true);
    }
    c_prev = c;
  }
  last_bn_ = register_module("lastact_bn", nn::BatchNorm2d(c_prev));
  classifier_ = register_module("classifier", nn::Linear(c_prev, o.classes));
}

torch::Tensor Nb201Supernet::forward(const torch::Tensor& x, const ArchSample& arch) {
  PROBNAS_CHECK((arch.has_choices() || arch.has_weights()) && (!arch.has_choices() || arch.choices.size() == 1) &&
                    (!arch.has_weights() || arch.weights.size() == 1),
                "NB201 takes one architecture group (the cell)");
  PROBNAS_CHECK(arch.edge_weights.empty(), "edge normalisation (search.edge_norm) is built for the DARTS space");
  // Choices, weights, or both (GDAS: the chosen operations scaled by their weights).
  const std::vector<int64_t>* choice = arch.has_choices() ? &arch.choices[0] : nullptr;
  const torch::Tensor w = arch.has_weights() ? arch.weights[0] : torch::Tensor();
  if (w.defined())
    PROBNAS_CHECK(w.dim() == 2 && w.size(0) == Nb201Cell::kEdges && w.size(1) == static_cast<int64_t>(kNb201Ops.size()),
                  "NB201 mixing weights must be [6, 5], got ", w.sizes());
  if (choice) PROBNAS_CHECK(choice->size() == Nb201Cell::kEdges, "NB201 needs 6 choices, got ", choice->size());
  auto h = stem_->forward(in_memory_format(x));
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (is_cell_[i]) h = std::static_pointer_cast<Nb201Cell>(layers_[i])->forward(h, w, choice);
    else h = std::static_pointer_cast<ResNetBasicBlock>(layers_[i])->forward(h);
  }
  h = torch::relu(last_bn_->forward(h));
  h = torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
  return classifier_->forward(h);
}

void Nb201Supernet::set_fused(bool fused) {
  for (size_t i = 0; i < layers_.size(); ++i)
    if (is_cell_[i]) std::static_pointer_cast<Nb201Cell>(layers_[i])->set_fused(fused);
}

void Supernet::set_channels_last(bool on) {
  channels_last_ = on;
  apply_memory_format();
}

void Supernet::prune_operations(const std::vector<torch::Tensor>&) {
  PROBNAS_FAIL("the ", space_name(), " space cannot prune operations (progressive learning needs search.space = darts)");
}

void Supernet::set_partial_channels(int64_t, Widener&) {
  PROBNAS_FAIL("the ", space_name(), " space has no partial channels (progressive learning needs search.space = darts)");
}

std::shared_ptr<Supernet> make_supernet(const SpaceOptions& o) {
  if (o.space == "nb201") {
    PROBNAS_CHECK(o.ops.empty(), "space.ops applies to the DARTS space; the NB201 space has its 5 fixed operations");
    PROBNAS_CHECK(o.partial_channels == 1, "space.partial_channels = ", o.partial_channels,
                  ": partial channels are built for the DARTS space only (search.space = darts)");
    PROBNAS_CHECK(o.stem == "cifar", "space.stem = ", o.stem, " is for the DARTS space (search.space = darts); the "
                  "NB201 network has its own stem: leave space.stem at cifar");
    return std::make_shared<Nb201Supernet>(o);
  }
  if (o.space == "darts") return std::make_shared<DartsSupernet>(o);
  if (o.space == "multibranch") {
    PROBNAS_CHECK(o.ops.empty() && o.partial_channels == 1 && o.stem == "cifar",
                  "space.ops, space.partial_channels and space.stem are for the DARTS space; the multi-branch space "
                  "has its branches from space.kernels");
    SpaceOptions m = o;
    if (m.kernels.empty()) m.kernels = parse_kernels(m.kernels_text);
    return std::make_shared<MultiBranchNet>(m);
  }
  PROBNAS_FAIL("search.space = '", o.space, "' is not built in this version (allowed: nb201, darts, multibranch)");
}

}  // namespace probnas
