#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "probnas/report/cell_layout.h"
#include "probnas/report/kbest.h"
#include "probnas/report/sections.h"
#include "probnas/report/svg.h"

namespace probnas::report {

namespace {

// Heat maps of one group's probabilities per epoch: rows = edges x ops (for gate groups: the keep
// probability per gate), columns = epochs. Small groups get one map; large ones one small map per
// edge (gate groups: per stage) in a grid with one shared colour legend. Every cell is a
// <rect class="heat">, one per (edge, op, epoch shown).
std::string heat_maps(const RunView& r, const Group& g, bool keep_only, std::string* caption) {
  const std::vector<double> all_epochs = epochs_of(r);
  // At most 160 columns: longer runs show every s-th epoch (and the last).
  std::vector<std::size_t> cols;
  const std::size_t stride = std::max<std::size_t>(1, (r.metrics.size() + 159) / 160);
  for (std::size_t i = 0; i < r.metrics.size(); i += stride) cols.push_back(i);
  if (!cols.empty() && cols.back() != r.metrics.size() - 1) cols.push_back(r.metrics.size() - 1);
  std::vector<std::size_t> shown_ops;
  for (std::size_t k = 0; k < g.ops.size(); ++k)
    if (!keep_only || g.ops[k] == "keep") shown_ops.push_back(k);
  if (keep_only && shown_ops.empty() && !g.ops.empty()) shown_ops.push_back(0);
  auto value = [&](std::size_t col, std::size_t e, std::size_t k) {
    const Json* probs = child(r.metrics[col], "probs");
    if (!probs) return kNaN;
    const Json* rows = child(*probs, g.name);
    if (!rows || !rows->is_array() || e >= rows->size()) return kNaN;
    const Json& row_j = (*rows)[e];
    if (!row_j.is_array() || k >= row_j.size()) return kNaN;
    return as_num(row_j[k]);
  };
  double pmax = 0;
  for (const std::size_t col : cols)
    for (std::size_t e = 0; e < g.edges.size(); ++e)
      for (const std::size_t k : shown_ops) {
        const double v = value(col, e, k);
        if (std::isfinite(v)) pmax = std::max(pmax, v);
      }
  pmax = pmax <= 0 ? 1 : std::min(1.0, std::ceil(pmax * 20 - 1e-9) / 20);
  const int legend_digits = pmax < 0.2 ? 1 : 0;

  // Chunks of edges (positions in g.edges), each drawn as one map.
  std::vector<std::vector<std::size_t>> chunks;
  std::vector<std::string> headings;
  const std::size_t rows_total = g.edges.size() * shown_ops.size();
  if (keep_only && rows_total > 48) {
    for (std::size_t e = 0; e < g.edges.size(); ++e) {
      const std::string& name = r.edges[g.edges[e]].name;
      const std::string stage = name.substr(0, name.find('.'));
      if (headings.empty() || headings.back() != stage) {
        headings.push_back(stage);
        chunks.emplace_back();
      }
      chunks.back().push_back(e);
    }
  } else if (!keep_only && rows_total > 48) {
    for (std::size_t e = 0; e < g.edges.size(); ++e) {
      chunks.push_back({e});
      headings.push_back(r.edges[g.edges[e]].name);
    }
  } else {
    chunks.emplace_back();
    for (std::size_t e = 0; e < g.edges.size(); ++e) chunks.back().push_back(e);
    headings.emplace_back();
  }
  const bool small = chunks.size() > 1;
  const std::size_t total_cells = rows_total * cols.size();
  const bool titles = total_cells <= 6000;

  auto legend = [&](double x, double top, double height, std::ostringstream& o, int id) {
    o << "<defs><linearGradient id=\"heat-scale" << id << "\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
    for (int s = 0; s <= 8; ++s) o << "<stop offset=\"" << svg_num(s / 8.0) << "\" stop-color=\"" << hex(scale(s / 8.0)) << "\"/>";
    o << "</linearGradient></defs>\n<g class=\"axis\"><rect x=\"" << svg_num(x) << "\" y=\"" << svg_num(top)
      << "\" width=\"12\" height=\"" << svg_num(height) << "\" fill=\"url(#heat-scale" << id << ")\" stroke=\"#b8c0c8\"/>";
    for (int s = 0; s <= 2; ++s) {
      const double yy = top + height - height * s / 2.0;
      o << "<text x=\"" << svg_num(x + 17) << "\" y=\"" << svg_num(yy + 4) << "\">" << show_percent(pmax * s / 2.0, legend_digits) << "</text>";
    }
    o << "<text x=\"" << svg_num(x) << "\" y=\"" << svg_num(top + height + 18) << "\" class=\"axis-label\">probability</text></g>\n";
  };

  auto draw = [&](const std::vector<std::size_t>& edges, const std::string& heading, bool with_legend) {
    const std::size_t rows = edges.size() * shown_ops.size();
    const bool dense = small || rows > 30;
    const double rh = dense ? 11 : 14, font = dense ? 9.5 : 11;
    const double edge_gap = shown_ops.size() > 1 && edges.size() > 1 ? 5 : 0;
    const double cw = std::clamp((small ? 200.0 : 560.0) / static_cast<double>(std::max<std::size_t>(1, cols.size())),
                                 3.0, small ? 26.0 : 40.0);
    const bool edge_column = heading.empty() || keep_only;
    std::size_t edge_chars = 2, op_chars = 2;
    for (const std::size_t e : edges) edge_chars = std::max(edge_chars, r.edges[g.edges[e]].name.size());
    for (const std::size_t k : shown_ops) op_chars = std::max(op_chars, g.ops[k].size());
    const double char_w = font * 0.61;
    const double edge_w = edge_column ? static_cast<double>(edge_chars) * char_w + 14 : 0;
    const double op_w = keep_only ? 0 : static_cast<double>(op_chars) * char_w + 12;
    const double left = std::max(edge_w + op_w, 44.0), top = heading.empty() ? 24 : 40;
    const double grid_w = cw * static_cast<double>(cols.size());
    const double grid_h = rh * static_cast<double>(rows) + edge_gap * static_cast<double>(edges.size() - 1);
    const double legend_x = left + grid_w + 22;
    const double w = with_legend ? legend_x + 76 : left + grid_w + 8;
    const double h = top + (with_legend ? std::max(grid_h, 120.0) + 34 : grid_h + 6);
    const int id = next_svg_id();
    std::ostringstream o;
    o << svg_open(w, h, "heatmap", "Operation probabilities per epoch, " + g.name + (heading.empty() ? "" : " " + heading));
    if (!heading.empty())
      o << "<text x=\"2\" y=\"14\" class=\"heat-heading\">" << esc(heading) << "</text>";
    // Column header: epoch numbers.
    const Ticks tx = nice_ticks(1, static_cast<double>(cols.size()), true, true, std::max(2, static_cast<int>(grid_w / 45)));
    o << "<g class=\"axis heat-axis\">";
    for (const double v : tick_values(tx)) {
      const auto col = static_cast<std::size_t>(v) - 1;
      if (col >= cols.size()) continue;
      o << "<text x=\"" << svg_num(left + (static_cast<double>(col) + 0.5) * cw) << "\" y=\"" << svg_num(top - 7)
        << "\" text-anchor=\"middle\">" << integer_text(all_epochs[cols[col]]) << "</text>";
    }
    o << "<text x=\"" << svg_num(left - 6) << "\" y=\"" << svg_num(top - 7) << "\" text-anchor=\"end\" class=\"axis-label\">epoch</text></g>\n";
    o << "<g class=\"heat-cells\" shape-rendering=\"crispEdges\">";
    double y = top;
    std::ostringstream labels;
    labels << "<g class=\"heat-labels\" font-size=\"" << svg_num(font) << "\">";
    for (const std::size_t e : edges) {
      const Edge& edge = r.edges[g.edges[e]];
      const double y_edge = y;
      for (const std::size_t k : shown_ops) {
        const bool chosen = !keep_only && g.ops[k] == edge.op;
        if (!keep_only)
          labels << "<text x=\"" << svg_num(left - 6) << "\" y=\"" << svg_num(y + rh * 0.5 + font * 0.35) << "\" text-anchor=\"end\""
                 << (chosen ? " class=\"chosen\"" : "") << ">" << esc(g.ops[k]) << "</text>";
        for (std::size_t ci = 0; ci < cols.size(); ++ci) {
          const double v = value(cols[ci], e, k);
          o << "<rect class=\"heat\" x=\"" << svg_num(left + static_cast<double>(ci) * cw) << "\" y=\"" << svg_num(y)
            << "\" width=\"" << svg_num(cw) << "\" height=\"" << svg_num(rh) << "\" fill=\""
            << (std::isfinite(v) ? hex(scale(v / pmax)) : "#e6e8eb") << "\"";
          if (titles)
            o << "><title>" << esc(edge.name) << (keep_only ? "" : " " + esc(g.ops[k])) << ", epoch "
              << integer_text(all_epochs[cols[ci]]) << ": " << show_percent(v, 2) << "</title></rect>";
          else
            o << "/>";
        }
        y += rh;
      }
      if (edge_column)
        labels << "<text x=\"2\" y=\"" << svg_num((y_edge + y) / 2 + font * 0.35) << "\"" << (keep_only ? "" : " class=\"edge-name\"")
               << ">" << esc(edge.name)
               << "</text>";
      y += edge_gap;
    }
    labels << "</g>\n";
    o << "</g>\n" << labels.str();
    if (with_legend) legend(legend_x, top, std::max(std::min(grid_h, 160.0), 60.0), o, id);
    o << "</svg>\n";
    return o.str();
  };

  std::ostringstream out;
  if (!small) {
    out << draw(chunks[0], "", true);
  } else {
    out << "<div class=\"heat-grid\">\n";
    for (std::size_t i = 0; i < chunks.size(); ++i) out << "<div>" << draw(chunks[i], headings[i], false) << "</div>\n";
    std::ostringstream lg;
    const int id = next_svg_id();
    lg << svg_open(90, 150, "heat-legend", "colour scale");
    legend(4, 10, 110, lg, id);
    lg << "</svg>\n";
    out << "<div>" << lg.str() << "</div></div>\n";
  }
  *caption = std::to_string(g.edges.size()) + (keep_only ? " gates" : " edges") +
             (keep_only ? "" : " \u00d7 " + std::to_string(shown_ops.size()) + " operations") + " \u00d7 " +
             std::to_string(cols.size()) + " epochs" +
             (stride > 1 ? " (every " + std::to_string(stride) + "th epoch and the last)" : "") + "; colour scale 0 to " +
             show_percent(pmax, legend_digits) + (keep_only ? "; keep probability of each gate" : "; the derived operation in bold");
  return out.str();
}

void probability_table(std::ostream& o, const RunView& r, const Group& g) {
  o << "<div class=\"table-wrap\"><table class=\"data probs\"><caption>" << esc(g.name)
    << ": final probabilities</caption><thead><tr><th>edge</th>";
  for (const auto& op : g.ops) o << "<th class=\"num\">" << esc(op) << "</th>";
  o << "<th>derived</th></tr></thead><tbody>\n";
  for (const std::size_t ei : g.edges) {
    const Edge& e = r.edges[ei];
    o << "<tr><td><code>" << esc(e.name) << "</code></td>";
    for (const auto& op : g.ops) {
      double p = kNaN;
      for (std::size_t k = 0; k < e.ops.size(); ++k)
        if (e.ops[k] == op) p = e.probs[k];
      const double t = std::isfinite(p) ? std::clamp(p, 0.0, 1.0) : 0;  // absolute: a flat distribution stays pale
      o << "<td class=\"num" << (op == e.op ? " chosen" : "") << "\" style=\"background:" << hex(scale(t * 0.9))
        << (t > 0.55 ? ";color:#fff" : "") << "\">" << show_percent(p, 1) << "</td>";
    }
    o << "<td><code>" << esc(e.op) << "</code></td></tr>\n";
  }
  o << "</tbody></table></div>\n";
}

}  // namespace

void section_probabilities(std::ostream& o, const RunView& r) {
  o << "<section id=\"probabilities\">\n<h2>Operation probabilities</h2>\n";
  if (r.groups.empty()) {
    o << missing("No probabilities: " + esc(!r.geno_note.empty() ? r.geno_note : "genotype.json lists no edges") +
                 (r.has_metrics ? "" : "; " + esc(r.metrics_note)) + ".")
      << "</section>\n";
    return;
  }
  const bool have_probs = std::any_of(r.metrics.begin(), r.metrics.end(), [](const Json& m) {
    const Json* p = child(m, "probs");
    return p && p->is_object() && !p->empty();
  });
  if (!r.has_metrics) {
    o << missing("No per-epoch probabilities: " + esc(r.metrics_note) + ".");
  } else if (!have_probs) {
    o << note("No per-epoch probabilities: this run's metrics.jsonl has no <code>probs</code> (written by an older "
              "probnas); the final probabilities below come from genotype.json.");
  } else {
    const bool gates = r.groups.size() == 1 && r.groups[0].name == "gates";
    o << (gates ? "<p>Each row is one gated convolution, each column one epoch; the colour is the probability of "
                  "keeping its channels at the end of the epoch.</p>\n"
                : "<p>Each row is one operation of one edge, each column one epoch; the colour is the probability the "
                  "method gives that operation at the end of the epoch.</p>\n");
    for (const Group& g : r.groups) {
      const bool keep_only = g.name == "gates";
      std::string caption;
      const std::string svg = heat_maps(r, g, keep_only, &caption);
      o << "<details open><summary>" << esc(g.name) << "</summary><figure class=\"heat-figure\">" << svg
        << "<figcaption>" << esc(caption) << "</figcaption></figure></details>\n";
    }
  }
  if (r.groups.size() == 1 && r.groups[0].name == "gates") {
    o << note("The final keep probabilities of the gates are in the <a href=\"#cells\">cells</a> section.");
  } else if (!r.generic_names || !r.edges.empty()) {
    o << "<h3>Final probabilities</h3>\n<div class=\"prob-tables\">\n";
    for (const auto& g : r.groups) probability_table(o, r, g);
    o << "</div>\n";
  }
  o << "</section>\n";
}


void section_samples(std::ostream& o, const RunView& r, const MethodSections& m) {
  o << "<section id=\"samples\">\n<h2>Sampled architectures</h2>\n";
  if (m.samples) {
    m.samples(o, r);
  } else {
    o << note("Not applicable: " + esc(r.method.empty() ? "this method" : m.title.empty() ? r.method : m.title) +
              " does not rank sampled architectures (histograms are drawn for PGNAS candidates and PARSEC samples).");
  }
  o << "</section>\n";
}

std::string abbreviate(const std::string& op) {
  static const std::map<std::string, std::string> short_names = {
      {"none", "\u00b7"},       {"skip_connect", "skip"}, {"max_pool_3x3", "max3"}, {"avg_pool_3x3", "avg3"},
      {"sep_conv_3x3", "sep3"}, {"sep_conv_5x5", "sep5"}, {"dil_conv_3x3", "dil3"}, {"dil_conv_5x5", "dil5"},
      {"nor_conv_1x1", "conv1"}, {"nor_conv_3x3", "conv3"}};
  const auto it = short_names.find(op);
  return it == short_names.end() ? op : it->second;
}

void section_topk(std::ostream& o, const RunView& r, const MethodSections& m) {
  o << "<section id=\"topk\">\n<h2>Most probable architectures</h2>\n";
  constexpr std::size_t k = 10;
  if (m.topk && m.topk(o, r)) {
    o << "</section>\n";
    return;
  }
  if (r.edges.empty()) {
    o << missing("No architectures to rank: " + esc(r.geno_note.empty() ? "genotype.json lists no edges" : r.geno_note) + ".")
      << "</section>\n";
    return;
  }
  // Independent per-edge categoricals: the exact k best joint assignments.
  std::vector<std::vector<double>> probs;
  for (const auto& e : r.edges) probs.push_back(e.probs);
  const auto best = most_probable_assignments(probs, k);
  double covered = 0;
  for (const auto& a : best) covered += a.probability;
  // NB201 cells print as NB201 strings when every edge is named "j<-i".
  bool nb201 = r.space == "nb201" && r.groups.size() == 1;
  for (const auto& e : r.edges) {
    int to = 0, from = 0;
    if (!parse_edge_name(e.name, &to, &from)) nb201 = false;
  }
  o << "<p>The " << best.size() << " most probable architectures of the product of the " << r.edges.size()
    << " edges' final operation distributions (one operation per edge, exact enumeration), together "
    << probability_html(covered) << " of the probability.";
  if (r.space == "darts")
    o << " The derived cell keeps the two strongest non-<code>none</code> edges per node instead, so it need not be "
         "the most probable assignment.";
  o << " Operations that differ from #1 are highlighted.</p>\n";
  if (!nb201) {
    std::set<std::string> used;
    for (const auto& a : best)
      for (std::size_t v = 0; v < a.choice.size(); ++v) used.insert(r.edges[v].ops[a.choice[v]]);
    o << "<p class=\"dim small\">Edges in order: ";
    for (std::size_t gi = 0; gi < r.groups.size(); ++gi) {
      o << (gi ? "; " : "") << esc(r.groups[gi].name) << ": ";
      for (std::size_t i = 0; i < r.groups[gi].edges.size(); ++i)
        o << (i ? " " : "") << esc(r.edges[r.groups[gi].edges[i]].name);
    }
    o << ". Abbreviations: ";
    bool first = true;
    for (const auto& op : used)
      if (abbreviate(op) != op) o << (first ? "" : ", ") << "<code>" << esc(abbreviate(op)) << "</code> " << esc(op), first = false;
    o << (first ? "none" : "") << ".</p>\n";
  }
  o << "<table class=\"data topk\"><thead><tr><th class=\"num\">#</th><th class=\"num\">probability</th>"
       "<th class=\"num\">log probability</th><th>architecture</th></tr></thead><tbody>\n";
  for (std::size_t i = 0; i < best.size(); ++i) {
    const auto& a = best[i];
    auto token = [&](std::size_t v, const std::string& text) {
      const bool differs = i > 0 && a.choice[v] != best[0].choice[v];
      return differs ? "<mark>" + esc(text) + "</mark>" : esc(text);
    };
    std::string arch;
    if (nb201) {
      // NB201 string: |op~i|...|+|...| by target node.
      std::map<int, std::vector<std::pair<int, std::size_t>>> by_target;
      for (std::size_t v = 0; v < r.edges.size(); ++v) {
        int to = 0, from = 0;
        parse_edge_name(r.edges[v].name, &to, &from);
        by_target[to].emplace_back(from, v);
      }
      bool first_node = true;
      for (auto& [to, list] : by_target) {
        std::sort(list.begin(), list.end());
        arch += first_node ? "|" : "+|";
        first_node = false;
        for (const auto& [from, v] : list) arch += token(v, r.edges[v].ops[a.choice[v]] + "~" + std::to_string(from)) + "|";
      }
    } else {
      for (std::size_t gi = 0; gi < r.groups.size(); ++gi) {
        arch += std::string(gi ? "<br>" : "") + "<span class=\"group-name\">" + esc(r.groups[gi].name) + "</span> ";
        for (std::size_t j = 0; j < r.groups[gi].edges.size(); ++j) {
          const std::size_t v = r.groups[gi].edges[j];
          arch += (j ? " " : "") + token(v, abbreviate(r.edges[v].ops[a.choice[v]]));
        }
      }
    }
    o << "<tr><td class=\"num\">" << i + 1 << "</td><td class=\"num\">" << probability_html(a.probability)
      << "</td><td class=\"num\">" << show_fixed(a.log_probability, 3)
      << "</td><td><code class=\"arch\">" << arch << "</code></td></tr>\n";
  }
  o << "</tbody></table>\n</section>\n";
}

}  // namespace probnas::report
