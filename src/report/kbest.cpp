#include "probnas/report/kbest.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <set>
#include <tuple>
#include <utility>

namespace probnas {

std::vector<RankedAssignment> most_probable_assignments(const std::vector<std::vector<double>>& probs, std::size_t k) {
  std::vector<RankedAssignment> out;
  if (k == 0) return out;
  const std::size_t n = probs.size();
  for (const auto& p : probs)
    if (p.empty()) return out;  // a variable without options: no architecture at all
  // Per variable: the options of positive probability, most probable first, with their logs.
  std::vector<std::vector<std::size_t>> order(n);
  std::vector<std::vector<double>> logp(n);
  for (std::size_t v = 0; v < n; ++v) {
    std::vector<double> p = probs[v];
    double sum = 0;
    for (double& x : p) {
      if (!std::isfinite(x) || x < 0) x = 0;
      sum += x;
    }
    if (!(sum > 0) || !std::isfinite(sum)) {
      std::fill(p.begin(), p.end(), 1.0);
      sum = static_cast<double>(p.size());
    }
    for (std::size_t i = 0; i < p.size(); ++i)
      if (p[i] > 0) order[v].push_back(i);
    std::stable_sort(order[v].begin(), order[v].end(), [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
    for (const std::size_t i : order[v]) logp[v].push_back(std::log(p[i] / sum));
  }
  // Best-first search over rank vectors (rank r[v] indexes order[v]). A state's children increment
  // one position at or after its pivot, so every state has exactly one parent (decrement its last
  // non-zero position) and is generated once; children are never more probable than their parent.
  struct State {
    double log_p;
    std::vector<std::size_t> rank;
    std::size_t pivot;
  };
  auto score = [&](const std::vector<std::size_t>& rank) {
    double s = 0;
    for (std::size_t v = 0; v < n; ++v) s += logp[v][rank[v]];
    return s;
  };
  auto worse = [](const State& a, const State& b) {
    if (a.log_p != b.log_p) return a.log_p < b.log_p;
    return a.rank > b.rank;
  };
  std::priority_queue<State, std::vector<State>, decltype(worse)> heap(worse);
  std::vector<std::size_t> first(n, 0);
  heap.push({score(first), first, 0});
  while (!heap.empty() && out.size() < k) {
    State s = heap.top();
    heap.pop();
    RankedAssignment a;
    a.choice.resize(n);
    for (std::size_t v = 0; v < n; ++v) a.choice[v] = order[v][s.rank[v]];
    a.probability = std::exp(s.log_p);
    a.log_probability = s.log_p;
    out.push_back(std::move(a));
    for (std::size_t v = s.pivot; v < n; ++v) {
      if (s.rank[v] + 1 >= order[v].size()) continue;
      State child{0, s.rank, v};
      ++child.rank[v];
      child.log_p = score(child.rank);
      heap.push(std::move(child));
    }
  }
  return out;
}

}  // namespace probnas
