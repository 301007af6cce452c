#include "probnas/method/progressive.h"

#include "probnas/core/error.h"

namespace probnas {

int64_t initial_partial_channels(const ProgressiveOptions& o, int64_t space_k) {
  if (o.k.empty()) return space_k;
  PROBNAS_CHECK(space_k == 1 || space_k == o.k.front(), "space.partial_channels = ", space_k,
                " contradicts progressive.k = ", o.k_text,
                " (whose first entry is the first stage's K): leave space.partial_channels at 1");
  return o.k.front();
}

std::vector<ProgressiveStage> progressive_stages(const ProgressiveOptions& o, const SpaceOptions& space,
                                                 int64_t search_epochs, int64_t num_ops) {
  const auto& ks = o.k;
  const auto& epochs = o.epochs;
  auto keeps = o.keep;
  if (ks.empty()) {
    PROBNAS_CHECK(epochs.empty() && keeps.empty(), "progressive.epochs and progressive.keep need progressive.k "
                  "(one partial-channel factor per stage, e.g. progressive.k = 6,3)");
    return {};
  }
  PROBNAS_CHECK(space.space == "darts", "progressive.k = ", o.k_text,
                ": progressive learning is built for the DARTS space (search.space = darts), not ", space.space);
  PROBNAS_CHECK(epochs.size() == ks.size(), "progressive.epochs = '", o.epochs_text, "' has ", epochs.size(),
                " entries, progressive.k = '", o.k_text, "' has ", ks.size(), ": give one number of epochs per stage");
  if (keeps.empty()) {
    // DrNAS: every new stage keeps the stronger half of the operations left.
    int64_t left = num_ops;
    for (size_t s = 0; s < ks.size(); ++s) {
      keeps.push_back(left);
      left = (left + 1) / 2;
    }
  }
  PROBNAS_CHECK(keeps.size() == ks.size(), "progressive.keep = '", o.keep_text, "' has ", keeps.size(),
                " entries, progressive.k has ", ks.size(), ": give one per stage (or leave it empty: halve per stage)");
  PROBNAS_CHECK(keeps.front() == num_ops, "progressive.keep = '", o.keep_text, "': the first stage searches all ",
                num_ops, " operations, so its entry must be ", num_ops);
  int64_t total = 0;
  std::vector<ProgressiveStage> stages;
  for (size_t s = 0; s < ks.size(); ++s) {
    PROBNAS_CHECK(epochs[s] >= 1, "progressive.epochs: stage ", s + 1, " has ", epochs[s], " epochs (at least 1)");
    PROBNAS_CHECK(ks[s] >= 1 && space.channels % ks[s] == 0, "progressive.k: stage ", s + 1, "'s K = ", ks[s],
                  " must divide space.channels = ", space.channels);
    PROBNAS_CHECK(keeps[s] >= 1, "progressive.keep: stage ", s + 1, " keeps ", keeps[s], " operations (at least 1)");
    if (s > 0) {
      PROBNAS_CHECK(ks[s] <= ks[s - 1], "progressive.k = ", o.k_text, ": K may only fall from stage to "
                    "stage (the operations widen; they never narrow)");
      PROBNAS_CHECK(keeps[s] <= keeps[s - 1], "progressive.keep = ", o.keep_text,
                    ": operations are pruned, never restored");
    }
    total += epochs[s];
    stages.push_back({epochs[s], ks[s], keeps[s]});
  }
  PROBNAS_CHECK(total == search_epochs, "progressive.epochs = ", o.epochs_text, " add up to ", total,
                " epochs, but search.epochs = ", search_epochs,
                ": make them agree (the learning-rate schedule spans search.epochs)");
  return stages;
}

}  // namespace probnas
