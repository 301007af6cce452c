#include "probnas/run/nb201_table.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/run/notation.h"

namespace probnas {

std::string locate_nb201_table(const std::string& value, const std::string& key) {
  if (value.empty() || value == "none") return {};
  if (value != "auto") {
    PROBNAS_CHECK(file_exists(value), key, " = ", value, ": no such file (auto: the table shipped with probnas; none: no "
                  "NAS-Bench-201 scores)");
    return value;
  }
  if (const char* env = std::getenv("PROBNAS_NB201_TABLE"); env && *env) {
    PROBNAS_CHECK(file_exists(env), key, " = auto: PROBNAS_NB201_TABLE = ", env, " does not exist");
    return env;
  }
  std::vector<std::string> tried;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto bin = exe.parent_path();
    // build/probnas in a clone; P/bin/probnas in an install prefix (cmake --install).
    for (const auto& rel : {"../inputs/nb201/nats_bench.csv", "../share/probnas/inputs/nb201/nats_bench.csv"})
      tried.push_back((bin / rel).lexically_normal().string());
  }
  // The module file's PROBNAS_HOME (an install's share/probnas, or a clone).
  if (const char* home = std::getenv("PROBNAS_HOME"); home && *home)
    tried.push_back((std::filesystem::path(home) / "inputs/nb201/nats_bench.csv").lexically_normal().string());
#ifdef PROBNAS_SOURCE_TREE
  tried.push_back(std::string(PROBNAS_SOURCE_TREE) + "/inputs/nb201/nats_bench.csv");
#endif
  for (const auto& t : tried)
    if (file_exists(t)) return t;
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  PROBNAS_FAIL(key, " = auto: the shipped NAS-Bench-201 table is not in any of ", list,
               "; give its path (inputs/nb201/nats_bench.csv of the probnas sources) or set PROBNAS_NB201_TABLE");
}

Nb201Table::Nb201Table(const std::string& path) {
  std::ifstream in(path);
  PROBNAS_CHECK(in.good(), "report.nb201_table: '", path, "' cannot be opened");
  std::string line;
  std::getline(in, line);
  PROBNAS_CHECK(line.rfind("CIFAR10TestAccuracy200Epochs", 0) == 0, "report.nb201_table: '", path,
                "' does not start with the nats_bench.csv header (CIFAR10TestAccuracy200Epochs,...)");
  int64_t index = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string item; std::getline(ss, item, ',');) f.push_back(item);
    PROBNAS_CHECK(f.size() >= 4, "report.nb201_table: '", path, "' line ", index + 2, " has ", f.size(),
                  " fields, expected 5");
    Nb201Score s;
    s.index = index++;
    try {
      s.cifar10_test = std::stod(f[0]);
      s.cifar100_test = std::stod(f[1]);
      s.imagenet16_test = std::stod(f[2]);
    } catch (const std::exception&) {
      PROBNAS_FAIL("report.nb201_table: '", path, "' line ", index + 1, " has a non-numeric accuracy");
    }
    rows_.emplace(f[3], s);
  }
  PROBNAS_CHECK(!rows_.empty(), "report.nb201_table: '", path, "' holds no rows");
}

std::optional<Nb201Score> Nb201Table::find(const std::string& arch) const {
  auto it = rows_.find(arch);
  if (it == rows_.end()) return std::nullopt;
  return it->second;
}

std::string Nb201Table::why_missing(const std::string& arch) const {
  if (rows_.count(arch)) return {};
  try {
    parse_nb201(arch);
  } catch (const std::exception& e) {
    return std::string("not an NB201 cell string (") + e.what() + ")";
  }
  return "a well-formed NB201 cell that the table's " + std::to_string(rows_.size()) +
         " rows do not hold (operations outside none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3?)";
}

}  // namespace probnas
