#pragma once
// Checkpoint files: the versioned schema, the atomic write protocol, suspicious reading, and the
// run folder's checkpoints/ directory (newest few kept, LATEST, fallback to the newest good file).
//
// Schema 1 (every top-level group always present; h5dump/h5py show these names):
//   /meta     attributes schema_version, probnas_version, torch_version, method, space, dataset,
//             world_size, step, epoch, step_in_epoch, wall_seconds, saved_at, config_hash,
//             complete (written last); dataset `config` (the effective configuration, INI text)
//   /model    parameters/<name>, buffers/<name>: the supernet's tensors by their module path
//   /optim    the optimisers' state (momentum buffers, Adam moments and step counts, learning rate)
//   /method   the method's own state (architecture parameters; genotype text and probabilities)
//   /loader   the position in the data (epoch, step_in_epoch, global_step) and split sizes
//   /rng      the run's seed and every random generator's state bytes, per rank
//   /history  metrics.jsonl lines so far and the current epoch's running sums
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probnas/core/hdf5.h"
#include "probnas/ckpt/state.h"
#include "probnas/core/config.h"
#include "probnas/core/error.h"

namespace probnas::ckpt {

constexpr int64_t kSchemaVersion = 1;
const std::vector<std::string>& top_level_groups();  // meta, model, optim, method, loader, rng, history

struct SaveOptions {
  int compression = 0;  // gzip level, 0 = none
  bool file_locking = true;
};

// State tree <-> HDF5 group, one to one.
void write_state(h5::Group& group, const State& state, const h5::DatasetOptions& options);
State read_state(const h5::Group& group);

// The write protocol: `path`.tmp written in full, /meta@complete set last, closed (strong close
// degree), fsync'd, renamed to `path`, folder fsync'd. A crash at any moment leaves either no
// file or a complete one.
void write_file(const std::string& path, const State& state, const SaveOptions& options);

// Reads and validates a checkpoint (bytes already read from `name`): an HDF5 file, /meta with
// complete = 1, a schema version this build reads, all seven groups, every dataset's checksum.
// Throws probnas::Error naming the file and what is wrong.
State read_image(const std::string& bytes, const std::string& name);
State read_file(const std::string& path);

// A checkpoint this run must not use even as a fallback (written by a newer probnas, or by
// another method, space or config): the run stops instead of skipping it.
class Incompatible : public Error {
 public:
  using Error::Error;
};

// Config keys that may differ between a checkpoint and the run resuming from it.
bool may_change_on_resume(const std::string& key);
// Hash of the config keys that must not change on resume (stored as /meta@config_hash).
std::string resume_hash(const Config& config);
// Throws with one line naming the file, the key and both values when the checkpoint in `state`
// was made by another method/space or with a config that may not change on resume.
void check_compatible(const State& state, const std::string& file, const Config& config);
// The same for a run of `method` ("train" for probnas train) on `space`.
void check_compatible(const State& state, const std::string& file, const Config& config, const std::string& method,
                      const std::string& space);

// The checkpoints/ folder of a run.
class Directory {
 public:
  Directory(std::string dir, SaveOptions options, int64_t keep);
  const std::string& path() const { return dir_; }
  // Writes ckpt-<step>.h5, points LATEST at it, removes all but the newest `keep`; returns the path.
  std::string save(const State& state, int64_t step);
  // Complete-looking checkpoint files (ckpt-<step>.h5, no .tmp), newest step first.
  std::vector<std::string> list() const;
  struct Found {
    std::string path, bytes;
    State state;
  };
  // The newest file that reads and validates; every file skipped is logged with the reason.
  // Throws when files exist but none is good (the message lists each file and its reason).
  std::optional<Found> newest_good() const;

 private:
  std::string dir_;
  SaveOptions options_;
  int64_t keep_;
};

// Step number of a checkpoint file name ("ckpt-120.h5" -> 120), or -1.
int64_t step_of(const std::string& file_name);

}  // namespace probnas::ckpt
