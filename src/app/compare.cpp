#include "probnas/app/compare.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/format.h"
#include "probnas/method/registry.h"
#include "probnas/run/nb201_table.h"
#include "probnas/run/notation.h"
#include "probnas/run/run_folder.h"

namespace probnas {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// ---- reading the run folders -----------------------------------------------------------------

std::string join(const std::string& dir, const std::string& name) { return run_path(dir, name); }

std::string strip_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::optional<double> number_at(const json& j, const char* key, const std::string& where) {
  return json_number(j, key, where);
}
std::optional<int64_t> integer_at(const json& j, const char* key, const std::string& where) {
  return json_integer(j, key, where);
}
std::string string_at(const json& j, const char* key, const std::string& where) { return json_string(j, key, where); }

struct SearchData {
  std::string method, variant, space, dataset, genotype;
  std::optional<int64_t> seed, epochs_done, epochs_total, images;
  std::optional<double> wall_s, val_acc;
  std::optional<double> sampled_test_acc;  // PGNAS: best candidate's test accuracy as sampled
  std::optional<int64_t> sampled_params;   // PGNAS: best candidate's weights
  std::vector<std::pair<std::string, std::string>> edges;  // (group, op)
  std::vector<std::string> notes;
};

SearchData read_search(const std::string& dir) {
  SearchData s;
  const std::string gpath = join(dir, "genotype.json");
  const json g = read_json_object(gpath);
  s.space = string_at(g, "space", gpath);
  s.genotype = string_at(g, "genotype", gpath);
  PROBNAS_CHECK(!s.genotype.empty(), gpath, ": no \"genotype\" string (not a finished epoch of a search?)");
  s.method = string_at(g, "method", gpath);
  s.dataset = string_at(g, "dataset", gpath);
  s.seed = integer_at(g, "seed", gpath);
  s.epochs_done = integer_at(g, "epochs_done", gpath);
  s.val_acc = number_at(g, "search_val_acc", gpath);
  if (const auto it = g.find("edges"); it != g.end() && !it->is_null()) {
    PROBNAS_CHECK(it->is_array(), gpath, ": \"edges\" should be an array, found ", it->dump());
    for (const auto& e : *it) {
      PROBNAS_CHECK(e.is_object(), gpath, ": an entry of \"edges\" should be an object, found ", e.dump());
      s.edges.emplace_back(string_at(e, "group", gpath + " edges"), string_at(e, "op", gpath + " edges"));
    }
  }
  if (const auto it = g.find("best"); it != g.end() && !it->is_null()) {  // PGNAS's ranking
    PROBNAS_CHECK(it->is_object(), gpath, ": \"best\" should be an object, found ", it->dump());
    const std::string where = gpath + " best";
    if (const auto v = number_at(*it, "val_acc", where)) s.val_acc = v;
    s.sampled_test_acc = number_at(*it, "test_acc", where);
    s.sampled_params = integer_at(*it, "params", where);
  }

  const std::string ini = join(dir, "config.ini");
  const auto config = read_config_values(dir);
  auto ini_value = [&](const std::string&, const std::string& section, const std::string& key) {
    const auto it = config.find(section + "." + key);
    return it == config.end() ? std::string() : it->second;
  };
  if (const std::string epochs = ini_value(ini, "search", "epochs"); !epochs.empty()) {
    try {
      s.epochs_total = std::stoll(epochs);
    } catch (const std::exception&) {
      PROBNAS_FAIL(ini, ": [search] epochs = '", epochs, "' is not a whole number");
    }
  }
  if (s.method.empty()) s.method = ini_value(ini, "search", "method");
  if (const MethodEntry* entry = method_entry_or_null(s.method))
    for (const auto& key : entry->variant_keys) {
      auto it = config.find(key);
      std::string value = it != config.end() ? it->second : "";
      // A folder older than the key (it has a config.ini without it): what runs did before it existed.
      if (it == config.end() && !config.empty())
        if (const auto old = entry->variant_absent.find(key); old != entry->variant_absent.end()) value = old->second;
      if (!value.empty()) s.variant += (s.variant.empty() ? "" : " ") + key + "=" + value;
    }
  if (s.dataset.empty()) s.dataset = ini_value(ini, "data", "dataset");

  // Search cost: the last epoch line of metrics.jsonl (a torn last line falls back to the one before).
  const std::string mpath = join(dir, "metrics.jsonl");
  if (!is_file(mpath)) {
    s.notes.push_back("no metrics.jsonl: search time and images unknown");
    return s;
  }
  const MetricsLog log = read_metrics_log(mpath);
  if (log.lines.empty() && log.bad_lines == 0) {
    s.notes.push_back("metrics.jsonl is empty: search time and images unknown");
    return s;
  }
  PROBNAS_CHECK(!log.lines.empty(), mpath, ": malformed JSON on every line (", log.bad_lines, " lines)");
  const json& last = log.lines.back();
  if (log.last_line_torn)
    s.notes.push_back("the last line of metrics.jsonl is torn (written or killed mid-line); search cost from the last "
                      "whole line");
  s.wall_s = number_at(last, "wall_s", mpath);
  s.images = integer_at(last, "images", mpath);
  if (!s.val_acc) s.val_acc = number_at(last, "val_acc", mpath);
  if (!s.epochs_done) s.epochs_done = integer_at(last, "epoch", mpath);
  return s;
}

struct TrainData {
  std::string search_run, method, space, dataset, genotype, mode;
  std::optional<int64_t> seed, params, epochs;
  std::optional<double> test_acc, flops, wall_s;
};

TrainData read_train(const std::string& path) {
  const json r = read_json_object(path);
  TrainData t;
  t.search_run = string_at(r, "search_run", path);
  t.method = string_at(r, "method", path);
  t.space = string_at(r, "space", path);
  t.dataset = string_at(r, "dataset", path);
  t.genotype = string_at(r, "genotype", path);
  t.mode = string_at(r, "mode", path);
  t.seed = integer_at(r, "seed", path);
  t.params = integer_at(r, "params", path);
  t.epochs = integer_at(r, "epochs", path);
  t.test_acc = number_at(r, "test_acc", path);
  t.flops = number_at(r, "flops", path);
  t.wall_s = number_at(r, "wall_s", path);
  return t;
}

// ---- genotype notation -----------------------------------------------------------------------

// The operations of one DARTS cell.
std::vector<std::string> darts_cell_ops(const std::string& text, const std::string& cell) {
  std::vector<std::string> ops;
  for (const auto& [op, input] : parse_darts_cell(text, cell)) ops.push_back(op);
  return ops;
}

// Share of parameter-free operations among the non-`none` ones; nullopt when there are none.
std::optional<double> share_of(const std::vector<std::string>& ops) {
  int64_t total = 0, free = 0;
  for (const auto& op : ops) {
    if (op == "none") continue;
    ++total;
    if (parameter_free(op)) ++free;
  }
  if (total == 0) return std::nullopt;
  return static_cast<double>(free) / static_cast<double>(total);
}

// ---- formatting --------------------------------------------------------------------------------

std::string printf_string(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

std::string count_text(double n) {
  if (n < 1e3) return printf_string("%.0f", n);
  if (n < 1e6) return printf_string("%.1fk", n / 1e3);
  if (n < 1e9) return printf_string("%.1fM", n / 1e6);
  return printf_string("%.2fG", n / 1e9);
}

template <typename T>
std::string opt_text(const std::optional<T>& v, const std::function<std::string(double)>& f) {
  return v ? f(static_cast<double>(*v)) : std::string();
}

std::string percent2(double fraction) { return printf_string("%.2f", 100 * fraction); }

std::string csv_number(double v) { return printf_string("%.12g", v); }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string join_notes(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += (s.empty() ? "" : "; ") + n;
  return s;
}

// ---- columns of the CSV and of --sort --------------------------------------------------------------

struct Column {
  const char* name;
  enum Kind { text, integer, real } kind;
  bool best_first;  // accuracies: larger first
  std::function<std::string(const CompareRow&)> get_text;
  std::function<std::optional<double>(const CompareRow&)> get_number;
};

template <typename T>
std::optional<double> as_double(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

const std::vector<Column>& columns() {
  using R = const CompareRow&;
  static const std::vector<Column> cols = {
      {"folder", Column::text, false, [](R r) { return r.folder; }, nullptr},
      {"search_folder", Column::text, false, [](R r) { return r.search_folder; }, nullptr},
      {"train_folder", Column::text, false, [](R r) { return r.train_folder; }, nullptr},
      {"method", Column::text, false, [](R r) { return r.method; }, nullptr},
      {"variant", Column::text, false, [](R r) { return r.variant; }, nullptr},
      {"space", Column::text, false, [](R r) { return r.space; }, nullptr},
      {"dataset", Column::text, false, [](R r) { return r.dataset; }, nullptr},
      {"seed", Column::integer, false, nullptr, [](R r) { return as_double(r.seed); }},
      {"genotype", Column::text, false, [](R r) { return r.genotype; }, nullptr},
      {"epochs_done", Column::integer, false, nullptr, [](R r) { return as_double(r.epochs_done); }},
      {"epochs_total", Column::integer, false, nullptr, [](R r) { return as_double(r.epochs_total); }},
      {"search_wall_s", Column::real, false, nullptr, [](R r) { return r.search_wall_s; }},
      {"search_images", Column::integer, false, nullptr, [](R r) { return as_double(r.search_images); }},
      {"search_val_acc", Column::real, true, nullptr, [](R r) { return r.search_val_acc; }},
      {"test_acc", Column::real, true, nullptr, [](R r) { return r.test_acc; }},
      {"test_mode", Column::text, false, [](R r) { return r.test_mode; }, nullptr},
      {"params", Column::integer, false, nullptr, [](R r) { return as_double(r.params); }},
      {"flops", Column::real, false, nullptr, [](R r) { return r.flops; }},
      {"train_epochs", Column::integer, false, nullptr, [](R r) { return as_double(r.train_epochs); }},
      {"train_wall_s", Column::real, false, nullptr, [](R r) { return r.train_wall_s; }},
      {"param_free_share", Column::real, false, nullptr, [](R r) { return r.param_free_share; }},
      {"param_free_share_normal", Column::real, false, nullptr, [](R r) { return r.param_free_share_normal; }},
      {"nb201_index", Column::integer, false, nullptr, [](R r) { return as_double(r.nb201_index); }},
      {"nb201_cifar10_pct", Column::real, true, nullptr, [](R r) { return r.nb201_cifar10; }},
      {"nb201_cifar100_pct", Column::real, true, nullptr, [](R r) { return r.nb201_cifar100; }},
      {"nb201_imagenet16_pct", Column::real, true, nullptr, [](R r) { return r.nb201_imagenet16; }},
      {"notes", Column::text, false, [](R r) { return join_notes(r.notes); }, nullptr},
  };
  return cols;
}

const std::map<std::string, std::string>& sort_aliases() {
  static const std::map<std::string, std::string> aliases = {
      {"test", "test_acc"},          {"val", "search_val_acc"},        {"search_val", "search_val_acc"},
      {"time", "search_wall_s"},     {"wall", "search_wall_s"},        {"wall_s", "search_wall_s"},
      {"images", "search_images"},   {"epochs", "epochs_done"},        {"mode", "test_mode"},
      {"c10", "nb201_cifar10_pct"},  {"cifar10", "nb201_cifar10_pct"}, {"c100", "nb201_cifar100_pct"},
      {"cifar100", "nb201_cifar100_pct"}, {"in16", "nb201_imagenet16_pct"}, {"imagenet16", "nb201_imagenet16_pct"},
      {"param_free", "param_free_share"}, {"pf", "param_free_share"},
  };
  return aliases;
}

// ---- one folder --------------------------------------------------------------------------------

// The search folder a result.json's "search_run" names: as written (relative to the current folder),
// relative to the train folder, or the train folder's parent when it carries that name.
std::string resolve_search_run(const std::string& search_run, const std::string& train_dir) {
  if (search_run.empty()) return {};
  std::vector<std::string> tried = {search_run};
  const fs::path p(search_run);
  if (p.is_relative()) tried.push_back(join(train_dir, search_run));
  const fs::path parent = fs::path(train_dir).parent_path();
  const std::string name = fs::path(strip_trailing_slashes(search_run)).filename().string();
  if (!parent.empty() && parent.filename().string() == name) tried.push_back(parent.string());
  for (const auto& t : tried)
    if (is_file(join(t, "genotype.json"))) return t;
  return {};
}

CompareRow compare_one(const std::string& given) {
  CompareRow row;
  row.folder = strip_trailing_slashes(given);
  const std::string dir = row.folder;
  PROBNAS_CHECK(!dir.empty(), "an empty run folder name");
  {
    std::error_code ec;
    PROBNAS_CHECK(fs::is_directory(dir, ec), dir,
                  fs::exists(dir, ec) ? ": not a folder (give run folders)" : ": no such run folder");
  }
  std::optional<TrainData> train;
  if (is_file(join(dir, "result.json"))) {
    train = read_train(join(dir, "result.json"));
    row.train_folder = dir;
    row.search_folder = resolve_search_run(train->search_run, dir);
    if (row.search_folder.empty()) {
      if (is_file(join(dir, "genotype.json"))) {
        row.search_folder = dir;
      } else {
        row.notes.push_back(train->search_run.empty()
                                ? "result.json names no search_run: search columns blank"
                                : "search run '" + train->search_run +
                                      "' (result.json search_run) not found: search columns blank");
      }
    }
  } else if (is_file(join(dir, "genotype.json"))) {
    row.search_folder = dir;
    if (is_file(join(dir, "train/result.json"))) {
      train = read_train(join(dir, "train/result.json"));
      row.train_folder = join(dir, "train");
    }
  } else {
    PROBNAS_FAIL(dir, ": neither genotype.json (a search run folder) nor result.json (a train folder) is there");
  }

  std::optional<SearchData> search;
  if (!row.search_folder.empty()) {
    search = read_search(row.search_folder);
    row.notes.insert(row.notes.end(), search->notes.begin(), search->notes.end());
    row.method = search->method;
    row.variant = search->variant;
    row.space = search->space;
    row.dataset = search->dataset;
    row.seed = search->seed;
    row.genotype = search->genotype;
    row.epochs_done = search->epochs_done;
    row.epochs_total = search->epochs_total;
    row.search_wall_s = search->wall_s;
    row.search_images = search->images;
    row.search_val_acc = search->val_acc;
  }
  if (train) {
    // What was trained wins; a search that moved on since is worth a note.
    if (search && !train->genotype.empty() && train->genotype != search->genotype)
      row.notes.push_back("the trained genotype differs from the search's genotype.json (" + row.search_folder +
                          "); the row shows the trained one");
    if (!train->method.empty()) row.method = train->method;
    if (!train->space.empty()) row.space = train->space;
    if (!train->dataset.empty()) row.dataset = train->dataset;
    if (!train->genotype.empty()) row.genotype = train->genotype;
    if (!search && train->seed) row.seed = train->seed;  // the search's seed names the run
    row.test_acc = train->test_acc;
    row.test_mode = train->mode.empty() ? "retrained" : train->mode;
    row.params = train->params;
    row.flops = train->flops;
    row.train_epochs = train->epochs;
    row.train_wall_s = train->wall_s;
    if (!row.test_acc) row.notes.push_back(join(row.train_folder, "result.json") + " holds no test_acc");
  } else if (search && (search->sampled_test_acc || search->sampled_params)) {
    row.test_acc = search->sampled_test_acc;
    if (row.test_acc) row.test_mode = "as_sampled";
    row.params = search->sampled_params;
  }

  // Parameter-free share of the derived cells.
  if (row.space == "nb201" || row.space == "darts") {
    try {
      const auto [all, normal] = param_free_share(row.space, row.genotype);
      row.param_free_share = all;
      row.param_free_share_normal = normal;
    } catch (const Error& e) {
      // The edges of genotype.json say the same when the notation cannot be read.
      std::vector<std::string> every, normal_ops;
      if (search && row.genotype == search->genotype)
        for (const auto& [group, op] : search->edges) {
          every.push_back(op);
          if (group == "normal") normal_ops.push_back(op);
        }
      row.param_free_share = share_of(every);
      if (row.space == "darts") row.param_free_share_normal = share_of(normal_ops);
      if (!row.param_free_share) row.notes.push_back(std::string("parameter-free share unknown: ") + e.what());
    }
  } else if (row.space != "multibranch") {
    row.notes.push_back("space '" + row.space + "': no parameter-free share (nb201 and darts only)");
  }
  return row;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {  // sample standard deviation (n - 1)
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

std::string usage_text() {
  return "usage: probnas compare [--csv FILE] [--nb201-table auto|none|PATH] [--sort COLUMN] <run folders...>\n"
         "\n"
         "One row per run folder: method, space, dataset, seed, search epochs, search cost (wall time,\n"
         "images), search validation accuracy, test accuracy and how it was obtained (retrained, as_sampled,\n"
         "fine_tuned), parameters, FLOPs, the share of parameter-free operations (skip, pooling) in the\n"
         "derived cells (DARTS space: also the normal cell's) and, for NAS-Bench-201 cells, the benchmark's\n"
         "200-epoch test accuracies on CIFAR-10, CIFAR-100 and ImageNet16-120. Notes under the table say\n"
         "why a value is blank; a summary line per method with several runs gives mean ± std (variants such as\n"
         "gibbs.order, gibbs.arch_lr_schedule and darts.order apart, in the CSV's variant column).\n"
         "A folder is a search run folder (genotype.json; its retraining, if any, in <folder>/train/result.json)\n"
         "or a train folder (result.json, whose search_run names the search folder).\n"
         "\n"
         "  --csv FILE         also write every column (full genotypes, seconds, accuracies as fractions,\n"
         "                     NB201 accuracies in percent) to FILE; --csv - prints the CSV instead of the table\n"
         "  --nb201-table X    auto (default): the table shipped with probnas (PROBNAS_NB201_TABLE overrides);\n"
         "                     none: no NAS-Bench-201 columns; or the path of a nats_bench.csv\n"
         "  --sort COLUMN      order the rows by a column (default: the order given): test (test_acc), val\n"
         "                     (search_val_acc), c10, c100, in16 (NB201), params, flops, time (search_wall_s),\n"
         "                     images, param_free, method, seed, or any CSV column; accuracies best first,\n"
         "                     the rest ascending, blanks last\n"
         "  --help             this text\n"
         "\n"
         "exit codes: 0 done; 1 error (message on stderr); 2 bad usage.\n";
}

}  // namespace

// ---- public ----------------------------------------------------------------------------------------

std::pair<double, std::optional<double>> param_free_share(const std::string& space, const std::string& genotype) {
  if (space == "nb201") {
    const auto share = share_of(parse_nb201(genotype));
    PROBNAS_CHECK(share.has_value(), "NB201 genotype '", genotype, "' has no operation other than none");
    return {*share, std::nullopt};
  }
  PROBNAS_CHECK(space == "darts", "parameter-free share: space '", space, "' is neither nb201 nor darts");
  const auto normal = darts_cell_ops(genotype, "normal");
  auto every = normal;
  const auto reduce = darts_cell_ops(genotype, "reduce");
  every.insert(every.end(), reduce.begin(), reduce.end());
  const auto all_share = share_of(every);
  PROBNAS_CHECK(all_share.has_value(), "DARTS genotype '", genotype, "' has no operation other than none");
  return {*all_share, share_of(normal)};
}

std::vector<CompareRow> compare_runs(const std::vector<std::string>& folders, const std::string& nb201_table_path) {
  std::vector<CompareRow> rows;
  rows.reserve(folders.size());
  for (const auto& f : folders) rows.push_back(compare_one(f));

  if (nb201_table_path.empty()) return rows;
  const bool any_nb201 = std::any_of(rows.begin(), rows.end(), [](const CompareRow& r) { return r.space == "nb201"; });
  if (!any_nb201) return rows;
  const Nb201Table table(nb201_table_path);
  for (auto& r : rows) {
    if (r.space != "nb201") continue;
    if (const auto score = table.find(r.genotype)) {
      r.nb201_index = score->index;
      r.nb201_cifar10 = score->cifar10_test;
      r.nb201_cifar100 = score->cifar100_test;
      r.nb201_imagenet16 = score->imagenet16_test;
    } else {
      r.notes.push_back("genotype '" + r.genotype + "' is not in the NAS-Bench-201 table: " + table.why_missing(r.genotype));
    }
  }
  return rows;
}

std::vector<std::string> compare_columns() {
  std::vector<std::string> names;
  for (const auto& c : columns()) names.push_back(c.name);
  return names;
}

void sort_compare_rows(std::vector<CompareRow>& rows, const std::string& column) {
  std::string name = column;
  if (const auto it = sort_aliases().find(name); it != sort_aliases().end()) name = it->second;
  const auto& cols = columns();
  const auto col = std::find_if(cols.begin(), cols.end(), [&](const Column& c) { return name == c.name; });
  if (col == cols.end()) {
    std::string allowed;
    for (const auto& [alias, target] : sort_aliases()) allowed += (allowed.empty() ? "" : ", ") + alias;
    for (const auto& c : cols) allowed += std::string(", ") + c.name;
    PROBNAS_FAIL("--sort ", column, ": no such column (allowed: ", allowed, ")");
  }
  if (col->kind == Column::text) {
    std::stable_sort(rows.begin(), rows.end(), [&](const CompareRow& a, const CompareRow& b) {
      const std::string x = col->get_text(a), y = col->get_text(b);
      if (x.empty() != y.empty()) return y.empty();
      return x < y;
    });
  } else {
    const bool best_first = col->best_first;
    std::stable_sort(rows.begin(), rows.end(), [&](const CompareRow& a, const CompareRow& b) {
      const auto x = col->get_number(a), y = col->get_number(b);
      if (x.has_value() != y.has_value()) return x.has_value();
      if (!x) return false;
      return best_first ? *x > *y : *x < *y;
    });
  }
}

std::string compare_csv(const std::vector<CompareRow>& rows) {
  const auto& cols = columns();
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + std::string(cols[i].name);
  out += "\n";
  for (const auto& r : rows) {
    for (size_t i = 0; i < cols.size(); ++i) {
      if (i) out += ",";
      const Column& c = cols[i];
      if (c.kind == Column::text) {
        out += csv_field(c.get_text(r));
      } else if (const auto v = c.get_number(r)) {
        out += c.kind == Column::integer ? std::to_string(static_cast<int64_t>(*v)) : csv_number(*v);
      }
    }
    out += "\n";
  }
  return out;
}

std::string compare_table_text(const std::vector<CompareRow>& rows) {
  constexpr size_t kGenotypeWidth = 60;
  struct TextColumn {
    std::string header;
    bool right;
    bool always;  // shown even when every cell is blank
    std::function<std::string(const CompareRow&)> cell;
  };
  const auto pct = [](double f) { return percent2(f); };
  const std::vector<TextColumn> all = {
      {"folder", false, true, [](const CompareRow& r) { return r.folder; }},
      {"method", false, true, [](const CompareRow& r) { return r.method; }},
      {"space", false, true, [](const CompareRow& r) { return r.space; }},
      {"dataset", false, true, [](const CompareRow& r) { return r.dataset; }},
      {"seed", true, false, [](const CompareRow& r) { return r.seed ? std::to_string(*r.seed) : std::string(); }},
      {"epochs", true, false,
       [](const CompareRow& r) {
         if (!r.epochs_done) return std::string();
         return std::to_string(*r.epochs_done) + (r.epochs_total ? "/" + std::to_string(*r.epochs_total) : "");
       }},
      {"search time", true, false, [](const CompareRow& r) { return opt_text(r.search_wall_s, format_duration_short); }},
      {"images", true, false, [](const CompareRow& r) { return opt_text(r.search_images, count_text); }},
      {"val %", true, false, [&](const CompareRow& r) { return opt_text(r.search_val_acc, pct); }},
      {"test %", true, false, [&](const CompareRow& r) { return opt_text(r.test_acc, pct); }},
      {"test mode", false, false, [](const CompareRow& r) { return r.test_mode; }},
      {"params M", true, false,
       [](const CompareRow& r) {
         return opt_text(r.params, [](double v) { return printf_string("%.2f", v / 1e6); });
       }},
      {"FLOPs M", true, false,
       [](const CompareRow& r) {
         return opt_text(r.flops, [](double v) { return printf_string("%.1f", v / 1e6); });
       }},
      {"param-free", true, false,
       [](const CompareRow& r) {
         return opt_text(r.param_free_share, [](double v) { return printf_string("%.1f%%", 100 * v); });
       }},
      {"normal pf", true, false,
       [](const CompareRow& r) {
         return opt_text(r.param_free_share_normal, [](double v) { return printf_string("%.1f%%", 100 * v); });
       }},
      {"NB201 C10", true, false,
       [](const CompareRow& r) { return opt_text(r.nb201_cifar10, [](double v) { return printf_string("%.2f", v); }); }},
      {"C100", true, false,
       [](const CompareRow& r) { return opt_text(r.nb201_cifar100, [](double v) { return printf_string("%.2f", v); }); }},
      {"IN16-120", true, false,
       [](const CompareRow& r) {
         return opt_text(r.nb201_imagenet16, [](double v) { return printf_string("%.2f", v); });
       }},
      {"genotype", false, true,
       [](const CompareRow& r) {
         if (r.genotype.size() <= kGenotypeWidth) return r.genotype;
         return r.genotype.substr(0, kGenotypeWidth - 3) + "...";
       }},
  };
  // The cells, then the columns that have something to show.
  std::vector<TextColumn> shown;
  std::vector<std::vector<std::string>> cells;  // [column][row]
  for (const auto& c : all) {
    std::vector<std::string> values;
    bool any = false;
    for (const auto& r : rows) {
      values.push_back(c.cell(r));
      any = any || !values.back().empty();
    }
    if (!any && !c.always) continue;
    shown.push_back(c);
    cells.push_back(std::move(values));
  }
  std::vector<size_t> width(shown.size());
  for (size_t c = 0; c < shown.size(); ++c) {
    width[c] = shown[c].header.size();
    for (const auto& v : cells[c]) width[c] = std::max(width[c], v.size());
  }
  std::ostringstream out;
  auto line = [&](const std::function<std::string(size_t)>& text) {
    std::string l;
    for (size_t c = 0; c < shown.size(); ++c) {
      const std::string t = text(c);
      const std::string pad(width[c] - t.size(), ' ');
      l += (c ? "  " : "") + (shown[c].right ? pad + t : t + (c + 1 < shown.size() ? pad : ""));
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out << l << "\n";
  };
  line([&](size_t c) { return shown[c].header; });
  line([&](size_t c) { return std::string(width[c], '-'); });
  for (size_t r = 0; r < rows.size(); ++r) line([&](size_t c) { return cells[c][r]; });

  // Notes: why a value is blank, what does not add up.
  bool any_note = false;
  for (const auto& r : rows)
    for (const auto& n : r.notes) {
      if (!any_note) out << "\nnotes:\n";
      any_note = true;
      out << "  " << r.folder << ": " << n << "\n";
    }

  // Mean ± std per method (and space, dataset, test mode) over several runs.
  std::vector<std::vector<const CompareRow*>> groups;
  std::vector<std::string> keys;
  for (const auto& r : rows) {
    const std::string key = r.method + '\x1f' + r.variant + '\x1f' + r.space + '\x1f' + r.dataset + '\x1f' + r.test_mode;
    const auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      groups.push_back({&r});
    } else {
      groups[static_cast<size_t>(it - keys.begin())].push_back(&r);
    }
  }
  bool any_summary = false;
  for (const auto& g : groups) {
    if (g.size() < 2) continue;
    std::vector<std::string> parts;
    auto stat = [&](const std::string& label, const std::function<std::optional<double>(const CompareRow&)>& get,
                    double scale, const std::string& unit) {
      std::vector<double> v;
      for (const auto* r : g)
        if (const auto x = get(*r)) v.push_back(scale * *x);
      if (v.size() < 2) return;
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s %.2f ± %.2f%s", label.c_str(), mean_of(v), std_of(v), unit.c_str());
      parts.emplace_back(buf);
      if (v.size() != g.size()) parts.back() += " (" + std::to_string(v.size()) + " runs)";
    };
    const std::string mode = g.front()->test_mode.empty() ? "test" : "test (" + g.front()->test_mode + ")";
    stat(mode, [](const CompareRow& r) { return r.test_acc; }, 100, "%");
    stat("search val", [](const CompareRow& r) { return r.search_val_acc; }, 100, "%");
    stat("NB201 C10", [](const CompareRow& r) { return r.nb201_cifar10; }, 1, "");
    stat("C100", [](const CompareRow& r) { return r.nb201_cifar100; }, 1, "");
    stat("IN16-120", [](const CompareRow& r) { return r.nb201_imagenet16; }, 1, "");
    stat("param-free", [](const CompareRow& r) { return r.param_free_share; }, 100, "%");
    if (parts.empty()) continue;
    if (!any_summary) out << "\nsummary (mean ± sample std):\n";
    any_summary = true;
    std::string seeds;
    for (const auto* r : g) seeds += (seeds.empty() ? "" : ",") + (r->seed ? std::to_string(*r->seed) : "?");
    out << "  " << (g.front()->method.empty() ? "?" : g.front()->method)
        << (g.front()->variant.empty() ? "" : " [" + g.front()->variant + "]") << " " << g.front()->space << " "
        << g.front()->dataset << ", " << g.size() << " runs (seeds " << seeds << "): ";
    for (size_t i = 0; i < parts.size(); ++i) out << (i ? "; " : "") << parts[i];
    out << "\n";
  }
  return out.str();
}

int compare_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string csv_path, table_value = "auto", sort_column;
  bool table_given = false;
  std::vector<std::string> folders;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0) {
      if (const auto eq = a.find('='); eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
    }
    auto take_value = [&](const char* what) -> bool {
      if (has_value) return true;
      if (i + 1 == args.size()) {
        err << "probnas compare: " << a << " needs " << what << "\n" << usage_text();
        return false;
      }
      value = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      out << usage_text();
      return 0;
    } else if (a == "--csv") {
      if (!take_value("a file (--csv FILE, or - for stdout)")) return 2;
      csv_path = value;
    } else if (a == "--nb201-table") {
      if (!take_value("auto, none or a path")) return 2;
      table_value = value;
      table_given = true;
    } else if (a == "--sort") {
      if (!take_value("a column (--sort test)")) return 2;
      sort_column = value;
    } else if (a == "--") {
      folders.insert(folders.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    } else if (a.size() > 1 && a[0] == '-') {
      err << "probnas compare: unknown option '" << args[i] << "' (allowed: --csv FILE, --nb201-table auto|none|PATH, "
          << "--sort COLUMN, --help)\n";
      return 2;
    } else {
      folders.push_back(a);
    }
  }
  if (folders.empty()) {
    err << "probnas compare: no run folders given\n" << usage_text();
    return 2;
  }
  if (!sort_column.empty()) {
    std::vector<CompareRow> none;
    try {
      sort_compare_rows(none, sort_column);
    } catch (const std::exception& e) {
      err << "probnas compare: " << e.what() << "\n";
      return 2;
    }
  }
  try {
    std::string table_path, table_problem;
    try {
      table_path = locate_nb201_table(table_value, "--nb201-table");
    } catch (const Error& e) {
      if (table_given) throw;
      table_problem = e.what();  // the default: go on without NB201 columns, and say so
    }
    auto rows = compare_runs(folders, table_path);
    if (!sort_column.empty()) sort_compare_rows(rows, sort_column);
    if (!table_problem.empty() &&
        std::any_of(rows.begin(), rows.end(), [](const CompareRow& r) { return r.space == "nb201"; }))
      err << "probnas compare: no NAS-Bench-201 columns: " << table_problem << "\n";
    if (csv_path == "-") {
      out << compare_csv(rows);
      return 0;
    }
    out << compare_table_text(rows);
    if (!csv_path.empty()) {
      ckpt::write_file_atomic(csv_path, compare_csv(rows));
      out << "\nCSV (every column, full genotypes): " << csv_path << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    err << "probnas compare: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace probnas
