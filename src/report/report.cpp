#include "probnas/report/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "probnas/core/config.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"

namespace probnas {

// ---------------------------------------------------------------------------------------------
// Exact k-best assignments of a product of independent categoricals.
// ---------------------------------------------------------------------------------------------

std::vector<RankedAssignment> most_probable_assignments(const std::vector<std::vector<double>>& probs, std::size_t k) {
  std::vector<RankedAssignment> out;
  if (k == 0) return out;
  const std::size_t n = probs.size();
  for (const auto& p : probs)
    if (p.empty()) return out;  // a variable without options: no architecture at all
  // Per variable: the options of positive probability, most probable first, with their logs.
  std::vector<std::vector<std::size_t>> order(n);
  std::vector<std::vector<double>> logp(n);
  for (std::size_t v = 0; v < n; ++v) {
    std::vector<double> p = probs[v];
    double sum = 0;
    for (double& x : p) {
      if (!std::isfinite(x) || x < 0) x = 0;
      sum += x;
    }
    if (!(sum > 0) || !std::isfinite(sum)) {
      std::fill(p.begin(), p.end(), 1.0);
      sum = static_cast<double>(p.size());
    }
    for (std::size_t i = 0; i < p.size(); ++i)
      if (p[i] > 0) order[v].push_back(i);
    std::stable_sort(order[v].begin(), order[v].end(), [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
    for (const std::size_t i : order[v]) logp[v].push_back(std::log(p[i] / sum));
  }
  // Best-first search over rank vectors (rank r[v] indexes order[v]). A state's children increment
  // one position at or after its pivot, so every state has exactly one parent (decrement its last
  // non-zero position) and is generated once; children are never more probable than their parent.
  struct State {
    double log_p;
    std::vector<std::size_t> rank;
    std::size_t pivot;
  };
  auto score = [&](const std::vector<std::size_t>& rank) {
    double s = 0;
    for (std::size_t v = 0; v < n; ++v) s += logp[v][rank[v]];
    return s;
  };
  auto worse = [](const State& a, const State& b) {
    if (a.log_p != b.log_p) return a.log_p < b.log_p;
    return a.rank > b.rank;
  };
  std::priority_queue<State, std::vector<State>, decltype(worse)> heap(worse);
  std::vector<std::size_t> first(n, 0);
  heap.push({score(first), first, 0});
  while (!heap.empty() && out.size() < k) {
    State s = heap.top();
    heap.pop();
    RankedAssignment a;
    a.choice.resize(n);
    for (std::size_t v = 0; v < n; ++v) a.choice[v] = order[v][s.rank[v]];
    a.probability = std::exp(s.log_p);
    a.log_probability = s.log_p;
    out.push_back(std::move(a));
    for (std::size_t v = s.pivot; v < n; ++v) {
      if (s.rank[v] + 1 >= order[v].size()) continue;
      State child{0, s.rank, v};
      ++child.rank[v];
      child.log_p = score(child.rank);
      heap.push(std::move(child));
    }
  }
  return out;
}

namespace {

using Json = nlohmann::ordered_json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Text and number formatting.
// ---------------------------------------------------------------------------------------------

std::string esc(const std::string& s) {
  std::string o;
  o.reserve(s.size() + 16);
  for (const char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default:
        // Control characters other than tab and newline are not allowed in HTML text.
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t') o += ' ';
        else o += ch;
    }
  }
  return o;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  std::string s = buf;
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // "-0.00"
  return s;
}

std::string percent(double fraction, int digits = 2) {
  return std::isfinite(fraction) ? fixed(100 * fraction, digits) + "%" : "n/a";
}

// A number with about `significant` digits, no exponent for the usual magnitudes.
std::string general(double v, int significant = 4) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", significant, v);
  return buf;
}

// SVG coordinates: always finite, two decimals at most, no "-0".
std::string c(double v) {
  if (!std::isfinite(v)) v = 0;
  v = std::clamp(v, -1e6, 1e6);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0" || s.empty()) s = "0";
  return s;
}

std::string integer_text(double v) {
  if (!std::isfinite(v) || std::fabs(v) > 9e18) return "n/a";
  const long long n = std::llround(v);
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  const std::size_t len = digits.size();
  for (std::size_t i = 0; i < len; ++i) {
    if (i > 0 && (len - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// 1234567 -> "1.23 M"; for parameter and FLOP counts.
std::string scaled(double v, const std::string& unit) {
  if (!std::isfinite(v)) return "n/a";
  const double a = std::fabs(v);
  if (a >= 1e12) return fixed(v / 1e12, 2) + " T" + unit;
  if (a >= 1e9) return fixed(v / 1e9, 2) + " G" + unit;
  if (a >= 1e6) return fixed(v / 1e6, 2) + " M" + unit;
  if (a >= 1e3) return fixed(v / 1e3, 1) + " k" + unit;
  return fixed(v, 0) + (unit.empty() ? "" : " " + unit);
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "n/a";
  if (s < 60) return fixed(s, 1) + " s";
  const auto total = static_cast<long long>(std::llround(s));
  const long long d = total / 86400, h = total % 86400 / 3600, m = total % 3600 / 60, sec = total % 60;
  char buf[64];
  if (d > 0) std::snprintf(buf, sizeof buf, "%lld d %lld h %02lld min", d, h, m);
  else if (h > 0) std::snprintf(buf, sizeof buf, "%lld h %02lld min", h, m);
  else std::snprintf(buf, sizeof buf, "%lld min %02lld s", m, sec);
  return buf;
}

// A probability as HTML: a percentage, or mantissa x 10^e when tiny.
std::string probability_html(double p) {
  if (!std::isfinite(p)) return "n/a";
  if (p == 0) return "0";
  if (p >= 1e-3) return percent(p, 2);
  const int e = static_cast<int>(std::floor(std::log10(p)));
  const double m = p / std::pow(10.0, e);
  return fixed(m, 2) + "&#8202;&times;&#8202;10<sup>" + std::to_string(e) + "</sup>";
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string note(const std::string& text, const char* cls = "note") {
  return std::string("<p class=\"") + cls + "\">" + text + "</p>\n";
}
std::string missing(const std::string& text) { return note(text, "note missing"); }

// ---------------------------------------------------------------------------------------------
// JSON helpers: numbers come back NaN when absent or not numbers (nlohmann writes NaN as null).
// ---------------------------------------------------------------------------------------------

double num_of(const Json& j, const std::string& key) {
  if (!j.is_object()) return kNaN;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return kNaN;
  return it->get<double>();
}

double as_num(const Json& j) { return j.is_number() ? j.get<double>() : kNaN; }

std::string text_of(const Json& j, const std::string& key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return "";
}

const Json* child(const Json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// ---------------------------------------------------------------------------------------------
// The run folder.
// ---------------------------------------------------------------------------------------------

struct Edge {
  std::string group, name, op;
  std::vector<std::string> ops;
  std::vector<double> probs;
};

struct Group {
  std::string name;
  std::vector<std::string> ops;
  std::vector<std::size_t> edges;  // into Run::edges
};

struct Candidate {
  std::string sampling;
  double rank = kNaN, index = kNaN, val_acc = kNaN, val_loss = kNaN, params = kNaN, kept = kNaN;
};

struct Run {
  std::string dir, name;
  std::map<std::string, std::string> config;
  bool has_config = false;
  std::string config_note;
  Json geno;
  bool has_geno = false;
  std::string geno_note;
  std::vector<Json> metrics;  // one per epoch, by epoch
  bool has_metrics = false;
  std::string metrics_note;
  std::size_t bad_lines = 0;
  Json train;
  bool has_train = false;
  std::string train_note;
  std::vector<Candidate> candidates;
  bool has_candidates = false;
  std::string candidates_note;
  std::vector<Edge> edges;
  std::vector<Group> groups;
  bool generic_names = false;  // edges and ops named from metrics' probs only
  std::string method, space, dataset;

  std::string cfg(const std::string& key) const {
    const auto it = config.find(key);
    return it == config.end() ? "" : it->second;
  }
  const Json* last_metrics() const { return metrics.empty() ? nullptr : &metrics.back(); }
};

std::string file_in(const Run& r, const std::string& name) { return r.dir + "/" + name; }

// "missing" or why the file could not be read.
bool read_text(const std::string& path, std::string* text, std::string* why) {
  try {
    if (!file_exists(path)) {
      *why = "missing";
      return false;
    }
    *text = read_file_bytes(path);
    return true;
  } catch (const std::exception& e) {
    *why = e.what();
    return false;
  }
}

void load_config(Run& r) {
  std::string text, why;
  if (!read_text(file_in(r, "config.ini"), &text, &why)) {
    r.config_note = "config.ini: " + why;
    return;
  }
  r.config = parse_ini_values(text);
  r.has_config = true;
}

void load_genotype(Run& r) {
  std::string text, why;
  if (!read_text(file_in(r, "genotype.json"), &text, &why)) {
    r.geno_note = "genotype.json: " + why;
    return;
  }
  try {
    r.geno = Json::parse(text);
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

void load_metrics(Run& r) {
  std::string text, why;
  if (!read_text(file_in(r, "metrics.jsonl"), &text, &why)) {
    r.metrics_note = "metrics.jsonl: " + why;
    return;
  }
  std::map<double, Json> by_epoch;  // a resumed run may repeat an epoch: the last line wins
  std::istringstream in(text);
  std::string line;
  double index = 0;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    ++index;
    try {
      Json j = Json::parse(line);
      if (!j.is_object()) {
        ++r.bad_lines;
        continue;
      }
      double epoch = num_of(j, "epoch");
      if (!std::isfinite(epoch)) epoch = index;
      j["epoch"] = epoch;
      by_epoch[epoch] = std::move(j);
    } catch (const std::exception&) {
      ++r.bad_lines;  // e.g. a line cut short by a crash
    }
  }
  for (auto& [epoch, j] : by_epoch) r.metrics.push_back(std::move(j));
  r.has_metrics = true;
}

void load_train(Run& r) {
  std::string text, why;
  if (!read_text(file_in(r, "train/result.json"), &text, &why)) {
    r.train_note = why;
    return;
  }
  try {
    r.train = Json::parse(text);
    r.has_train = r.train.is_object();
    if (!r.has_train) r.train_note = "not a JSON object";
  } catch (const std::exception& e) {
    r.train_note = std::string("not valid JSON (") + e.what() + ")";
  }
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(trim(cell));
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

double parse_double(const std::string& s) {
  if (s.empty()) return kNaN;
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    return used == s.size() ? v : kNaN;
  } catch (const std::exception&) {
    return kNaN;
  }
}

void load_candidates(Run& r) {
  std::string text, why;
  if (!read_text(file_in(r, "candidates.csv"), &text, &why)) {
    r.candidates_note = "candidates.csv: " + why;
    return;
  }
  std::istringstream in(text);
  std::string line;
  std::map<std::string, std::size_t> col;
  bool header = true;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    const auto cells = split_csv(line);
    if (header) {
      for (std::size_t i = 0; i < cells.size(); ++i) col[cells[i]] = i;
      header = false;
      if (!col.count("val_acc")) {
        r.candidates_note = "candidates.csv: no val_acc column in its header";
        return;
      }
      continue;
    }
    auto get = [&](const char* name) -> std::string {
      const auto it = col.find(name);
      return it != col.end() && it->second < cells.size() ? cells[it->second] : "";
    };
    Candidate cand;
    cand.sampling = get("sampling").empty() ? "candidates" : get("sampling");
    cand.rank = parse_double(get("rank"));
    cand.index = parse_double(get("index"));
    cand.val_acc = parse_double(get("val_acc"));
    cand.val_loss = parse_double(get("val_loss"));
    cand.params = parse_double(get("params"));
    cand.kept = parse_double(get("kept_fraction"));
    r.candidates.push_back(cand);
  }
  r.has_candidates = true;
}

// Groups, edges and op names: from genotype.json's "edges"; failing that, from the metrics' probs.
void derive_structure(Run& r) {
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

Run load_run(const std::string& dir) {
  Run r;
  r.dir = dir;
  std::string name = dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  const auto slash = name.find_last_of('/');
  r.name = slash == std::string::npos ? name : name.substr(slash + 1);
  if (r.name.empty()) r.name = dir;
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

// ---------------------------------------------------------------------------------------------
// Colours.
// ---------------------------------------------------------------------------------------------

struct Rgb {
  double r, g, b;
};

std::string hex(const Rgb& c) {
  auto byte = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 255.0))); };
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

// YlGnBu, light (0) to dark (1).
Rgb scale(double t) {
  static const Rgb stops[] = {{255, 255, 217}, {237, 248, 177}, {199, 233, 180}, {127, 205, 187}, {65, 182, 196},
                              {29, 145, 192},  {34, 94, 168},   {37, 52, 148},   {8, 29, 88}};
  constexpr int n = 9;
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * (n - 1);
  const int i = std::min(static_cast<int>(t), n - 2);
  const double f = t - i;
  const Rgb& a = stops[i];
  const Rgb& b = stops[i + 1];
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

// Series colours (colour-blind safe, Okabe-Ito-like).
const char* series_colour(std::size_t i) {
  static const char* colours[] = {"#0b6bcb", "#e3711b", "#1a9e5c", "#b8328a", "#6b4fbb", "#8a6d1f", "#d13b3b"};
  return colours[i % 7];
}

// Edge colours by operation family.
std::string op_colour(const std::string& op) {
  if (op.find("skip") != std::string::npos || op == "identity") return "#2f7d32";
  if (op.find("pool") != std::string::npos) return "#c25e00";
  if (op.find("sep_conv") != std::string::npos) return "#1f5fae";
  if (op.find("dil_conv") != std::string::npos) return "#7b3fa0";
  if (op.find("conv") != std::string::npos) return "#00777f";
  return "#46535e";
}

// ---------------------------------------------------------------------------------------------
// Charts.
// ---------------------------------------------------------------------------------------------

struct Series {
  std::string name, colour;
  std::vector<double> x, y;
  bool line = true;
  bool dots = true;
  bool dashed = false;
};

struct Axis {
  std::string label;
  bool integer = false;  // ticks at whole numbers only (epochs)
  bool tight = false;    // the range is the data's, not rounded out to ticks
  std::string suffix;    // after tick labels, e.g. "%"
};

struct Ticks {
  double lo = 0, hi = 1, step = 1;
  int digits = 0;
};

Ticks nice_ticks(double lo, double hi, bool integer, bool tight, int target = 5) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = integer ? 1.0 : std::max(std::fabs(hi) * 0.05, 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 2.25 ? 2 : norm < 3.5 ? 2.5 : norm < 7.5 ? 5 : 10) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  Ticks t;
  t.step = step;
  t.lo = tight ? lo : std::floor(lo / step + 1e-9) * step;
  t.hi = tight ? hi : std::ceil(hi / step - 1e-9) * step;
  t.digits = 0;
  for (; t.digits < 9; ++t.digits) {
    const double scaled_step = step * std::pow(10.0, t.digits);
    if (scaled_step >= 0.999 && std::fabs(scaled_step - std::round(scaled_step)) < 1e-6 * scaled_step) break;
  }
  return t;
}

std::vector<double> tick_values(const Ticks& t) {
  std::vector<double> v;
  const double first = std::ceil(t.lo / t.step - 1e-9) * t.step;
  for (int i = 0; i < 200; ++i) {
    const double x = first + i * t.step;
    if (x > t.hi + t.step * 1e-9) break;
    v.push_back(std::fabs(x) < t.step * 1e-9 ? 0.0 : x);
  }
  return v;
}

thread_local int svg_counter = 0;  // unique ids within one report (reset per render)

std::string svg_open(double w, double h, const std::string& cls, const std::string& label) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"" << cls << "\" viewBox=\"0 0 " << c(w) << " " << c(h)
    << "\" width=\"" << c(w) << "\" height=\"" << c(h) << "\" role=\"img\" aria-label=\"" << esc(label) << "\">"
    << "<title>" << esc(label) << "</title>\n";
  return o.str();
}

// A line/scatter chart with axes, ticks, grid and a legend.
std::string chart(const std::string& label, const std::vector<Series>& series, const Axis& xa, const Axis& ya,
                  double w = 540, double h = 300) {
  double ml = 62;
  const double mr = 16, mt = 34, mb = 46;
  double x0 = kNaN, x1 = kNaN, y0 = kNaN, y1 = kNaN;
  std::size_t points = 0;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      ++points;
      x0 = std::isfinite(x0) ? std::min(x0, s.x[i]) : s.x[i];
      x1 = std::isfinite(x1) ? std::max(x1, s.x[i]) : s.x[i];
      y0 = std::isfinite(y0) ? std::min(y0, s.y[i]) : s.y[i];
      y1 = std::isfinite(y1) ? std::max(y1, s.y[i]) : s.y[i];
    }
  std::ostringstream o;
  o << svg_open(w, h, "chart", label);
  if (points == 0) {
    const double pw = w - ml - mr, ph = h - mt - mb;
    o << "<rect x=\"" << c(ml) << "\" y=\"" << c(mt) << "\" width=\"" << c(pw) << "\" height=\"" << c(ph)
      << "\" class=\"plot-bg\"/>"
      << "<text x=\"" << c(ml + pw / 2) << "\" y=\"" << c(mt + ph / 2) << "\" class=\"empty\" text-anchor=\"middle\">"
      << "no finite values to plot</text></svg>\n";
    return o.str();
  }
  if (xa.integer && x1 - x0 < 1) x0 -= 0.5, x1 += 0.5;
  const Ticks tx = nice_ticks(x0, x1, xa.integer, xa.tight);
  const Ticks ty = nice_ticks(y0, y1, ya.integer, ya.tight);
  std::size_t label_chars = 1;  // the left margin fits the longest tick label
  for (const double v : tick_values(ty)) label_chars = std::max(label_chars, fixed(v, ty.digits).size() + ya.suffix.size());
  ml = std::max(46.0, 30 + 6.8 * static_cast<double>(label_chars));
  const double pw = w - ml - mr, ph = h - mt - mb;
  auto X = [&](double v) { return ml + (v - tx.lo) / (tx.hi - tx.lo) * pw; };
  auto Y = [&](double v) { return mt + ph - (v - ty.lo) / (ty.hi - ty.lo) * ph; };
  o << "<rect x=\"" << c(ml) << "\" y=\"" << c(mt) << "\" width=\"" << c(pw) << "\" height=\"" << c(ph)
    << "\" class=\"plot-bg\"/>\n<g class=\"grid\">";
  for (const double v : tick_values(ty))
    o << "<line x1=\"" << c(ml) << "\" x2=\"" << c(ml + pw) << "\" y1=\"" << c(Y(v)) << "\" y2=\"" << c(Y(v)) << "\"/>";
  for (const double v : tick_values(tx))
    o << "<line y1=\"" << c(mt) << "\" y2=\"" << c(mt + ph) << "\" x1=\"" << c(X(v)) << "\" x2=\"" << c(X(v)) << "\"/>";
  o << "</g>\n<g class=\"axis\">";
  o << "<line x1=\"" << c(ml) << "\" x2=\"" << c(ml + pw) << "\" y1=\"" << c(mt + ph) << "\" y2=\"" << c(mt + ph) << "\"/>";
  o << "<line x1=\"" << c(ml) << "\" x2=\"" << c(ml) << "\" y1=\"" << c(mt) << "\" y2=\"" << c(mt + ph) << "\"/>";
  for (const double v : tick_values(tx))
    o << "<line x1=\"" << c(X(v)) << "\" x2=\"" << c(X(v)) << "\" y1=\"" << c(mt + ph) << "\" y2=\"" << c(mt + ph + 5)
      << "\"/><text x=\"" << c(X(v)) << "\" y=\"" << c(mt + ph + 18) << "\" text-anchor=\"middle\">"
      << fixed(v, tx.digits) << esc(xa.suffix) << "</text>";
  for (const double v : tick_values(ty))
    o << "<line x1=\"" << c(ml - 5) << "\" x2=\"" << c(ml) << "\" y1=\"" << c(Y(v)) << "\" y2=\"" << c(Y(v))
      << "\"/><text x=\"" << c(ml - 8) << "\" y=\"" << c(Y(v) + 4) << "\" text-anchor=\"end\">" << fixed(v, ty.digits)
      << esc(ya.suffix) << "</text>";
  o << "<text class=\"axis-label\" x=\"" << c(ml + pw / 2) << "\" y=\"" << c(h - 8) << "\" text-anchor=\"middle\">"
    << esc(xa.label) << "</text>";
  o << "<text class=\"axis-label\" transform=\"translate(14 " << c(mt + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << esc(ya.label) << "</text></g>\n";
  // Series: lines broken at non-finite values, dots when there are few points.
  for (const auto& s : series) {
    const std::size_t n = std::min(s.x.size(), s.y.size());
    if (s.line) {
      std::ostringstream d;
      bool pen = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
          pen = false;
          continue;
        }
        d << (pen ? " L" : " M") << c(X(s.x[i])) << " " << c(Y(s.y[i]));
        pen = true;
      }
      const std::string path = d.str();
      if (!path.empty())
        o << "<path class=\"series\" d=\"" << path << "\" stroke=\"" << s.colour << "\""
          << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n";
    }
    if (s.dots && n <= 400) {
      o << "<g fill=\"" << s.colour << "\"" << (s.line ? "" : " fill-opacity=\"0.7\"") << ">";
      for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
          o << "<circle cx=\"" << c(X(s.x[i])) << "\" cy=\"" << c(Y(s.y[i])) << "\" r=\"" << (s.line ? "2.6" : "3.2")
            << "\"/>";
      o << "</g>\n";
    }
  }
  // Legend along the top.
  double lx = ml;
  o << "<g class=\"legend\">";
  for (const auto& s : series) {
    o << "<line x1=\"" << c(lx) << "\" x2=\"" << c(lx + 18) << "\" y1=\"14\" y2=\"14\" stroke=\"" << s.colour
      << "\" stroke-width=\"" << (s.line ? "2.5" : "6") << "\"" << (s.dashed ? " stroke-dasharray=\"5 3\"" : "")
      << (s.line ? "" : " stroke-linecap=\"round\"") << "/>";
    o << "<text x=\"" << c(lx + 24) << "\" y=\"18\">" << esc(s.name) << "</text>";
    lx += 24 + 7.0 * static_cast<double>(s.name.size()) + 18;
  }
  o << "</g></svg>\n";
  return o.str();
}

struct HistSeries {
  std::string name, colour;
  std::vector<double> values;
};

// Overlaid histograms on shared bins.
std::string histogram(const std::string& label, const std::vector<HistSeries>& series, const Axis& xa,
                      double w = 640, double h = 300) {
  std::vector<double> all;
  for (const auto& s : series)
    for (const double v : s.values)
      if (std::isfinite(v)) all.push_back(v);
  std::ostringstream o;
  const double ml = 56, mr = 16, mt = 34, mb = 46;
  const double pw = w - ml - mr, ph = h - mt - mb;
  if (all.empty()) {
    o << svg_open(w, h, "chart histogram", label) << "<text x=\"" << c(w / 2) << "\" y=\"" << c(h / 2)
      << "\" class=\"empty\" text-anchor=\"middle\">no finite values</text></svg>\n";
    return o.str();
  }
  const auto [mn, mx] = std::minmax_element(all.begin(), all.end());
  const int want = std::clamp(static_cast<int>(std::lround(std::sqrt(static_cast<double>(all.size())) * 1.5)), 6, 30);
  Ticks bins = nice_ticks(*mn, *mx, false, false, want);
  if (*mx >= bins.hi) bins.hi += bins.step;  // the maximum falls inside the last bin
  const auto nbins = static_cast<std::size_t>(std::max(1.0, std::round((bins.hi - bins.lo) / bins.step)));
  std::vector<std::vector<double>> counts(series.size(), std::vector<double>(nbins, 0));
  double top = 0;
  for (std::size_t s = 0; s < series.size(); ++s)
    for (const double v : series[s].values) {
      if (!std::isfinite(v)) continue;
      auto b = static_cast<std::size_t>(std::clamp((v - bins.lo) / bins.step, 0.0, static_cast<double>(nbins - 1)));
      top = std::max(top, ++counts[s][b]);
    }
  const Ticks tx = nice_ticks(bins.lo, bins.hi, false, true);
  const Ticks ty = nice_ticks(0, top, true, false, 4);
  auto X = [&](double v) { return ml + (v - bins.lo) / (bins.hi - bins.lo) * pw; };
  auto Y = [&](double v) { return mt + ph - v / ty.hi * ph; };
  o << svg_open(w, h, "chart histogram", label);
  o << "<rect x=\"" << c(ml) << "\" y=\"" << c(mt) << "\" width=\"" << c(pw) << "\" height=\"" << c(ph)
    << "\" class=\"plot-bg\"/>\n<g class=\"grid\">";
  for (const double v : tick_values(ty))
    o << "<line x1=\"" << c(ml) << "\" x2=\"" << c(ml + pw) << "\" y1=\"" << c(Y(v)) << "\" y2=\"" << c(Y(v)) << "\"/>";
  o << "</g>\n";
  for (std::size_t s = 0; s < series.size(); ++s) {
    o << "<g fill=\"" << series[s].colour << "\" fill-opacity=\"0.8\" stroke=\"" << series[s].colour << "\">";
    for (std::size_t b = 0; b < nbins; ++b) {
      if (counts[s][b] == 0) continue;
      // Several series: side by side within the bin.
      const double a = bins.lo + static_cast<double>(b) * bins.step;
      const double bin_w = X(a + bins.step) - X(a) - 1, bar_w = std::max(0.5, bin_w / static_cast<double>(series.size()));
      o << "<rect class=\"bar\" x=\"" << c(X(a) + 0.5 + bar_w * static_cast<double>(s)) << "\" y=\"" << c(Y(counts[s][b]))
        << "\" width=\"" << c(bar_w) << "\" height=\"" << c(Y(0) - Y(counts[s][b]))
        << "\"><title>" << esc(series[s].name) << ": " << integer_text(counts[s][b]) << " in [" << general(a) << ", "
        << general(a + bins.step) << ")</title></rect>";
    }
    o << "</g>\n";
  }
  o << "<g class=\"axis\">";
  o << "<line x1=\"" << c(ml) << "\" x2=\"" << c(ml + pw) << "\" y1=\"" << c(mt + ph) << "\" y2=\"" << c(mt + ph) << "\"/>";
  o << "<line x1=\"" << c(ml) << "\" x2=\"" << c(ml) << "\" y1=\"" << c(mt) << "\" y2=\"" << c(mt + ph) << "\"/>";
  for (const double v : tick_values(tx))
    o << "<line x1=\"" << c(X(v)) << "\" x2=\"" << c(X(v)) << "\" y1=\"" << c(mt + ph) << "\" y2=\"" << c(mt + ph + 5)
      << "\"/><text x=\"" << c(X(v)) << "\" y=\"" << c(mt + ph + 18) << "\" text-anchor=\"middle\">"
      << fixed(v, tx.digits) << esc(xa.suffix) << "</text>";
  for (const double v : tick_values(ty))
    o << "<text x=\"" << c(ml - 8) << "\" y=\"" << c(Y(v) + 4) << "\" text-anchor=\"end\">" << fixed(v, 0) << "</text>";
  o << "<text class=\"axis-label\" x=\"" << c(ml + pw / 2) << "\" y=\"" << c(h - 8) << "\" text-anchor=\"middle\">"
    << esc(xa.label) << "</text>";
  o << "<text class=\"axis-label\" transform=\"translate(14 " << c(mt + ph / 2)
    << ") rotate(-90)\" text-anchor=\"middle\">count</text></g>\n";
  double lx = ml;
  o << "<g class=\"legend\">";
  for (const auto& s : series) {
    o << "<rect x=\"" << c(lx) << "\" y=\"8\" width=\"14\" height=\"12\" fill=\"" << s.colour
      << "\" fill-opacity=\"0.7\"/><text x=\"" << c(lx + 20) << "\" y=\"18\">" << esc(s.name) << "</text>";
    lx += 20 + 7.0 * static_cast<double>(s.name.size()) + 18;
  }
  o << "</g></svg>\n";
  return o.str();
}

struct Stats {
  std::size_t n = 0;
  double mean = kNaN, median = kNaN, min = kNaN, max = kNaN;
};

Stats stats_of(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (const double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Cell pictures: our own layered layout, left to right as in the DARTS paper.
// ---------------------------------------------------------------------------------------------

struct PNode {
  std::string label, sub;  // label with an optional subscript ("c", "k-2")
  int kind = 1;            // 0 input, 1 intermediate, 2 output
  double x = 0, y = 0, w = 40, h = 34;
};

struct PEdge {
  std::size_t from = 0, to = 0;
  std::string label;
};

struct Pt {
  double x, y;
};

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& b) const { return x0 < b.x1 && b.x0 < x1 && y0 < b.y1 && b.y0 < y1; }
  double area_with(const Box& b) const {
    const double w = std::min(x1, b.x1) - std::max(x0, b.x0), h = std::min(y1, b.y1) - std::max(y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0;
  }
  bool contains(const Pt& p) const { return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1; }
};

Pt bezier(const Pt& a, const Pt& b, const Pt& cc, const Pt& d, double t) {
  const double u = 1 - t;
  return {u * u * u * a.x + 3 * u * u * t * b.x + 3 * u * t * t * cc.x + t * t * t * d.x,
          u * u * u * a.y + 3 * u * u * t * b.y + 3 * u * t * t * cc.y + t * t * t * d.y};
}

double box_distance(const Pt& p, const PNode& n) {
  const double dx = std::max(std::fabs(p.x - n.x) - n.w / 2, 0.0), dy = std::max(std::fabs(p.y - n.y) - n.h / 2, 0.0);
  return std::hypot(dx, dy);
}

constexpr double kLabelFont = 11.5;
constexpr double kCharWidth = kLabelFont * 0.61;  // monospace advance

std::string cell_svg(const std::string& title, std::vector<PNode> nodes, const std::vector<PEdge>& edges) {
  const int id = ++svg_counter;
  struct Route {
    Pt p[4];
    std::vector<Pt> samples;
    std::string colour;
  };
  std::vector<Route> routes;
  // Route each edge as a cubic from the source's right side to the target's left side; bow it
  // up or down (the least bow that clears the other nodes and crowds the earlier edges least).
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const PNode& a = nodes[edges[i].from];
    const PNode& b = nodes[edges[i].to];
    const Pt p0{a.x + a.w / 2, a.y}, p3{b.x - b.w / 2 - 2, b.y};
    const double d = std::max(30.0, (p3.x - p0.x) * 0.45);
    const double sign = i % 2 == 0 ? 1.0 : -1.0;
    Route best;
    double best_score = std::numeric_limits<double>::infinity();
    for (int step = 0; step <= 12; ++step) {
      const double bow = step == 0 ? 0 : (step % 2 == 1 ? sign : -sign) * 22.0 * ((step + 1) / 2);
      Route r;
      r.p[0] = p0;
      r.p[1] = {p0.x + d, p0.y + bow};
      r.p[2] = {p3.x - d, p3.y + bow};
      r.p[3] = p3;
      double clearance = std::numeric_limits<double>::infinity();
      for (int s = 1; s < 40; ++s) {
        const Pt q = bezier(r.p[0], r.p[1], r.p[2], r.p[3], s / 40.0);
        r.samples.push_back(q);
        for (std::size_t n = 0; n < nodes.size(); ++n)
          if (n != edges[i].from && n != edges[i].to) clearance = std::min(clearance, box_distance(q, nodes[n]));
      }
      // Crowding: closeness to earlier edges away from the endpoints (edges share their ports).
      double crowd = 0;
      for (const auto& other : routes)
        for (const Pt& q : r.samples) {
          if (std::hypot(q.x - p0.x, q.y - p0.y) < 40 || std::hypot(q.x - p3.x, q.y - p3.y) < 40) continue;
          for (const Pt& s : other.samples)
            if (std::hypot(q.x - s.x, q.y - s.y) < 7) crowd += 1;
        }
      const double score = (clearance < 12 ? 1e6 - std::min(clearance, 1e5) * 1e3 : 0) + std::fabs(bow) / 11 + crowd * 0.6;
      if (score < best_score) {
        best_score = score;
        best = r;
      }
    }
    best.colour = edges[i].label.empty() ? "#7a8691" : op_colour(edges[i].label);
    routes.push_back(best);
  }
  // Labels: along their edge, where they hide the fewest nodes, labels and other edges.
  std::vector<Box> placed;
  std::vector<Pt> label_at(edges.size(), Pt{0, 0});
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].label.empty()) continue;
    const double lw = kCharWidth * static_cast<double>(edges[i].label.size()) + 8, lh = kLabelFont + 5;
    double best = std::numeric_limits<double>::infinity();
    for (const double t : {0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73, 0.21, 0.79}) {
      const Pt q = bezier(routes[i].p[0], routes[i].p[1], routes[i].p[2], routes[i].p[3], t);
      const Box box{q.x - lw / 2, q.y - lh / 2, q.x + lw / 2, q.y + lh / 2};
      double s = std::fabs(t - 0.5) * 4;
      for (const auto& n : nodes) s += box.area_with({n.x - n.w / 2 - 3, n.y - n.h / 2 - 3, n.x + n.w / 2 + 3, n.y + n.h / 2 + 3}) * 10;
      for (const auto& b : placed) s += box.area_with({b.x0 - 2, b.y0 - 2, b.x1 + 2, b.y1 + 2}) * 10;
      for (std::size_t j = 0; j < routes.size(); ++j)
        if (j != i)
          for (const Pt& p : routes[j].samples)
            if (box.contains(p)) s += 3;
      if (s < best) {
        best = s;
        label_at[i] = q;
      }
    }
    placed.push_back({label_at[i].x - lw / 2, label_at[i].y - lh / 2, label_at[i].x + lw / 2, label_at[i].y + lh / 2});
  }
  // The drawing's extent.
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  auto grow = [&](double x, double y) {
    x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
  };
  for (const auto& n : nodes) grow(n.x - n.w / 2, n.y - n.h / 2), grow(n.x + n.w / 2, n.y + n.h / 2);
  for (const auto& r : routes)
    for (const Pt& p : r.samples) grow(p.x, p.y);
  for (const auto& b : placed) grow(b.x0, b.y0), grow(b.x1, b.y1);
  const double pad = 10, shift_x = pad - x0, shift_y = pad - y0;
  const double w = x1 - x0 + 2 * pad, h = y1 - y0 + 2 * pad;
  auto X = [&](double x) { return c(x + shift_x); };
  auto Y = [&](double y) { return c(y + shift_y); };

  std::ostringstream o;
  o << svg_open(w, h, "cell-picture", title);
  std::set<std::string> colours;
  for (const auto& r : routes) colours.insert(r.colour);
  o << "<defs>";
  std::map<std::string, std::string> marker;
  for (const auto& col : colours) {
    const std::string mid = "arrow" + std::to_string(id) + "-" + col.substr(1);
    marker[col] = mid;
    o << "<marker id=\"" << mid << "\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
      << "orient=\"auto\"><path d=\"M0 0 L10 5 L0 10 z\" fill=\"" << col << "\"/></marker>";
  }
  o << "</defs>\n<g class=\"edges\" fill=\"none\">";
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const auto& r = routes[i];
    o << "<path d=\"M" << X(r.p[0].x) << " " << Y(r.p[0].y) << " C" << X(r.p[1].x) << " " << Y(r.p[1].y) << " "
      << X(r.p[2].x) << " " << Y(r.p[2].y) << " " << X(r.p[3].x) << " " << Y(r.p[3].y) << "\" stroke=\""
      << r.colour << "\" stroke-width=\"1.6\" marker-end=\"url(#" << marker[r.colour] << ")\"><title>"
      << esc(nodes[edges[i].from].label + nodes[edges[i].from].sub + " \u2192 " + nodes[edges[i].to].label +
             nodes[edges[i].to].sub + (edges[i].label.empty() ? "" : ": " + edges[i].label))
      << "</title></path>";
  }
  o << "</g>\n<g class=\"nodes\">";
  static const char* fills[] = {"#b4eeb4", "#add8e6", "#eee8aa"};
  static const char* strokes[] = {"#5a9a5a", "#4f86a6", "#a89b3c"};
  for (const auto& n : nodes) {
    const int k = std::clamp(n.kind, 0, 2);
    o << "<rect class=\"node node-" << (k == 0 ? "input" : k == 1 ? "inner" : "output") << "\" x=\""
      << X(n.x - n.w / 2) << "\" y=\"" << Y(n.y - n.h / 2) << "\" width=\"" << c(n.w) << "\" height=\"" << c(n.h)
      << "\" rx=\"5\" fill=\"" << fills[k] << "\" stroke=\"" << strokes[k] << "\"/>";
    o << "<text class=\"node-label\" x=\"" << X(n.x) << "\" y=\"" << Y(n.y + 5) << "\" text-anchor=\"middle\">"
      << esc(n.label);
    if (!n.sub.empty()) o << "<tspan dy=\"4\" font-size=\"10\">" << esc(n.sub) << "</tspan>";
    o << "</text>";
  }
  o << "</g>\n<g class=\"edge-labels\">";
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].label.empty()) continue;
    const double lw = kCharWidth * static_cast<double>(edges[i].label.size()) + 8, lh = kLabelFont + 5;
    o << "<rect x=\"" << X(label_at[i].x - lw / 2) << "\" y=\"" << Y(label_at[i].y - lh / 2) << "\" width=\"" << c(lw)
      << "\" height=\"" << c(lh) << "\" rx=\"3\" class=\"label-bg\"/>"
      << "<text class=\"edge-label\" x=\"" << X(label_at[i].x) << "\" y=\"" << Y(label_at[i].y + 4)
      << "\" text-anchor=\"middle\" style=\"fill:" << routes[i].colour << "\">" << esc(edges[i].label) << "</text>";
  }
  o << "</g></svg>\n";
  return o.str();
}

// "j<-i" -> (j, i); false if the name is not of that form.
bool parse_edge_name(const std::string& name, int* to, int* from) {
  const auto arrow = name.find("<-");
  if (arrow == std::string::npos || arrow == 0) return false;
  try {
    std::size_t a = 0, b = 0;
    *to = std::stoi(name.substr(0, arrow), &a);
    *from = std::stoi(name.substr(arrow + 2), &b);
    return a == arrow && b == name.size() - arrow - 2 && *from >= 0 && *from < *to && *to < 64;
  } catch (const std::exception&) {
    return false;
  }
}

// NB201: nodes 0..3 in a row, 0 the input, 3 the output.
std::string nb201_picture(const Run& r, const Group& g, std::string* problem) {
  std::vector<std::pair<int, int>> ends;
  int last = 0;
  for (const std::size_t e : g.edges) {
    int to = 0, from = 0;
    if (!parse_edge_name(r.edges[e].name, &to, &from)) {
      *problem = "edge '" + r.edges[e].name + "' is not of the form j<-i";
      return "";
    }
    ends.emplace_back(to, from);
    last = std::max(last, to);
  }
  std::vector<PNode> nodes(static_cast<std::size_t>(last) + 1);
  for (int n = 0; n <= last; ++n) {
    auto& node = nodes[static_cast<std::size_t>(n)];
    node.label = std::to_string(n);
    node.kind = n == 0 ? 0 : n == last ? 2 : 1;
    node.x = 190.0 * n;
    node.y = 0;
    node.w = 38;
  }
  std::vector<PEdge> edges;
  // Short edges first: they take the straight paths, the long ones bow around.
  std::vector<std::size_t> order(g.edges.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return ends[a].first - ends[a].second < ends[b].first - ends[b].second;
  });
  for (const std::size_t i : order) {
    const auto& e = r.edges[g.edges[i]];
    if (e.op == "none" || e.op.empty()) continue;
    edges.push_back({static_cast<std::size_t>(ends[i].second), static_cast<std::size_t>(ends[i].first), e.op});
  }
  return cell_svg("NAS-Bench-201 cell", nodes, edges);
}

// DARTS: inputs c_{k-2}, c_{k-1}; intermediate nodes 2..5 drawn as 0..3, in columns by their depth;
// the output c_{k} concatenates the intermediate nodes.
std::string darts_picture(const Run& r, const Group& g, const std::string& title, std::string* problem) {
  int last = 1;
  std::vector<std::tuple<int, int, std::string>> live;  // to, from, op
  for (const std::size_t e : g.edges) {
    int to = 0, from = 0;
    if (!parse_edge_name(r.edges[e].name, &to, &from) || to < 2) {
      *problem = "edge '" + r.edges[e].name + "' is not of the form j<-i with j >= 2";
      return "";
    }
    last = std::max(last, to);
    if (r.edges[e].op != "none" && !r.edges[e].op.empty()) live.emplace_back(to, from, r.edges[e].op);
  }
  const auto count = static_cast<std::size_t>(last) + 2;  // nodes 0..last, then the output
  std::vector<int> depth(count, 0);
  for (int j = 2; j <= last; ++j) {
    int d = 1;
    for (const auto& [to, from, op] : live)
      if (to == j) d = std::max(d, depth[static_cast<std::size_t>(from)] + 1);
    depth[static_cast<std::size_t>(j)] = d;
  }
  int out_depth = 1;
  for (int j = 2; j <= last; ++j) out_depth = std::max(out_depth, depth[static_cast<std::size_t>(j)] + 1);
  depth[count - 1] = out_depth;
  std::vector<PNode> nodes(count);
  std::map<int, std::vector<std::size_t>> columns;
  for (std::size_t n = 0; n < count; ++n) columns[depth[n]].push_back(n);
  for (std::size_t n = 0; n < count; ++n) {
    auto& node = nodes[n];
    if (n < 2) {
      node.label = "c";
      node.sub = n == 0 ? "k-2" : "k-1";
      node.kind = 0;
      node.w = 58;
    } else if (n == count - 1) {
      node.label = "c";
      node.sub = "k";
      node.kind = 2;
      node.w = 44;
    } else {
      node.label = std::to_string(n - 2);
      node.kind = 1;
      node.w = 36;
    }
  }
  for (const auto& [d, members] : columns) {
    const double gap = d == 0 ? 130 : 92;
    for (std::size_t i = 0; i < members.size(); ++i) {
      nodes[members[i]].x = 170.0 * d;
      nodes[members[i]].y = (static_cast<double>(i) - (static_cast<double>(members.size()) - 1) / 2) * gap;
    }
  }
  std::vector<PEdge> edges;
  for (const auto& [to, from, op] : live)
    edges.push_back({static_cast<std::size_t>(from), static_cast<std::size_t>(to), op});
  std::stable_sort(edges.begin(), edges.end(), [&](const PEdge& a, const PEdge& b) {
    return depth[a.to] - depth[a.from] < depth[b.to] - depth[b.from];
  });
  for (int j = 2; j <= last; ++j) edges.push_back({static_cast<std::size_t>(j), count - 1, ""});
  return cell_svg(title, nodes, edges);
}

// ---------------------------------------------------------------------------------------------
// Sections.
// ---------------------------------------------------------------------------------------------

std::vector<double> series_of(const Run& r, const std::string& key, double factor = 1) {
  std::vector<double> v;
  for (const auto& m : r.metrics) v.push_back(num_of(m, key) * factor);
  return v;
}

std::vector<double> epochs_of(const Run& r) { return series_of(r, "epoch"); }

// An epoch without validation (a weight-only warm-up) reports val_loss = val_acc = 0: no data.
bool unvalidated(const Json& m) { return num_of(m, "val_loss") == 0 && num_of(m, "val_acc") == 0; }

std::vector<double> validation_series(const Run& r, const std::string& key, double factor = 1) {
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

std::string method_title(const std::string& m) {
  static const std::map<std::string, std::string> names = {
      {"darts", "DARTS"},   {"drnas", "DrNAS"},       {"parsec", "PARSEC"},
      {"pgnas", "PGNAS"},   {"gibbsnas", "GibbsNAS"}, {"gdas", "GDAS"}};
  const auto it = names.find(m);
  return it == names.end() ? m : it->second;
}

void row(std::ostringstream& o, const std::string& key, const std::string& value_html) {
  o << "<tr><th scope=\"row\">" << esc(key) << "</th><td>" << value_html << "</td></tr>\n";
}

void section_summary(std::ostringstream& o, const Run& r) {
  o << "<section id=\"summary\">\n<h2>Summary</h2>\n";
  const Json* last = r.last_metrics();
  const std::vector<double> val = validation_series(r, "val_acc");
  double epochs_done = num_of(r.geno, "epochs_done");
  if (!std::isfinite(epochs_done) && last) epochs_done = num_of(*last, "epoch");
  const double epochs_total = parse_double(r.cfg("search.epochs"));
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
  card("Search validation accuracy", percent(final_val));
  std::string epochs_text = std::isfinite(epochs_done) ? integer_text(epochs_done) : "n/a";
  if (std::isfinite(epochs_total)) epochs_text += " <span class=\"of\">/ " + integer_text(epochs_total) + "</span>";
  card("Epochs", epochs_text);
  card("Search wall time", duration(wall));
  card("Images processed", scaled(images, ""), std::isfinite(rate) ? fixed(rate, 1) + " images/s last epoch" : "");
  if (r.has_train) card("Retrained test accuracy", percent(num_of(r.train, "test_acc")));
  if (const Json* nb = child(r.geno, "nb201"); nb && nb->is_object())
    card("NAS-Bench-201 CIFAR-10 test", std::isfinite(num_of(*nb, "cifar10_test")) ? fixed(num_of(*nb, "cifar10_test"), 2) + "%" : "n/a");
  o << "</div>\n";

  o << "<table class=\"kv\"><tbody>\n";
  row(o, "Method", esc(r.method.empty() ? "unknown" : method_title(r.method)));
  row(o, "Search space", esc(r.space.empty() ? "unknown" : space_title(r.space)));
  row(o, "Dataset", esc(r.dataset.empty() ? "unknown" : r.dataset));
  row(o, "Seed", esc(seed.empty() ? "unknown" : seed));
  row(o, "Epochs done / total", epochs_text);
  row(o, "Search wall time", esc(duration(wall)) + (std::isfinite(wall) ? " <span class=\"dim\">(" + fixed(wall, 1) + " s)</span>" : ""));
  row(o, "Images processed", esc(integer_text(images)) + (std::isfinite(rate) ? " <span class=\"dim\">(" + fixed(rate, 1) + " images/s in the last epoch)</span>" : ""));
  row(o, "Final search validation accuracy", percent(final_val));
  if (any_finite(val)) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < val.size(); ++i)
      if (std::isfinite(val[i]) && (!std::isfinite(val[best]) || val[i] > val[best])) best = i;
    row(o, "Best search validation accuracy", percent(val[best]) + " <span class=\"dim\">(epoch " +
                                                  integer_text(num_of(r.metrics[best], "epoch")) + ")</span>");
  }
  if (const Json* p = child(r.geno, "parsec"); p && p->is_object()) {
    const double h = num_of(*p, "entropy_nats"), u = num_of(*p, "uniform_entropy_nats");
    if (std::isfinite(h))
      row(o, "Posterior entropy", fixed(h, 3) + " nats" + (std::isfinite(u) ? " <span class=\"dim\">(uniform: " + fixed(u, 3) + " nats)</span>" : ""));
    if (std::isfinite(num_of(*p, "samples"))) row(o, "Samples per step", integer_text(num_of(*p, "samples")));
  }
  if (const Json* b = child(r.geno, "best"); b && b->is_object()) {
    std::string text = esc(text_of(*b, "sampling")) + " candidate #" + esc(text_of(*b, "index")) + ": val acc " +
                       percent(num_of(*b, "val_acc"));
    if (std::isfinite(num_of(*b, "test_acc"))) text += ", test acc " + percent(num_of(*b, "test_acc"));
    text += ", " + scaled(num_of(*b, "params"), "") + " weights, " + percent(num_of(*b, "kept_fraction"), 1) +
            " of the channels kept";
    row(o, "Best candidate", text);
  }
  if (const Json* s = child(r.geno, "supernet"); s && s->is_object()) {
    std::string text = "val acc " + percent(num_of(*s, "val_acc"));
    if (std::isfinite(num_of(*s, "test_acc"))) text += ", test acc " + percent(num_of(*s, "test_acc"));
    text += ", " + scaled(num_of(*s, "params"), "") + " weights";
    row(o, "Supernet (expected gates)", text);
  }
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
      return std::isfinite(v) ? fixed(v, 2) + "%" : std::string("n/a");
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
    row(o, "Test accuracy", percent(num_of(r.train, "test_acc")));
    row(o, "Parameters", esc(scaled(num_of(r.train, "params"), "")) + " <span class=\"dim\">(" +
                             integer_text(num_of(r.train, "params")) + ")</span>");
    row(o, "FLOPs", esc(scaled(num_of(r.train, "flops"), "FLOPs")));
    row(o, "Epochs", esc(integer_text(num_of(r.train, "epochs"))));
    row(o, "Wall time", esc(duration(num_of(r.train, "wall_s"))));
    if (!text_of(r.train, "mode").empty()) row(o, "Mode", esc(text_of(r.train, "mode")));
    o << "</tbody></table>\n";
  } else if (r.train_note == "missing") {
    o << note("Not retrained yet: <code>train/result.json</code> does not exist (<code>probnas train</code> writes it).");
  } else {
    o << missing("train/result.json could not be read: " + esc(r.train_note));
  }
  o << "</section>\n";
}

void gates_table(std::ostringstream& o, const Run& r, const Group& g) {
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
        o << "<td class=\"num" << (removed ? " removed" : "") << "\">" << percent(b.keep[s], 1);
        if (b.kept[s].find('/') != std::string::npos) o << " <span class=\"dim\">" << esc(b.kept[s]) << "</span>";
        o << "</td>";
      }
      o << "</tr>\n";
    }
    o << "</tbody></table>\n";
  }
  o << "</div>\n";
}

void section_cells(std::ostringstream& o, const Run& r) {
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
  const bool multibranch = r.space == "multibranch" || r.method == "pgnas" ||
                           (r.groups.size() == 1 && r.groups[0].name == "gates");
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
    if (r.space == "darts" || g.name == "normal" || g.name == "reduce") {
      caption = g.name == "normal" ? "Normal cell" : g.name == "reduce" ? "Reduction cell" : "Cell '" + g.name + "'";
      svg = darts_picture(r, g, caption, &problem);
    } else {
      caption = g.name == "cell" ? "Cell" : "Cell '" + g.name + "'";
      svg = nb201_picture(r, g, &problem);
    }
    if (svg.empty()) {
      o << missing("Cannot draw group '" + esc(g.name) + "': " + esc(problem) + ".");
      continue;
    }
    o << "<figure class=\"cell\">" << svg << "<figcaption>" << esc(caption) << "</figcaption></figure>\n";
  }
  o << "</div>\n</section>\n";
}

void section_curves(std::ostringstream& o, const Run& r) {
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

void section_entropy(std::ostringstream& o, const Run& r) {
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
  if (const Json* p = child(r.geno, "parsec"); p && std::isfinite(num_of(*p, "uniform_entropy_nats")))
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

// Heat maps of one group's probabilities per epoch: rows = edges x ops (for gate groups: the keep
// probability per gate), columns = epochs. Small groups get one map; large ones one small map per
// edge (gate groups: per stage) in a grid with one shared colour legend. Every cell is a
// <rect class="heat">, one per (edge, op, epoch shown).
std::string heat_maps(const Run& r, const Group& g, bool keep_only, std::string* caption) {
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
    for (int s = 0; s <= 8; ++s) o << "<stop offset=\"" << c(s / 8.0) << "\" stop-color=\"" << hex(scale(s / 8.0)) << "\"/>";
    o << "</linearGradient></defs>\n<g class=\"axis\"><rect x=\"" << c(x) << "\" y=\"" << c(top)
      << "\" width=\"12\" height=\"" << c(height) << "\" fill=\"url(#heat-scale" << id << ")\" stroke=\"#b8c0c8\"/>";
    for (int s = 0; s <= 2; ++s) {
      const double yy = top + height - height * s / 2.0;
      o << "<text x=\"" << c(x + 17) << "\" y=\"" << c(yy + 4) << "\">" << percent(pmax * s / 2.0, legend_digits) << "</text>";
    }
    o << "<text x=\"" << c(x) << "\" y=\"" << c(top + height + 18) << "\" class=\"axis-label\">probability</text></g>\n";
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
    const int id = ++svg_counter;
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
      o << "<text x=\"" << c(left + (static_cast<double>(col) + 0.5) * cw) << "\" y=\"" << c(top - 7)
        << "\" text-anchor=\"middle\">" << integer_text(all_epochs[cols[col]]) << "</text>";
    }
    o << "<text x=\"" << c(left - 6) << "\" y=\"" << c(top - 7) << "\" text-anchor=\"end\" class=\"axis-label\">epoch</text></g>\n";
    o << "<g class=\"heat-cells\" shape-rendering=\"crispEdges\">";
    double y = top;
    std::ostringstream labels;
    labels << "<g class=\"heat-labels\" font-size=\"" << c(font) << "\">";
    for (const std::size_t e : edges) {
      const Edge& edge = r.edges[g.edges[e]];
      const double y_edge = y;
      for (const std::size_t k : shown_ops) {
        const bool chosen = !keep_only && g.ops[k] == edge.op;
        if (!keep_only)
          labels << "<text x=\"" << c(left - 6) << "\" y=\"" << c(y + rh * 0.5 + font * 0.35) << "\" text-anchor=\"end\""
                 << (chosen ? " class=\"chosen\"" : "") << ">" << esc(g.ops[k]) << "</text>";
        for (std::size_t ci = 0; ci < cols.size(); ++ci) {
          const double v = value(cols[ci], e, k);
          o << "<rect class=\"heat\" x=\"" << c(left + static_cast<double>(ci) * cw) << "\" y=\"" << c(y)
            << "\" width=\"" << c(cw) << "\" height=\"" << c(rh) << "\" fill=\""
            << (std::isfinite(v) ? hex(scale(v / pmax)) : "#e6e8eb") << "\"";
          if (titles)
            o << "><title>" << esc(edge.name) << (keep_only ? "" : " " + esc(g.ops[k])) << ", epoch "
              << integer_text(all_epochs[cols[ci]]) << ": " << percent(v, 2) << "</title></rect>";
          else
            o << "/>";
        }
        y += rh;
      }
      if (edge_column)
        labels << "<text x=\"2\" y=\"" << c((y_edge + y) / 2 + font * 0.35) << "\"" << (keep_only ? "" : " class=\"edge-name\"")
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
    const int id = ++svg_counter;
    lg << svg_open(90, 150, "heat-legend", "colour scale");
    legend(4, 10, 110, lg, id);
    lg << "</svg>\n";
    out << "<div>" << lg.str() << "</div></div>\n";
  }
  *caption = std::to_string(g.edges.size()) + (keep_only ? " gates" : " edges") +
             (keep_only ? "" : " \u00d7 " + std::to_string(shown_ops.size()) + " operations") + " \u00d7 " +
             std::to_string(cols.size()) + " epochs" +
             (stride > 1 ? " (every " + std::to_string(stride) + "th epoch and the last)" : "") + "; colour scale 0 to " +
             percent(pmax, legend_digits) + (keep_only ? "; keep probability of each gate" : "; the derived operation in bold");
  return out.str();
}

void probability_table(std::ostringstream& o, const Run& r, const Group& g) {
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
        << (t > 0.55 ? ";color:#fff" : "") << "\">" << percent(p, 1) << "</td>";
    }
    o << "<td><code>" << esc(e.op) << "</code></td></tr>\n";
  }
  o << "</tbody></table></div>\n";
}

void section_probabilities(std::ostringstream& o, const Run& r) {
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

void section_samples(std::ostringstream& o, const Run& r) {
  o << "<section id=\"samples\">\n<h2>Sampled architectures</h2>\n";
  if (r.method == "pgnas") {
    if (!r.has_candidates) {
      o << missing("No candidate histogram: " + esc(r.candidates_note) +
                   " (PGNAS writes it when the candidate ranking after the search is done).");
    } else if (r.candidates.empty()) {
      o << missing("candidates.csv lists no candidates.");
    } else {
      std::vector<HistSeries> series;
      for (const auto& cand : r.candidates) {
        auto it = std::find_if(series.begin(), series.end(), [&](const HistSeries& s) { return s.name == cand.sampling; });
        if (it == series.end()) {
          series.push_back({cand.sampling, cand.sampling == "random" ? series_colour(1) : series_colour(0), {}});
          it = series.end() - 1;
        }
        it->values.push_back(100 * cand.val_acc);
      }
      o << "<p>Validation accuracy of the candidate networks PGNAS sampled after the search"
        << (series.size() > 1 ? ": guided (from the learned drop probabilities) and random (every gate dropped with the same probability)" : "")
        << ".</p>\n<figure>" << histogram("Candidate validation accuracies", series, {"validation accuracy (%)", false, false, ""})
        << "<figcaption>Histogram of candidate validation accuracies</figcaption></figure>\n";
      o << "<table class=\"data narrow\"><thead><tr><th>sampling</th><th class=\"num\">candidates</th><th class=\"num\">mean</th>"
           "<th class=\"num\">median</th><th class=\"num\">best</th><th class=\"num\">worst</th></tr></thead><tbody>\n";
      for (const auto& s : series) {
        std::vector<double> v;
        for (const double x : s.values) v.push_back(x / 100);
        const Stats st = stats_of(v);
        o << "<tr><td>" << esc(s.name) << "</td><td class=\"num\">" << st.n << "</td><td class=\"num\">" << percent(st.mean)
          << "</td><td class=\"num\">" << percent(st.median) << "</td><td class=\"num\">" << percent(st.max)
          << "</td><td class=\"num\">" << percent(st.min) << "</td></tr>\n";
      }
      o << "</tbody></table>\n";
    }
  } else if (r.method == "parsec") {
    const Json* p = child(r.geno, "parsec");
    const Json* recent = p ? child(*p, "recent_samples") : nullptr;
    const Json* lik = recent ? child(*recent, "log_likelihood_per_image") : nullptr;
    if (!r.has_geno) {
      o << missing("No sample histogram: " + esc(r.geno_note) + ".");
    } else if (!lik || !lik->is_array()) {
      o << note("No sample histogram: genotype.json has no <code>parsec.recent_samples.log_likelihood_per_image</code> "
                "(written by newer probnas versions).");
    } else if (lik->empty()) {
      o << note("No sample histogram: no architecture has been sampled and scored yet "
                "(<code>parsec.recent_samples.log_likelihood_per_image</code> is empty).");
    } else {
      std::vector<double> v;
      for (const auto& x : *lik) v.push_back(as_num(x));
      const Stats st = stats_of(v);
      o << "<p>Per-image validation log-likelihood of the " << st.n
        << " most recently sampled architectures (PARSEC's importance samples).</p>\n<div class=\"charts\">\n<figure>"
        << histogram("Sampled architectures' log-likelihood", {{"sampled architectures", series_colour(4), v}},
                     {"log-likelihood per image (nats)", false, false, ""})
        << "<figcaption>Histogram of sampled architectures' log-likelihood per image; mean " << general(st.mean)
        << ", median " << general(st.median) << ", best " << general(st.max) << "</figcaption></figure>\n";
      const Json* prior = child(*recent, "log_prior");
      if (prior && prior->is_array() && prior->size() == lik->size() && lik->size() >= 2) {
        std::vector<double> pv;
        for (const auto& x : *prior) pv.push_back(as_num(x));
        Series s{"samples", series_colour(4), pv, v, false, true, false};
        o << "<figure>" << chart("Log-likelihood against log prior", {s}, {"log prior probability (nats)", false, false, ""},
                                 {"log-likelihood per image", false, false, ""})
          << "<figcaption>Each sampled architecture: its prior log-probability under the learned distribution and its "
             "per-image log-likelihood</figcaption></figure>\n";
      }
      o << "</div>\n";
    }
  } else {
    o << note("Not applicable: " + esc(r.method.empty() ? "this method" : method_title(r.method)) +
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

void section_topk(std::ostringstream& o, const Run& r) {
  o << "<section id=\"topk\">\n<h2>Most probable architectures</h2>\n";
  constexpr std::size_t k = 10;
  if (r.method == "pgnas") {
    if (!r.has_candidates || r.candidates.empty()) {
      o << missing("No candidates to rank: " + esc(r.candidates_note.empty() ? "candidates.csv is empty" : r.candidates_note) + ".")
        << "</section>\n";
      return;
    }
    std::vector<Candidate> sorted = r.candidates;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Candidate& a, const Candidate& b) {
      const double x = std::isfinite(a.val_acc) ? a.val_acc : -1, y = std::isfinite(b.val_acc) ? b.val_acc : -1;
      if (x != y) return x > y;
      return (std::isfinite(a.val_loss) ? a.val_loss : 1e300) < (std::isfinite(b.val_loss) ? b.val_loss : 1e300);
    });
    o << "<p>The best of the " << sorted.size() << " candidates PGNAS sampled from its learned gate distribution, by "
      << "validation accuracy (then loss).</p>\n<table class=\"data topk\"><thead><tr><th class=\"num\">#</th><th>sampling</th>"
      << "<th class=\"num\">candidate</th><th class=\"num\">val acc</th><th class=\"num\">val loss</th>"
      << "<th class=\"num\">weights</th><th class=\"num\">channels kept</th></tr></thead><tbody>\n";
    for (std::size_t i = 0; i < sorted.size() && i < k; ++i) {
      const auto& cand = sorted[i];
      o << "<tr><td class=\"num\">" << i + 1 << "</td><td>" << esc(cand.sampling) << "</td><td class=\"num\">"
        << integer_text(cand.index) << "</td><td class=\"num\">" << percent(cand.val_acc) << "</td><td class=\"num\">"
        << fixed(cand.val_loss, 4) << "</td><td class=\"num\">" << integer_text(cand.params) << "</td><td class=\"num\">"
        << percent(cand.kept, 1) << "</td></tr>\n";
    }
    o << "</tbody></table>\n</section>\n";
    return;
  }
  if (r.method == "parsec") {
    const Json* p = child(r.geno, "parsec");
    const Json* top = p ? child(*p, "most_probable") : nullptr;
    if (top && top->is_array() && !top->empty()) {
      o << "<p>The most probable architectures under PARSEC's learned distribution.</p>\n<table class=\"data topk\"><thead><tr>"
           "<th class=\"num\">#</th><th class=\"num\">probability</th><th class=\"num\">log probability</th>"
           "<th>architecture</th></tr></thead><tbody>\n";
      std::size_t i = 0;
      for (const auto& a : *top) {
        if (!a.is_object()) continue;
        double prob = num_of(a, "probability"), logp = num_of(a, "log_probability");
        if (!std::isfinite(prob) && std::isfinite(logp)) prob = std::exp(logp);
        o << "<tr><td class=\"num\">" << ++i << "</td><td class=\"num\">" << probability_html(prob) << "</td><td class=\"num\">"
          << fixed(logp, 3) << "</td><td><code class=\"arch\">" << esc(text_of(a, "architecture")) << "</code></td></tr>\n";
      }
      o << "</tbody></table>\n</section>\n";
      return;
    }
    o << note("genotype.json has no <code>parsec.most_probable</code>; the list below is computed from the final "
              "per-edge probabilities.");
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
      << "</td><td class=\"num\">" << fixed(a.log_probability, 3)
      << "</td><td><code class=\"arch\">" << arch << "</code></td></tr>\n";
  }
  o << "</tbody></table>\n</section>\n";
}

const char* kStyle = R"CSS(
:root{--ink:#1d2733;--dim:#5d6b7a;--line:#dde3ea;--bg:#f6f8fa;--card:#fff;--accent:#0b6bcb;--warn:#9a5b00;--warn-bg:#fff7e6}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.55 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","DejaVu Sans",sans-serif}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:.88em}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
header.top{background:linear-gradient(135deg,#102a43,#1f4e79);color:#fff;padding:28px 0 18px;margin-bottom:28px}
header.top .eyebrow{margin:0;text-transform:uppercase;letter-spacing:.12em;font-size:12px;opacity:.75}
header.top h1{margin:4px 0 6px;font-size:30px;font-weight:650;word-break:break-all}
header.top .meta{margin:0;opacity:.85;font-size:13.5px}
header.top nav{margin-top:14px;display:flex;flex-wrap:wrap;gap:6px}
header.top nav a{color:#fff;text-decoration:none;font-size:13px;padding:3px 10px;border:1px solid rgba(255,255,255,.35);border-radius:999px}
header.top nav a:hover{background:rgba(255,255,255,.12)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 26px 24px;margin:0 0 24px;box-shadow:0 1px 2px rgba(16,42,67,.05)}
h2{margin:0 0 14px;font-size:21px;font-weight:650;padding-bottom:8px;border-bottom:1px solid var(--line)}
h3{margin:22px 0 10px;font-size:16px;font-weight:620}
p{margin:8px 0}
.note{color:var(--dim)}
.note.missing{color:var(--warn);background:var(--warn-bg);border-left:3px solid #e8a33d;padding:8px 12px;border-radius:4px}
.dim{color:var(--dim)}
.small{font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin:4px 0 18px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:linear-gradient(180deg,#fbfcfe,#f3f6f9)}
.card-label{font-size:12px;color:var(--dim);text-transform:uppercase;letter-spacing:.05em}
.card-value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;margin-top:2px}
.card-value .of{font-size:16px;color:var(--dim);font-weight:500}
.card-sub{font-size:12px;color:var(--dim)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.kv{width:100%;max-width:820px}
table.kv th{text-align:left;font-weight:560;color:var(--dim);padding:5px 18px 5px 0;width:260px;vertical-align:top}
table.kv td{padding:5px 0}
table.kv tr+tr th,table.kv tr+tr td{border-top:1px solid #eef1f4}
table.narrow{width:auto}
table.data{margin:8px 0 14px;font-size:13.5px}
table.data caption{text-align:left;font-weight:620;padding:0 0 6px;font-size:14px}
table.data th{background:#f0f3f6;font-weight:600;text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
table.data td{padding:5px 10px;border-bottom:1px solid #edf0f3;vertical-align:top}
table.data tbody tr:hover td{background-color:#f7fafc}
.num{text-align:right}
th.num{text-align:right}
table.probs td.chosen{font-weight:700;outline:2px solid #102a43;outline-offset:-2px}
table.probs td,table.probs th{padding:4px 8px}
td.removed{color:#b3261e}
.table-wrap{overflow-x:auto;max-width:100%}
.prob-tables{display:flex;flex-wrap:wrap;gap:10px 28px}
pre.genotype{background:#0f1e2d;color:#e6edf3;border-radius:8px;padding:12px 14px;white-space:pre-wrap;word-break:break-all;margin:6px 0 8px}
code.arch{white-space:pre-wrap;word-break:break-all;font-size:12.5px}
code.arch mark{background:#ffe08a;border-radius:2px;padding:0 1px}
.group-name{color:var(--dim);font-style:italic}
figure{margin:0}
figcaption{font-size:13px;color:var(--dim);margin-top:4px}
svg{max-width:100%;height:auto;display:block}
svg text{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;font-size:12px;fill:#334155}
svg .plot-bg{fill:#fbfcfd;stroke:none}
svg .grid line{stroke:#e6eaef;stroke-width:1}
svg .axis line{stroke:#8795a4;stroke-width:1}
svg .axis-label{font-size:12.5px;fill:#475569}
svg .empty{fill:#8795a4;font-style:italic}
svg .legend text{font-size:12.5px}
svg path.series{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}
svg .node-label{font-family:"Times New Roman",Times,"DejaVu Serif",serif;font-size:17px;fill:#111}
svg .edge-label{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:11.5px;font-weight:600}
svg .label-bg{fill:#fff;fill-opacity:.92}
svg .heat-labels text{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:inherit}
svg .heat-labels .chosen{font-weight:700;fill:#0f172a}
svg .heat-labels .edge-name{font-weight:600;fill:#0f172a}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:18px 26px}
.charts.small{grid-template-columns:repeat(auto-fit,minmax(300px,1fr))}
.figures{display:flex;flex-direction:column;gap:18px}
figure.cell{max-width:100%;overflow-x:auto;border:1px solid var(--line);border-radius:8px;padding:12px;background:#fdfefe}
figure.cell svg{margin:0 auto;min-width:520px}
figure.cell figcaption{text-align:center;font-weight:600;color:var(--ink)}
.legend-line{font-size:13px;color:var(--dim)}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-1px;margin:0 4px 0 10px;border:1px solid rgba(0,0,0,.25)}
.swatch.input{background:#b4eeb4}.swatch.inner{background:#add8e6}.swatch.output{background:#eee8aa}
details{margin:10px 0 16px}
details>summary{cursor:pointer;font-weight:620;margin-bottom:6px}
.heat-figure{overflow-x:auto}
.heat-grid{display:flex;flex-wrap:wrap;gap:12px 22px;align-items:flex-start}
svg .heat-heading{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12px;font-weight:700;fill:#0f172a}
.gates{display:flex;flex-wrap:wrap;gap:8px 26px;align-items:flex-start}
footer{color:var(--dim);font-size:12.5px;padding:6px 24px 40px;text-align:center}
@media (max-width:640px){.wrap{padding:0 12px}section{padding:14px}table.kv th{width:auto}.charts{grid-template-columns:1fr}}
@media print{body{background:#fff}header.top{background:#fff;color:#000}header.top nav{display:none}section{box-shadow:none;break-inside:avoid-page}}
)CSS";

}  // namespace

std::string render_report(const std::string& run_dir) {
  svg_counter = 0;
  const Run r = load_run(run_dir);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<meta name=\"generator\" content=\"probnas\">\n"
    << "<title>" << esc(r.name) << " \u2014 probnas search report</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  o << "<header class=\"top\"><div class=\"wrap\"><p class=\"eyebrow\">probnas search report</p><h1>" << esc(r.name)
    << "</h1><p class=\"meta\">";
  if (!r.method.empty()) o << esc(method_title(r.method)) << " &middot; ";
  if (!r.space.empty()) o << esc(space_title(r.space)) << " &middot; ";
  if (!r.dataset.empty()) o << esc(r.dataset) << " &middot; ";
  o << "generated " << esc(utc_now()) << "</p>\n<nav>";
  static const char* const sections[][2] = {{"summary", "Summary"},   {"cells", "Cells"},
                                            {"curves", "Curves"},     {"entropy", "Entropy"},
                                            {"probabilities", "Probabilities"}, {"samples", "Samples"},
                                            {"topk", "Top architectures"}};
  for (const auto& s : sections) o << "<a href=\"#" << s[0] << "\">" << s[1] << "</a>";
  o << "</nav></div></header>\n<main class=\"wrap\">\n";
  std::vector<std::string> absent;
  if (!r.has_config) absent.push_back(r.config_note);
  if (!r.has_geno) absent.push_back(r.geno_note);
  if (!r.has_metrics) absent.push_back(r.metrics_note);
  if (!absent.empty()) {
    std::string text = "Some files of the run folder could not be used: ";
    for (std::size_t i = 0; i < absent.size(); ++i) text += (i ? "; " : "") + esc(absent[i]);
    o << missing(text + ". The sections they feed are left out.");
  }
  // Each section is built on its own: one that fails says so, the others still appear.
  using SectionFn = void (*)(std::ostringstream&, const Run&);
  const std::pair<const char*, SectionFn> builders[] = {
      {"summary", section_summary},        {"cells", section_cells},     {"curves", section_curves},
      {"entropy", section_entropy},        {"probabilities", section_probabilities},
      {"samples", section_samples},        {"topk", section_topk}};
  for (const auto& [id, build] : builders) {
    std::ostringstream s;
    try {
      build(s, r);
      o << s.str();
    } catch (const std::exception& e) {
      o << "<section id=\"" << id << "\">\n<h2>" << id << "</h2>\n"
        << missing(std::string("This section could not be built: ") + esc(e.what())) << "</section>\n";
    }
  }
  o << "</main>\n<footer>Generated by probnas"
#ifdef PROBNAS_VERSION
    << " " << esc(PROBNAS_VERSION)
#endif
    << " on " << esc(utc_now()) << " from the files in <code>" << esc(r.dir)
    << "</code>. Self-contained: inline CSS and SVG, no scripts, no network.</footer>\n</body>\n</html>\n";
  return o.str();
}

bool write_report(const std::string& run_dir, std::string* problem) {
  try {
    write_file_atomic(run_dir + "/report.html", render_report(run_dir));
    return true;
  } catch (const std::exception& e) {
    if (problem) *problem = "cannot write " + run_dir + "/report.html: " + e.what();
  } catch (...) {
    if (problem) *problem = "cannot write " + run_dir + "/report.html: unknown error";
  }
  return false;
}

}  // namespace probnas
