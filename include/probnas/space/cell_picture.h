#pragma once
// Pictures of a derived architecture's cells as Graphviz DOT text, drawn the way DARTS's
// visualize.py draws them: left to right, filled boxes, the cell's inputs green, its intermediate
// nodes blue, its output yellow, one edge per kept operation labelled with the operation's name.
// DOT is plain text and always written; the SVG needs Graphviz's `dot` program and is optional.
#include <map>
#include <string>
#include <vector>

#include "probnas/space/genotype.h"

namespace probnas {

// Whether cell_pictures draws genotypes of `space` ("darts", "nb201").
bool has_cell_pictures(const std::string& space);

// The DOT text of each cell of `genotype`, keyed by file stem.
// - DARTS space: "normal" and "reduce". Nodes c_{k-2}, c_{k-1} (the cell's inputs), 0..3 (the
//   intermediate nodes) and c_{k} (the output); an edge per non-`none` edge of the group, labelled
//   with its operation; an edge from every intermediate node to c_{k} (the output concatenates them).
// - NB201: "cell". Nodes 0..3; an edge per non-`none` edge, labelled with its operation.
// Fails naming the space, group or edge for a space it cannot draw or a malformed genotype.
std::map<std::string, std::string> cell_pictures(const Genotype& genotype);

struct CellPictureFiles {
  std::vector<std::string> dot;  // the .dot files written
  std::vector<std::string> svg;  // the .svg files rendered
  bool dot_program_found = false;
  std::string svg_problem;  // when an SVG was asked for but not rendered: why (one line)
};

// Writes <dir>/<stem>.dot atomically for each cell (creating `dir`). With `render`, also renders
// <dir>/<stem>.svg with Graphviz's `dot -Tsvg` when `dot` is on PATH; if it is missing or fails,
// the SVGs from an earlier render (now stale) are removed and `svg_problem` says why. Rendering
// never throws; writing the DOT files throws naming the file.
CellPictureFiles write_cell_pictures(const Genotype& genotype, const std::string& dir, bool render);

}  // namespace probnas
