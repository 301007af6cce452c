#pragma once
// One run per run folder at a time: an exclusive flock(2) on <folder>/run.lock, held for the life of
// the object and released on any exit, a SIGKILL included (the kernel drops a dead process's locks,
// so a lock file left behind never blocks the next run). The file names its holder (host, process
// id, Slurm job, start time) for the message a second run gets.
#include <string>

#include "probnas/core/error.h"

namespace probnas {

// Another process holds the folder's lock.
class FolderBusy : public Error {
 public:
  using Error::Error;
};

class FolderLock {
 public:
  static constexpr const char* kFileName = "run.lock";
  // Creates `folder` if needed and takes its lock without waiting. Throws FolderBusy naming the
  // folder and the holder when another process has it, and Error naming the file otherwise (a file
  // system that does not support locks says how to turn them off: `off_option`).
  FolderLock(const std::string& folder, const std::string& off_option);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// "host <name>, process <pid>[, Slurm job <id>], since <UTC time>": what the lock file holds.
std::string lock_holder_text();

}  // namespace probnas
