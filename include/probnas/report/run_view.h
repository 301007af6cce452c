#pragma once
// A run folder as the report sees it: every file read leniently through run/run_folder.h (a missing
// or unreadable file leaves a note saying why, never an exception), and the architecture's groups,
// edges and operations derived from genotype.json (or, without it, from the metrics' probabilities).
#include <map>
#include <string>
#include <vector>

#include "probnas/report/html.h"

namespace probnas::report {

struct Edge {
  std::string group, name, op;
  std::vector<std::string> ops;
  std::vector<double> probs;
};

struct Group {
  std::string name;
  std::vector<std::string> ops;
  std::vector<std::size_t> edges;  // into RunView::edges
};

struct RunView {
  std::string dir, name;
  std::map<std::string, std::string> config;
  bool has_config = false;
  std::string config_note;
  Json geno = Json::object();
  bool has_geno = false;
  std::string geno_note;
  std::vector<Json> metrics;  // one per epoch, by epoch
  bool has_metrics = false;
  std::string metrics_note;
  std::size_t bad_lines = 0;
  Json train;
  bool has_train = false;
  std::string train_note;
  CandidateTable candidates;
  bool has_candidates = false;
  std::string candidates_note;
  std::vector<Edge> edges;
  std::vector<Group> groups;
  bool generic_names = false;  // edges and ops named from metrics' probs only
  std::string method, space, dataset;

  std::string cfg(const std::string& key) const;  // config.ini's value, "" when absent
  const Json* last_metrics() const { return metrics.empty() ? nullptr : &metrics.back(); }
  // The method's own results object in genotype.json (genotype.json's "<method>" key), or nullptr.
  const Json* method_results() const { return child(geno, method); }
};

RunView load_run_view(const std::string& dir);

// Per-epoch values of a metrics key (times `factor`; NaN where absent).
std::vector<double> series_of(const RunView& r, const std::string& key, double factor = 1);
std::vector<double> epochs_of(const RunView& r);
// An epoch without validation (a weight-only warm-up) reports val_loss = val_acc = 0: no data.
bool unvalidated(const Json& m);
std::vector<double> validation_series(const RunView& r, const std::string& key, double factor = 1);
bool any_finite(const std::vector<double>& v);
double last_finite(const std::vector<double>& v);
std::string space_title(const std::string& space);

}  // namespace probnas::report
