#pragma once
// The checkpoint schema of a run (search or training), owned here so that both engines write the
// same file and read it back the same way. Schema 1, every top-level group always present:
//   /meta     schema_version, probnas_version, torch_version, method ("train" for probnas train),
//             space, dataset, world_size, step, epoch, step_in_epoch, total_steps, wall_seconds,
//             saved_at, config_hash, [genotype], complete (written last); dataset `config` (INI)
//   /model    parameters/<name>, buffers/<name> (ckpt/torch_state.h)
//   /optim    the optimisers' state, written by their owners
//   /method   the method's state, written by the method (probnas train: name, genotype, protocol)
//   /loader   the position in the data: epoch, step_in_epoch, global_step, steps_per_epoch,
//             global_batch, micro_batches, data (fingerprint); a search's weight_examples,
//             arch_examples, arch_global_batch, next_weight_example, a training's examples
//   /rng      seed, scheme, rank<r>/<generator>: every rank's LibTorch generator states
//   /history  metrics (the metrics.jsonl lines so far), epoch_sums ([ranks, 6]), images, columns
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probnas/ckpt/state.h"

namespace probnas::ckpt {

struct CheckpointMeta {
  std::string method, space, dataset;  // method: search.method, or "train"
  int64_t world_size = 1, step = 0, steps_per_epoch = 1, total_steps = 0;
  double wall_seconds = 0;
  std::string config_ini, config_hash;  // the effective configuration and its resume hash
  std::string genotype;                 // probnas train: the genotype trained (empty: not written)
  std::string saved_at, probnas_version;  // filled on write; read back as stored
};

// Where the run stands in its data.
struct DataPosition {
  int64_t global_step = 0, steps_per_epoch = 1, global_batch = 0, micro_batches = 1;
  int64_t examples = 0;  // the weight split (search) or the training split (train)
  std::string data;      // the data's fingerprint
  // A search's architecture split, and the first example of the next weight batch (-1 at the end).
  std::optional<int64_t> arch_examples, arch_global_batch, next_example;
};

struct RunHistory {
  std::vector<std::string> metrics;  // the metrics.jsonl lines so far
  torch::Tensor epoch_sums;          // [ranks at save, 6] float64: the epoch's running sums per rank
  int64_t images = 0;
  // This rank's running sums when resuming on `ranks` ranks: its own on the same world size; on
  // another, rank 0 carries the totals (so the sum over ranks is unchanged) and the others zeros.
  torch::Tensor sums_for(int rank, int ranks) const;
};

struct RunCheckpoint {
  CheckpointMeta meta;
  DataPosition position;
  RunHistory history;
  int64_t seed = 0;
  std::vector<std::string> generator_states;  // per rank (ckpt/torch_state.h's generator_states())
  State model, optim, method;                 // filled by their owners
};

// The checkpoint's State tree in schema 1.
State to_state(const RunCheckpoint& checkpoint);
// The typed parts of a read checkpoint (the tree's model, optim, method and rng stay in `state`).
CheckpointMeta read_meta(const State& state);
DataPosition read_position(const State& state);
RunHistory read_history(const State& state);

}  // namespace probnas::ckpt
