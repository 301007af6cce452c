#pragma once
// A wall-clock stopwatch (steady clock); durations are printed by core/format.h.
#include <chrono>
#include <string>

namespace probnas {

class Stopwatch {
 public:
  Stopwatch() : start_(clock::now()) {}
  void reset() { start_ = clock::now(); }
  double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  clock::time_point start_;
};

}  // namespace probnas
