#include "probnas/space/cell_picture.h"

#include <filesystem>
#include <sstream>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/process.h"

namespace probnas {

namespace {

// A DOT string literal: every name and label is quoted, so "c_{k-2}" and op names need no care.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch == '\n' ? ' ' : ch;
  }
  return out + "\"";
}

struct Endpoints {
  int to = 0, from = 0;
};

// "j<-i" with from < to and to in [first_to, last_to]; names the edge otherwise.
Endpoints parse_edge(const GenotypeEdge& e, int first_to, int last_to) {
  const auto arrow = e.edge.find("<-");
  Endpoints p{-1, -1};
  try {
    size_t used_to = 0, used_from = 0;
    if (arrow != std::string::npos && arrow > 0) {
      p.to = std::stoi(e.edge.substr(0, arrow), &used_to);
      p.from = std::stoi(e.edge.substr(arrow + 2), &used_from);
      if (used_to != arrow || used_from != e.edge.size() - arrow - 2) p = {-1, -1};
    }
  } catch (const std::exception&) {
    p = {-1, -1};
  }
  PROBNAS_CHECK(p.to >= first_to && p.to <= last_to && p.from >= 0 && p.from < p.to, "cell picture: edge '", e.edge,
                "' of group '", e.group, "' is not of the form 'j<-i' with ", first_to, " <= j <= ", last_to,
                " and i < j");
  PROBNAS_CHECK(!e.op.empty(), "cell picture: edge '", e.edge, "' of group '", e.group, "' has no operation");
  return p;
}

// Graph and default node/edge attributes of DARTS's visualize.py.
void begin_graph(std::ostringstream& o, const std::string& name) {
  o << "digraph " << quoted(name) << " {\n"
    << "  rankdir=LR;\n"
    << "  node [style=filled, shape=rect, fontsize=20, height=0.5, width=0.5, penwidth=2, fontname=\"times\"];\n"
    << "  edge [fontsize=20, fontname=\"times\"];\n";
}

void node(std::ostringstream& o, const std::string& name, const char* color) {
  o << "  " << quoted(name) << " [fillcolor=" << color << "];\n";
}

void edge(std::ostringstream& o, const std::string& from, const std::string& to, const std::string& label) {
  o << "  " << quoted(from) << " -> " << quoted(to);
  if (!label.empty()) o << " [label=" << quoted(label) << "]";
  o << ";\n";
}

constexpr const char* kInputColor = "darkseagreen2";
constexpr const char* kInnerColor = "lightblue";
constexpr const char* kOutputColor = "palegoldenrod";

// One DARTS-space cell: genotype nodes 0 and 1 are the inputs c_{k-2} and c_{k-1}; nodes 2..5 are
// drawn as 0..3, as in the DARTS paper's figures.
std::string darts_cell(const Genotype& g, const std::string& group) {
  constexpr int kSteps = 4;
  auto name_of = [](int n) { return n == 0 ? std::string("c_{k-2}") : n == 1 ? "c_{k-1}" : std::to_string(n - 2); };
  std::ostringstream o;
  begin_graph(o, group);
  node(o, "c_{k-2}", kInputColor);
  node(o, "c_{k-1}", kInputColor);
  for (int i = 0; i < kSteps; ++i) node(o, std::to_string(i), kInnerColor);
  node(o, "c_{k}", kOutputColor);
  int edges = 0;
  for (const auto& e : g.edges) {
    if (e.group != group) continue;
    ++edges;
    const Endpoints p = parse_edge(e, 2, kSteps + 1);
    if (e.op != "none") edge(o, name_of(p.from), name_of(p.to), e.op);
  }
  PROBNAS_CHECK(edges > 0, "cell picture: the darts genotype has no edges in group '", group, "'");
  for (int i = 0; i < kSteps; ++i) edge(o, std::to_string(i), "c_{k}", "");
  o << "}\n";
  return o.str();
}

std::string nb201_cell(const Genotype& g) {
  constexpr int kNodes = 4;
  std::ostringstream o;
  begin_graph(o, "cell");
  for (int n = 0; n < kNodes; ++n)
    node(o, std::to_string(n), n == 0 ? kInputColor : n == kNodes - 1 ? kOutputColor : kInnerColor);
  int edges = 0;
  for (const auto& e : g.edges) {
    PROBNAS_CHECK(e.group == "cell", "cell picture: an nb201 genotype has one group, 'cell'; found '", e.group, "'");
    ++edges;
    const Endpoints p = parse_edge(e, 1, kNodes - 1);
    if (e.op != "none") edge(o, std::to_string(p.from), std::to_string(p.to), e.op);
  }
  PROBNAS_CHECK(edges > 0, "cell picture: the nb201 genotype has no edges");
  o << "}\n";
  return o.str();
}

// Renders `dot_file` to `svg` with Graphviz; "" on success, otherwise why not (one line).
std::string render_svg(const std::string& dot_program, const std::string& dot_file, const std::string& svg) {
  // dot writes the temporary file; the atomic write makes the finished SVG appear at once.
  try {
    ckpt::write_atomically(svg, [&](const std::string& tmp) {
      const auto r = run_program(dot_program, {"-Tsvg", dot_file, "-o", tmp});
      if (r.exit_code == 0 && file_exists(tmp)) return;
      const std::string why = r.output.substr(0, r.output.find('\n'));
      PROBNAS_FAIL(dot_program, " -Tsvg ", dot_file, " failed",
                   r.exit_code > 0 ? " (exit code " + std::to_string(r.exit_code) + ")" : std::string(),
                   why.empty() ? std::string() : ": " + why);
    });
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace

bool has_cell_pictures(const std::string& space) { return space == "darts" || space == "nb201"; }

std::map<std::string, std::string> cell_pictures(const Genotype& genotype) {
  if (genotype.space == "darts") {
    for (const auto& e : genotype.edges)
      PROBNAS_CHECK(e.group == "normal" || e.group == "reduce",
                    "cell picture: a darts genotype has groups 'normal' "
                    "and 'reduce'; found '",
                    e.group, "'");
    return {{"normal", darts_cell(genotype, "normal")}, {"reduce", darts_cell(genotype, "reduce")}};
  }
  if (genotype.space == "nb201") return {{"cell", nb201_cell(genotype)}};
  PROBNAS_FAIL("cell picture: no picture for genotypes of the '", genotype.space, "' space (drawn: darts, nb201)");
}

CellPictureFiles write_cell_pictures(const Genotype& genotype, const std::string& dir, bool render) {
  CellPictureFiles files;
  const auto pictures = cell_pictures(genotype);
  make_directories(dir);
  for (const auto& [stem, text] : pictures) {
    files.dot.push_back(dir + "/" + stem + ".dot");
    ckpt::write_file_atomic(files.dot.back(), text);
  }
  if (!render) return files;

  const std::string dot = find_program("dot");
  files.dot_program_found = !dot.empty();
  if (dot.empty()) files.svg_problem = "Graphviz's 'dot' is not on PATH";
  for (const auto& [stem, text] : pictures) {
    const std::string svg = dir + "/" + stem + ".svg";
    if (files.svg_problem.empty()) {
      files.svg_problem = render_svg(dot, dir + "/" + stem + ".dot", svg);
      if (files.svg_problem.empty()) {
        files.svg.push_back(svg);
        continue;
      }
    }
    // An SVG from an earlier render shows an older genotype: better none than a wrong one.
    std::error_code ignored;
    std::filesystem::remove(svg, ignored);
  }
  return files;
}

}  // namespace probnas
