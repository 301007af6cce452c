#pragma once
#include <ostream>
#include <string>

namespace probnas {

// `probnas inspect <ckpt.h5>`: the meta data, the step, the genotype with its probabilities, the
// size of every group, and whether the file is valid. Returns 0 for a valid checkpoint, 1 otherwise.
// A non-empty `cells_dir` also gets the pictures of the checkpoint's cells (DOT, and SVG when
// Graphviz's dot is installed), derived from its probabilities by the space's own rule.
int inspect_checkpoint(const std::string& path, bool show_config, std::ostream& out,
                       const std::string& cells_dir = "");

}  // namespace probnas
