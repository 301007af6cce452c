#include "probnas/core/log.h"

#include <iostream>
#include <mutex>

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
  std::lock_guard<std::mutex> lock(g_mutex);
  std::ostream& os = std::cerr;
  os << "probnas";
  if (g_size > 1) os << "[" << g_rank << "]";
  if (level_ != Level::info) os << " " << tag(level_);
  os << ": " << out_.str() << std::endl;
}

}  // namespace probnas::log
