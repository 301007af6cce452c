#pragma once
// The run folder, torch-free (DESIGN, "A run folder"): the names of its files, and how each is
// written and read. The engines write through these functions; report.html and probnas compare read
// through them, so a file's layout is defined once.
//
//   config.ini           the full effective configuration (INI)
//   metrics.jsonl        one JSON object per finished epoch (train: train-metrics.jsonl)
//   genotype.json        the derived architecture (run/genotype.h) and the method's results
//   candidates.csv       sampled candidates and their scores (PGNAS)
//   train/result.json    the retraining's test accuracy, size and cost (probnas train)
//   report.html          the report (report/report.h)
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "probnas/run/genotype.h"

namespace probnas {

namespace run_files {
inline const char* const config = "config.ini";
inline const char* const metrics = "metrics.jsonl";
inline const char* const train_metrics = "train-metrics.jsonl";
inline const char* const genotype = "genotype.json";
inline const char* const candidates = "candidates.csv";
inline const char* const result = "result.json";
inline const char* const train_result = "train/result.json";  // a search folder's retraining
inline const char* const report = "report.html";
}  // namespace run_files

// <dir>/<name>.
std::string run_path(const std::string& dir, const std::string& name);
// The folder's own name ("outputs/a/" -> "a").
std::string run_name(const std::string& dir);

// ---- metrics.jsonl --------------------------------------------------------------------------------
struct MetricsLog {
  std::vector<nlohmann::ordered_json> lines;  // every line that parsed as a JSON object, in file order
  size_t bad_lines = 0;                       // lines that did not (a line cut short by a kill)
  bool last_line_torn = false;                // the file's last non-blank line is one of them
  // One object per epoch ("epoch" key, else the line number), by epoch; a resumed run may repeat an
  // epoch, and its last line wins.
  std::vector<nlohmann::ordered_json> by_epoch() const;
};
// Reads a metrics file (throws naming it when it cannot be read; malformed lines are counted, not fatal).
MetricsLog read_metrics_log(const std::string& path);
// Replaces the file with `lines` (one JSON object each), atomically.
void write_metrics_log(const std::string& path, const std::vector<std::string>& lines);
// Appends one line (a JSON object's text).
void append_metrics_line(const std::string& path, const std::string& line);

// ---- genotype.json and result.json ----------------------------------------------------------------
void write_genotype_json(const std::string& dir, const Genotype& genotype, const nlohmann::ordered_json& extra);
// A JSON object from a file; throws naming the file when it is missing, not JSON or not an object.
nlohmann::ordered_json read_json_object(const std::string& path);
void write_json(const std::string& path, const nlohmann::ordered_json& value);

// ---- candidates.csv -------------------------------------------------------------------------------
struct CandidateRow {
  std::string sampling;  // "guided", "random"
  int64_t rank = 0, index = 0, params = 0;
  double val_acc = 0, val_loss = 0, kept_fraction = 0;
};
void write_candidates(const std::string& dir, const std::vector<CandidateRow>& rows);
// Reads candidates.csv (columns by header name; absent cells are NaN / 0 / "candidates"); throws naming
// the file when it cannot be read or has no val_acc column.
struct CandidateTable {
  std::vector<std::string> sampling;
  std::vector<double> rank, index, val_acc, val_loss, params, kept_fraction;  // NaN where blank
  size_t size() const { return sampling.size(); }
};
CandidateTable read_candidates(const std::string& path);

// ---- JSON fields -----------------------------------------------------------------------------------
// Strict look-ups (compare): a missing or null key is nullopt / ""; a key of the wrong type throws
// naming `where` and the key.
std::optional<double> json_number(const nlohmann::ordered_json& j, const char* key, const std::string& where);
std::optional<int64_t> json_integer(const nlohmann::ordered_json& j, const char* key, const std::string& where);
std::string json_string(const nlohmann::ordered_json& j, const char* key, const std::string& where);
// Lenient look-ups (report): NaN, "" or nullptr where absent or of another type.
double json_number_or_nan(const nlohmann::ordered_json& j, const std::string& key);
std::string json_text_or_empty(const nlohmann::ordered_json& j, const std::string& key);
const nlohmann::ordered_json* json_child(const nlohmann::ordered_json& j, const std::string& key);
// A whole-text number ("0.5"), NaN for anything else ("", "0.5x").
double parse_number_or_nan(const std::string& text);

// ---- config.ini -------------------------------------------------------------------------------------
// `section.key -> value` of a run's config.ini; empty when the file is absent.
std::map<std::string, std::string> read_config_values(const std::string& dir);

}  // namespace probnas
