#include "probnas/report/run_view.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>

#include "probnas/core/files.h"

namespace probnas::report {

std::string RunView::cfg(const std::string& key) const {
  const auto it = config.find(key);
  return it == config.end() ? "" : it->second;
}

namespace {

// "missing" or why the file could not be read; `read` runs only when the file exists.
template <class Read>
bool read_leniently(const std::string& path, std::string* why, Read read) {
  try {
    if (!file_exists(path)) {
      *why = "missing";
      return false;
    }
    read();
    return true;
  } catch (const std::exception& e) {
    *why = e.what();
    return false;
  }
}

void load_config(RunView& r) {
  std::string why;
  r.has_config = read_leniently(run_path(r.dir, run_files::config), &why, [&] { r.config = read_config_values(r.dir); });
  if (!r.has_config) r.config_note = "config.ini: " + why;
}

void load_genotype(RunView& r) {
  const std::string path = run_path(r.dir, run_files::genotype);
  if (!file_exists(path)) {
    r.geno_note = "genotype.json: missing";
    return;
  }
  try {
    r.geno = Json::parse(read_file_bytes(path));
    if (!r.geno.is_object()) {
      r.geno_note = "genotype.json: not a JSON object";
      r.geno = Json::object();
      return;
    }
    r.has_geno = true;
  } catch (const std::exception& e) {
    r.geno_note = std::string("genotype.json: not valid JSON (") + e.what() + ")";
    r.geno = Json::object();
  }
}

void load_metrics(RunView& r) {
  std::string why;
  MetricsLog log;
  r.has_metrics = read_leniently(run_path(r.dir, run_files::metrics), &why, [&] {
    log = read_metrics_log(run_path(r.dir, run_files::metrics));
  });
  if (!r.has_metrics) {
    r.metrics_note = "metrics.jsonl: " + why;
    return;
  }
  r.metrics = log.by_epoch();
  r.bad_lines = log.bad_lines;
}

void load_train(RunView& r) {
  const std::string path = run_path(r.dir, run_files::train_result);
  if (!file_exists(path)) {
    r.train_note = "missing";
    return;
  }
  try {
    r.train = Json::parse(read_file_bytes(path));
    r.has_train = r.train.is_object();
    if (!r.has_train) r.train_note = "not a JSON object";
  } catch (const std::exception& e) {
    r.train_note = std::string("not valid JSON (") + e.what() + ")";
  }
}

void load_candidates(RunView& r) {
  std::string why;
  r.has_candidates = read_leniently(run_path(r.dir, run_files::candidates), &why, [&] {
    r.candidates = read_candidates(run_path(r.dir, run_files::candidates));
  });
  if (!r.has_candidates) r.candidates_note = "candidates.csv: " + why;
}

// Groups, edges and op names: from genotype.json's "edges"; failing that, from the metrics' probs.
void derive_structure(RunView& r) {
  std::map<std::string, std::size_t> group_index;
  if (const Json* edges = child(r.geno, "edges"); edges && edges->is_array()) {
    for (const auto& e : *edges) {
      if (!e.is_object()) continue;
      Edge ed;
      ed.group = text_of(e, "group");
      ed.name = text_of(e, "edge");
      ed.op = text_of(e, "op");
      if (const Json* p = child(e, "probs"); p && p->is_object())
        for (const auto& [op, value] : p->items()) {
          ed.ops.push_back(op);
          ed.probs.push_back(as_num(value));
        }
      auto it = group_index.find(ed.group);
      if (it == group_index.end()) {
        it = group_index.emplace(ed.group, r.groups.size()).first;
        r.groups.push_back({ed.group, ed.ops, {}});
      }
      r.groups[it->second].edges.push_back(r.edges.size());
      r.edges.push_back(std::move(ed));
    }
  }
  if (!r.edges.empty() || r.metrics.empty()) return;
  // No genotype: name edges and operations by number from the last epoch's probabilities.
  const Json* probs = child(r.metrics.back(), "probs");
  if (!probs || !probs->is_object()) return;
  r.generic_names = true;
  for (const auto& [name, rows] : probs->items()) {
    if (!rows.is_array()) continue;
    Group g{name, {}, {}};
    std::size_t e = 0;
    for (const auto& row : rows) {
      Edge ed;
      ed.group = name;
      ed.name = "edge " + std::to_string(++e);
      double best = -1;
      if (row.is_array())
        for (std::size_t k = 0; k < row.size(); ++k) {
          ed.ops.push_back("op " + std::to_string(k + 1));
          ed.probs.push_back(as_num(row[k]));
          if (as_num(row[k]) > best) {
            best = as_num(row[k]);
            ed.op = ed.ops.back();
          }
        }
      if (g.ops.size() < ed.ops.size()) g.ops = ed.ops;
      g.edges.push_back(r.edges.size());
      r.edges.push_back(std::move(ed));
    }
    r.groups.push_back(std::move(g));
  }
}

}  // namespace

RunView load_run_view(const std::string& dir) {
  RunView r;
  r.dir = dir;
  r.name = run_name(dir);
  load_config(r);
  load_genotype(r);
  load_metrics(r);
  load_train(r);
  load_candidates(r);
  derive_structure(r);
  auto pick = [&](const std::string& geno_key, const std::string& config_key) {
    std::string v = text_of(r.geno, geno_key);
    if (v.empty()) v = r.cfg(config_key);
    return v;
  };
  r.method = pick("method", "search.method");
  r.space = pick("space", "search.space");
  r.dataset = pick("dataset", "data.dataset");
  return r;
}

std::vector<double> series_of(const RunView& r, const std::string& key, double factor) {
  std::vector<double> v;
  for (const auto& m : r.metrics) v.push_back(num_of(m, key) * factor);
  return v;
}

std::vector<double> epochs_of(const RunView& r) { return series_of(r, "epoch"); }

// An epoch without validation (a weight-only warm-up) reports val_loss = val_acc = 0: no data.
bool unvalidated(const Json& m) { return num_of(m, "val_loss") == 0 && num_of(m, "val_acc") == 0; }

std::vector<double> validation_series(const RunView& r, const std::string& key, double factor) {
  std::vector<double> v;
  for (const auto& m : r.metrics) v.push_back(unvalidated(m) ? kNaN : num_of(m, key) * factor);
  return v;
}

bool any_finite(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

double last_finite(const std::vector<double>& v) {
  for (auto it = v.rbegin(); it != v.rend(); ++it)
    if (std::isfinite(*it)) return *it;
  return kNaN;
}

std::string space_title(const std::string& space) {
  if (space == "nb201") return "NAS-Bench-201";
  if (space == "darts") return "DARTS";
  if (space == "multibranch") return "multi-branch ResNet (PGNAS)";
  return space;
}


}  // namespace probnas::report
