// Cell pictures: the DOT text of hand-made DARTS-space and NB201 genotypes (nodes, edges, labels,
// syntax), errors for malformed genotypes, and the files: DOT always, SVG by Graphviz's `dot` when it
// is installed, and no SVG (but the DOT files) when it is missing or fails.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <tuple>

#include "probnas/core/files.h"
#include "probnas/core/process.h"
#include "probnas/space/cell_picture.h"
#include "test_support.h"

namespace probnas {
namespace {

using Kept = std::vector<std::tuple<int, int, std::string>>;  // (to, from, op) in genotype node numbers

// A DARTS-space genotype: all 14 edges of each group, `none` except the kept ones.
Genotype darts_genotype(const Kept& normal, const Kept& reduce) {
  Genotype g;
  g.space = "darts";
  for (const auto& [group, kept] : {std::pair{"normal", &normal}, std::pair{"reduce", &reduce}}) {
    for (int to = 2; to < 6; ++to) {
      for (int from = 0; from < to; ++from) {
        GenotypeEdge e;
        e.group = group;
        e.edge = std::to_string(to) + "<-" + std::to_string(from);
        e.op = "none";
        for (const auto& [t, f, op] : *kept)
          if (t == to && f == from) e.op = op;
        g.edges.push_back(e);
      }
    }
  }
  return g;
}

Genotype nb201_genotype(const std::vector<std::string>& ops) {
  Genotype g;
  g.space = "nb201";
  const char* names[] = {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"};
  for (size_t i = 0; i < ops.size(); ++i) g.edges.push_back({"cell", names[i], ops[i], {}});
  return g;
}

struct DotEdge {
  std::string from, to, label;  // label "" when the edge has none
  bool operator<(const DotEdge& o) const { return std::tie(from, to, label) < std::tie(o.from, o.to, o.label); }
  bool operator==(const DotEdge& o) const { return std::tie(from, to, label) == std::tie(o.from, o.to, o.label); }
};

// Every `"a" -> "b" [label="op"];` line; a line with "->" that does not have this form fails the test.
std::multiset<DotEdge> dot_edges(const std::string& dot) {
  static const std::regex edge_line(R"re(^\s*"([^"]*)" -> "([^"]*)"(?: \[label="([^"]*)"\])?;$)re");
  std::multiset<DotEdge> edges;
  std::istringstream lines(dot);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("->") == std::string::npos) continue;
    std::smatch m;
    if (!std::regex_match(line, m, edge_line)) {
      ADD_FAILURE() << "not a quoted DOT edge: " << line;
      continue;
    }
    edges.insert({m[1], m[2], m[3]});
  }
  return edges;
}

// The DOT syntax a reader relies on: one digraph, braces balanced (and closed only at the end),
// quotes paired on every line, statements ended by ';'.
void expect_valid_dot(const std::string& dot, const std::string& name) {
  EXPECT_EQ(dot.rfind("digraph \"" + name + "\" {\n", 0), 0u) << dot;
  int depth = 0;
  size_t closed_at = std::string::npos;
  for (size_t i = 0; i < dot.size(); ++i) {
    if (dot[i] == '"') {  // skip the quoted string, honouring \" escapes
      for (++i; i < dot.size() && dot[i] != '"'; ++i)
        if (dot[i] == '\\') ++i;
      ASSERT_LT(i, dot.size()) << "unterminated string in\n" << dot;
      continue;
    }
    if (dot[i] == '{') ++depth;
    if (dot[i] == '}' && --depth == 0) closed_at = i;
    ASSERT_GE(depth, 0) << dot;
  }
  EXPECT_EQ(depth, 0) << dot;
  EXPECT_EQ(closed_at, dot.size() - 2) << "the graph must close at the end:\n" << dot;
  std::istringstream lines(dot);
  std::string line;
  std::getline(lines, line);  // digraph "name" {
  while (std::getline(lines, line))
    if (line != "}") {
      EXPECT_EQ(line.back(), ';') << line;
    }
}

const Kept kNormal = {{2, 0, "sep_conv_3x3"}, {2, 1, "sep_conv_5x5"}, {3, 0, "skip_connect"}, {3, 2, "dil_conv_3x3"},
                      {4, 1, "max_pool_3x3"}, {4, 3, "avg_pool_3x3"}, {5, 0, "dil_conv_5x5"}, {5, 4, "sep_conv_3x3"}};
const Kept kReduce = {{2, 0, "max_pool_3x3"}, {2, 1, "max_pool_3x3"}, {3, 1, "skip_connect"}, {3, 2, "max_pool_3x3"},
                      {4, 0, "avg_pool_3x3"}, {4, 2, "skip_connect"}, {5, 3, "sep_conv_5x5"}, {5, 1, "dil_conv_5x5"}};

std::multiset<DotEdge> expected_darts_edges(const Kept& kept) {
  auto name = [](int n) { return n == 0 ? std::string("c_{k-2}") : n == 1 ? "c_{k-1}" : std::to_string(n - 2); };
  std::multiset<DotEdge> edges;
  for (const auto& [to, from, op] : kept) edges.insert({name(from), name(to), op});
  for (int i = 0; i < 4; ++i) edges.insert({std::to_string(i), "c_{k}", ""});
  return edges;
}

TEST(CellPicture, DartsCellsHaveEightOpEdgesAndFourToTheOutput) {
  const auto pictures = cell_pictures(darts_genotype(kNormal, kReduce));
  ASSERT_EQ(pictures.size(), 2u);
  for (const auto& [stem, kept] : {std::pair{"normal", &kNormal}, std::pair{"reduce", &kReduce}}) {
    ASSERT_TRUE(pictures.count(stem)) << stem;
    const std::string& dot = pictures.at(stem);
    expect_valid_dot(dot, stem);
    const auto edges = dot_edges(dot);
    int labelled = 0, to_output = 0;
    for (const auto& e : edges) {
      labelled += !e.label.empty();
      to_output += e.to == "c_{k}";
    }
    EXPECT_EQ(labelled, 8) << dot;
    EXPECT_EQ(to_output, 4) << dot;
    EXPECT_EQ(edges, expected_darts_edges(*kept)) << dot;
    // The seven nodes, coloured as DARTS draws them: inputs green, intermediate nodes blue, output yellow.
    for (const char* input : {"c_{k-2}", "c_{k-1}"})
      EXPECT_NE(dot.find("\"" + std::string(input) + "\" [fillcolor=darkseagreen2];"), std::string::npos) << dot;
    for (int i = 0; i < 4; ++i)
      EXPECT_NE(dot.find("\"" + std::to_string(i) + "\" [fillcolor=lightblue];"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"c_{k}\" [fillcolor=palegoldenrod];"), std::string::npos) << dot;
    EXPECT_NE(dot.find("rankdir=LR;"), std::string::npos);
  }
  // The two cells differ: each picture draws its own group.
  EXPECT_NE(pictures.at("normal"), pictures.at("reduce"));
}

TEST(CellPicture, Nb201OmitsNoneAndDrawsTheOtherEdges) {
  const auto pictures =
      cell_pictures(nb201_genotype({"nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1"}));
  ASSERT_EQ(pictures.size(), 1u);
  ASSERT_TRUE(pictures.count("cell"));
  const std::string& dot = pictures.at("cell");
  expect_valid_dot(dot, "cell");
  const std::multiset<DotEdge> expected = {
      {"0", "1", "nor_conv_3x3"}, {"1", "2", "skip_connect"}, {"0", "3", "avg_pool_3x3"}, {"2", "3", "nor_conv_1x1"}};
  EXPECT_EQ(dot_edges(dot), expected) << dot;
  EXPECT_EQ(dot.find("none"), std::string::npos) << dot;
  for (int n = 0; n < 4; ++n)
    EXPECT_NE(dot.find("\"" + std::to_string(n) + "\" [fillcolor="), std::string::npos) << dot;
}

TEST(CellPicture, LabelsAreEscaped) {
  // Op names come from the space, but a label must stay one DOT string whatever it holds.
  auto g = nb201_genotype({"a\"b\\c", "none", "none", "none", "none", "none"});
  const std::string dot = cell_pictures(g).at("cell");
  EXPECT_NE(dot.find(R"("0" -> "1" [label="a\"b\\c"];)"), std::string::npos) << dot;
  expect_valid_dot(dot, "cell");
}

TEST(CellPicture, MalformedGenotypesAreNamed) {
  Genotype unknown;
  unknown.space = "pgnas";
  EXPECT_NE(test::error_of([&] { cell_pictures(unknown); }).find("'pgnas'"), std::string::npos);
  EXPECT_FALSE(has_cell_pictures("pgnas"));
  EXPECT_TRUE(has_cell_pictures("darts"));
  EXPECT_TRUE(has_cell_pictures("nb201"));

  auto bad_edge = darts_genotype(kNormal, kReduce);
  bad_edge.edges[3].edge = "3<-7";
  const std::string e1 = test::error_of([&] { cell_pictures(bad_edge); });
  EXPECT_NE(e1.find("'3<-7'"), std::string::npos) << e1;
  EXPECT_NE(e1.find("'normal'"), std::string::npos) << e1;

  auto garbage = nb201_genotype({"none", "none", "none", "none", "none", "nor_conv_1x1"});
  garbage.edges[5].edge = "3<-2x";
  EXPECT_NE(test::error_of([&] { cell_pictures(garbage); }).find("'3<-2x'"), std::string::npos);

  auto no_reduce = darts_genotype(kNormal, kReduce);
  no_reduce.edges.resize(14);
  EXPECT_NE(test::error_of([&] { cell_pictures(no_reduce); }).find("'reduce'"), std::string::npos);

  auto wrong_group = nb201_genotype({"none", "none", "none", "none", "none", "none"});
  wrong_group.edges[0].group = "normal";
  EXPECT_NE(test::error_of([&] { cell_pictures(wrong_group); }).find("'normal'"), std::string::npos);
}

// Sets PATH for one test and puts the old value back.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& path) {
    const char* old = std::getenv("PATH");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() {
    if (had_)
      ::setenv("PATH", old_.c_str(), 1);
    else
      ::unsetenv("PATH");
  }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(CellPictureFiles, WithoutGraphvizTheDotFilesAreWrittenAndStaleSvgsRemoved) {
  test::TempDir tmp;
  const std::string dir = tmp.file("cells");
  make_directories(dir);
  test::write_file(dir + "/normal.svg", "<svg>an older genotype</svg>");
  const ScopedPath no_dot(tmp.file("empty-bin"));
  ASSERT_EQ(find_program("dot"), "");
  const auto files = write_cell_pictures(darts_genotype(kNormal, kReduce), dir, /*render=*/true);
  EXPECT_FALSE(files.dot_program_found);
  EXPECT_NE(files.svg_problem.find("not on PATH"), std::string::npos) << files.svg_problem;
  EXPECT_TRUE(files.svg.empty());
  EXPECT_EQ(files.dot, (std::vector<std::string>{dir + "/normal.dot", dir + "/reduce.dot"}));
  EXPECT_EQ(read_file_bytes(dir + "/normal.dot"), cell_pictures(darts_genotype(kNormal, kReduce)).at("normal"));
  EXPECT_TRUE(file_exists(dir + "/reduce.dot"));
  EXPECT_FALSE(file_exists(dir + "/normal.svg")) << "a stale SVG survived";
}

TEST(CellPictureFiles, AFailingDotIsReportedAndLeavesNoSvg) {
  test::TempDir tmp;
  const std::string bin = tmp.file("bin");
  make_directories(bin);
  // A stand-in for Graphviz that fails like a broken installation does.
  test::write_file(bin + "/dot", "#!/bin/sh\necho 'Format: \"svg\" not recognized' >&2\nexit 3\n");
  std::filesystem::permissions(bin + "/dot", std::filesystem::perms::owner_all);
  const ScopedPath fake(bin);
  ASSERT_EQ(find_program("dot"), bin + "/dot");
  const std::string dir = tmp.file("cells");
  const auto files = write_cell_pictures(nb201_genotype({"none", "skip_connect", "none", "none", "none", "none"}), dir,
                                         /*render=*/true);
  EXPECT_TRUE(files.dot_program_found);
  EXPECT_NE(files.svg_problem.find("exit code 3"), std::string::npos) << files.svg_problem;
  EXPECT_NE(files.svg_problem.find("not recognized"), std::string::npos) << files.svg_problem;
  EXPECT_TRUE(files.svg.empty());
  EXPECT_TRUE(file_exists(dir + "/cell.dot"));
  EXPECT_FALSE(file_exists(dir + "/cell.svg"));
  EXPECT_FALSE(file_exists(dir + "/cell.svg.tmp"));
}

TEST(CellPictureFiles, GraphvizRendersSvgs) {
  if (find_program("dot").empty())
    GTEST_SKIP() << "Graphviz's dot is not on PATH (apt-get install graphviz): the SVG rendering is not tested";
  test::TempDir tmp;
  const std::string dir = tmp.file("with space/cells");  // the path reaches dot as one argument, no shell
  const auto files = write_cell_pictures(darts_genotype(kNormal, kReduce), dir, /*render=*/true);
  EXPECT_TRUE(files.dot_program_found);
  EXPECT_EQ(files.svg_problem, "");
  ASSERT_EQ(files.svg, (std::vector<std::string>{dir + "/normal.svg", dir + "/reduce.svg"}));
  for (const auto& path : files.svg) {
    const std::string svg = read_file_bytes(path);
    EXPECT_TRUE(svg.rfind("<?xml", 0) == 0 || svg.rfind("<svg", 0) == 0) << svg.substr(0, 200);
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find("c_{k}"), std::string::npos) << "the output node is not drawn";
  }
  // Each picture shows its own cell's operations.
  EXPECT_NE(read_file_bytes(dir + "/normal.svg").find("dil_conv_3x3"), std::string::npos);
  EXPECT_EQ(read_file_bytes(dir + "/reduce.svg").find("dil_conv_3x3"), std::string::npos);
  // Without `render` only the DOT text is rewritten.
  const auto dot_only = write_cell_pictures(darts_genotype(kReduce, kNormal), dir, /*render=*/false);
  EXPECT_TRUE(dot_only.svg.empty());
  EXPECT_EQ(dot_only.svg_problem, "");
}

TEST(Process, RunsAProgramWithArgumentsAndReportsItsExitCode) {
  const std::string sh = find_program("sh");
  ASSERT_NE(sh, "") << "no sh on PATH";
  const auto ok = run_program(sh, {"-c", "printf '%s|' \"$1\" \"$2\"; echo err >&2", "sh", "a b", "c'd"});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.output, "a b|c'd|err\n");
  EXPECT_EQ(run_program(sh, {"-c", "exit 7"}).exit_code, 7);
  const auto missing = run_program("/nonexistent/program", {});
  EXPECT_EQ(missing.exit_code, -1);
  EXPECT_NE(missing.output.find("/nonexistent/program"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace probnas
