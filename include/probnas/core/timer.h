#pragma once
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

// "1h02m03s", "4m05s", "12s"
std::string format_duration(double seconds);

}  // namespace probnas
