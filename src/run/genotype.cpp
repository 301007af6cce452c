#include "probnas/run/genotype.h"

#include "probnas/core/error.h"
#include "probnas/core/files.h"

namespace probnas {

nlohmann::ordered_json Genotype::to_json(const nlohmann::ordered_json& extra) const {
  nlohmann::ordered_json j;
  j["space"] = space;
  j["genotype"] = text;
  auto& arr = j["edges"] = nlohmann::ordered_json::array();
  for (const auto& e : edges) {
    nlohmann::ordered_json je;
    je["group"] = e.group;
    je["edge"] = e.edge;
    je["op"] = e.op;
    nlohmann::ordered_json probs = nlohmann::ordered_json::object();
    for (const auto& [op, p] : e.probs) probs[op] = p;
    je["probs"] = probs;
    arr.push_back(je);
  }
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

Genotype Genotype::from_json(const nlohmann::ordered_json& j, const std::string& where) {
  PROBNAS_CHECK(j.is_object() && j.contains("space") && j["space"].is_string() && j.contains("genotype") &&
                    j["genotype"].is_string(),
                "genotype file '", where, "' lacks the \"space\" and \"genotype\" strings of a genotype.json");
  Genotype g;
  g.space = j["space"].get<std::string>();
  g.text = j["genotype"].get<std::string>();
  if (j.contains("edges") && j["edges"].is_array()) {
    for (const auto& e : j["edges"]) {
      if (!e.is_object()) continue;
      GenotypeEdge edge;
      edge.group = e.value("group", "");
      edge.edge = e.value("edge", "");
      edge.op = e.value("op", "");
      if (e.contains("probs") && e["probs"].is_object())
        for (const auto& [op, p] : e["probs"].items())
          if (p.is_number()) edge.probs.emplace_back(op, p.get<double>());
      g.edges.push_back(std::move(edge));
    }
  }
  return g;
}

Genotype read_genotype_file(const std::string& path) {
  PROBNAS_CHECK(file_exists(path), "genotype file '", path, "' does not exist");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    PROBNAS_FAIL("genotype file '", path, "' is not valid JSON: ", e.what());
  }
  return Genotype::from_json(j, path);
}

}  // namespace probnas
