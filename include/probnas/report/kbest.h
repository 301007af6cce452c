#pragma once
// The k most probable architectures of a product of independent categoricals (one per edge).
#include <cstddef>
#include <vector>

namespace probnas {

// One architecture of a product of independent categoricals: the chosen option per variable and
// its probability.
struct RankedAssignment {
  std::vector<std::size_t> choice;  // choice[v] indexes probs[v]
  double probability = 0;
  double log_probability = 0;  // natural log; stays finite where probability underflows to 0
};

// The k most probable joint assignments of independent categoricals (probs[v] is variable v's
// distribution; each is normalised here, non-finite or negative entries count as 0, an all-zero
// variable as uniform). Exact best-first enumeration: O(k V log(k V)) after sorting each variable,
// so 28 edges x 8 operations and k = 10 take microseconds. Most probable first (equal
// probabilities in a deterministic order). Options of probability 0 are never listed, so fewer
// than k come back when fewer than k architectures have positive probability.
std::vector<RankedAssignment> most_probable_assignments(const std::vector<std::vector<double>>& probs, std::size_t k);

}  // namespace probnas
