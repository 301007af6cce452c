#pragma once
// Numbers, durations, sizes and times as people read them: the one home of these formatters, for
// progress lines, the report, compare and convert.
#include <string>

namespace probnas {

// `v` with `digits` decimals ("3.14"); "nan", "inf" or "-inf" when not finite (what a diverged run
// logs, for people and scripts to find); never "-0.00".
std::string fixed(double v, int digits);
// A fraction as a percentage with `digits` decimals ("12.34%", "nan%").
std::string percent(double fraction, int digits = 2);
// "1h02m03s", "4m05s", "12s" ("?" when negative or not finite): progress lines and summaries.
std::string format_duration(double seconds);
// "1h02m", "4m05s", "12s": whole minutes from an hour on, for table columns.
std::string format_duration_short(double seconds);
// "1 h 02 min", "4 min 05 s", "12.3 s", "2 d 01 h 00 min" ("n/a" when negative or not finite): prose.
std::string format_duration_words(double seconds);
// "1.5 GB" (powers of 1024).
std::string format_bytes(double bytes);
// "2026-11-30T10:40:00Z" (ISO 8601, UTC).
std::string utc_now();
// "2026-11-30 10:40 UTC".
std::string utc_now_minutes();

}  // namespace probnas
