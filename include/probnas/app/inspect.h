#pragma once
#include <ostream>
#include <string>

namespace probnas {

// `probnas inspect <ckpt.h5>`: the meta data, the step, the genotype with its probabilities, the
// size of every group, and whether the file is valid. Returns 0 for a valid checkpoint, 1 otherwise.
int inspect_checkpoint(const std::string& path, bool show_config, std::ostream& out);

}  // namespace probnas
