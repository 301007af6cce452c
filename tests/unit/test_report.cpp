// The run report (report.html): fixture run folders for the NB201, DARTS, PARSEC and PGNAS cases,
// rendered and checked for structure (sections, well-formed HTML, valid SVG numbers), content
// (heat-map cells, cell pictures, histograms, top-k lists, escaping) and missing files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "probnas/core/files.h"
#include "probnas/engine/run_report.h"
#include "probnas/report/report.h"
#include "test_support.h"

namespace probnas {
namespace {

using Json = nlohmann::ordered_json;
using test::TempDir;

const char* const kSections[] = {"summary", "cells", "curves", "entropy", "probabilities", "samples", "topk"};

// ---- a small HTML checker -------------------------------------------------------------------

// "" when `html` is well-formed for what the report emits: every non-void element closed in order,
// every <svg> closed, no stray '<' in text, and no NaN/Inf in an SVG geometry attribute.
std::string html_problems(const std::string& html) {
  static const std::set<std::string> void_elements = {"area", "base", "br",    "col",   "embed", "hr", "img",
                                                      "input", "link", "meta", "source", "track", "wbr"};
  static const std::set<std::string> geometry = {
      "x",  "y",     "x1",     "x2",        "y1",         "y2",        "cx",          "cy",        "r",
      "rx", "width", "height", "d",         "points",     "viewbox",   "transform",   "offset",    "refx",
      "refy", "markerwidth", "markerheight", "stroke-width", "font-size", "dy"};
  static const std::regex attribute(R"re(([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*"([^"]*)")re");
  std::vector<std::string> stack;
  std::size_t i = 0;
  while ((i = html.find('<', i)) != std::string::npos) {
    if (html.compare(i, 4, "<!--") == 0) {
      const auto end = html.find("-->", i);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    if (html.compare(i, 2, "<!") == 0) {
      i = html.find('>', i);
      if (i == std::string::npos) return "unterminated declaration";
      continue;
    }
    const auto end = html.find('>', i);
    if (end == std::string::npos) return "unterminated tag at offset " + std::to_string(i);
    const std::string tag = html.substr(i + 1, end - i - 1);
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closing = !tag.empty() && tag.back() == '/';
    std::size_t p = closing ? 1 : 0;
    std::string name;
    while (p < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[p])) || tag[p] == '-' || tag[p] == ':'))
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(tag[p++])));
    if (name.empty()) return "stray '<' at offset " + std::to_string(i) + ": " + html.substr(i, 40);
    const bool in_svg = name == "svg" || std::find(stack.begin(), stack.end(), "svg") != stack.end();
    if (in_svg && !closing) {
      for (std::sregex_iterator it(tag.begin(), tag.end(), attribute), stop; it != stop; ++it) {
        std::string key = (*it)[1];
        std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
        std::string value = (*it)[2];
        std::transform(value.begin(), value.end(), value.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (geometry.count(key) && (value.find("nan") != std::string::npos || value.find("inf") != std::string::npos))
          return "non-finite SVG attribute " + key + "=\"" + value + "\" in <" + tag.substr(0, 60) + ">";
      }
    }
    if (closing) {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> closes <" + (stack.empty() ? std::string("nothing") : stack.back()) + "> at offset " +
               std::to_string(i);
      stack.pop_back();
    } else if (!self_closing && !void_elements.count(name)) {
      stack.push_back(name);
      if (name == "style") {  // raw text: skip to its end tag
        const auto close = html.find("</style>", end);
        if (close == std::string::npos) return "unterminated <style>";
        i = close;
        continue;
      }
    }
    i = end + 1;
  }
  if (!stack.empty()) return "<" + stack.back() + "> is never closed";
  return "";
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t i = text.find(needle); i != std::string::npos; i = text.find(needle, i + needle.size())) ++n;
  return n;
}

// The text of <section id="id">...</section>.
std::string section(const std::string& html, const std::string& id) {
  const auto start = html.find("<section id=\"" + id + "\">");
  if (start == std::string::npos) return "";
  const auto end = html.find("</section>", start);
  return html.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

void expect_valid_report(const std::string& html) {
  EXPECT_EQ(html_problems(html), "");
  for (const char* id : kSections) {
    const std::string s = section(html, id);
    EXPECT_FALSE(s.empty()) << "no section " << id;
    EXPECT_NE(s.find("<h2>"), std::string::npos) << "section " << id << " has no heading";
  }
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://www.w3.org/2000/svg\"") == std::string::npos, count(html, "<svg") == 0);
  EXPECT_EQ(html.find("https://"), std::string::npos) << "the report must not load anything";
}

// ---- fixture run folders --------------------------------------------------------------------

const std::vector<std::string> kNb201Ops = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};
const std::vector<std::string> kNb201Edges = {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"};
const std::vector<std::string> kDartsOps = {"none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                            "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};

void write_json(const std::string& path, const Json& j) { test::write_file(path, j.dump(2) + "\n"); }

void write_config(const std::string& dir, const std::string& method, const std::string& space, int epochs) {
  test::write_file(dir + "/config.ini", "# probnas effective configuration\n[run]\n# seed\nseed = 7\n[search]\nmethod = " +
                                            method + "\nspace = " + space + "\nepochs = " + std::to_string(epochs) +
                                            "\n[data]\ndataset = synthetic\n");
}

// Probabilities of `ops` ops that move from uniform towards op `favourite` as t goes 0 -> 1.
std::vector<double> drifting(std::size_t ops, std::size_t favourite, double t) {
  std::vector<double> p(ops, (1 - t) / static_cast<double>(ops));
  p[favourite] += t;
  return p;
}

struct GroupSpec {
  std::string name;
  std::vector<std::string> edges, ops, chosen;
};

Json edges_json(const std::vector<GroupSpec>& groups, double t) {
  Json edges = Json::array();
  for (const auto& g : groups)
    for (std::size_t e = 0; e < g.edges.size(); ++e) {
      const auto fav = static_cast<std::size_t>(std::find(g.ops.begin(), g.ops.end(), g.chosen[e]) - g.ops.begin());
      const auto p = drifting(g.ops.size(), fav, t);
      Json probs = Json::object();
      for (std::size_t k = 0; k < g.ops.size(); ++k) probs[g.ops[k]] = p[k];
      edges.push_back({{"group", g.name}, {"edge", g.edges[e]}, {"op", g.chosen[e]}, {"probs", probs}});
    }
  return edges;
}

void write_metrics(const std::string& dir, const std::vector<GroupSpec>& groups, int epochs, bool with_probs,
                   const Json& extra_scalars = Json::object()) {
  std::string lines;
  for (int e = 1; e <= epochs; ++e) {
    const double t = static_cast<double>(e) / (epochs + 1);
    Json m;
    m["epoch"] = e;
    m["step"] = 10 * e;
    m["lr"] = 0.025 / e;
    m["train_loss"] = 2.3 - 0.3 * e;
    m["train_acc"] = 0.1 + 0.1 * e;
    m["val_loss"] = 2.35 - 0.25 * e;
    m["val_acc"] = 0.09 + 0.09 * e;
    m["arch_entropy"] = std::log(5.0) * (1 - t);
    for (const auto& [k, v] : extra_scalars.items()) m[k] = v;
    m["genotype"] = "g" + std::to_string(e);
    if (with_probs) {
      Json probs = Json::object();
      for (const auto& g : groups) {
        Json rows = Json::array();
        for (std::size_t i = 0; i < g.edges.size(); ++i) {
          const auto fav = static_cast<std::size_t>(std::find(g.ops.begin(), g.ops.end(), g.chosen[i]) - g.ops.begin());
          rows.push_back(drifting(g.ops.size(), fav, t));
        }
        probs[g.name] = rows;
      }
      m["probs"] = probs;
    }
    m["images"] = 256 * e;
    m["wall_s"] = 1.5 * e;
    m["images_per_s"] = 170.0;
    lines += m.dump() + "\n";
  }
  test::write_file(dir + "/metrics.jsonl", lines);
}

GroupSpec nb201_group() {
  return {"cell", kNb201Edges, kNb201Ops, {"nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3"}};
}

// A DrNAS-like NB201 search: 3 of 5 epochs, with per-epoch probabilities and NB201 scores.
void make_nb201_run(const std::string& dir, const std::string& genotype_text = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
                    bool with_probs = true) {
  const auto g = nb201_group();
  write_config(dir, "drnas", "nb201", 5);
  write_metrics(dir, {g}, 3, with_probs, {{"concentration", 5.2}});
  Json j;
  j["space"] = "nb201";
  j["genotype"] = genotype_text;
  j["edges"] = edges_json({g}, 0.75);
  j["method"] = "drnas";
  j["dataset"] = "synthetic";
  j["seed"] = 7;
  j["epochs_done"] = 3;
  j["search_val_acc"] = 0.4321;
  j["nb201"] = {{"index", 1234}, {"cifar10_test", 93.76}, {"cifar100_test", 70.71}, {"imagenet16_test", 44.1}};
  write_json(dir + "/genotype.json", j);
}

std::vector<GroupSpec> darts_groups() {
  // Two non-none inputs per intermediate node, the other edges "none".
  std::vector<std::string> edges;
  for (int j = 2; j <= 5; ++j)
    for (int i = 0; i < j; ++i) edges.push_back(std::to_string(j) + "<-" + std::to_string(i));
  const std::vector<std::string> normal = {"sep_conv_3x3", "sep_conv_5x5",          // 2<-0, 2<-1
                                           "none",         "skip_connect", "dil_conv_3x3",  // 3<-0..2
                                           "max_pool_3x3", "none",         "none",          "sep_conv_3x3",  // 4<-0..3
                                           "none",         "none",         "avg_pool_3x3",  "none", "dil_conv_5x5"};
  const std::vector<std::string> reduce = {"max_pool_3x3", "max_pool_3x3", "skip_connect", "max_pool_3x3", "none",
                                           "none",         "max_pool_3x3", "skip_connect", "none",         "avg_pool_3x3",
                                           "none",         "none",         "skip_connect", "none"};
  return {{"normal", edges, kDartsOps, normal}, {"reduce", edges, kDartsOps, reduce}};
}

void make_darts_run(const std::string& dir, int epochs = 4) {
  const auto groups = darts_groups();
  write_config(dir, "darts", "darts", epochs);
  write_metrics(dir, groups, epochs, true);
  Json j;
  j["space"] = "darts";
  j["genotype"] = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1)], normal_concat=range(2, 6), reduce=[...])";
  j["edges"] = edges_json(groups, 0.5);
  j["method"] = "darts";
  j["dataset"] = "synthetic";
  j["seed"] = 7;
  j["epochs_done"] = epochs;
  j["search_val_acc"] = 0.5;
  write_json(dir + "/genotype.json", j);
}

void make_parsec_run(const std::string& dir, const std::vector<double>& log_likelihood) {
  const auto g = nb201_group();
  write_config(dir, "parsec", "nb201", 3);
  write_metrics(dir, {g}, 3, true, {{"total_entropy", 9.0}, {"ess", 3.5}});
  Json j;
  j["space"] = "nb201";
  j["genotype"] = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|";
  j["edges"] = edges_json({g}, 0.75);
  j["method"] = "parsec";
  j["dataset"] = "synthetic";
  j["seed"] = 7;
  j["epochs_done"] = 3;
  j["search_val_acc"] = 0.25;
  Json p;
  p["samples"] = 4;
  p["entropy_nats"] = 7.5;
  p["mean_entropy_nats"] = 1.25;
  p["uniform_entropy_nats"] = 9.656628;
  p["most_probable"] = Json::array({
      {{"probability", 0.25}, {"log_probability", std::log(0.25)}, {"architecture", "|arch-one~0|"}},
      {{"probability", 0.125}, {"log_probability", std::log(0.125)}, {"architecture", "|arch-two~0|"}},
      {{"probability", 1e-7}, {"log_probability", std::log(1e-7)}, {"architecture", "|arch-<three>~0|"}}});
  std::vector<double> prior(log_likelihood.size());
  for (std::size_t i = 0; i < prior.size(); ++i) prior[i] = -9.0 - 0.01 * static_cast<double>(i);
  p["recent_samples"] = {{"log_likelihood_per_image", log_likelihood}, {"log_prior", prior}};
  j["parsec"] = p;
  write_json(dir + "/genotype.json", j);
}

void make_pgnas_run(const std::string& dir) {
  GroupSpec gates{"gates", {}, {"keep", "drop"}, {}};
  for (int b = 1; b <= 2; ++b)
    for (int conv = 1; conv <= 2; ++conv) {
      gates.edges.push_back("s1.b" + std::to_string(b) + ".k3.conv" + std::to_string(conv));
      gates.chosen.push_back("keep");
    }
  write_config(dir, "pgnas", "multibranch", 2);
  write_metrics(dir, {gates}, 2, true, {{"mean_drop", 0.1}});
  Json j;
  j["space"] = "multibranch";
  j["genotype"] = "multibranch guided candidate #3: 1000 weights, 90.00% of the channels kept, 0 of 2 branches removed";
  Json edges = edges_json({gates}, 0.5);
  for (auto& e : edges) e["op"] = "3/4";
  j["edges"] = edges;
  j["method"] = "pgnas";
  j["dataset"] = "synthetic";
  j["seed"] = 7;
  j["best"] = {{"sampling", "guided"}, {"index", 3}, {"val_acc", 0.6}, {"params", 1000}, {"kept_fraction", 0.9}};
  j["supernet"] = {{"val_acc", 0.55}, {"params", 1200}};
  write_json(dir + "/genotype.json", j);
  test::write_file(dir + "/candidates.csv",
                   "sampling,rank,index,val_acc,val_loss,params,kept_fraction\n"
                   "guided,1,3,0.6,1.1,1000,0.9\n"
                   "guided,2,0,0.5,1.2,1010,0.91\n"
                   "guided,3,4,0.5,1.3,1020,0.92\n"
                   "guided,4,1,0.4,1.4,1030,0.93\n"
                   "guided,5,2,0.3,1.5,1040,0.94\n"
                   "random,1,11,0.55,1.15,990,0.85\n"
                   "random,2,12,0.45,1.25,980,0.84\n"
                   "random,3,10,0.35,1.35,970,0.83\n"
                   "random,4,13,0.2,1.6,960,0.82\n");
}

// The counts in the histogram bars' tooltips ("name: N in [a, b)"), summed per series.
std::map<std::string, int> histogram_counts(const std::string& html) {
  std::map<std::string, int> sums;
  static const std::regex bar(R"re(<rect class="bar"[^>]*><title>([^<:]+): (\d+) in)re");
  for (std::sregex_iterator it(html.begin(), html.end(), bar), stop; it != stop; ++it)
    sums[(*it)[1]] += std::stoi((*it)[2]);
  return sums;
}

// The rows of the first table in `html`: the text of their cells.
std::vector<std::vector<std::string>> table_rows(const std::string& html) {
  std::vector<std::vector<std::string>> rows;
  const auto body = html.find("<tbody>");
  const auto end = html.find("</tbody>", body);
  if (body == std::string::npos || end == std::string::npos) return rows;
  const std::string t = html.substr(body, end - body);
  static const std::regex row_re("<tr>(.*?)</tr>");
  static const std::regex cell_re("<t[dh][^>]*>(.*?)</t[dh]>");
  static const std::regex tags("<[^>]*>");
  for (std::sregex_iterator it(t.begin(), t.end(), row_re), stop; it != stop; ++it) {
    const std::string row = (*it)[1];
    std::vector<std::string> cells;
    for (std::sregex_iterator ct(row.begin(), row.end(), cell_re); ct != stop; ++ct)
      cells.push_back(std::regex_replace(std::string((*ct)[1]), tags, ""));
    rows.push_back(cells);
  }
  return rows;
}

// ---- the checker itself ---------------------------------------------------------------------

TEST(ReportHtmlChecker, CatchesWhatItChecks) {
  EXPECT_EQ(html_problems("<div><p>ok</p><br></div>"), "");
  EXPECT_NE(html_problems("<div><p>unclosed</div>"), "");
  EXPECT_NE(html_problems("<div>"), "");
  EXPECT_NE(html_problems("<svg><rect x=\"nan\"/></svg>"), "");
  EXPECT_NE(html_problems("<svg><path d=\"M0 0 L-inf 2\"/></svg>"), "");
  EXPECT_NE(html_problems("<p>a < b</p>"), "");
  EXPECT_EQ(html_problems("<svg><rect x=\"1\" y=\"2\"/><title>nan is fine in text</title></svg>"), "");
}

// ---- the report -----------------------------------------------------------------------------

TEST(Report, Nb201RunHasEverySectionAndIsWellFormed) {
  TempDir dir;
  make_nb201_run(dir.path());
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const std::string summary = section(html, "summary");
  EXPECT_NE(summary.find("DrNAS"), std::string::npos);
  EXPECT_NE(summary.find("NAS-Bench-201"), std::string::npos);
  EXPECT_NE(summary.find("synthetic"), std::string::npos);
  EXPECT_NE(summary.find("43.21%"), std::string::npos) << "final search validation accuracy";
  EXPECT_NE(summary.find("3 <span class=\"of\">/ 5</span>"), std::string::npos) << "epochs done / total";
  EXPECT_NE(summary.find("93.76%"), std::string::npos) << "NB201 CIFAR-10 score";
  EXPECT_NE(summary.find("70.71%"), std::string::npos);
  EXPECT_NE(summary.find("44.10%"), std::string::npos);
  EXPECT_NE(summary.find("768"), std::string::npos) << "images processed";
  EXPECT_NE(summary.find("4.5 s"), std::string::npos) << "search wall time";
  EXPECT_NE(summary.find("|nor_conv_3x3~0|+|skip_connect~0|none~1|"), std::string::npos);
  EXPECT_NE(summary.find("Not retrained yet"), std::string::npos);
  // Curves: accuracy and loss charts with a legend; entropy chart; the other scalars.
  EXPECT_EQ(count(section(html, "curves"), "<svg"), 2u);
  EXPECT_NE(section(html, "curves").find(">validation</text>"), std::string::npos);
  EXPECT_NE(section(html, "entropy").find("mean entropy per edge"), std::string::npos);
  EXPECT_NE(section(html, "entropy").find("concentration"), std::string::npos);
  EXPECT_NE(section(html, "samples").find("Not applicable"), std::string::npos);
}

TEST(Report, Nb201CellPictureDrawsEveryNonNoneEdge) {
  TempDir dir;
  make_nb201_run(dir.path());
  const std::string cells = section(render_report(dir.path()), "cells");
  EXPECT_EQ(count(cells, "class=\"cell-picture\""), 1u);
  EXPECT_EQ(count(cells, "class=\"node node-"), 4u);
  EXPECT_EQ(count(cells, "class=\"node node-input\""), 1u);
  EXPECT_EQ(count(cells, "class=\"node node-output\""), 1u);
  EXPECT_EQ(count(cells, "class=\"edge-label\""), 5u) << "6 edges, one of them none";
  EXPECT_EQ(count(cells, "marker-end="), 5u);
  EXPECT_EQ(cells.find(">none</text>"), std::string::npos);
  EXPECT_NE(cells.find(">avg_pool_3x3</text>"), std::string::npos);
}

TEST(Report, HeatMapHasOneCellPerEdgeOpAndEpoch) {
  TempDir nb;
  make_nb201_run(nb.path());
  const std::string probs = section(render_report(nb.path()), "probabilities");
  EXPECT_EQ(count(probs, "<rect class=\"heat\""), 6u * 5u * 3u);
  EXPECT_NE(probs.find("stop-color"), std::string::npos) << "colour legend";
  // The final table: one row per edge, one column per op plus the edge and the derived op.
  const auto table = table_rows(probs.substr(probs.find("<table")));
  ASSERT_EQ(table.size(), 6u);
  EXPECT_EQ(table[0].size(), 1u + 5u + 1u);
  EXPECT_EQ(table[0][0], "1&lt;-0");
  EXPECT_EQ(table[0][4], "80.0%") << "0.05 + 0.75 for the derived op, 1 decimal";
  EXPECT_EQ(table[0][1], "5.0%");

  TempDir darts;
  make_darts_run(darts.path(), 4);
  const std::string dprobs = section(render_report(darts.path()), "probabilities");
  EXPECT_EQ(count(dprobs, "<rect class=\"heat\""), 2u * 14u * 8u * 4u);
  EXPECT_EQ(count(dprobs, "<table"), 2u) << "a final table per group";
}

TEST(Report, OldRunsWithoutProbsSaySo) {
  TempDir dir;
  make_nb201_run(dir.path(), "|nor_conv_3x3~0|", /*with_probs=*/false);
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const std::string probs = section(html, "probabilities");
  EXPECT_EQ(count(probs, "<rect class=\"heat\""), 0u);
  EXPECT_NE(probs.find("no <code>probs</code>"), std::string::npos);
  EXPECT_NE(probs.find("Final probabilities"), std::string::npos);
}

TEST(Report, DartsCellsAreDrawnWithTheirEdgesAndOutput) {
  TempDir dir;
  make_darts_run(dir.path());
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const std::string cells = section(html, "cells");
  EXPECT_EQ(count(cells, "class=\"cell-picture\""), 2u);
  EXPECT_NE(cells.find("Normal cell"), std::string::npos);
  EXPECT_NE(cells.find("Reduction cell"), std::string::npos);
  EXPECT_EQ(count(cells, "class=\"node node-input\""), 4u) << "c_{k-2}, c_{k-1} per cell";
  EXPECT_EQ(count(cells, "class=\"node node-inner\""), 8u);
  EXPECT_EQ(count(cells, "class=\"node node-output\""), 2u);
  EXPECT_EQ(count(cells, "class=\"edge-label\""), 16u) << "2 inputs per intermediate node, 4 nodes, 2 cells";
  EXPECT_EQ(count(cells, "marker-end="), 16u + 8u) << "plus the concatenation into c_{k}";
}

TEST(Report, DartsCellLabelsDoNotOverlap) {
  TempDir dir;
  make_darts_run(dir.path());
  const std::string cells = section(render_report(dir.path()), "cells");
  static const std::regex box(R"re(<rect x="([-0-9.]+)" y="([-0-9.]+)" width="([0-9.]+)" height="([0-9.]+)" rx="3" class="label-bg"/>)re");
  std::size_t pictures = 0;
  for (std::size_t at = cells.find("<svg"); at != std::string::npos; at = cells.find("<svg", at + 1)) {
    ++pictures;
    const std::string svg = cells.substr(at, cells.find("</svg>", at) - at);
    std::vector<std::array<double, 4>> boxes;
    for (std::sregex_iterator it(svg.begin(), svg.end(), box), stop; it != stop; ++it)
      boxes.push_back({std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3]), std::stod((*it)[4])});
    EXPECT_EQ(boxes.size(), 8u);
    for (std::size_t a = 0; a < boxes.size(); ++a)
      for (std::size_t b = a + 1; b < boxes.size(); ++b) {
        const bool overlap = boxes[a][0] < boxes[b][0] + boxes[b][2] && boxes[b][0] < boxes[a][0] + boxes[a][2] &&
                             boxes[a][1] < boxes[b][1] + boxes[b][3] && boxes[b][1] < boxes[a][1] + boxes[a][3];
        EXPECT_FALSE(overlap) << "labels " << a << " and " << b << " overlap in picture " << pictures;
      }
  }
  EXPECT_EQ(pictures, 2u);
}

TEST(Report, MostProbableAssignmentsOfASmallProduct) {
  // Edge 1: 0.7 / 0.3, edge 2: 0.4 / 0.6: (0,1) 0.42, (0,0) 0.28, (1,1) 0.18, (1,0) 0.12.
  const std::vector<std::vector<double>> probs = {{0.7, 0.3}, {0.4, 0.6}};
  const auto all = most_probable_assignments(probs, 10);
  ASSERT_EQ(all.size(), 4u) << "k above the number of architectures gives all of them";
  const std::vector<std::vector<std::size_t>> expected = {{0, 1}, {0, 0}, {1, 1}, {1, 0}};
  const std::vector<double> p = {0.42, 0.28, 0.18, 0.12};
  double sum = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(all[i].choice, expected[i]) << i;
    EXPECT_NEAR(all[i].probability, p[i], 1e-12) << i;
    EXPECT_NEAR(all[i].log_probability, std::log(p[i]), 1e-12) << i;
    sum += all[i].probability;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  const auto two = most_probable_assignments(probs, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].choice, expected[1]);
  EXPECT_TRUE(most_probable_assignments(probs, 0).empty());
  // Unnormalised input is normalised; zero-probability options are never listed; NaN counts as 0.
  const auto z = most_probable_assignments({{2, 0, 6}, {std::nan(""), 1}}, 10);
  ASSERT_EQ(z.size(), 2u);
  EXPECT_EQ(z[0].choice, (std::vector<std::size_t>{2, 1}));
  EXPECT_NEAR(z[0].probability, 0.75, 1e-12);
  EXPECT_EQ(z[1].choice, (std::vector<std::size_t>{0, 1}));
}

TEST(Report, MostProbableAssignmentsMatchBruteForce) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.01, 1.0);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::vector<double>> probs(4, std::vector<double>(3));
    for (auto& v : probs)
      for (auto& x : v) x = u(rng);
    std::vector<double> all;  // every one of the 81 architectures' probability
    for (std::size_t code = 0; code < 81; ++code) {
      double p = 1;
      std::size_t rest = code;
      for (const auto& v : probs) {
        double s = 0;
        for (const double x : v) s += x;
        p *= v[rest % 3] / s;
        rest /= 3;
      }
      all.push_back(p);
    }
    std::sort(all.rbegin(), all.rend());
    const auto best = most_probable_assignments(probs, 12);
    ASSERT_EQ(best.size(), 12u);
    std::set<std::vector<std::size_t>> seen;
    for (std::size_t i = 0; i < best.size(); ++i) {
      EXPECT_NEAR(best[i].probability, all[i], 1e-12) << "trial " << trial << " rank " << i;
      EXPECT_TRUE(seen.insert(best[i].choice).second) << "duplicate architecture";
    }
    EXPECT_EQ(most_probable_assignments(probs, 1000).size(), 81u);
  }
}

TEST(Report, MostProbableAssignmentsAreFastAtDartsSize) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::vector<double>> probs(28, std::vector<double>(8));
  for (auto& v : probs)
    for (auto& x : v) x = u(rng);
  const auto start = std::chrono::steady_clock::now();
  const auto best = most_probable_assignments(probs, 10);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(best.size(), 10u);
  EXPECT_LT(seconds, 0.5);
  for (std::size_t v = 0; v < 28; ++v)  // the best is every edge's argmax
    EXPECT_EQ(best[0].choice[v],
              static_cast<std::size_t>(std::max_element(probs[v].begin(), probs[v].end()) - probs[v].begin()));
  for (std::size_t i = 1; i < best.size(); ++i) EXPECT_LE(best[i].probability, best[i - 1].probability);
}

TEST(Report, TopKSectionListsTheProductDistributionsBest) {
  TempDir dir;
  Json j;
  j["space"] = "toy";
  j["genotype"] = "toy";
  j["method"] = "gibbsnas";
  j["edges"] = Json::array({{{"group", "g"}, {"edge", "1<-0"}, {"op", "a"}, {"probs", {{"a", 0.7}, {"b", 0.3}}}},
                            {{"group", "g"}, {"edge", "2<-1"}, {"op", "d"}, {"probs", {{"c", 0.4}, {"d", 0.6}}}}});
  write_json(dir.file("genotype.json"), j);
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const std::string topk = section(html, "topk");
  const auto rows = table_rows(topk);
  ASSERT_EQ(rows.size(), 4u);
  const std::vector<std::string> expected_p = {"42.00%", "28.00%", "18.00%", "12.00%"};
  const std::vector<std::string> expected_arch = {"g a d", "g a c", "g b d", "g b c"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(rows[i][1], expected_p[i]) << i;
    EXPECT_EQ(rows[i][3], expected_arch[i]) << i;
  }
  EXPECT_NE(topk.find("100.00% of the probability"), std::string::npos);
}

TEST(Report, EscapesTextFromTheRunFolder) {
  TempDir dir;
  make_nb201_run(dir.path(), "<script>alert('x')</script> & <b>");
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;"), std::string::npos);
  EXPECT_NE(html.find("3&lt;-2"), std::string::npos) << "edge names hold '<'";
}

TEST(Report, MissingMetricsGiveASentenceNotACrash) {
  TempDir dir;
  make_nb201_run(dir.path());
  std::filesystem::remove(dir.file("metrics.jsonl"));
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const std::string curves = section(html, "curves");
  EXPECT_NE(curves.find("class=\"note missing\""), std::string::npos);
  EXPECT_NE(curves.find("metrics.jsonl: missing"), std::string::npos);
  EXPECT_EQ(curves.find("<svg"), std::string::npos);
  EXPECT_NE(section(html, "entropy").find("metrics.jsonl: missing"), std::string::npos);
  // What genotype.json feeds is still there.
  EXPECT_EQ(count(section(html, "cells"), "class=\"cell-picture\""), 1u);
  EXPECT_EQ(section(html, "topk").find("class=\"note missing\""), std::string::npos);
}

TEST(Report, EmptyAndMissingFoldersRender) {
  TempDir dir;
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  EXPECT_NE(html.find("genotype.json: missing"), std::string::npos);
  EXPECT_NE(html.find("config.ini: missing"), std::string::npos);

  const std::string gone = dir.file("no-such-run");
  expect_valid_report(render_report(gone));
  std::string problem;
  EXPECT_FALSE(write_report(gone, &problem));
  EXPECT_NE(problem.find("report.html"), std::string::npos) << problem;
  EXPECT_EQ(problem.find('\n'), std::string::npos) << "one line";
  EXPECT_FALSE(write_report(gone)) << "no problem pointer: still no throw";
}

TEST(Report, WriteReportWritesReportHtml) {
  TempDir dir;
  make_nb201_run(dir.path());
  std::string problem = "unchanged";
  ASSERT_TRUE(write_report(dir.path(), &problem));
  EXPECT_EQ(problem, "unchanged");
  const std::string html = read_file_bytes(dir.file("report.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_FALSE(file_exists(dir.file("report.html.tmp")));
  EXPECT_NE(html.find("<h1>" + std::filesystem::path(dir.path()).filename().string() + "</h1>"), std::string::npos);
}

TEST(Report, NonFiniteAndOddValuesKeepTheSvgValid) {
  TempDir dir;
  make_nb201_run(dir.path());
  // Nulls (how nlohmann writes NaN), huge and negative values, a truncated last line, one good epoch.
  test::write_file(dir.file("metrics.jsonl"),
                   "{\"epoch\":1,\"train_loss\":null,\"train_acc\":1e308,\"val_loss\":-1e308,\"val_acc\":null,"
                   "\"arch_entropy\":null,\"probs\":{\"cell\":[[null,0.5,0.5,0,0],[1e300,0,0,0,0]]}}\n"
                   "{\"epoch\":2,\"train_loss\":1.0,\"train_acc\":0.5,\"val_loss\":1.0,\"val_acc\":0.5,\"arch_entropy\":1.0,"
                   "\"probs\":{\"cell\":\"oops\"}}\n"
                   "{\"epoch\":3,\"train_loss\":1.");
  Json j = Json::parse(read_file_bytes(dir.file("genotype.json")));
  j["edges"][0]["probs"]["none"] = nullptr;
  j["search_val_acc"] = nullptr;
  write_json(dir.file("genotype.json"), j);
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  EXPECT_NE(section(html, "curves").find("1 line(s) of metrics.jsonl could not be read"), std::string::npos);
  EXPECT_EQ(count(section(html, "probabilities"), "<rect class=\"heat\""), 6u * 5u * 2u);

  // One epoch only, every value constant: degenerate axis ranges.
  test::write_file(dir.file("metrics.jsonl"),
                   "{\"epoch\":1,\"train_loss\":0,\"train_acc\":0,\"val_loss\":0,\"val_acc\":0,\"arch_entropy\":0}\n");
  expect_valid_report(render_report(dir.path()));
}

TEST(Report, ParsecShowsSampleHistogramAndMostProbable) {
  TempDir dir;
  std::vector<double> log_likelihood;
  for (int i = 0; i < 20; ++i) log_likelihood.push_back(-2.0 - 0.05 * (i % 7));
  make_parsec_run(dir.path(), log_likelihood);
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const std::string samples = section(html, "samples");
  const auto counts = histogram_counts(samples);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts.begin()->second, 20) << "every sample in one bar";
  EXPECT_NE(samples.find("log prior"), std::string::npos) << "the log-prior scatter";
  const auto rows = table_rows(section(html, "topk"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][1], "25.00%");
  EXPECT_EQ(rows[0][3], "|arch-one~0|");
  EXPECT_EQ(rows[1][1], "12.50%");
  EXPECT_EQ(rows[2][1], "1.00&#8202;&times;&#8202;10-7");
  EXPECT_EQ(rows[2][3], "|arch-&lt;three&gt;~0|");
  // Entropy: both the mean and the total chart, with the uniform reference from genotype.json.
  const std::string entropy = section(html, "entropy");
  EXPECT_NE(entropy.find("joint entropy"), std::string::npos);
  EXPECT_EQ(count(entropy, ">uniform</text>"), 2u);
}

TEST(Report, ParsecWithoutRecentSamplesSaysSo) {
  TempDir dir;
  make_parsec_run(dir.path(), {});
  const std::string samples = section(render_report(dir.path()), "samples");
  EXPECT_NE(samples.find("log_likelihood_per_image"), std::string::npos);
  EXPECT_EQ(samples.find("<svg"), std::string::npos);
}

TEST(Report, PgnasShowsCandidatesAndGates) {
  TempDir dir;
  make_pgnas_run(dir.path());
  const std::string html = render_report(dir.path());
  expect_valid_report(html);
  const auto counts = histogram_counts(section(html, "samples"));
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.at("guided"), 5);
  EXPECT_EQ(counts.at("random"), 4);
  // Top-k: the candidates by validation accuracy, then loss, across both samplings.
  const auto rows = table_rows(section(html, "topk"));
  ASSERT_EQ(rows.size(), 9u);
  const std::vector<std::string> order = {"3", "11", "0", "4", "12", "1", "10", "2", "13"};
  for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(rows[i][2], order[i]) << i;
  EXPECT_EQ(rows[0][1], "guided");
  EXPECT_EQ(rows[0][3], "60.00%");
  // Cells: no picture, a gate table (the keep probabilities, kept channels).
  const std::string cells = section(html, "cells");
  EXPECT_EQ(cells.find("cell-picture"), std::string::npos);
  EXPECT_NE(cells.find("gates-table"), std::string::npos);
  EXPECT_NE(cells.find("s1.b2.k3"), std::string::npos);
  EXPECT_NE(cells.find("3/4"), std::string::npos);
  // Heat map: the keep probability per gate and epoch.
  EXPECT_EQ(count(section(html, "probabilities"), "<rect class=\"heat\""), 4u * 2u);
  EXPECT_NE(section(html, "summary").find("Best candidate"), std::string::npos);
}

TEST(Report, RetrainedResultAppearsInTheSummary) {
  TempDir dir;
  make_nb201_run(dir.path());
  std::filesystem::create_directories(dir.file("train"));
  write_json(dir.file("train/result.json"), {{"test_acc", 0.91234},
                                             {"params", 1234567},
                                             {"flops", 2.5e8},
                                             {"epochs", 600},
                                             {"wall_s", 7322},
                                             {"mode", "full"}});
  const std::string summary = section(render_report(dir.path()), "summary");
  EXPECT_NE(summary.find("91.23%"), std::string::npos);
  EXPECT_NE(summary.find("1.23 M"), std::string::npos);
  EXPECT_NE(summary.find("1,234,567"), std::string::npos);
  EXPECT_NE(summary.find("250.00 MFLOPs"), std::string::npos);
  EXPECT_NE(summary.find("2 h 02 min"), std::string::npos);
  EXPECT_NE(summary.find("full"), std::string::npos);
  EXPECT_EQ(summary.find("Not retrained yet"), std::string::npos);
}

}  // namespace
}  // namespace probnas
