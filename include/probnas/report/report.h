#pragma once
// The run report: one self-contained HTML page per run folder (report.html), built from the files
// the search wrote there (config.ini, metrics.jsonl, genotype.json, candidates.csv,
// train/result.json). Inline CSS and inline SVG only: no scripts, no fonts, no network, so it opens
// anywhere, from a cluster's file system or an e-mail attachment.
//
// Sections (each a <section id="..."> with an <h2>): summary, cells (the derived cells drawn as in
// the DARTS paper, with our own layout), curves (accuracy and loss per epoch), entropy,
// probabilities (per-edge operation probabilities per epoch as heat maps, and the final ones),
// samples (PGNAS candidate and PARSEC sample histograms), topk (the most probable architectures).
// A missing or unreadable file omits what it feeds, with a sentence saying so; nothing here throws
// because of a run folder's content.
//
// Torch-free on purpose: the standard library and nlohmann-json only.
#include <cstddef>
#include <string>
#include <vector>

namespace probnas {

// The HTML of <run_dir>'s report, built from the files in the folder (missing files just omit
// their sections, with a line saying what is missing).
std::string render_report(const std::string& run_dir);

// Writes <run_dir>/report.html atomically. Never throws: returns false and sets *problem (one
// line) on failure.
bool write_report(const std::string& run_dir, std::string* problem = nullptr);

// One architecture of a product of independent categoricals: the chosen option per variable and
// its probability.
struct RankedAssignment {
  std::vector<std::size_t> choice;  // choice[v] indexes probs[v]
  double probability = 0;
  double log_probability = 0;  // natural log; stays finite where probability underflows to 0
};

// The k most probable joint assignments of independent categoricals (probs[v] is variable v's
// distribution; each is normalised here, non-finite or negative entries count as 0, an all-zero
// variable as uniform). Exact best-first enumeration: O(k V log(k V)) after sorting each variable,
// so 28 edges x 8 operations and k = 10 take microseconds. Most probable first (equal
// probabilities in a deterministic order). Options of probability 0 are never listed, so fewer
// than k come back when fewer than k architectures have positive probability.
std::vector<RankedAssignment> most_probable_assignments(const std::vector<std::vector<double>>& probs, std::size_t k);

}  // namespace probnas
