#include "probnas/space/genotype.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "probnas/core/error.h"

namespace probnas {

std::vector<std::vector<int64_t>> Genotype::choices(const ArchShape& shape) const {
  std::vector<std::vector<int64_t>> out;
  for (const auto& g : shape) {
    std::vector<int64_t> row;
    for (const auto& edge_name : g.edge_names) {
      int64_t found = -1;
      for (const auto& e : edges) {
        if (e.group != g.name || e.edge != edge_name) continue;
        for (int64_t k = 0; k < g.num_ops(); ++k)
          if (g.ops[static_cast<size_t>(k)] == e.op) found = k;
        PROBNAS_CHECK(found >= 0, "genotype: operation '", e.op, "' on edge ", g.name, "/", edge_name,
                      " is not in this space");
      }
      PROBNAS_CHECK(found >= 0, "genotype: no operation for edge ", g.name, "/", edge_name);
      row.push_back(found);
    }
    out.push_back(std::move(row));
  }
  return out;
}

std::string Genotype::to_json(const std::string& extra_fields_json) const {
  nlohmann::ordered_json j;
  j["space"] = space;
  j["genotype"] = text;
  auto& arr = j["edges"] = nlohmann::ordered_json::array();
  for (const auto& e : edges) {
    nlohmann::ordered_json je;
    je["group"] = e.group;
    je["edge"] = e.edge;
    je["op"] = e.op;
    nlohmann::ordered_json probs;
    for (const auto& [op, p] : e.probs) probs[op] = p;
    je["probs"] = probs;
    arr.push_back(je);
  }
  if (!extra_fields_json.empty()) {
    const auto extra = nlohmann::ordered_json::parse(extra_fields_json);  // must outlive items()
    for (const auto& [k, v] : extra.items()) j[k] = v;
  }
  return j.dump(2);
}

Genotype argmax_genotype(const std::string& space, const ArchShape& shape, const std::vector<torch::Tensor>& probs) {
  PROBNAS_CHECK(probs.size() == shape.size(), "internal: ", probs.size(), " probability tables for ", shape.size(),
                " groups");
  Genotype g;
  g.space = space;
  std::vector<std::string> first_group_ops;
  for (size_t gi = 0; gi < shape.size(); ++gi) {
    const auto& group = shape[gi];
    const auto p = probs[gi].detach().to(torch::kCPU, torch::kFloat64).contiguous();
    auto acc = p.accessor<double, 2>();
    for (int64_t e = 0; e < group.edges(); ++e) {
      GenotypeEdge edge;
      edge.group = group.name;
      edge.edge = group.edge_names[static_cast<size_t>(e)];
      int64_t best = 0;
      for (int64_t k = 0; k < group.num_ops(); ++k) {
        edge.probs.emplace_back(group.ops[static_cast<size_t>(k)], acc[e][k]);
        if (acc[e][k] > acc[e][best]) best = k;  // first maximum wins, as torch.argmax
      }
      edge.op = group.ops[static_cast<size_t>(best)];
      if (gi == 0) first_group_ops.push_back(edge.op);
      g.edges.push_back(std::move(edge));
    }
  }
  if (space == "nb201") g.text = nb201_string(first_group_ops);
  return g;
}

std::string nb201_string(const std::vector<std::string>& ops) {
  PROBNAS_CHECK(ops.size() == 6, "an NB201 cell has 6 edges, got ", ops.size());
  // Edges in NB201 order: 1<-0 | 2<-0 2<-1 | 3<-0 3<-1 3<-2
  std::string s;
  size_t e = 0;
  for (int node = 1; node <= 3; ++node) {
    if (node > 1) s += "+";
    s += "|";
    for (int from = 0; from < node; ++from) s += ops[e++] + "~" + std::to_string(from) + "|";
  }
  return s;
}

std::vector<std::string> parse_nb201_string(const std::string& text) {
  std::vector<std::string> ops;
  size_t node_start = 0;
  int node = 1;
  while (node_start <= text.size()) {
    size_t end = text.find('+', node_start);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(node_start, end - node_start);
    PROBNAS_CHECK(part.size() >= 2 && part.front() == '|' && part.back() == '|', "NB201 string '", text,
                  "': node ", node, " is not of the form |op~i|...|");
    size_t pos = 1;
    int from = 0;
    while (pos < part.size()) {
      const size_t bar = part.find('|', pos);
      const std::string item = part.substr(pos, bar - pos);
      const size_t tilde = item.find('~');
      PROBNAS_CHECK(tilde != std::string::npos && item.substr(tilde + 1) == std::to_string(from), "NB201 string '",
                    text, "': expected op~", from, " in node ", node, ", found '", item, "'");
      ops.push_back(item.substr(0, tilde));
      ++from;
      pos = bar + 1;
    }
    PROBNAS_CHECK(from == node, "NB201 string '", text, "': node ", node, " has ", from, " inputs");
    ++node;
    if (end == text.size()) break;
    node_start = end + 1;
  }
  PROBNAS_CHECK(ops.size() == 6, "NB201 string '", text, "' has ", ops.size(), " edges, expected 6");
  return ops;
}

}  // namespace probnas
