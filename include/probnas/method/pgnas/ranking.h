#pragma once
// PGNAS's second phase: candidates (hard gates, the supernet's weights) drawn from the learned
// posterior and ranked on held-out data, with the fixed-rate "Random" baseline beside them.
//
// Candidate i of a phase has its gates from the generator keyed by (seed, "pgnas-candidate", i)
// (guided) or (seed, "pgnas-random", i) (random); its score is computed by one rank from the
// shared weights alone, so the set of scores does not depend on the number of ranks. Ranks take
// contiguous shares of rounds of candidates; after each round the scores are gathered and rank 0
// appends them to <run.dir>/ranking/<phase>.csv, so a killed ranking restarts where it stopped.
#include <torch/types.h>

#include <optional>
#include <string>
#include <vector>

#include "probnas/core/rng.h"
#include "probnas/space/pruned_file.h"
#include "probnas/data/source.h"

namespace probnas {

class Communicator;
class Pgnas;
struct PrunedNet;

// Preprocessed images of one split, in evaluation batches on the run's device.
struct EvalSet {
  std::vector<torch::Tensor> x, y;
  int64_t examples() const;
};

struct RankingOptions {
  int64_t candidates = 1500;
  bool guided = true, random = true;
  double random_drop = -1;        // < 0: the learned mean drop probability (a comparable kept fraction)
  bool recalibrate_bn = false;    // false: the supernet's running statistics (as the paper's code)
  int64_t round = 4;              // candidates per rank per round
  double progress_interval = 10;  // seconds between progress lines
  std::string dir;                // run folder (rank 0 writes)
  std::string fingerprint;        // what the scores depend on (weights, data); other progress is discarded
};

struct CandidateScore {
  int64_t index = 0;
  double correct = 0, loss_sum = 0, count = 0;
  int64_t params = 0;
  double kept = 0;  // kept-gate fraction
  double accuracy() const { return count > 0 ? correct / count : 0; }
  double loss() const { return count > 0 ? loss_sum / count : 0; }
};

// The evaluation of one network on a set: correct, loss sum and count.
CandidateScore evaluate_pruned(const PrunedNet& net, const EvalSet& data);

struct PhaseResult {
  std::string sampling;  // "guided" or "random"
  double drop = 0;       // random: the fixed drop probability
  std::vector<CandidateScore> scores;  // by index
  const CandidateScore& best() const;  // highest accuracy, then lowest loss, then lowest index
};

struct RankingResult {
  std::vector<PhaseResult> phases;
  bool interrupted = false;
  std::string signal;
};

// Gates of candidate `index` of `sampling` ("guided" or "random" with drop probability `drop`).
std::vector<torch::Tensor> candidate_gates(Pgnas& method, const RngKey& key, const std::string& sampling,
                                           int64_t index, double drop);
// Kept-gate fraction of a candidate's gates.
double kept_fraction(const std::vector<torch::Tensor>& gates);

// Runs the phases on every rank (collective); resumes from <dir>/ranking/*.csv. A signal between
// rounds stops it with `interrupted` set (the finished rounds are on disk).
RankingResult rank_candidates(Pgnas& method, const RngKey& key, const EvalSet& val, const EvalSet& calibration,
                              const RankingOptions& options, Communicator& comm);

}  // namespace probnas

