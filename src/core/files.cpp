#include "probnas/core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "probnas/core/error.h"

namespace probnas {

namespace {
void write_all(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      PROBNAS_FAIL("cannot write '", path, "': ", why);
    }
    done += static_cast<size_t>(n);
  }
}
}  // namespace

void rename_durably(const std::string& tmp, const std::string& path) {
  PROBNAS_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path,
                "': ", std::strerror(errno));
  const auto parent = std::filesystem::path(path).parent_path().string();
  fsync_directory(parent.empty() ? "." : parent);
}

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  PROBNAS_CHECK(fd >= 0, "cannot open '", path, "' to flush it to disk: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const std::string why = std::strerror(errno);
  ::close(fd);
  PROBNAS_CHECK(rc == 0, "cannot flush '", path, "' to disk: ", why);
}

void fsync_directory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // some file systems do not let folders be opened; nothing more can be done
  ::fsync(fd);          // and some refuse to fsync them (EINVAL): not an error
  ::close(fd);
}

std::string read_file_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  PROBNAS_CHECK(fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      PROBNAS_FAIL("cannot read '", path, "': ", why);
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  PROBNAS_CHECK(fd >= 0, "cannot open '", path, "' for appending: ", std::strerror(errno));
  write_all(fd, line + "\n", path);
  ::close(fd);
}

void make_directories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  PROBNAS_CHECK(!ec, "cannot create directory '", path, "': ", ec.message());
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

}  // namespace probnas
