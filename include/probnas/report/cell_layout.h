#pragma once
// Cell pictures for the report: our own layered layout, left to right as in the DARTS paper, as
// inline SVG. Edges are named "j<-i" (to j from i) and carry their operation; `none` edges are not drawn.
#include <string>
#include <utility>
#include <vector>

namespace probnas::report {

struct CellEdge {
  std::string name;  // "j<-i"
  std::string op;
};

// "j<-i" -> (j, i); false if the name is not of that form.
bool parse_edge_name(const std::string& name, int* to, int* from);
// An NB201 cell: nodes 0..3 in a row, 0 the input, 3 the output. "" and *problem set when an edge
// name is malformed.
std::string nb201_picture(const std::vector<CellEdge>& edges, std::string* problem);
// A DARTS cell: inputs c_{k-2}, c_{k-1}; intermediate nodes 2..5 drawn as 0..3 in columns by their
// depth; the output c_{k} concatenates the intermediate nodes.
std::string darts_picture(const std::vector<CellEdge>& edges, const std::string& title, std::string* problem);

}  // namespace probnas::report
