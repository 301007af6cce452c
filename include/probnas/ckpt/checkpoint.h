#pragma once
// Checkpoint files: the atomic write, suspicious reading (schema version, completeness, checksums),
// compatibility with the resuming run, and the run folder's checkpoints/ directory (newest few kept,
// LATEST, fallback to the newest good file). The groups' content: ckpt/run_checkpoint.h.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probnas/core/hdf5.h"
#include "probnas/ckpt/state.h"
#include "probnas/core/config.h"
#include "probnas/core/option_binding.h"
#include "probnas/core/error.h"

namespace probnas::ckpt {

constexpr int64_t kSchemaVersion = 1;
const std::vector<std::string>& top_level_groups();  // meta, model, optim, method, loader, rng, history

struct SaveOptions {
  int compression = 0;  // gzip level, 0 = none
};



// State tree <-> HDF5 group, one to one.
void write_state(h5::Group& group, const State& state, const h5::DatasetOptions& options);
State read_state(const h5::Group& group);

// Writes a checkpoint file with ckpt/atomic_file.h's protocol, /meta@complete set last: a crash at
// any moment leaves either no file or a complete one.
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

// Hash of the config keys that must not change on resume (those the option table does not mark
// resumable), stored as /meta@config_hash.
std::string resume_hash(const Config& config);
// Throws with one line naming the file, the key and both values when the checkpoint in `state`
// was made by another method ("train" for probnas train) or space than `method` on `space`, or with
// a config whose non-resumable keys differ from `config`'s. Keys in `unused` (the options of the
// methods this run does not run) may differ: a release that changes GibbsNAS's defaults still
// resumes a DrNAS search.
void check_compatible(const State& state, const std::string& file, const Config& config, const std::string& method,
                      const std::string& space, const std::set<std::string>& unused = {});

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

namespace probnas {

// ckpt.*: when a run checkpoints and how the files are kept (all may change on resume).
struct CheckpointOptions {
  int64_t interval_steps = 0;     // every N steps (0: no step trigger)
  double interval_minutes = 15;   // when this many minutes passed since the last one (0: no time trigger)
  bool epoch_end = true;
  int64_t keep = 3;
  bool file_locking = true;
  int64_t compress = 0;
  ckpt::SaveOptions save() const { return {static_cast<int>(compress)}; }
};
const OptionBinding<CheckpointOptions>& checkpoint_options();

}  // namespace probnas
