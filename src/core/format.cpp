#include "probnas/core/format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace probnas {

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  std::string s = buf;
  if (s.size() > 1 && s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // "-0.00"
  return s;
}

std::string percent(double fraction, int digits) { return fixed(100 * fraction, digits) + "%"; }

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  char buf[48];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", s / 3600, (s / 60) % 60, s % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

std::string format_duration_short(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 3600 - 30) return format_duration(seconds);
  const long long minutes = std::llround(seconds / 60);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lldh%02lldm", minutes / 60, minutes % 60);
  return buf;
}

std::string format_duration_words(double s) {
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

std::string format_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return fixed(b, u == 0 ? 0 : 1) + " " + units[u];
}

namespace {
std::string utc_now_as(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}
}  // namespace

std::string utc_now() { return utc_now_as("%Y-%m-%dT%H:%M:%SZ"); }
std::string utc_now_minutes() { return utc_now_as("%Y-%m-%d %H:%M UTC"); }

}  // namespace probnas
