#pragma once
// A discrete architecture derived from a search, with the per-edge probabilities it came from.
#include <string>
#include <utility>
#include <vector>

#include "probnas/space/arch.h"

namespace probnas {

struct GenotypeEdge {
  std::string group;  // "cell", "normal", "reduce"
  std::string edge;   // "1<-0"
  std::string op;     // the chosen operation
  std::vector<std::pair<std::string, double>> probs;  // op -> expected mixing weight
};

struct Genotype {
  std::string space;  // "nb201"
  std::string text;   // the space's own notation (NB201: |op~0|+|op~0|op~1|+|op~0|op~1|op~2|)
  std::vector<GenotypeEdge> edges;

  // The chosen operation index per edge per group, for a discrete forward pass.
  std::vector<std::vector<int64_t>> choices(const ArchShape& shape) const;
  // JSON object: {"space", "genotype", "edges": [{group, edge, op, probs{}}], ...extra}
  std::string to_json(const std::string& extra_fields_json = "") const;
};

// Argmax per edge of `probs` (one [edges, ops] tensor per group), the way DARTS/DrNAS derive NB201 cells.
Genotype argmax_genotype(const std::string& space, const ArchShape& shape, const std::vector<torch::Tensor>& probs);
// NB201 notation of a one-group genotype with edges in NB201 order.
std::string nb201_string(const std::vector<std::string>& edge_ops);
// Parses NB201 notation into the six edge operations; names the problem on malformed input.
std::vector<std::string> parse_nb201_string(const std::string& text);

}  // namespace probnas
