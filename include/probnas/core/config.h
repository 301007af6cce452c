#pragma once
// One table of options (type, default, range, help) read from INI files and the command line
// under the same dotted names: `[search] method = drnas` in a file is `--search.method drnas`
// on the command line, which wins. Unknown keys and invalid values are errors, never ignored.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace probnas {

enum class OptionKind { integer, real, boolean, text, choice };

struct OptionSpec {
  std::string key;            // dotted: section.name
  OptionKind kind = OptionKind::text;
  std::string default_value;  // canonical text
  double lo = 0, hi = 0;      // inclusive range for integer/real
  std::vector<std::string> choices;
  std::string help;
  bool resumable = false;  // may differ between a checkpoint and the run that resumes from it
  std::string allowed() const;  // "integer in [1, 100000]", "one of: darts, drnas", ...
  std::string type_name() const;
};

class OptionTable {
 public:
  OptionTable& integer(const std::string& key, int64_t def, int64_t lo, int64_t hi, const std::string& help);
  OptionTable& real(const std::string& key, double def, double lo, double hi, const std::string& help);
  OptionTable& boolean(const std::string& key, bool def, const std::string& help);
  OptionTable& text(const std::string& key, const std::string& def, const std::string& help);
  OptionTable& choice(const std::string& key, const std::string& def, std::vector<std::string> choices,
                      const std::string& help);
  const OptionSpec* find(const std::string& key) const;
  const std::vector<OptionSpec>& specs() const { return specs_; }
  // Marks `key` as one that may change on resume (run.dir, ckpt.*, ...): checkpoints compare every
  // other key with the run that resumes from them.
  OptionTable& mark_resumable(const std::string& key);
  // The keys that may change on resume, for messages: by section, "run.* except run.seed, ckpt.*,
  // data.path, ...".
  std::string resumable_summary() const;
  // Sections of another command's options that a config file may hold for it (one file configures
  // search and train): read_config_file skips their keys instead of refusing them.
  OptionTable& skip_in_files(std::vector<std::string> sections);
  bool skipped_in_files(const std::string& key) const;
  // `--key <type>  help (default: x; allowed: y)` for every option, grouped by section.
  std::string help_text() const;

 private:
  OptionTable& add(OptionSpec spec);
  std::vector<OptionSpec> specs_;
  std::vector<std::string> skipped_sections_;
};

class Config {
 public:
  explicit Config(const OptionTable& table);  // every option at its default

  // Validates and stores; `origin` names where the value came from for error messages
  // ("command line", "file inputs/x.ini").
  void set(const std::string& key, const std::string& value, const std::string& origin = "command line");

  int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  bool boolean(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  bool is_default(const std::string& key) const;

  // The full effective config as INI (every option, defaults resolved), with help as comments.
  std::string to_ini() const;
  // FNV-1a over the canonical key=value lines: identifies the config a checkpoint was made with.
  uint64_t hash() const;
  // The same over the keys `include` accepts (a checkpoint's hash leaves out resumable keys).
  uint64_t hash(const std::function<bool(const std::string&)>& include) const;
  const OptionTable& table() const { return *table_; }
  // Every key's canonical value text.
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  const OptionSpec& spec(const std::string& key, OptionKind expected) const;
  const OptionTable* table_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> explicit_;
};

struct CommandLine {
  bool help = false;
  std::string config_file;  // empty when none was given
};

// Reads `--config FILE` (if any) into `config`, then the command-line options over it.
// `args` excludes the program and subcommand names.
CommandLine parse_command_line(Config& config, const std::vector<std::string>& args);
// The `section.key -> value` pairs of INI text (comments and blank lines skipped), without
// validating them: how a checkpoint's stored configuration is compared with the current one.
std::map<std::string, std::string> parse_ini_values(const std::string& text);
// "a, b,c" -> {"a", "b", "c"} (entries trimmed; empty text -> no entries; an empty entry is kept
// as "" for the caller to reject).
std::vector<std::string> split_list(const std::string& text);
// Reads an INI file's `[section] key = value` pairs into `config`.
void read_config_file(Config& config, const std::string& path);

}  // namespace probnas
