#pragma once
// A pruned multi-branch network (PGNAS's best candidate) as a file, best_network.h5: its tensors
// with what is needed to use it (the input normalisation, the classes), written atomically.
#include <string>

#include "probnas/data/source.h"
#include "probnas/space/multibranch.h"

namespace probnas {

// Writes `net` with its input normalisation (`stats`, applied when `normalized`) and a description.
void export_pruned(const std::string& path, const PrunedNet& net, const ChannelStats& stats, bool normalized,
                   const std::string& description);
// Reads what export_pruned wrote; errors name the file.
PrunedNet import_pruned(const std::string& path);

}  // namespace probnas
