#pragma once
// Genotypes of the supernets' spaces: derived from per-edge probabilities, and mapped back to
// operation indices. The Genotype type and its notation are torch-free (run/genotype.h, run/notation.h).
#include <torch/types.h>

#include <vector>

#include "probnas/run/genotype.h"
#include "probnas/run/notation.h"
#include "probnas/space/arch.h"

namespace probnas {

// The chosen operation index per edge per group, for a discrete forward pass; throws naming the edge
// when the genotype lacks one or names an operation outside the space.
std::vector<std::vector<int64_t>> genotype_choices(const Genotype& genotype, const ArchShape& shape);
// Argmax per edge of `probs` (one [edges, ops] tensor per group), the way DARTS/DrNAS derive NB201 cells.
Genotype argmax_genotype(const std::string& space, const ArchShape& shape, const std::vector<torch::Tensor>& probs);

}  // namespace probnas
