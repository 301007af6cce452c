#include "probnas/engine/nb201_table.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "probnas/core/error.h"

namespace probnas {

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

}  // namespace probnas
