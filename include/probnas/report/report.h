#pragma once
// The run report: one self-contained HTML page per run folder (report.html), built from the files
// the search wrote there (config.ini, metrics.jsonl, genotype.json, candidates.csv,
// train/result.json; read through run/run_folder.h). Inline CSS (report.css, built in) and inline
// SVG only: no scripts, no fonts, no network, so it opens anywhere, from a cluster's file system or
// an e-mail attachment.
//
// Sections (each a <section id="..."> with an <h2>): summary, cells (the derived cells drawn as in
// the DARTS paper, with our own layout), curves (accuracy and loss per epoch), entropy,
// probabilities (per-edge operation probabilities per epoch as heat maps, and the final ones),
// samples and topk (what the method adds: report/method_sections.h; otherwise the most probable
// architectures of the per-edge distributions). A missing or unreadable file omits what it feeds,
// with a sentence saying so; nothing here throws because of a run folder's content.
//
// Torch-free on purpose: the standard library and nlohmann-json only. The engine renders it with the
// method registry's sections (engine/run_report.h).
#include <functional>
#include <string>

#include "probnas/report/kbest.h"
#include "probnas/report/method_sections.h"

namespace probnas::report {

// The sections a run folder's method adds, by its search.method name (unknown names: none).
using SectionsLookup = std::function<MethodSections(const std::string& method)>;

// The HTML of <run_dir>'s report.
std::string render_page(const std::string& run_dir, const SectionsLookup& lookup);
// Writes <run_dir>/report.html atomically. Never throws: returns false and sets *problem (one
// line) on failure.
bool write_page(const std::string& run_dir, const SectionsLookup& lookup, std::string* problem = nullptr);
// The page's style sheet (src/report/report.css, built into the binary).
const char* report_css();

}  // namespace probnas::report
