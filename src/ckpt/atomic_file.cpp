#include "probnas/ckpt/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "probnas/core/error.h"
#include "probnas/core/files.h"

namespace probnas::ckpt {

void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write_tmp) {
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  try {
    write_tmp(tmp);
    fsync_file(tmp);
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    throw;
  }
  rename_durably(tmp, path);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_atomically(path, [&](const std::string& tmp) {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    PROBNAS_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        PROBNAS_FAIL("cannot write '", tmp, "': ", why);
      }
      done += static_cast<size_t>(n);
    }
    PROBNAS_CHECK(::close(fd) == 0, "cannot close '", tmp, "': ", std::strerror(errno));
  });
}

}  // namespace probnas::ckpt
