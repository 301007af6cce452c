#pragma once
// The report's SVG kit: colour scales, line charts and histograms with axes, ticks and legends.
// Inline SVG only (no scripts); every number written through svg_num, so no NaN reaches an attribute.
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace probnas::report {

struct Rgb {
  double r, g, b;
};
std::string hex(const Rgb& c);
// YlGnBu, light (0) to dark (1).
Rgb scale(double t);
// Series colours (colour-blind safe, Okabe-Ito-like), cycling through 7.
const char* series_colour(std::size_t i);
// Edge colours by operation family (skip, pooling, separable, dilated, other convolutions).
std::string op_colour(const std::string& op);

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
// About `target` ticks at round steps covering [lo, hi] (exactly [lo, hi] when `tight`).
Ticks nice_ticks(double lo, double hi, bool integer, bool tight, int target = 5);
std::vector<double> tick_values(const Ticks& t);

// Ids unique within one page (gradients, markers): reset_svg_ids() at the start of a render.
int next_svg_id();
void reset_svg_ids();
// <svg ...><title>label</title> with a viewBox of w x h.
std::string svg_open(double w, double h, const std::string& cls, const std::string& label);

// A line/scatter chart with axes, ticks, grid and a legend.
std::string chart(const std::string& label, const std::vector<Series>& series, const Axis& xa, const Axis& ya,
                  double w = 540, double h = 300);

struct HistSeries {
  std::string name, colour;
  std::vector<double> values;
};
// Overlaid histograms on shared bins.
std::string histogram(const std::string& label, const std::vector<HistSeries>& series, const Axis& xa, double w = 640,
                      double h = 300);

struct Stats {
  std::size_t n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN(), median = mean, min = mean, max = mean;  // NaN when n = 0
};
// Count, mean, median, min and max of the finite values.
Stats stats_of(std::vector<double> v);

}  // namespace probnas::report
