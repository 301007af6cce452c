#pragma once
// Genotype notation, torch-free: NAS-Bench-201's cell strings and DARTS's Genotype(...) text, parsed
// and printed in one place for the spaces (which build networks from them), the run-folder readers
// and compare. Parsing checks the notation's structure; which operation names a space accepts is the
// space's business.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace probnas {

// ---- NAS-Bench-201: |op~0|+|op~0|op~1|+|op~0|op~1|op~2| ---------------------------------------
// True when `text` is written in NB201 notation (starts with '|').
bool looks_like_nb201(const std::string& text);
// The six edge operations in NB201 order (1<-0 | 2<-0 2<-1 | 3<-0 3<-1 3<-2); throws probnas::Error
// naming the text and the problem on malformed notation.
std::vector<std::string> parse_nb201(const std::string& text);
// The NB201 string of six edge operations in NB201 order.
std::string format_nb201(const std::vector<std::string>& edge_ops);
// The edge name of NB201 edge index e (0..5): "1<-0", "2<-0", "2<-1", ...
std::string nb201_edge_name(size_t e);

// ---- DARTS: Genotype(normal=[('op', input), ...], normal_concat=range(2, 6), reduce=[...], ...) ----
// Two (operation, input) pairs per intermediate node, four nodes per cell; node n (2..5) takes
// inputs 0..n-1 (0 and 1 are the cell's inputs).
using DartsGene = std::vector<std::pair<std::string, int64_t>>;
constexpr int64_t kDartsCellNodes = 4;

bool looks_like_darts(const std::string& text);  // starts with "Genotype("
// One cell's pairs ("normal" or "reduce"); throws naming the text, the cell and the problem.
DartsGene parse_darts_cell(const std::string& text, const std::string& cell);
std::string format_darts(const DartsGene& normal, const DartsGene& reduce);

// Operations without weights (skip, pooling): the parameter-free share of a cell is DARTS's
// collapse symptom.
bool parameter_free(const std::string& op);

}  // namespace probnas
