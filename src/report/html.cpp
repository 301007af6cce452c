#include "probnas/report/html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace probnas::report {

std::string show_fixed(double v, int digits) { return std::isfinite(v) ? fixed(v, digits) : "n/a"; }

std::string show_percent(double fraction, int digits) {
  return std::isfinite(fraction) ? percent(fraction, digits) : "n/a";
}

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

// A number with about `significant` digits, no exponent for the usual magnitudes.
std::string general(double v, int significant) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", significant, v);
  return buf;
}

// SVG coordinates: always finite, two decimals at most, no "-0".
std::string svg_num(double v) {
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
  if (a >= 1e12) return show_fixed(v / 1e12, 2) + " T" + unit;
  if (a >= 1e9) return show_fixed(v / 1e9, 2) + " G" + unit;
  if (a >= 1e6) return show_fixed(v / 1e6, 2) + " M" + unit;
  if (a >= 1e3) return show_fixed(v / 1e3, 1) + " k" + unit;
  return show_fixed(v, 0) + (unit.empty() ? "" : " " + unit);
}

// A probability as HTML: a percentage, or mantissa x 10^e when tiny.
std::string probability_html(double p) {
  if (!std::isfinite(p)) return "n/a";
  if (p == 0) return "0";
  if (p >= 1e-3) return show_percent(p, 2);
  const int e = static_cast<int>(std::floor(std::log10(p)));
  const double m = p / std::pow(10.0, e);
  return show_fixed(m, 2) + "&#8202;&times;&#8202;10<sup>" + std::to_string(e) + "</sup>";
}

std::string note(const std::string& text, const char* cls) {
  return std::string("<p class=\"") + cls + "\">" + text + "</p>\n";
}

std::string missing(const std::string& text) { return note(text, "note missing"); }

void row(std::ostream& o, const std::string& key, const std::string& value_html) {
  o << "<tr><th scope=\"row\">" << esc(key) << "</th><td>" << value_html << "</td></tr>\n";
}

}  // namespace probnas::report
