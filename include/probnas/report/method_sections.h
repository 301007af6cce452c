#pragma once
// What a method adds to its run's report.html (DESIGN, "A method is a folder"): its title, rows of
// the summary table, and the bodies of the "samples" and "topk" sections. A method folder fills one
// (src/method/<name>/*_report.cpp) and hands it to the registry; the report layer knows no method.
#include <functional>
#include <ostream>
#include <string>

#include "probnas/report/run_view.h"

namespace probnas::report {

struct MethodSections {
  std::string title;  // "DrNAS" (empty: the run folder's method name)
  // More rows of the summary table (report::row); unset: none.
  std::function<void(std::ostream&, const RunView&)> summary_rows;
  // The body of <section id="samples">; unset: a note that the method ranks no sampled architectures.
  std::function<void(std::ostream&, const RunView&)> samples;
  // The body of <section id="topk">; returns false to let the generic list follow (the k most
  // probable architectures of the per-edge distributions); unset: the generic list alone.
  std::function<bool(std::ostream&, const RunView&)> topk;
};

}  // namespace probnas::report

namespace probnas {
using report::MethodSections;
}  // namespace probnas
