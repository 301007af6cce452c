#pragma once
// The report's HTML text helpers: escaping, numbers as the page shows them, notes, table rows, and
// lenient JSON look-ups (absent or mistyped values come back NaN or empty, never throw: a run
// folder's content never breaks its report).
#include <nlohmann/json.hpp>

#include <limits>
#include <ostream>
#include <string>

#include "probnas/core/format.h"
#include "probnas/run/run_folder.h"

namespace probnas::report {

using Json = nlohmann::ordered_json;
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Numbers on the page: as core/format.h's fixed() and percent(), but "n/a" when not finite.
std::string show_fixed(double v, int digits);
std::string show_percent(double fraction, int digits = 2);
// HTML text: & < > " ' escaped, control characters other than tab and newline replaced by spaces.
std::string esc(const std::string& s);
// A number with about `significant` digits, no exponent for the usual magnitudes; "n/a" when not finite.
std::string general(double v, int significant = 4);
// An SVG coordinate: always finite, two decimals at most, no "-0".
std::string svg_num(double v);
// 1234567 -> "1,234,567"; "n/a" when not finite.
std::string integer_text(double v);
// 1234567 -> "1.23 M" + unit; for parameter and FLOP counts.
std::string scaled(double v, const std::string& unit);
// A probability as HTML: a percentage, or mantissa x 10^e when tiny.
std::string probability_html(double p);
// <p class="note">text</p>; missing(): the style of something the run folder lacks.
std::string note(const std::string& text, const char* cls = "note");
std::string missing(const std::string& text);
// One row of a key/value table: <tr><th>key</th><td>value</td></tr>.
void row(std::ostream& o, const std::string& key, const std::string& value_html);

inline double num_of(const Json& j, const std::string& key) { return json_number_or_nan(j, key); }
inline double as_num(const Json& j) { return j.is_number() ? j.get<double>() : kNaN; }
inline std::string text_of(const Json& j, const std::string& key) { return json_text_or_empty(j, key); }
inline const Json* child(const Json& j, const std::string& key) { return json_child(j, key); }

}  // namespace probnas::report
