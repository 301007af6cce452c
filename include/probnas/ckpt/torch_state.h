#pragma once
// The LibTorch pieces of a checkpoint: a module's tensors by name, and the state of every
// random generator LibTorch keeps (CPU and each CUDA device), so a resumed run draws the same
// numbers as an uninterrupted one.
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "probnas/ckpt/state.h"

namespace probnas {

// parameters/<name> and buffers/<name> (names are the module paths, as in a PyTorch state_dict).
void save_module(ckpt::State& group, const torch::nn::Module& module);
// Copies every tensor back in place; a missing, extra or differently shaped tensor is an error
// naming it.
void load_module(const ckpt::State& group, torch::nn::Module& module);

// This process's default generators' states, serialised (for gathering across ranks).
std::string generator_states();
// Stores each rank's serialised states under rng/rank<r>/<generator>.
void put_generator_states(ckpt::State& rng, const std::vector<std::string>& per_rank);
// Restores this process's generators from rank `rank`'s states (rank 0's when the checkpoint was
// made by fewer ranks). Generators the checkpoint lacks (a CUDA device on a CPU run) are left alone.
void restore_generator_states(const ckpt::State& rng, int rank);

}  // namespace probnas
