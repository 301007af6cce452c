#include "probnas/core/config.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "probnas/core/error.h"
#include "probnas/core/rng.h"

namespace po = boost::program_options;

namespace probnas {
namespace {

// The shortest text that reads back as exactly v: "0.025", "1e-05". The canonical form of real
// options, so "0.0250" and "0.025" are the same value in config hashes and resume checks.
std::string format_real(double v) {
  char buf[40];
  // At least the integer digits (up to 17), so 10 prints as "10", not "1e+01".
  int first = 1;
  for (double a = std::fabs(v); a >= 10 && first < 17; a /= 10) ++first;
  for (int precision = first; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

bool parse_real(const std::string& s, double& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  out = v;
  return true;
}

bool parse_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "1" || s == "yes" || s == "on") return out = true, true;
  if (s == "false" || s == "0" || s == "no" || s == "off") return out = false, true;
  return false;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

po::options_description boost_description(const OptionTable& table) {
  po::options_description desc;
  for (const auto& s : table.specs()) desc.add_options()(s.key.c_str(), po::value<std::string>());
  return desc;
}

}  // namespace

std::string OptionSpec::type_name() const {
  switch (kind) {
    case OptionKind::integer: return "int";
    case OptionKind::real: return "real";
    case OptionKind::boolean: return "bool";
    case OptionKind::text: return "text";
    case OptionKind::choice: {
      std::string s;
      for (const auto& c : choices) s += (s.empty() ? "" : "|") + c;
      return s;
    }
  }
  return "?";
}

std::string OptionSpec::allowed() const {
  switch (kind) {
    case OptionKind::integer:
      return detail::concat("integer in [", static_cast<int64_t>(lo), ", ", static_cast<int64_t>(hi), "]");
    case OptionKind::real: return detail::concat("number in [", format_real(lo), ", ", format_real(hi), "]");
    case OptionKind::boolean: return "true or false";
    case OptionKind::text: return "any text";
    case OptionKind::choice: {
      std::string s = "one of: ";
      for (size_t i = 0; i < choices.size(); ++i) s += (i ? ", " : "") + choices[i];
      return s;
    }
  }
  return "?";
}

OptionTable& OptionTable::add(OptionSpec spec) {
  PROBNAS_CHECK(!spec.key.empty() && spec.key.front() != '.' && spec.key.back() != '.', "option '", spec.key,
                "' is not a name or section.name");
  PROBNAS_CHECK(find(spec.key) == nullptr, "option '", spec.key, "' declared twice");
  specs_.push_back(std::move(spec));
  return *this;
}

OptionTable& OptionTable::integer(const std::string& key, int64_t def, int64_t lo, int64_t hi,
                                  const std::string& help) {
  OptionSpec s;
  s.key = key, s.kind = OptionKind::integer, s.default_value = std::to_string(def);
  s.lo = static_cast<double>(lo), s.hi = static_cast<double>(hi), s.help = help;
  return add(std::move(s));
}

OptionTable& OptionTable::real(const std::string& key, double def, double lo, double hi, const std::string& help) {
  OptionSpec s;
  s.key = key, s.kind = OptionKind::real, s.default_value = format_real(def), s.lo = lo, s.hi = hi, s.help = help;
  return add(std::move(s));
}

OptionTable& OptionTable::boolean(const std::string& key, bool def, const std::string& help) {
  OptionSpec s;
  s.key = key, s.kind = OptionKind::boolean, s.default_value = def ? "true" : "false", s.help = help;
  return add(std::move(s));
}

OptionTable& OptionTable::text(const std::string& key, const std::string& def, const std::string& help) {
  OptionSpec s;
  s.key = key, s.kind = OptionKind::text, s.default_value = def, s.help = help;
  return add(std::move(s));
}

OptionTable& OptionTable::choice(const std::string& key, const std::string& def, std::vector<std::string> choices,
                                 const std::string& help) {
  OptionSpec s;
  s.key = key, s.kind = OptionKind::choice, s.default_value = def, s.choices = std::move(choices), s.help = help;
  return add(std::move(s));
}

OptionTable& OptionTable::mark_resumable(const std::string& key) {
  for (auto& s : specs_)
    if (s.key == key) {
      s.resumable = true;
      return *this;
    }
  PROBNAS_FAIL("internal: option '", key, "' is not in the table");
}

std::string OptionTable::resumable_summary() const {
  std::vector<std::string> sections;
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> keys;  // (may, may not)
  for (const auto& s : specs_) {
    const std::string section = s.key.substr(0, s.key.find('.'));
    if (!keys.count(section)) sections.push_back(section);
    (s.resumable ? keys[section].first : keys[section].second).push_back(s.key);
  }
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  for (const auto& section : sections) {
    const auto& [may, may_not] = keys[section];
    if (may.empty()) continue;
    if (may_not.empty()) {
      add(section + ".*");
    } else if (may.size() >= may_not.size()) {
      std::string except;
      for (const auto& k : may_not) except += (except.empty() ? "" : ", ") + k;
      add(section + ".* except " + except);
    } else {
      for (const auto& k : may) add(k);
    }
  }
  return out;
}

const OptionSpec* OptionTable::find(const std::string& key) const {
  for (const auto& s : specs_)
    if (s.key == key) return &s;
  return nullptr;
}

std::string OptionTable::help_text() const {
  std::ostringstream out;
  std::string section;
  for (const auto& s : specs_) {
    const auto dot = s.key.find('.');
    const std::string sec = dot == std::string::npos ? "" : s.key.substr(0, dot);  // undotted keys: no section
    if (sec != section) {
      section = sec;
      out << "\n[" << section << "]\n";
    }
    std::string head = "  --" + s.key + " <" + s.type_name() + ">";
    out << head;
    if (head.size() < 44) out << std::string(44 - head.size(), ' ');
    else out << "\n" << std::string(44, ' ');
    out << s.help << "\n" << std::string(44, ' ') << "default: "
        << (s.default_value.empty() ? "(empty)" : s.default_value);
    if (s.kind == OptionKind::integer || s.kind == OptionKind::real) out << "; allowed: " << s.allowed();
    if (s.resumable) out << "; may change on resume";
    out << "\n";
  }
  return out.str();
}

Config::Config(const OptionTable& table) : table_(&table) {
  for (const auto& s : table.specs()) values_[s.key] = s.default_value;
}

void Config::set(const std::string& key, const std::string& raw, const std::string& origin) {
  const OptionSpec* s = table_->find(key);
  PROBNAS_CHECK(s != nullptr, origin, ": unknown option '", key, "' (see --help for the options)");
  const std::string value = trim(raw);
  auto bad = [&](const std::string& why) {
    PROBNAS_FAIL(origin, ": ", key, " = '", value, "' ", why, " (allowed: ", s->allowed(), ")");
  };
  std::string canonical = value;
  switch (s->kind) {
    case OptionKind::integer: {
      int64_t v = 0;
      if (!parse_int(value, v)) bad("is not an integer");
      if (static_cast<double>(v) < s->lo || static_cast<double>(v) > s->hi) bad("is out of range");
      canonical = std::to_string(v);
      break;
    }
    case OptionKind::real: {
      double v = 0;
      if (!parse_real(value, v)) bad("is not a number");
      if (v < s->lo || v > s->hi) bad("is out of range");
      canonical = format_real(v);
      break;
    }
    case OptionKind::boolean: {
      bool v = false;
      if (!parse_bool(value, v)) bad("is not a boolean");
      canonical = v ? "true" : "false";
      break;
    }
    case OptionKind::choice: {
      bool ok = false;
      for (const auto& c : s->choices) ok = ok || c == value;
      if (!ok) bad("is not allowed");
      break;
    }
    case OptionKind::text: break;
  }
  values_[key] = canonical;
  explicit_[key] = true;
}

const OptionSpec& Config::spec(const std::string& key, OptionKind expected) const {
  const OptionSpec* s = table_->find(key);
  PROBNAS_CHECK(s != nullptr, "internal: option '", key, "' is not in the table");
  PROBNAS_CHECK(s->kind == expected || (expected == OptionKind::text && s->kind == OptionKind::choice),
                "internal: option '", key, "' read as the wrong type");
  return *s;
}

int64_t Config::integer(const std::string& key) const {
  spec(key, OptionKind::integer);
  return std::stoll(values_.at(key));
}
double Config::real(const std::string& key) const {
  spec(key, OptionKind::real);
  return std::stod(values_.at(key));
}
bool Config::boolean(const std::string& key) const {
  spec(key, OptionKind::boolean);
  return values_.at(key) == "true";
}
const std::string& Config::text(const std::string& key) const {
  spec(key, OptionKind::text);
  return values_.at(key);
}
bool Config::is_default(const std::string& key) const { return explicit_.count(key) == 0; }

std::string Config::to_ini() const {
  std::ostringstream out;
  out << "# probnas " << PROBNAS_VERSION << " effective configuration (every option; defaults resolved)\n";
  std::string section;
  for (const auto& s : table_->specs()) {
    const auto dot = s.key.find('.');
    const std::string sec = dot == std::string::npos ? "" : s.key.substr(0, dot);
    if (sec != section) {
      section = sec;
      out << "\n[" << section << "]\n";
    }
    out << "# " << s.help << " (" << s.allowed() << ")\n";
    out << (dot == std::string::npos ? s.key : s.key.substr(dot + 1)) << " = " << values_.at(s.key) << "\n";
  }
  return out.str();
}

uint64_t Config::hash() const {
  return hash([](const std::string&) { return true; });
}

uint64_t Config::hash(const std::function<bool(const std::string&)>& include) const {
  uint64_t h = kFnvOffset;
  for (const auto& [k, v] : values_)
    if (include(k)) h = fnv1a(k + "=" + v + "\n", h);
  return h;
}

std::map<std::string, std::string> parse_ini_values(const std::string& text) {
  auto trim = [](std::string s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return std::string();
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
  };
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(line.substr(0, eq));
    out[section.empty() ? key : section + "." + key] = trim(line.substr(eq + 1));
  }
  return out;
}

OptionTable& OptionTable::skip_in_files(std::vector<std::string> sections) {
  skipped_sections_ = std::move(sections);
  return *this;
}

bool OptionTable::skipped_in_files(const std::string& key) const {
  const auto dot = key.find('.');
  if (dot == std::string::npos) return false;
  const std::string section = key.substr(0, dot);
  return std::find(skipped_sections_.begin(), skipped_sections_.end(), section) != skipped_sections_.end();
}

void read_config_file(Config& config, const std::string& path) {
  std::ifstream in(path);
  PROBNAS_CHECK(in.good(), "config file '", path, "' cannot be opened (does it exist?)");
  const std::string origin = "config file " + path;
  po::parsed_options parsed(nullptr);
  try {
    parsed = po::parse_config_file(in, boost_description(config.table()), /*allow_unregistered=*/true);
  } catch (const po::error& e) {
    PROBNAS_FAIL(origin, ": ", e.what());
  }
  for (const auto& opt : parsed.options) {
    if (opt.unregistered && config.table().skipped_in_files(opt.string_key)) continue;  // another command's
    PROBNAS_CHECK(!opt.unregistered, origin, ": unknown option '", opt.string_key,
                  "' (see --help for the options)");
    PROBNAS_CHECK(opt.value.size() == 1, origin, ": option '", opt.string_key, "' needs exactly one value");
    config.set(opt.string_key, opt.value.front(), origin);
  }
}

CommandLine parse_command_line(Config& config, const std::vector<std::string>& args) {
  po::options_description desc = boost_description(config.table());
  desc.add_options()("config", po::value<std::string>())("help,h", "");
  po::parsed_options parsed(nullptr);
  try {
    parsed = po::command_line_parser(args).options(desc).allow_unregistered().style(
                 po::command_line_style::unix_style & ~po::command_line_style::allow_guessing).run();
  } catch (const po::error& e) {
    PROBNAS_FAIL("command line: ", e.what());
  }
  CommandLine cl;
  for (const auto& opt : parsed.options) {
    if (opt.string_key == "help") cl.help = true;
    if (opt.string_key == "config") {
      PROBNAS_CHECK(opt.value.size() == 1, "command line: --config needs one file");
      cl.config_file = opt.value.front();
    }
  }
  if (cl.help) return cl;
  if (!cl.config_file.empty()) read_config_file(config, cl.config_file);
  for (const auto& opt : parsed.options) {
    if (opt.string_key == "help" || opt.string_key == "config") continue;
    if (opt.unregistered) {
      const std::string name = opt.original_tokens.empty() ? opt.string_key : opt.original_tokens.front();
      PROBNAS_FAIL("command line: unknown option '", name, "' (see --help for the options)");
    }
    PROBNAS_CHECK(opt.value.size() == 1, "command line: option --", opt.string_key, " needs exactly one value");
    config.set(opt.string_key, opt.value.front(), "command line");
  }
  return cl;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  if (text.find_first_not_of(" \t") == std::string::npos) return items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto first = item.find_first_not_of(" \t"), last = item.find_last_not_of(" \t");
    items.push_back(first == std::string::npos ? std::string() : item.substr(first, last - first + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

}  // namespace probnas
