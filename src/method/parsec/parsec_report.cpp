// PARSEC's parts of report.html: its posterior entropy in the summary, the histogram of its recent
// samples' likelihoods, and the most probable architectures of its learned distribution.
#include "probnas/method/parsec/parsec_report.h"

#include <algorithm>
#include <cmath>

#include "probnas/report/svg.h"

namespace probnas {
namespace parsec_report_detail {

using namespace report;

void summary_rows(std::ostream& o, const RunView& r) {
  if (const Json* p = child(r.geno, "parsec"); p && p->is_object()) {
    const double h = num_of(*p, "entropy_nats"), u = num_of(*p, "uniform_entropy_nats");
    if (std::isfinite(h))
      row(o, "Posterior entropy", show_fixed(h, 3) + " nats" + (std::isfinite(u) ? " <span class=\"dim\">(uniform: " + show_fixed(u, 3) + " nats)</span>" : ""));
    if (std::isfinite(num_of(*p, "samples"))) row(o, "Samples per step", integer_text(num_of(*p, "samples")));
  }
}

void samples(std::ostream& o, const RunView& r) {
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
}

bool topk(std::ostream& o, const RunView& r) {
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
        << show_fixed(logp, 3) << "</td><td><code class=\"arch\">" << esc(text_of(a, "architecture")) << "</code></td></tr>\n";
    }
    o << "</tbody></table>\n";
    return true;
  }
  o << note("genotype.json has no <code>parsec.most_probable</code>; the list below is computed from the final "
            "per-edge probabilities.");
  return false;
}

}  // namespace parsec_report_detail

MethodSections parsec_report_sections() {
  MethodSections m;
  m.summary_rows = parsec_report_detail::summary_rows;
  m.samples = parsec_report_detail::samples;
  m.topk = parsec_report_detail::topk;
  return m;
}

}  // namespace probnas
