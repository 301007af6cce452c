#pragma once
// DrNAS's progressive learning schedule (Chen et al., ICLR 2021, Sec. 2.4): the search runs in
// stages; each later stage prunes every edge to its strongest operations (by the learned
// concentration) and lets more channels through them (partial-channel factor K falls, the
// operations widen), so the supernet at evaluation size fits in about the same memory throughout.
#include <cstdint>
#include <string>
#include <vector>

#include "probnas/method/method_options.h"
#include "probnas/space/supernet.h"

namespace probnas {

struct ProgressiveStage {
  int64_t epochs = 0;  // epochs of this stage
  int64_t k = 1;       // partial-channel factor K during the stage (operations see C/K channels)
  int64_t keep = 0;    // operations kept per edge during the stage (the first stage keeps all)
};

// The stages progressive.* describes, validated against the space, search.epochs and the number of
// candidate operations; empty when progressive.k is empty.
std::vector<ProgressiveStage> progressive_stages(const ProgressiveOptions& options, const SpaceOptions& space,
                                                 int64_t epochs, int64_t num_ops);
// K of the supernet at the start of the search: progressive.k's first entry, else space.partial_channels.
int64_t initial_partial_channels(const ProgressiveOptions& options, int64_t space_partial_channels);

}  // namespace probnas
