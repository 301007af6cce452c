#include "probnas/space/genotype.h"

#include <torch/torch.h>

#include "probnas/core/error.h"

namespace probnas {

std::vector<std::vector<int64_t>> genotype_choices(const Genotype& genotype, const ArchShape& shape) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& g : shape) {
    std::vector<int64_t> row;
    for (const auto& edge_name : g.edge_names) {
      int64_t found = -1;
      for (const auto& e : genotype.edges) {
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
  if (space == "nb201") g.text = format_nb201(first_group_ops);
  return g;
}

}  // namespace probnas
