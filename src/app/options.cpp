#include "probnas/app/options.h"

#include <set>

#include "probnas/method/progressive.h"
#include "probnas/method/registry.h"

namespace probnas {

namespace {

const char* const kNb201TableSearchHelp =
    "NAS-Bench-201 200-epoch accuracy table (nats_bench.csv) that scores derived NB201 cells: auto (the copy shipped "
    "in inputs/nb201), none, or a path";
const char* const kNb201TableTrainHelp =
    "NAS-Bench-201 table for NB201 genotypes' benchmark accuracies in result.json: auto (the shipped copy), none, or "
    "a path";

// run.*, ckpt.*, comm.*: where a run goes, its checkpoints and its ranks.
void declare_run(OptionTable& t, const std::string& run_dir_help) {
  run_options(run_dir_help).declare(t);
  checkpoint_options().declare(t);
  comm_options().declare(t);
}

// The sections of every method's options ("darts", "gibbs", ...).
std::vector<std::string> method_sections() {
  OptionTable t;
  for (const auto& e : method_registry()) e.declare_options(t);
  std::set<std::string> sections;
  for (const auto& spec : t.specs()) sections.insert(spec.key.substr(0, spec.key.find('.')));
  return {sections.begin(), sections.end()};
}

}  // namespace

const OptionTable& search_option_table() {
  static const OptionTable table = [] {
    OptionTable t;
    declare_run(t, "run folder for config.ini, genotype.json, metrics.jsonl (empty: "
                   "outputs/<method>-<space>-<dataset>-seed<seed>)");
    search_options().declare(t);
    weight_training_options().declare(t);
    architecture_options().declare(t);
    for (const auto& e : method_registry()) e.declare_options(t);
    data_options().declare(t);
    space_options().declare(t);
    progressive_options().declare(t);
    report_options(kNb201TableSearchHelp).declare(t);
    t.skip_in_files({"train"});  // a study's file configures probnas train too
    return t;
  }();
  return table;
}

const OptionTable& train_option_table() {
  static const OptionTable table = [] {
    OptionTable t;
    declare_run(t, "run folder for config.ini, train-metrics.jsonl, result.json and checkpoints/ (empty: "
                   "<the genotype file's folder>/train)");
    data_options().declare(t);
    train_options().declare(t);
    report_options(kNb201TableTrainHelp).declare(t);
    // The search's sections, when one file configures a whole study.
    std::vector<std::string> skipped = {"search", "space", "progressive"};
    for (const auto& s : method_sections()) skipped.push_back(s);
    t.skip_in_files(skipped);
    return t;
  }();
  return table;
}

const OptionTable& convert_option_table() {
  static const OptionTable table = [] {
    OptionTable t;
    convert_options().declare(t);
    return t;
  }();
  return table;
}

SearchSettings read_search_settings(const Config& c) {
  SearchSettings s;
  s.config = &c;
  s.run = run_options("").read(c);
  s.ckpt = checkpoint_options().read(c);
  s.comm = comm_options().read(c);
  s.search = search_options().read(c);
  s.method.weights = weight_training_options().read(c);
  s.method.arch = architecture_options().read(c);
  s.method.progressive = progressive_options().read(c);
  s.data = data_options().read(c);
  s.data.seed = static_cast<uint64_t>(s.run.seed);
  s.data.file_locking = s.ckpt.file_locking;
  s.space = space_options().read(c);
  s.space.space = s.search.space;
  s.space.partial_channels = initial_partial_channels(s.method.progressive, s.space.partial_channels);
  s.report = report_options("").read(c);
  check_method_and_space(s.search.method, s.search.space);
  for (const auto& e : method_registry()) {
    if (e.name == s.search.method) {
      s.method_options = e.read_options(c);
    } else if (e.check_unselected) {
      e.check_unselected(e.read_options(c), s.search.method);
    }
  }
  return s;
}

TrainSettings read_train_settings(const Config& c) {
  TrainSettings s;
  s.config = &c;
  s.run = run_options("").read(c);
  s.ckpt = checkpoint_options().read(c);
  s.comm = comm_options().read(c);
  s.data = data_options().read(c);
  s.data.seed = static_cast<uint64_t>(s.run.seed);
  s.data.file_locking = s.ckpt.file_locking;
  s.train = train_options().read(c);
  s.report = report_options("").read(c);
  return s;
}

}  // namespace probnas
