// PGNAS's parts of report.html: its best candidate and mean network in the summary, the histogram
// of its candidates' validation accuracies, and its best candidates.
#include "probnas/method/pgnas/pgnas_report.h"

#include <algorithm>
#include <cmath>

#include "probnas/report/svg.h"

namespace probnas {
namespace pgnas_report_detail {

using namespace report;

struct Candidate {
  std::string sampling;
  double rank = kNaN, index = kNaN, val_acc = kNaN, val_loss = kNaN, params = kNaN, kept = kNaN;
};

std::vector<Candidate> candidates_of(const RunView& r) {
  std::vector<Candidate> out;
  const CandidateTable& t = r.candidates;
  for (size_t i = 0; i < t.size(); ++i)
    out.push_back({t.sampling[i], t.rank[i], t.index[i], t.val_acc[i], t.val_loss[i], t.params[i], t.kept_fraction[i]});
  return out;
}

void summary_rows(std::ostream& o, const RunView& r) {
  if (const Json* b = child(r.geno, "best"); b && b->is_object()) {
    std::string text = esc(text_of(*b, "sampling")) + " candidate #" + esc(text_of(*b, "index")) + ": val acc " +
                       show_percent(num_of(*b, "val_acc"));
    if (std::isfinite(num_of(*b, "test_acc"))) text += ", test acc " + show_percent(num_of(*b, "test_acc"));
    text += ", " + scaled(num_of(*b, "params"), "") + " weights, " + show_percent(num_of(*b, "kept_fraction"), 1) +
            " of the channels kept";
    row(o, "Best candidate", text);
  }
  if (const Json* s = child(r.geno, "supernet"); s && s->is_object()) {
    std::string text = "val acc " + show_percent(num_of(*s, "val_acc"));
    if (std::isfinite(num_of(*s, "test_acc"))) text += ", test acc " + show_percent(num_of(*s, "test_acc"));
    text += ", " + scaled(num_of(*s, "params"), "") + " weights";
    row(o, "Supernet (expected gates)", text);
  }
}

void samples(std::ostream& o, const RunView& r) {
  if (!r.has_candidates) {
    o << missing("No candidate histogram: " + esc(r.candidates_note) +
                 " (PGNAS writes it when the candidate ranking after the search is done).");
  } else if (r.candidates.size() == 0) {
    o << missing("candidates.csv lists no candidates.");
  } else {
    std::vector<HistSeries> series;
    for (const auto& cand : candidates_of(r)) {
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
      o << "<tr><td>" << esc(s.name) << "</td><td class=\"num\">" << st.n << "</td><td class=\"num\">" << show_percent(st.mean)
        << "</td><td class=\"num\">" << show_percent(st.median) << "</td><td class=\"num\">" << show_percent(st.max)
        << "</td><td class=\"num\">" << show_percent(st.min) << "</td></tr>\n";
    }
    o << "</tbody></table>\n";
  }
}

bool topk(std::ostream& o, const RunView& r) {
  constexpr std::size_t k = 10;
  if (!r.has_candidates || r.candidates.size() == 0) {
    o << missing("No candidates to rank: " + esc(r.candidates_note.empty() ? "candidates.csv is empty" : r.candidates_note) + ".");
    return true;
  }
  std::vector<Candidate> sorted = candidates_of(r);
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
      << integer_text(cand.index) << "</td><td class=\"num\">" << show_percent(cand.val_acc) << "</td><td class=\"num\">"
      << show_fixed(cand.val_loss, 4) << "</td><td class=\"num\">" << integer_text(cand.params) << "</td><td class=\"num\">"
      << show_percent(cand.kept, 1) << "</td></tr>\n";
  }
  o << "</tbody></table>\n";
  return true;
}

}  // namespace pgnas_report_detail

MethodSections pgnas_report_sections() {
  MethodSections m;
  m.summary_rows = pgnas_report_detail::summary_rows;
  m.samples = pgnas_report_detail::samples;
  m.topk = pgnas_report_detail::topk;
  return m;
}

}  // namespace probnas
