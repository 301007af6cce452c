#pragma once
// A discrete architecture derived from a search, with the per-edge probabilities it came from, and
// its file genotype.json. Torch-free: the spaces derive genotypes, the run-folder readers and
// compare read them.
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace probnas {

struct GenotypeEdge {
  std::string group;  // "cell", "normal", "reduce", "gates"
  std::string edge;   // "1<-0"
  std::string op;     // the chosen operation
  std::vector<std::pair<std::string, double>> probs;  // op -> expected mixing weight
};

struct Genotype {
  std::string space;  // "nb201", "darts", "multibranch"
  std::string text;   // the space's own notation (NB201: |op~0|+|op~0|op~1|+|op~0|op~1|op~2|)
  std::vector<GenotypeEdge> edges;

  // The genotype.json object: {"space", "genotype", "edges": [{group, edge, op, probs{}}], ...extra}.
  nlohmann::ordered_json to_json(const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
  // The inverse of to_json (extra fields ignored); throws naming `where` when "space" or "genotype" is missing.
  static Genotype from_json(const nlohmann::ordered_json& j, const std::string& where);
};

// Reads a genotype.json; errors name the file (missing, not JSON, no space/genotype strings).
Genotype read_genotype_file(const std::string& path);

}  // namespace probnas
