#include "probnas/report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "probnas/report/html.h"

namespace probnas::report {

namespace {
thread_local int svg_ids = 0;  // unique ids within one report (reset per render)
}  // namespace

int next_svg_id() { return ++svg_ids; }
void reset_svg_ids() { svg_ids = 0; }

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

Ticks nice_ticks(double lo, double hi, bool integer, bool tight, int target) {
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


std::string svg_open(double w, double h, const std::string& cls, const std::string& label) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"" << cls << "\" viewBox=\"0 0 " << svg_num(w) << " " << svg_num(h)
    << "\" width=\"" << svg_num(w) << "\" height=\"" << svg_num(h) << "\" role=\"img\" aria-label=\"" << esc(label) << "\">"
    << "<title>" << esc(label) << "</title>\n";
  return o.str();
}

// A line/scatter chart with axes, ticks, grid and a legend.
std::string chart(const std::string& label, const std::vector<Series>& series, const Axis& xa, const Axis& ya,
                  double w, double h) {
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
    o << "<rect x=\"" << svg_num(ml) << "\" y=\"" << svg_num(mt) << "\" width=\"" << svg_num(pw) << "\" height=\"" << svg_num(ph)
      << "\" class=\"plot-bg\"/>"
      << "<text x=\"" << svg_num(ml + pw / 2) << "\" y=\"" << svg_num(mt + ph / 2) << "\" class=\"empty\" text-anchor=\"middle\">"
      << "no finite values to plot</text></svg>\n";
    return o.str();
  }
  if (xa.integer && x1 - x0 < 1) x0 -= 0.5, x1 += 0.5;
  const Ticks tx = nice_ticks(x0, x1, xa.integer, xa.tight);
  const Ticks ty = nice_ticks(y0, y1, ya.integer, ya.tight);
  std::size_t label_chars = 1;  // the left margin fits the longest tick label
  for (const double v : tick_values(ty)) label_chars = std::max(label_chars, show_fixed(v, ty.digits).size() + ya.suffix.size());
  ml = std::max(46.0, 30 + 6.8 * static_cast<double>(label_chars));
  const double pw = w - ml - mr, ph = h - mt - mb;
  auto X = [&](double v) { return ml + (v - tx.lo) / (tx.hi - tx.lo) * pw; };
  auto Y = [&](double v) { return mt + ph - (v - ty.lo) / (ty.hi - ty.lo) * ph; };
  o << "<rect x=\"" << svg_num(ml) << "\" y=\"" << svg_num(mt) << "\" width=\"" << svg_num(pw) << "\" height=\"" << svg_num(ph)
    << "\" class=\"plot-bg\"/>\n<g class=\"grid\">";
  for (const double v : tick_values(ty))
    o << "<line x1=\"" << svg_num(ml) << "\" x2=\"" << svg_num(ml + pw) << "\" y1=\"" << svg_num(Y(v)) << "\" y2=\"" << svg_num(Y(v)) << "\"/>";
  for (const double v : tick_values(tx))
    o << "<line y1=\"" << svg_num(mt) << "\" y2=\"" << svg_num(mt + ph) << "\" x1=\"" << svg_num(X(v)) << "\" x2=\"" << svg_num(X(v)) << "\"/>";
  o << "</g>\n<g class=\"axis\">";
  o << "<line x1=\"" << svg_num(ml) << "\" x2=\"" << svg_num(ml + pw) << "\" y1=\"" << svg_num(mt + ph) << "\" y2=\"" << svg_num(mt + ph) << "\"/>";
  o << "<line x1=\"" << svg_num(ml) << "\" x2=\"" << svg_num(ml) << "\" y1=\"" << svg_num(mt) << "\" y2=\"" << svg_num(mt + ph) << "\"/>";
  for (const double v : tick_values(tx))
    o << "<line x1=\"" << svg_num(X(v)) << "\" x2=\"" << svg_num(X(v)) << "\" y1=\"" << svg_num(mt + ph) << "\" y2=\"" << svg_num(mt + ph + 5)
      << "\"/><text x=\"" << svg_num(X(v)) << "\" y=\"" << svg_num(mt + ph + 18) << "\" text-anchor=\"middle\">"
      << show_fixed(v, tx.digits) << esc(xa.suffix) << "</text>";
  for (const double v : tick_values(ty))
    o << "<line x1=\"" << svg_num(ml - 5) << "\" x2=\"" << svg_num(ml) << "\" y1=\"" << svg_num(Y(v)) << "\" y2=\"" << svg_num(Y(v))
      << "\"/><text x=\"" << svg_num(ml - 8) << "\" y=\"" << svg_num(Y(v) + 4) << "\" text-anchor=\"end\">" << show_fixed(v, ty.digits)
      << esc(ya.suffix) << "</text>";
  o << "<text class=\"axis-label\" x=\"" << svg_num(ml + pw / 2) << "\" y=\"" << svg_num(h - 8) << "\" text-anchor=\"middle\">"
    << esc(xa.label) << "</text>";
  o << "<text class=\"axis-label\" transform=\"translate(14 " << svg_num(mt + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
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
        d << (pen ? " L" : " M") << svg_num(X(s.x[i])) << " " << svg_num(Y(s.y[i]));
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
          o << "<circle cx=\"" << svg_num(X(s.x[i])) << "\" cy=\"" << svg_num(Y(s.y[i])) << "\" r=\"" << (s.line ? "2.6" : "3.2")
            << "\"/>";
      o << "</g>\n";
    }
  }
  // Legend along the top.
  double lx = ml;
  o << "<g class=\"legend\">";
  for (const auto& s : series) {
    o << "<line x1=\"" << svg_num(lx) << "\" x2=\"" << svg_num(lx + 18) << "\" y1=\"14\" y2=\"14\" stroke=\"" << s.colour
      << "\" stroke-width=\"" << (s.line ? "2.5" : "6") << "\"" << (s.dashed ? " stroke-dasharray=\"5 3\"" : "")
      << (s.line ? "" : " stroke-linecap=\"round\"") << "/>";
    o << "<text x=\"" << svg_num(lx + 24) << "\" y=\"18\">" << esc(s.name) << "</text>";
    lx += 24 + 7.0 * static_cast<double>(s.name.size()) + 18;
  }
  o << "</g></svg>\n";
  return o.str();
}


// Overlaid histograms on shared bins.
std::string histogram(const std::string& label, const std::vector<HistSeries>& series, const Axis& xa,
                      double w, double h) {
  std::vector<double> all;
  for (const auto& s : series)
    for (const double v : s.values)
      if (std::isfinite(v)) all.push_back(v);
  std::ostringstream o;
  const double ml = 56, mr = 16, mt = 34, mb = 46;
  const double pw = w - ml - mr, ph = h - mt - mb;
  if (all.empty()) {
    o << svg_open(w, h, "chart histogram", label) << "<text x=\"" << svg_num(w / 2) << "\" y=\"" << svg_num(h / 2)
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
  o << "<rect x=\"" << svg_num(ml) << "\" y=\"" << svg_num(mt) << "\" width=\"" << svg_num(pw) << "\" height=\"" << svg_num(ph)
    << "\" class=\"plot-bg\"/>\n<g class=\"grid\">";
  for (const double v : tick_values(ty))
    o << "<line x1=\"" << svg_num(ml) << "\" x2=\"" << svg_num(ml + pw) << "\" y1=\"" << svg_num(Y(v)) << "\" y2=\"" << svg_num(Y(v)) << "\"/>";
  o << "</g>\n";
  for (std::size_t s = 0; s < series.size(); ++s) {
    o << "<g fill=\"" << series[s].colour << "\" fill-opacity=\"0.8\" stroke=\"" << series[s].colour << "\">";
    for (std::size_t b = 0; b < nbins; ++b) {
      if (counts[s][b] == 0) continue;
      // Several series: side by side within the bin.
      const double a = bins.lo + static_cast<double>(b) * bins.step;
      const double bin_w = X(a + bins.step) - X(a) - 1, bar_w = std::max(0.5, bin_w / static_cast<double>(series.size()));
      o << "<rect class=\"bar\" x=\"" << svg_num(X(a) + 0.5 + bar_w * static_cast<double>(s)) << "\" y=\"" << svg_num(Y(counts[s][b]))
        << "\" width=\"" << svg_num(bar_w) << "\" height=\"" << svg_num(Y(0) - Y(counts[s][b]))
        << "\"><title>" << esc(series[s].name) << ": " << integer_text(counts[s][b]) << " in [" << general(a) << ", "
        << general(a + bins.step) << ")</title></rect>";
    }
    o << "</g>\n";
  }
  o << "<g class=\"axis\">";
  o << "<line x1=\"" << svg_num(ml) << "\" x2=\"" << svg_num(ml + pw) << "\" y1=\"" << svg_num(mt + ph) << "\" y2=\"" << svg_num(mt + ph) << "\"/>";
  o << "<line x1=\"" << svg_num(ml) << "\" x2=\"" << svg_num(ml) << "\" y1=\"" << svg_num(mt) << "\" y2=\"" << svg_num(mt + ph) << "\"/>";
  for (const double v : tick_values(tx))
    o << "<line x1=\"" << svg_num(X(v)) << "\" x2=\"" << svg_num(X(v)) << "\" y1=\"" << svg_num(mt + ph) << "\" y2=\"" << svg_num(mt + ph + 5)
      << "\"/><text x=\"" << svg_num(X(v)) << "\" y=\"" << svg_num(mt + ph + 18) << "\" text-anchor=\"middle\">"
      << show_fixed(v, tx.digits) << esc(xa.suffix) << "</text>";
  for (const double v : tick_values(ty))
    o << "<text x=\"" << svg_num(ml - 8) << "\" y=\"" << svg_num(Y(v) + 4) << "\" text-anchor=\"end\">" << show_fixed(v, 0) << "</text>";
  o << "<text class=\"axis-label\" x=\"" << svg_num(ml + pw / 2) << "\" y=\"" << svg_num(h - 8) << "\" text-anchor=\"middle\">"
    << esc(xa.label) << "</text>";
  o << "<text class=\"axis-label\" transform=\"translate(14 " << svg_num(mt + ph / 2)
    << ") rotate(-90)\" text-anchor=\"middle\">count</text></g>\n";
  double lx = ml;
  o << "<g class=\"legend\">";
  for (const auto& s : series) {
    o << "<rect x=\"" << svg_num(lx) << "\" y=\"8\" width=\"14\" height=\"12\" fill=\"" << s.colour
      << "\" fill-opacity=\"0.7\"/><text x=\"" << svg_num(lx + 20) << "\" y=\"18\">" << esc(s.name) << "</text>";
    lx += 20 + 7.0 * static_cast<double>(s.name.size()) + 18;
  }
  o << "</g></svg>\n";
  return o.str();
}

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

}  // namespace probnas::report
