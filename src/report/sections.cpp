#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "probnas/report/cell_layout.h"
#include "probnas/report/sections.h"
#include "probnas/report/svg.h"

namespace probnas::report {

namespace {

void gates_table(std::ostream& o, const RunView& r, const Group& g) {
  // Gate groups "s1.b1.k3.conv1": one row per branch, conv1 and conv2 side by side, one table per stage.
  struct BranchRow {
    std::string name;
    double keep[2] = {kNaN, kNaN};
    std::string kept[2];
  };
  std::map<std::string, std::vector<BranchRow>> stages;
  std::vector<std::string> stage_order;
  for (const std::size_t ei : g.edges) {
    const Edge& e = r.edges[ei];
    const auto dot = e.name.rfind('.');
    const std::string branch = dot == std::string::npos ? e.name : e.name.substr(0, dot);
    const std::string conv = dot == std::string::npos ? "" : e.name.substr(dot + 1);
    const auto first_dot = e.name.find('.');
    const std::string stage = first_dot == std::string::npos ? "" : e.name.substr(0, first_dot);
    if (!stages.count(stage)) stage_order.push_back(stage);
    auto& rows = stages[stage];
    if (rows.empty() || rows.back().name != branch) rows.push_back({branch, {kNaN, kNaN}, {"", ""}});
    const int slot = conv == "conv2" ? 1 : 0;
    double keep = kNaN;
    for (std::size_t k = 0; k < e.ops.size(); ++k)
      if (e.ops[k] == "keep") keep = e.probs[k];
    rows.back().keep[slot] = keep;
    rows.back().kept[slot] = e.op;
  }
  o << "<p>The multi-branch space has no cell to draw; its architecture is the set of channel gates. Keep "
       "probability per gated convolution"
    << (g.edges.empty() ? "" : " (with the channels the best candidate kept, where known)") << ":</p>\n<div class=\"gates\">\n";
  for (const auto& stage : stage_order) {
    o << "<table class=\"data gates-table\"><caption>stage " << esc(stage.empty() ? "?" : stage.substr(1))
      << "</caption><thead><tr><th>branch</th><th class=\"num\">conv1 keep</th><th class=\"num\">conv2 keep</th></tr>"
      << "</thead><tbody>\n";
    for (const auto& b : stages[stage]) {
      o << "<tr><td><code>" << esc(b.name) << "</code></td>";
      for (int s = 0; s < 2; ++s) {
        const bool removed = b.kept[s].rfind("0/", 0) == 0 || b.kept[s] == "drop";
        o << "<td class=\"num" << (removed ? " removed" : "") << "\">" << show_percent(b.keep[s], 1);
        if (b.kept[s].find('/') != std::string::npos) o << " <span class=\"dim\">" << esc(b.kept[s]) << "</span>";
        o << "</td>";
      }
      o << "</tr>\n";
    }
    o << "</tbody></table>\n";
  }
  o << "</div>\n";
}

}  // namespace

void section_summary(std::ostream& o, const RunView& r, const MethodSections& m) {
  o << "<section id=\"summary\">\n<h2>Summary</h2>\n";
  const Json* last = r.last_metrics();
  const std::vector<double> val = validation_series(r, "val_acc");
  double epochs_done = num_of(r.geno, "epochs_done");
  if (!std::isfinite(epochs_done) && last) epochs_done = num_of(*last, "epoch");
  const double epochs_total = parse_number_or_nan(r.cfg("search.epochs"));
  double final_val = num_of(r.geno, "search_val_acc");
  if (!std::isfinite(final_val)) final_val = last_finite(val);
  const double wall = last ? num_of(*last, "wall_s") : kNaN;
  const double images = last ? num_of(*last, "images") : kNaN;
  const double rate = last ? num_of(*last, "images_per_s") : kNaN;
  std::string seed = text_of(r.geno, "seed");
  if (seed.empty()) seed = r.cfg("run.seed");

  // Headline figures.
  o << "<div class=\"cards\">\n";
  auto card = [&](const std::string& label, const std::string& value_html, const std::string& sub = "") {
    o << "<div class=\"card\"><div class=\"card-label\">" << esc(label) << "</div><div class=\"card-value\">"
      << value_html << "</div>" << (sub.empty() ? "" : "<div class=\"card-sub\">" + sub + "</div>") << "</div>\n";
  };
  card("Search validation accuracy", show_percent(final_val));
  std::string epochs_text = std::isfinite(epochs_done) ? integer_text(epochs_done) : "n/a";
  if (std::isfinite(epochs_total)) epochs_text += " <span class=\"of\">/ " + integer_text(epochs_total) + "</span>";
  card("Epochs", epochs_text);
  card("Search wall time", format_duration_words(wall));
  card("Images processed", scaled(images, ""), std::isfinite(rate) ? show_fixed(rate, 1) + " images/s last epoch" : "");
  if (r.has_train) card("Retrained test accuracy", show_percent(num_of(r.train, "test_acc")));
  if (const Json* nb = child(r.geno, "nb201"); nb && nb->is_object())
    card("NAS-Bench-201 CIFAR-10 test", std::isfinite(num_of(*nb, "cifar10_test")) ? show_fixed(num_of(*nb, "cifar10_test"), 2) + "%" : "n/a");
  o << "</div>\n";

  o << "<table class=\"kv\"><tbody>\n";
  row(o, "Method", esc(r.method.empty() ? "unknown" : m.title.empty() ? r.method : m.title));
  row(o, "Search space", esc(r.space.empty() ? "unknown" : space_title(r.space)));
  row(o, "Dataset", esc(r.dataset.empty() ? "unknown" : r.dataset));
  row(o, "Seed", esc(seed.empty() ? "unknown" : seed));
  row(o, "Epochs done / total", epochs_text);
  row(o, "Search wall time", esc(format_duration_words(wall)) + (std::isfinite(wall) ? " <span class=\"dim\">(" + show_fixed(wall, 1) + " s)</span>" : ""));
  row(o, "Images processed", esc(integer_text(images)) + (std::isfinite(rate) ? " <span class=\"dim\">(" + show_fixed(rate, 1) + " images/s in the last epoch)</span>" : ""));
  row(o, "Final search validation accuracy", show_percent(final_val));
  if (any_finite(val)) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < val.size(); ++i)
      if (std::isfinite(val[i]) && (!std::isfinite(val[best]) || val[i] > val[best])) best = i;
    row(o, "Best search validation accuracy", show_percent(val[best]) + " <span class=\"dim\">(epoch " +
                                                  integer_text(num_of(r.metrics[best], "epoch")) + ")</span>");
  }
  if (m.summary_rows) m.summary_rows(o, r);
  row(o, "Run folder", "<code>" + esc(r.dir) + "</code>");
  o << "</tbody></table>\n";

  const std::string genotype = text_of(r.geno, "genotype");
  if (!genotype.empty()) o << "<h3>Genotype</h3>\n<pre class=\"genotype\"><code>" << esc(genotype) << "</code></pre>\n";
  else if (last && !text_of(*last, "genotype").empty())
    o << "<h3>Genotype (last epoch)</h3>\n<pre class=\"genotype\"><code>" << esc(text_of(*last, "genotype"))
      << "</code></pre>\n";

  if (const Json* nb = child(r.geno, "nb201"); nb && nb->is_object()) {
    auto pc = [&](const char* key) {
      const double v = num_of(*nb, key);
      return std::isfinite(v) ? show_fixed(v, 2) + "%" : std::string("n/a");
    };
    o << "<h3>NAS-Bench-201 scores of the derived cell</h3>\n<table class=\"data narrow\"><thead><tr><th>index</th>"
      << "<th class=\"num\">CIFAR-10 test</th><th class=\"num\">CIFAR-100 test</th><th class=\"num\">ImageNet16-120 test</th>"
      << "</tr></thead><tbody><tr><td>" << esc(text_of(*nb, "index")) << "</td><td class=\"num\">" << pc("cifar10_test")
      << "</td><td class=\"num\">" << pc("cifar100_test") << "</td><td class=\"num\">" << pc("imagenet16_test")
      << "</td></tr></tbody></table>\n";
  }

  o << "<h3>Retrained network</h3>\n";
  if (r.has_train) {
    o << "<table class=\"kv narrow\"><tbody>\n";
    row(o, "Test accuracy", show_percent(num_of(r.train, "test_acc")));
    row(o, "Parameters", esc(scaled(num_of(r.train, "params"), "")) + " <span class=\"dim\">(" +
                             integer_text(num_of(r.train, "params")) + ")</span>");
    row(o, "FLOPs", esc(scaled(num_of(r.train, "flops"), "FLOPs")));
    row(o, "Epochs", esc(integer_text(num_of(r.train, "epochs"))));
    row(o, "Wall time", esc(format_duration_words(num_of(r.train, "wall_s"))));
    if (!text_of(r.train, "mode").empty()) row(o, "Mode", esc(text_of(r.train, "mode")));
    o << "</tbody></table>\n";
  } else if (r.train_note == "missing") {
    o << note("Not retrained yet: <code>train/result.json</code> does not exist (<code>probnas train</code> writes it).");
  } else {
    o << missing("train/result.json could not be read: " + esc(r.train_note));
  }
  o << "</section>\n";
}

void section_cells(std::ostream& o, const RunView& r) {
  o << "<section id=\"cells\">\n<h2>Derived cells</h2>\n";
  if (r.edges.empty()) {
    o << missing("No cell to draw: " + esc(r.geno_note.empty() ? "genotype.json lists no edges" : r.geno_note) + ".");
    o << "</section>\n";
    return;
  }
  if (r.generic_names) {
    o << missing("No cell to draw: genotype.json is missing, so the edges have no names.") << "</section>\n";
    return;
  }
  const bool multibranch = r.space == "multibranch" || (r.groups.size() == 1 && r.groups[0].name == "gates");
  if (multibranch) {
    gates_table(o, r, r.groups[0]);
    o << "</section>\n";
    return;
  }
  o << "<p class=\"legend-line\"><span class=\"swatch input\"></span>input <span class=\"swatch inner\"></span>"
       "intermediate node <span class=\"swatch output\"></span>output &nbsp;&middot;&nbsp; edges carry their "
       "operation; <code>none</code> edges are not drawn.</p>\n<div class=\"figures\">\n";
  for (const auto& g : r.groups) {
    std::string problem, svg, caption;
    std::vector<CellEdge> cell;
    for (const std::size_t e : g.edges) cell.push_back({r.edges[e].name, r.edges[e].op});
    if (r.space == "darts" || g.name == "normal" || g.name == "reduce") {
      caption = g.name == "normal" ? "Normal cell" : g.name == "reduce" ? "Reduction cell" : "Cell '" + g.name + "'";
      svg = darts_picture(cell, caption, &problem);
    } else {
      caption = g.name == "cell" ? "Cell" : "Cell '" + g.name + "'";
      svg = nb201_picture(cell, &problem);
    }
    if (svg.empty()) {
      o << missing("Cannot draw group '" + esc(g.name) + "': " + esc(problem) + ".");
      continue;
    }
    o << "<figure class=\"cell\">" << svg << "<figcaption>" << esc(caption) << "</figcaption></figure>\n";
  }
  o << "</div>\n</section>\n";
}

void section_curves(std::ostream& o, const RunView& r) {
  o << "<section id=\"curves\">\n<h2>Training curves</h2>\n";
  if (!r.has_metrics || r.metrics.empty()) {
    o << missing(r.has_metrics ? "metrics.jsonl holds no finished epoch yet."
                               : "No curves: " + esc(r.metrics_note) + " (the search writes one line per finished epoch).");
    o << "</section>\n";
    return;
  }
  if (r.bad_lines > 0)
    o << note(integer_text(static_cast<double>(r.bad_lines)) + " line(s) of metrics.jsonl could not be read and are left out.");
  const auto x = epochs_of(r);
  std::vector<Series> acc = {{"train", series_colour(0), x, series_of(r, "train_acc", 100)},
                             {"validation", series_colour(1), x, validation_series(r, "val_acc", 100)}};
  const auto nb = series_of(r, "nb201_cifar10_test");
  if (any_finite(nb)) acc.push_back({"NB201 CIFAR-10 test", series_colour(2), x, nb, true, true, true});
  std::vector<Series> loss = {{"train", series_colour(0), x, series_of(r, "train_loss")},
                              {"validation", series_colour(1), x, validation_series(r, "val_loss")}};
  const auto warmup = static_cast<double>(std::count_if(r.metrics.begin(), r.metrics.end(), unvalidated));
  if (warmup > 0)
    o << note(integer_text(warmup) + " epoch(s) without validation (weight-only warm-up) have no validation points.");
  o << "<div class=\"charts\">\n<figure>" << chart("Accuracy per epoch", acc, {"epoch", true, true, ""}, {"accuracy (%)", false, false, ""})
    << "<figcaption>Accuracy (%) per epoch</figcaption></figure>\n<figure>"
    << chart("Loss per epoch", loss, {"epoch", true, true, ""}, {"cross-entropy loss", false, false, ""})
    << "<figcaption>Loss per epoch</figcaption></figure>\n</div>\n";
  o << "</section>\n";
}

void section_entropy(std::ostream& o, const RunView& r) {
  o << "<section id=\"entropy\">\n<h2>Architecture entropy</h2>\n";
  if (!r.has_metrics || r.metrics.empty()) {
    o << missing("No entropy: " + esc(r.has_metrics ? "metrics.jsonl holds no finished epoch yet" : r.metrics_note) + ".")
      << "</section>\n";
    return;
  }
  const auto x = epochs_of(r);
  const auto h = series_of(r, "arch_entropy");
  const auto total = series_of(r, "total_entropy");
  // The uniform distribution's entropy, for reference.
  double uniform_mean = kNaN, uniform_total = 0;
  std::size_t edges = 0;
  for (const auto& e : r.edges)
    if (e.ops.size() > 1) uniform_total += std::log(static_cast<double>(e.ops.size())), ++edges;
  if (edges > 0) uniform_mean = uniform_total / static_cast<double>(edges);
  else uniform_total = kNaN;
  if (const Json* p = r.method_results(); p && std::isfinite(num_of(*p, "uniform_entropy_nats")))
    uniform_total = num_of(*p, "uniform_entropy_nats");
  auto reference = [&](double v) {
    Series s{"uniform", "#9aa5b1", {}, {}, true, false, true};
    if (std::isfinite(v) && !x.empty()) {
      s.x = {x.front(), x.back()};
      s.y = {v, v};
    }
    return s;
  };
  const bool have_h = any_finite(h), have_total = any_finite(total);
  if (!have_h && !have_total) {
    o << note("This method reports no architecture entropy (no <code>arch_entropy</code> in metrics.jsonl).");
  } else {
    o << "<div class=\"charts\">\n";
    if (have_h) {
      std::vector<Series> s = {{"mean entropy per edge", series_colour(4), x, h}};
      if (std::isfinite(uniform_mean)) s.push_back(reference(uniform_mean));
      o << "<figure>" << chart("Architecture entropy per epoch", s, {"epoch", true, true, ""}, {"entropy (nats)", false, false, ""})
        << "<figcaption>Mean entropy of the edges' operation distributions (<code>arch_entropy</code>)</figcaption></figure>\n";
    }
    if (have_total) {
      std::vector<Series> s = {{"joint entropy", series_colour(3), x, total}};
      if (std::isfinite(uniform_total)) s.push_back(reference(uniform_total));
      o << "<figure>" << chart("Total entropy per epoch", s, {"epoch", true, true, ""}, {"entropy (nats)", false, false, ""})
        << "<figcaption>Entropy of the whole architecture distribution (<code>total_entropy</code>)</figcaption></figure>\n";
    }
    o << "</div>\n";
  }
  // Everything else the method logs per epoch.
  static const std::set<std::string> known = {"epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc",
                                              "arch_entropy", "total_entropy", "images", "wall_s", "nb201_cifar10_test",
                                              "slurm_restart_count"};
  std::vector<std::string> others;
  for (const auto& m : r.metrics)
    for (const auto& [key, value] : m.items())
      if (value.is_number() && !known.count(key) && std::find(others.begin(), others.end(), key) == others.end())
        others.push_back(key);
  if (!others.empty()) {
    o << "<h3>Other per-epoch statistics</h3>\n<div class=\"charts small\">\n";
    std::size_t i = 0;
    for (const auto& key : others) {
      const auto y = series_of(r, key);
      o << "<figure>" << chart(key + " per epoch", {{key, series_colour(i++ % 7), x, y}}, {"epoch", true, true, ""}, {key, false, false, ""}, 400, 240)
        << "<figcaption><code>" << esc(key) << "</code></figcaption></figure>\n";
    }
    o << "</div>\n";
  }
  o << "</section>\n";
}

}  // namespace probnas::report
