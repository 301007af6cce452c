#include "probnas/method/progressive.h"

#include "probnas/core/config.h"
#include "probnas/core/error.h"

namespace probnas {

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& key) {
  std::vector<int64_t> values;
  for (const auto& item : split_list(text)) {
    PROBNAS_CHECK(!item.empty(), key, " = '", text, "': empty entry (write numbers separated by commas)");
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    PROBNAS_CHECK(used == item.size(), key, " = '", text, "': '", item, "' is not an integer");
    values.push_back(v);
  }
  return values;
}

int64_t initial_partial_channels(const Config& c) {
  const auto ks = parse_int_list(c.text("progressive.k"), "progressive.k");
  if (ks.empty()) return c.integer("space.partial_channels");
  PROBNAS_CHECK(c.integer("space.partial_channels") == 1 || c.integer("space.partial_channels") == ks.front(),
                "space.partial_channels = ", c.integer("space.partial_channels"), " contradicts progressive.k = ",
                c.text("progressive.k"), " (whose first entry is the first stage's K): leave space.partial_channels at 1");
  return ks.front();
}

std::vector<ProgressiveStage> progressive_stages(const Config& c, int64_t num_ops) {
  const auto ks = parse_int_list(c.text("progressive.k"), "progressive.k");
  const auto epochs = parse_int_list(c.text("progressive.epochs"), "progressive.epochs");
  auto keeps = parse_int_list(c.text("progressive.keep"), "progressive.keep");
  if (ks.empty()) {
    PROBNAS_CHECK(epochs.empty() && keeps.empty(), "progressive.epochs and progressive.keep need progressive.k "
                  "(one partial-channel factor per stage, e.g. progressive.k = 6,3)");
    return {};
  }
  PROBNAS_CHECK(c.text("search.space") == "darts", "progressive.k = ", c.text("progressive.k"),
                ": progressive learning is built for the DARTS space (search.space = darts), not ",
                c.text("search.space"));
  PROBNAS_CHECK(epochs.size() == ks.size(), "progressive.epochs = '", c.text("progressive.epochs"), "' has ",
                epochs.size(), " entries, progressive.k = '", c.text("progressive.k"), "' has ", ks.size(),
                ": give one number of epochs per stage");
  if (keeps.empty()) {
    // DrNAS: every new stage keeps the stronger half of the operations left.
    int64_t left = num_ops;
    for (size_t s = 0; s < ks.size(); ++s) {
      keeps.push_back(left);
      left = (left + 1) / 2;
    }
  }
  PROBNAS_CHECK(keeps.size() == ks.size(), "progressive.keep = '", c.text("progressive.keep"), "' has ", keeps.size(),
                " entries, progressive.k has ", ks.size(), ": give one per stage (or leave it empty: halve per stage)");
  PROBNAS_CHECK(keeps.front() == num_ops, "progressive.keep = '", c.text("progressive.keep"),
                "': the first stage searches all ", num_ops, " operations, so its entry must be ", num_ops);
  int64_t total = 0;
  std::vector<ProgressiveStage> stages;
  for (size_t s = 0; s < ks.size(); ++s) {
    PROBNAS_CHECK(epochs[s] >= 1, "progressive.epochs: stage ", s + 1, " has ", epochs[s], " epochs (at least 1)");
    PROBNAS_CHECK(ks[s] >= 1 && c.integer("space.channels") % ks[s] == 0, "progressive.k: stage ", s + 1, "'s K = ",
                  ks[s], " must divide space.channels = ", c.integer("space.channels"));
    PROBNAS_CHECK(keeps[s] >= 1, "progressive.keep: stage ", s + 1, " keeps ", keeps[s], " operations (at least 1)");
    if (s > 0) {
      PROBNAS_CHECK(ks[s] <= ks[s - 1], "progressive.k = ", c.text("progressive.k"), ": K may only fall from stage to "
                    "stage (the operations widen; they never narrow)");
      PROBNAS_CHECK(keeps[s] <= keeps[s - 1], "progressive.keep = ", c.text("progressive.keep"),
                    ": operations are pruned, never restored");
    }
    total += epochs[s];
    stages.push_back({epochs[s], ks[s], keeps[s]});
  }
  PROBNAS_CHECK(total == c.integer("search.epochs"), "progressive.epochs = ", c.text("progressive.epochs"),
                " add up to ", total, " epochs, but search.epochs = ", c.integer("search.epochs"),
                ": make them agree (the learning-rate schedule spans search.epochs)");
  return stages;
}

}  // namespace probnas
