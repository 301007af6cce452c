#include "probnas/method/categorical.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <set>

#include "probnas/core/error.h"
#include "probnas/space/darts_space.h"
#include "probnas/space/genotype.h"

namespace probnas {

ArchCategoricals::ArchCategoricals(const std::string& space, const ArchShape& shape, int64_t inputs_per_node)
    : space_(space), shape_(shape) {
  if (space == "nb201") {
    PROBNAS_CHECK(shape.size() == 1, "PARSEC: the NB201 space has one architecture group, got ", shape.size());
    for (int64_t e = 0; e < shape[0].edges(); ++e) {
      CategoricalVariable v;
      v.name = shape[0].name + "/" + shape[0].edge_names[static_cast<size_t>(e)];
      for (int64_t o = 0; o < shape[0].num_ops(); ++o) v.options.push_back({e, o});
      vars_.push_back(std::move(v));
    }
  } else if (space == "darts") {
    PROBNAS_CHECK(inputs_per_node >= 1, "PARSEC: inputs per node must be at least 1, got ", inputs_per_node);
    for (size_t g = 0; g < shape.size(); ++g) {
      int64_t first = 0;
      for (int64_t node = 0; node < DartsCell::kSteps; ++node) {
        const int64_t inputs = node + 2;
        for (int64_t slot = 0; slot < inputs_per_node; ++slot) {
          CategoricalVariable v;
          v.group = g;
          v.name = shape[g].name + "/node" + std::to_string(node + 2) + "/input" + std::to_string(slot + 1);
          for (int64_t i = 0; i < inputs; ++i)
            for (int64_t o = 0; o < shape[g].num_ops(); ++o) v.options.push_back({first + i, o});
          vars_.push_back(std::move(v));
        }
        first += inputs;
      }
    }
  } else {
    PROBNAS_FAIL("PARSEC searches the nb201 and darts spaces, not '", space, "'");
  }
  for (const auto& v : vars_) max_options_ = std::max<int64_t>(max_options_, static_cast<int64_t>(v.options.size()));
  mask_ = torch::full({variables(), max_options_}, -std::numeric_limits<double>::infinity(), torch::kFloat32);
  for (int64_t i = 0; i < variables(); ++i)
    mask_[i].narrow(0, 0, static_cast<int64_t>(vars_[static_cast<size_t>(i)].options.size())).zero_();
}

torch::Tensor ArchCategoricals::log_probs(const torch::Tensor& logits) const {
  PROBNAS_CHECK(logits.dim() == 2 && logits.size(0) == variables() && logits.size(1) == max_options_,
                "PARSEC: logits must be [", variables(), ", ", max_options_, "], got ", logits.sizes());
  return torch::log_softmax(logits + mask_.to(logits.device(), logits.scalar_type()), 1);
}

void ArchCategoricals::check(const ArchDraw& draw) const {
  PROBNAS_CHECK(static_cast<int64_t>(draw.size()) == variables(), "PARSEC: a draw needs ", variables(),
                " choices, got ", draw.size());
  for (size_t i = 0; i < draw.size(); ++i)
    PROBNAS_CHECK(draw[i] >= 0 && draw[i] < static_cast<int64_t>(vars_[i].options.size()), "PARSEC: choice ", draw[i],
                  " of ", vars_[i].name, " is not one of its ", vars_[i].options.size(), " options");
}

torch::Tensor ArchCategoricals::log_prob(const torch::Tensor& logits, const ArchDraw& draw) const {
  check(draw);
  const auto index = torch::tensor(draw, torch::kInt64).to(logits.device()).unsqueeze(1);
  return log_probs(logits).gather(1, index).sum();
}

torch::Tensor ArchCategoricals::entropy(const torch::Tensor& logits) const {
  const auto lp = log_probs(logits);
  // 0 log 0 = 0 on the padding (exp(-inf) * -inf would be nan).
  return -(lp.exp() * lp.masked_fill(torch::isinf(lp), 0)).sum();
}

ArchDraw ArchCategoricals::sample(const torch::Tensor& probs, const RngKey& key) const {
  PROBNAS_CHECK(probs.device().is_cpu() && probs.scalar_type() == torch::kFloat64 && probs.dim() == 2 &&
                    probs.size(0) == variables() && probs.size(1) == max_options_,
                "PARSEC: sampling needs [", variables(), ", ", max_options_, "] float64 probabilities on the CPU");
  auto gen = make_generator(key);
  const auto u = torch::rand({variables()}, gen, torch::kFloat64);
  const auto p = probs.contiguous();
  const auto pa = p.accessor<double, 2>();
  const auto ua = u.accessor<double, 1>();
  ArchDraw draw(vars_.size());
  for (int64_t i = 0; i < variables(); ++i) {
    const int64_t n = static_cast<int64_t>(vars_[static_cast<size_t>(i)].options.size());
    // The first option whose cumulative probability exceeds u; rounding that leaves the total just
    // under u falls to the last option with a non-zero probability.
    double cumulative = 0;
    int64_t chosen = -1, last = 0;
    for (int64_t c = 0; c < n; ++c) {
      if (pa[i][c] > 0) last = c;
      cumulative += pa[i][c];
      if (chosen < 0 && ua[i] < cumulative && pa[i][c] > 0) chosen = c;
    }
    draw[static_cast<size_t>(i)] = chosen >= 0 ? chosen : last;
  }
  return draw;
}

ArchDraw ArchCategoricals::mode(const torch::Tensor& logits) const { return most_probable(logits, 1).front().first; }

std::vector<std::pair<ArchDraw, double>> ArchCategoricals::most_probable(const torch::Tensor& logits, int64_t k) const {
  const auto lp = log_probs(logits.detach()).to(torch::kCPU, torch::kFloat64).contiguous();
  const auto a = lp.accessor<double, 2>();
  // Each variable's options from the most to the least probable (stable: the first on ties).
  std::vector<std::vector<int64_t>> order(vars_.size());
  for (size_t i = 0; i < vars_.size(); ++i) {
    auto& o = order[i];
    for (int64_t c = 0; c < static_cast<int64_t>(vars_[i].options.size()); ++c) o.push_back(c);
    std::stable_sort(o.begin(), o.end(), [&](int64_t x, int64_t y) {
      return a[static_cast<int64_t>(i)][x] > a[static_cast<int64_t>(i)][y];
    });
  }
  // Best-first search over rank vectors: the successors of a draw move one variable to its next
  // option, so every draw is reached after all draws at least as probable.
  using Entry = std::pair<double, std::vector<int64_t>>;  // (log p, rank per variable)
  auto worse = [](const Entry& x, const Entry& y) { return x.first < y.first || (x.first == y.first && x.second > y.second); };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> queue(worse);
  std::set<std::vector<int64_t>> seen;
  std::vector<int64_t> start(vars_.size(), 0);
  double best = 0;
  for (size_t i = 0; i < vars_.size(); ++i) best += a[static_cast<int64_t>(i)][order[i][0]];
  queue.emplace(best, start);
  seen.insert(start);
  std::vector<std::pair<ArchDraw, double>> out;
  while (!queue.empty() && static_cast<int64_t>(out.size()) < k) {
    const auto [value, ranks] = queue.top();
    queue.pop();
    ArchDraw draw(vars_.size());
    for (size_t i = 0; i < vars_.size(); ++i) draw[i] = order[i][static_cast<size_t>(ranks[i])];
    out.emplace_back(std::move(draw), value);
    for (size_t i = 0; i < vars_.size(); ++i) {
      if (ranks[i] + 1 >= static_cast<int64_t>(order[i].size())) continue;
      auto next = ranks;
      ++next[i];
      if (!seen.insert(next).second) continue;
      const int64_t v = static_cast<int64_t>(i);
      queue.emplace(value - a[v][order[i][static_cast<size_t>(ranks[i])]] + a[v][order[i][static_cast<size_t>(next[i])]],
                    std::move(next));
    }
  }
  return out;
}

ArchSample ArchCategoricals::arch_sample(const ArchDraw& draw) const {
  check(draw);
  if (space_ == "nb201") {
    std::vector<int64_t> choices;
    for (size_t i = 0; i < draw.size(); ++i) choices.push_back(vars_[i].options[static_cast<size_t>(draw[i])].op);
    return ArchSample::discrete({std::move(choices)});
  }
  std::vector<std::vector<ArchPath>> paths(shape_.size());
  for (size_t i = 0; i < draw.size(); ++i) paths[vars_[i].group].push_back(vars_[i].options[static_cast<size_t>(draw[i])]);
  return ArchSample::along(std::move(paths));
}

std::vector<torch::Tensor> ArchCategoricals::path_probabilities(const torch::Tensor& logits) const {
  const auto p = log_probs(logits.detach()).exp().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto a = p.accessor<double, 2>();
  std::vector<torch::Tensor> out;
  std::vector<torch::Tensor> slots;  // per group: how many variables feed each edge's node
  for (const auto& g : shape_) {
    out.push_back(torch::zeros({g.edges(), g.num_ops()}, torch::kFloat64));
    slots.push_back(torch::zeros({g.edges()}, torch::kFloat64));
  }
  for (size_t i = 0; i < vars_.size(); ++i) {
    auto w = out[vars_[i].group].accessor<double, 2>();
    std::set<int64_t> edges;
    for (size_t c = 0; c < vars_[i].options.size(); ++c) {
      const auto& path = vars_[i].options[c];
      w[path.edge][path.op] += a[static_cast<int64_t>(i)][static_cast<int64_t>(c)];
      edges.insert(path.edge);
    }
    for (const int64_t e : edges) slots[vars_[i].group][e] += 1;
  }
  for (size_t g = 0; g < out.size(); ++g)
    out[g] = (out[g] / slots[g].clamp_min(1).unsqueeze(1)).to(logits.device(), logits.scalar_type());
  return out;
}

std::string ArchCategoricals::describe(const ArchDraw& draw) const {
  check(draw);
  if (space_ == "nb201") {
    std::vector<std::string> ops;
    for (size_t i = 0; i < draw.size(); ++i) ops.push_back(shape_[0].ops[static_cast<size_t>(vars_[i].options[static_cast<size_t>(draw[i])].op)]);
    return format_nb201(ops);
  }
  std::vector<std::pair<std::string, int64_t>> genes[2];
  for (size_t i = 0; i < draw.size(); ++i) {
    const auto& path = vars_[i].options[static_cast<size_t>(draw[i])];
    // The edge's input node: edges of node n start at sum_{m < n} (m + 2).
    int64_t first = 0, node = 0;
    while (path.edge >= first + node + 2) first += node + 2, ++node;
    genes[vars_[i].group].emplace_back(shape_[vars_[i].group].ops[static_cast<size_t>(path.op)], path.edge - first);
  }
  return format_darts(genes[0], genes[1]);
}

torch::Tensor importance_weights(const torch::Tensor& log_likelihoods) {
  PROBNAS_CHECK(log_likelihoods.dim() == 1 && log_likelihoods.numel() >= 1,
                "PARSEC: importance weights need a vector of log-likelihoods, got ", log_likelihoods.sizes());
  // softmax subtracts the maximum first: exp of the largest term is 1, whatever the scale.
  return torch::softmax(log_likelihoods.to(torch::kFloat64), 0);
}

}  // namespace probnas
