#pragma once
// Helpers of the end-to-end tests: run the probnas binary (alone or under mpirun) and read what
// it wrote.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace probnas::test {

struct Result {
  int code = -1;       // exit code; -1 when the process did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing stdout and stderr together.
inline Result run_shell(const std::string& cmd) {
  Result r;
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline Result run(const std::string& args) { return run_shell(std::string(PROBNAS_BINARY) + " " + args); }

// The tiny synthetic data set of the resume and train tests (256 images of 8x8), one thread, and no
// progress lines.
inline const std::string kTinySyntheticRun =
    "--data.dataset synthetic --data.synthetic_count 256 --data.synthetic_size 8 --run.threads 1 "
    "--run.progress_interval 1000 ";

// A command that must fail with `text` in its output.
#define EXPECT_REFUSED(result, text)                                               \
  do {                                                                             \
    const auto& r_ = (result);                                                     \
    EXPECT_NE(r_.code, 0) << r_.output;                                            \
    EXPECT_NE(r_.output.find(text), std::string::npos) << r_.output;               \
  } while (0)

// The mpirun prefix for `np` ranks (root allowed, oversubscribed: CI has 2 cores).
inline std::string mpirun(int np) {
  return std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PMIX_MCA_pcompress_base_silence_warning=1 ") +
         PROBNAS_MPIEXEC + " --oversubscribe --bind-to none -np " + std::to_string(np) + " ";
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The non-empty lines of a file.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// metrics.jsonl lines without the fields that measure time.
inline std::vector<nlohmann::json> timeless_metrics(const std::string& dir) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("wall_s");
    j.erase("images_per_s");
    lines.push_back(j);
  }
  return lines;
}

}  // namespace probnas::test
