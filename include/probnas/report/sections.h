#pragma once
// The report's sections, each a <section id="..."> with an <h2>: summary, cells, curves, entropy,
// probabilities, samples, topk. Each reads only the RunView; a method adds through MethodSections.
#include <ostream>

#include "probnas/report/method_sections.h"
#include "probnas/report/run_view.h"

namespace probnas::report {

void section_summary(std::ostream& o, const RunView& r, const MethodSections& m);
void section_cells(std::ostream& o, const RunView& r);
void section_curves(std::ostream& o, const RunView& r);
void section_entropy(std::ostream& o, const RunView& r);
void section_probabilities(std::ostream& o, const RunView& r);
void section_samples(std::ostream& o, const RunView& r, const MethodSections& m);
void section_topk(std::ostream& o, const RunView& r, const MethodSections& m);

// Short operation names for dense tables ("sep_conv_3x3" -> "sep3").
std::string abbreviate(const std::string& op);

}  // namespace probnas::report
