#pragma once
// probnas::Error and PROBNAS_CHECK: every failure a person may cause (config, data, checkpoints)
// becomes one line naming the file/key, what was expected and what was found.
#include <sstream>
#include <stdexcept>
#include <string>

namespace probnas {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file = "", int line = 0);
  // Source location, for --run.log_level debug; the message itself is for people.
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace probnas

#define PROBNAS_FAIL(...) throw ::probnas::Error(::probnas::detail::concat(__VA_ARGS__), __FILE__, __LINE__)
#define PROBNAS_CHECK(cond, ...) \
  do {                            \
    if (!(cond)) PROBNAS_FAIL(__VA_ARGS__); \
  } while (false)
