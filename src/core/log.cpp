#include "probnas/core/log.h"

#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <mutex>
#include <sstream>

#include "probnas/core/error.h"

namespace probnas::log {
namespace {
// The logger is the one piece of global mutable state the design allows.
Level g_level = Level::info;
int g_rank = 0;
int g_size = 1;
bool g_all_ranks = false;
std::mutex g_mutex;
const char* tag(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warning";
    case Level::error: return "error";
  }
  return "?";
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
Level parse_level(const std::string& name) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn") return Level::warn;
  if (name == "error") return Level::error;
  PROBNAS_FAIL("unknown log level '", name, "' (allowed: debug, info, warn, error)");
}
void set_rank(int rank, int size) {
  g_rank = rank;
  g_size = size;
}
int rank() { return g_rank; }
void set_all_ranks(bool all) { g_all_ranks = all; }
bool enabled(Level level) {
  if (level < g_level) return false;
  return g_rank == 0 || g_all_ranks || level >= Level::error;
}

Line::~Line() {
  // One write per line: an unbuffered stream writes each piece separately, and another process's
  // output (mpirun's abort notice) could land between the pieces of a line.
  std::ostringstream line;
  line << "probnas";
  if (g_size > 1) line << "[" << g_rank << "]";
  if (level_ != Level::info) line << " " << tag(level_);
  line << ": " << out_.str() << "\n";
  const std::string text = line.str();
  std::lock_guard<std::mutex> lock(g_mutex);
  std::cerr.flush();
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(2, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace probnas::log
