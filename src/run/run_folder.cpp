#include "probnas/run/run_folder.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/core/config.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"

namespace probnas {

namespace {
constexpr double kRunNaN = std::numeric_limits<double>::quiet_NaN();

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string number_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

std::string run_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

std::string run_name(const std::string& dir) {
  std::string name = dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  const auto slash = name.find_last_of('/');
  name = slash == std::string::npos ? name : name.substr(slash + 1);
  return name.empty() ? dir : name;
}

// ---- metrics.jsonl --------------------------------------------------------------------------------

std::vector<nlohmann::ordered_json> MetricsLog::by_epoch() const {
  std::map<double, nlohmann::ordered_json> epochs;
  double index = 0;
  for (const auto& line : lines) {
    ++index;
    nlohmann::ordered_json j = line;
    double epoch = json_number_or_nan(j, "epoch");
    if (!std::isfinite(epoch)) epoch = index;
    j["epoch"] = epoch;
    epochs[epoch] = std::move(j);
  }
  std::vector<nlohmann::ordered_json> out;
  for (auto& [epoch, j] : epochs) out.push_back(std::move(j));
  return out;
}

MetricsLog read_metrics_log(const std::string& path) {
  MetricsLog log;
  std::istringstream in(read_file_bytes(path));
  std::string line;
  while (std::getline(in, line)) {
    line = trimmed(line);
    if (line.empty()) continue;
    try {
      nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
      if (j.is_object()) {
        log.lines.push_back(std::move(j));
        log.last_line_torn = false;
        continue;
      }
    } catch (const std::exception&) {
    }
    ++log.bad_lines;  // e.g. a line cut short by a crash
    log.last_line_torn = true;
  }
  return log;
}

void write_metrics_log(const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  ckpt::write_file_atomic(path, text);
}

void append_metrics_line(const std::string& path, const std::string& line) { append_line(path, line); }

// ---- genotype.json and result.json ----------------------------------------------------------------

void write_genotype_json(const std::string& dir, const Genotype& genotype, const nlohmann::ordered_json& extra) {
  ckpt::write_file_atomic(run_path(dir, run_files::genotype), genotype.to_json(extra).dump(2) + "\n");
}

nlohmann::ordered_json read_json_object(const std::string& path) {
  const std::string text = read_file_bytes(path);
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    PROBNAS_FAIL(path, ": malformed JSON (", e.what(), ")");
  }
  PROBNAS_CHECK(j.is_object(), path, ": expected a JSON object, found ", j.type_name());
  return j;
}

void write_json(const std::string& path, const nlohmann::ordered_json& value) { ckpt::write_file_atomic(path, value.dump(2) + "\n"); }

// ---- candidates.csv -------------------------------------------------------------------------------

void write_candidates(const std::string& dir, const std::vector<CandidateRow>& rows) {
  std::ostringstream csv;
  csv << "sampling,rank,index,val_acc,val_loss,params,kept_fraction\n";
  for (const auto& r : rows)
    csv << r.sampling << "," << r.rank << "," << r.index << "," << number_text(r.val_acc) << ","
        << number_text(r.val_loss) << "," << r.params << "," << number_text(r.kept_fraction) << "\n";
  ckpt::write_file_atomic(run_path(dir, run_files::candidates), csv.str());
}

namespace {
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(trimmed(cell));
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

}  // namespace

double parse_number_or_nan(const std::string& s) {
  if (s.empty()) return kRunNaN;
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    return used == s.size() ? v : kRunNaN;
  } catch (const std::exception&) {
    return kRunNaN;
  }
}

CandidateTable read_candidates(const std::string& path) {
  std::istringstream in(read_file_bytes(path));
  CandidateTable t;
  std::map<std::string, std::size_t> col;
  bool header = true;
  std::string line;
  while (std::getline(in, line)) {
    line = trimmed(line);
    if (line.empty()) continue;
    const auto cells = split_csv(line);
    if (header) {
      for (std::size_t i = 0; i < cells.size(); ++i) col[cells[i]] = i;
      header = false;
      PROBNAS_CHECK(col.count("val_acc"), "no val_acc column in its header");
      continue;
    }
    auto get = [&](const char* name) -> std::string {
      const auto it = col.find(name);
      return it != col.end() && it->second < cells.size() ? cells[it->second] : "";
    };
    t.sampling.push_back(get("sampling").empty() ? "candidates" : get("sampling"));
    t.rank.push_back(parse_number_or_nan(get("rank")));
    t.index.push_back(parse_number_or_nan(get("index")));
    t.val_acc.push_back(parse_number_or_nan(get("val_acc")));
    t.val_loss.push_back(parse_number_or_nan(get("val_loss")));
    t.params.push_back(parse_number_or_nan(get("params")));
    t.kept_fraction.push_back(parse_number_or_nan(get("kept_fraction")));
  }
  return t;
}

// ---- JSON fields -----------------------------------------------------------------------------------

std::optional<double> json_number(const nlohmann::ordered_json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  PROBNAS_CHECK(it->is_number(), where, ": \"", key, "\" should be a number, found ", it->dump());
  return it->get<double>();
}

std::optional<int64_t> json_integer(const nlohmann::ordered_json& j, const char* key, const std::string& where) {
  const auto v = json_number(j, key, where);
  if (!v) return std::nullopt;
  PROBNAS_CHECK(std::isfinite(*v) && std::floor(*v) == *v, where, ": \"", key, "\" should be a whole number, found ",
                j.at(key).dump());
  return static_cast<int64_t>(*v);
}

std::string json_string(const nlohmann::ordered_json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  PROBNAS_CHECK(it->is_string(), where, ": \"", key, "\" should be a string, found ", it->dump());
  return it->get<std::string>();
}

double json_number_or_nan(const nlohmann::ordered_json& j, const std::string& key) {
  if (!j.is_object()) return kRunNaN;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return kRunNaN;
  return it->get<double>();
}

std::string json_text_or_empty(const nlohmann::ordered_json& j, const std::string& key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return "";
}

const nlohmann::ordered_json* json_child(const nlohmann::ordered_json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// ---- config.ini -------------------------------------------------------------------------------------

std::map<std::string, std::string> read_config_values(const std::string& dir) {
  const std::string path = run_path(dir, run_files::config);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  return parse_ini_values(read_file_bytes(path));
}

}  // namespace probnas
