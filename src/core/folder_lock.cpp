#include "probnas/core/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "probnas/core/files.h"
#include "probnas/core/format.h"
#include "probnas/core/process.h"

namespace probnas {

std::string lock_holder_text() {
  std::string text = "host " + host_name() + ", process " + std::to_string(::getpid());
  if (const char* job = std::getenv("SLURM_JOB_ID"); job != nullptr && *job != '\0') text += std::string(", Slurm job ") + job;
  return text + ", since " + utc_now();
}

FolderLock::FolderLock(const std::string& folder, const std::string& off_option) {
  make_directories(folder);
  path_ = folder + (folder.empty() || folder.back() == '/' ? "" : "/") + kFileName;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  PROBNAS_CHECK(fd_ >= 0, "cannot open the run folder's lock file '", path_, "': ", std::strerror(errno));
  int rc = 0;
  do {
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      try {
        holder = read_file_bytes(path_);
      } catch (const Error&) {
      }
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\r')) holder.pop_back();
    }
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw FolderBusy("the run folder '" + folder + "' is in use by another run (" +
                       (holder.empty() ? std::string("holder unknown") : holder) +
                       "): wait for it to end, or give this run another run.dir");
    PROBNAS_FAIL("cannot lock the run folder's lock file '", path_, "': ", std::strerror(err),
                 " (a file system without POSIX/BSD locks, some NFS set-ups: set ", off_option,
                 " = false, and make sure yourself that one run at a time writes the folder)");
  }
  // The holder's description, for a second run's message (written while the lock is held).
  const std::string text = lock_holder_text() + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t n = ::pwrite(fd_, text.data(), text.size(), 0);
    (void)n;  // only informative: a full disk must not stop the run here
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace probnas
