// The DARTS cell's fused forward (DartsCell::set_fused): the edges that leave one node computed
// together (one ReLU, each pooling once, the factorized reductions in one call). The reference,
// one edge and operation at a time, is DartsCell::forward with set_fused(false);
// tests/unit/test_darts_fused.cpp holds them equal.
#include <algorithm>
#include <map>

#include "probnas/core/error.h"
#include "probnas/space/darts_space.h"

namespace probnas {

namespace nn = torch::nn;

namespace {
// [B, T * C, H, W] as [B, T, C, H, W] (edge t's channels at t * C).
torch::Tensor per_edge(const torch::Tensor& y, int64_t t) {
  return y.view({y.size(0), t, y.size(1) / t, y.size(2), y.size(3)});
}

// [B, T, C, H, W] as [B, T * C, H, W].
torch::Tensor edges_stacked(const torch::Tensor& y) {
  return y.reshape({y.size(0), y.size(1) * y.size(2), y.size(3), y.size(4)});
}

}  // namespace

std::vector<torch::Tensor> DartsCell::fused_edges(const torch::Tensor& x, const std::vector<int64_t>& edges,
                                                  const torch::Tensor& weights) {
  const auto targets = static_cast<int64_t>(edges.size());
  const int64_t stride = strides_[static_cast<size_t>(edges.front())];
  // PC-DARTS: the first C/K channels go through the operations and the rest pass by; both are the
  // same for every edge that leaves x.
  const int64_t part = x.size(1) / k_;
  const auto in = k_ == 1 ? x : x.narrow(1, 0, part);
  torch::Tensor relu;  // ReLU(in), computed once
  auto relu_in = [&]() -> const torch::Tensor& {
    if (!relu.defined()) relu = torch::relu(in);
    return relu;
  };
  std::vector<torch::Tensor> out(static_cast<size_t>(targets));
  for (size_t oi = 0; oi < ops_.size(); ++oi) {
    std::vector<int64_t> at;  // positions in `edges` where the operation is present
    std::vector<Op*> members;
    for (int64_t p = 0; p < targets; ++p) {
      const auto& op = edges_[static_cast<size_t>(edges[static_cast<size_t>(p)])][oi];
      if (!op || op->is_zero()) continue;  // pruned, or `none` (adds nothing, as in mixed_edge)
      at.push_back(p);
      members.push_back(op.get());
    }
    if (members.empty()) continue;
    const auto n = static_cast<int64_t>(members.size());
    const auto& name = ops_[oi];
    // One output per member, or a single one that serves every member.
    std::vector<torch::Tensor> y;
    // [B, n * c, H, W] (member i's channels at i * c) as one tensor per member.
    auto split = [&](const torch::Tensor& stacked) {
      const int64_t c = stacked.size(1) / n;
      for (int64_t i = 0; i < n; ++i) y.push_back(stacked.narrow(1, i * c, c));
    };
    if (name == "skip_connect" && stride == 1) {
      y.push_back(in);
    } else if (name == "skip_connect") {  // factorized reduce: two offset 1x1 stride-2 convolutions, BN
      const auto& r = relu_in();
      const auto shifted = torch::constant_pad_nd(r, {0, 1, 0, 1}, 0.0).narrow(2, 1, r.size(2)).narrow(3, 1, r.size(3));
      std::vector<nn::Conv2dImpl*> a, b;
      std::vector<nn::BatchNorm2dImpl*> bns;
      for (auto* op : members) {
        auto* f = static_cast<FactorizedReduce*>(op);
        a.push_back(f->conv_a());
        b.push_back(f->conv_b());
        bns.push_back(&f->bn_layer());
      }
      // Both halves of every member side by side ([a_0 b_0 a_1 b_1 ...]), then one BatchNorm.
      const auto both = torch::cat({per_edge(stacked_conv2d(r, a), n), per_edge(stacked_conv2d(shifted, b), n)}, 2);
      split(stacked_batch_norm(edges_stacked(both), bns, "fused DARTS cell, " + name));
    } else if (name == "max_pool_3x3" || name == "avg_pool_3x3") {  // pooled once, one BN per edge
      const auto pooled = static_cast<DartsPool*>(members.front())->pool(in);
      for (auto* op : members) y.push_back(static_cast<DartsPool*>(op)->bn_layer().forward(pooled));
    } else if (name == "sep_conv_3x3" || name == "sep_conv_5x5" || name == "dil_conv_3x3" || name == "dil_conv_5x5") {
      // The body after its leading ReLU, edge by edge: grouped convolutions over the stacked edges
      // were measured slower on the CPU than one depthwise convolution per edge (docs/benchmarks.md).
      for (auto* op : members) {
        auto& body = name[0] == 's' ? static_cast<SepConv*>(op)->body() : static_cast<DilConv*>(op)->body();
        torch::Tensor h = relu_in();
        bool first = true;
        for (auto& layer : *body) {
          if (!first) h = layer.forward(h);
          first = false;
        }
        y.push_back(h);
      }
    } else {
      PROBNAS_FAIL("fused DARTS cell: no fused form of operation '", name, "'");
    }
    for (int64_t i = 0; i < n; ++i) {
      const auto p = at[static_cast<size_t>(i)];
      const auto& term = y[y.size() == 1 ? 0 : static_cast<size_t>(i)];
      auto& o = out[static_cast<size_t>(p)];
      o = add_defined(o, term * weights[edges[static_cast<size_t>(p)]][static_cast<int64_t>(oi)]);
    }
  }
  if (k_ == 1) return out;
  // The channels that pass by, once for all edges (max-pooled in reduction edges).
  auto by = x.narrow(1, part, x.size(1) - part);
  if (stride == 2) by = torch::max_pool2d(by, {2, 2}, {2, 2}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
  for (auto& o : out) {
    if (!o.defined()) o = torch::zeros({x.size(0), part, by.size(2), by.size(3)}, x.options());
    o = shuffle_channels(torch::cat({o, by}, 1), k_);
  }
  return out;
}

torch::Tensor DartsCell::fused_forward(const torch::Tensor& s0, const torch::Tensor& s1, const torch::Tensor& weights,
                                       const torch::Tensor& edge_weights) {
  std::vector<torch::Tensor> states{pre0_->forward(s0), pre1_->forward(s1)};
  std::vector<torch::Tensor> sums(kSteps);
  // Node j's edges start at j (j + 3) / 2 (0, 2, 5, 9); state s feeds nodes max(0, s - 1)..3, and
  // node j is complete once states 0..j+1 have been sent on, so every state exists before it is read.
  for (int from = 0; from <= kSteps; ++from) {
    std::vector<int64_t> edges;
    std::vector<int> nodes;
    for (int node = std::max(0, from - 1); node < kSteps; ++node) {
      edges.push_back(node * (node + 3) / 2 + from);
      nodes.push_back(node);
    }
    const auto outs = fused_edges(states[static_cast<size_t>(from)], edges, weights);
    for (size_t t = 0; t < outs.size(); ++t) {
      auto o = outs[t];
      if (o.defined() && edge_weights.defined()) o = o * edge_weights[edges[t]];
      auto& sum = sums[static_cast<size_t>(nodes[t])];
      sum = add_defined(sum, o);
    }
    if (from >= 1) {
      const auto& sum = sums[static_cast<size_t>(from - 1)];
      states.push_back(sum.defined() ? sum : zero_node(states[1]));
    }
  }
  return torch::cat({states[2], states[3], states[4], states[5]}, 1);
}

}  // namespace probnas
