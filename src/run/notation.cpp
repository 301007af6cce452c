#include "probnas/run/notation.h"

#include <regex>
#include <sstream>

#include "probnas/core/error.h"

namespace probnas {

bool looks_like_nb201(const std::string& text) { return !text.empty() && text.front() == '|'; }

std::vector<std::string> parse_nb201(const std::string& text) {
  std::vector<std::string> nodes;
  {
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, '+')) nodes.push_back(part);
  }
  PROBNAS_CHECK(!text.empty() && nodes.size() == 3 && text.back() != '+', "NB201 genotype '", text,
                "': expected 3 nodes separated by '+', found ", nodes.size());
  std::vector<std::string> ops;
  for (size_t node = 0; node < nodes.size(); ++node) {
    const std::string& n = nodes[node];
    PROBNAS_CHECK(n.size() >= 2 && n.front() == '|' && n.back() == '|', "NB201 genotype '", text, "': node ",
                  node + 1, " '", n, "' should be |op~input|...|");
    std::vector<std::string> entries;
    std::istringstream in(n.substr(1, n.size() - 2));
    for (std::string e; std::getline(in, e, '|');) entries.push_back(e);
    PROBNAS_CHECK(entries.size() == node + 1, "NB201 genotype '", text, "': node ", node + 1, " has ", entries.size(),
                  " inputs, expected ", node + 1);
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto tilde = entries[i].rfind('~');
      PROBNAS_CHECK(tilde != std::string::npos && tilde > 0 && entries[i].substr(tilde + 1) == std::to_string(i),
                    "NB201 genotype '", text, "': '", entries[i], "' should be op~", i);
      ops.push_back(entries[i].substr(0, tilde));
    }
  }
  return ops;
}

std::string format_nb201(const std::vector<std::string>& ops) {
  PROBNAS_CHECK(ops.size() == 6, "an NB201 cell has 6 edges, got ", ops.size());
  std::string s;
  size_t e = 0;
  for (int node = 1; node <= 3; ++node) {
    if (node > 1) s += "+";
    s += "|";
    for (int from = 0; from < node; ++from) s += ops[e++] + "~" + std::to_string(from) + "|";
  }
  return s;
}

std::string nb201_edge_name(size_t e) {
  static const char* const names[] = {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"};
  PROBNAS_CHECK(e < 6, "an NB201 cell has 6 edges; there is no edge ", e);
  return names[e];
}

bool looks_like_darts(const std::string& text) { return text.rfind("Genotype(", 0) == 0; }

DartsGene parse_darts_cell(const std::string& text, const std::string& cell) {
  PROBNAS_CHECK(looks_like_darts(text), "DARTS genotype '", text,
                "': expected Genotype(normal=[...], ..., reduce=[...], ...)");
  const std::string open = cell + "=[";
  const size_t start = text.find(open);
  PROBNAS_CHECK(start != std::string::npos, "DARTS genotype '", text, "' has no ", cell, "=[...] list");
  const size_t end = text.find(']', start);
  PROBNAS_CHECK(end != std::string::npos, "DARTS genotype '", text, "': the ", cell, " list is not closed");
  const std::string list = text.substr(start + open.size(), end - start - open.size());
  static const std::regex pair(R"(\(\s*'([A-Za-z0-9_]+)'\s*,\s*(\d+)\s*\))");
  DartsGene gene;
  for (auto it = std::sregex_iterator(list.begin(), list.end(), pair); it != std::sregex_iterator(); ++it)
    gene.emplace_back((*it)[1].str(), std::stoll((*it)[2].str()));
  PROBNAS_CHECK(static_cast<int64_t>(gene.size()) == 2 * kDartsCellNodes, "DARTS genotype: the ", cell, " list has ",
                gene.size(), " (operation, input) pairs, expected ", 2 * kDartsCellNodes, " (two per node)");
  for (size_t i = 0; i < gene.size(); ++i) {
    const auto node = static_cast<int64_t>(i / 2) + 2;
    PROBNAS_CHECK(gene[i].second < node, "DARTS genotype: ", cell, " node ", node, " takes input ", gene[i].second,
                  " (allowed: 0 to ", node - 1, ")");
  }
  return gene;
}

std::string format_darts(const DartsGene& normal, const DartsGene& reduce) {
  auto list = [](const DartsGene& gene) {
    std::ostringstream o;
    o << "[";
    for (size_t i = 0; i < gene.size(); ++i) o << (i ? ", " : "") << "('" << gene[i].first << "', " << gene[i].second << ")";
    o << "]";
    return o.str();
  };
  return "Genotype(normal=" + list(normal) + ", normal_concat=range(2, 6), reduce=" + list(reduce) +
         ", reduce_concat=range(2, 6))";
}

bool parameter_free(const std::string& op) {
  return op == "skip_connect" || op == "max_pool_3x3" || op == "avg_pool_3x3";
}

}  // namespace probnas
