#pragma once
// DrNAS's progressive learning schedule (Chen et al., ICLR 2021, Sec. 3.3): the search runs in
// stages; each later stage prunes every edge to its strongest operations (by the learned
// concentration) and lets more channels through them (partial-channel factor K falls, the
// operations widen), so the supernet at evaluation size fits in about the same memory throughout.
#include <cstdint>
#include <string>
#include <vector>

namespace probnas {

class Config;

struct ProgressiveStage {
  int64_t epochs = 0;  // epochs of this stage
  int64_t k = 1;       // partial-channel factor K during the stage (operations see C/K channels)
  int64_t keep = 0;    // operations kept per edge during the stage (the first stage keeps all)
};

// The stages from progressive.k / progressive.epochs / progressive.keep, validated against
// search.epochs and the number of candidate operations; empty when progressive.k is empty.
std::vector<ProgressiveStage> progressive_stages(const Config& config, int64_t num_ops);
// K of the supernet at the start of the search: progressive.k's first entry, else space.partial_channels.
int64_t initial_partial_channels(const Config& config);
// "6,3" -> {6, 3}; errors name `key`.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& key);

}  // namespace probnas
