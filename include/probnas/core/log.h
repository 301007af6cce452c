#pragma once
// Logging as a stream with a level: PROBNAS_LOG(info) << "text";  Rank-prefixed when the world has more
// than one rank; only rank 0 prints unless every rank is asked to (log::set_all_ranks).
#include <sstream>
#include <string>

namespace probnas::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
Level level();
Level parse_level(const std::string& name);  // throws probnas::Error on an unknown name
void set_rank(int rank, int size);
int rank();
void set_all_ranks(bool all);
bool enabled(Level level);

class Line {
 public:
  explicit Line(Level level) : level_(level) {}
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  ~Line();
  template <typename T>
  Line& operator<<(const T& value) {
    out_ << value;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream out_;
};

}  // namespace probnas::log

#define PROBNAS_LOG(lvl)                                                       \
  if (!::probnas::log::enabled(::probnas::log::Level::lvl)) {          \
  } else                                                               \
    ::probnas::log::Line(::probnas::log::Level::lvl)
