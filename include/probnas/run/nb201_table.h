#pragma once
// NAS-Bench-201's 200-epoch test accuracies of all 15,625 cells (nats_bench.csv), for scoring
// a derived NB201 cell the way NAS papers report it.
#include <optional>
#include <string>
#include <unordered_map>

namespace probnas {

struct Nb201Score {
  int64_t index = -1;
  double cifar10_test = 0, cifar100_test = 0, imagenet16_test = 0;
};

// The table a `report.nb201_table` value names: "auto" finds the copy shipped with probnas
// (inputs/nb201/nats_bench.csv of the clone the executable was built in, share/probnas/inputs/nb201/
// of its install prefix, then $PROBNAS_HOME/inputs/nb201/, then the source tree it was built from;
// the environment variable PROBNAS_NB201_TABLE overrides); "none" or "" means no scoring (returns ""); anything else
// is a path, which must exist. `key` names the option in errors.
std::string locate_nb201_table(const std::string& value, const std::string& key = "report.nb201_table");

class Nb201Table {
 public:
  explicit Nb201Table(const std::string& csv_path);  // names the file and line on malformed input
  std::optional<Nb201Score> find(const std::string& arch_string) const;
  // Why `arch_string` has no row, in words (not NB201 notation, or a cell the table lacks).
  std::string why_missing(const std::string& arch_string) const;
  size_t size() const { return rows_.size(); }

 private:
  std::unordered_map<std::string, Nb201Score> rows_;
};

}  // namespace probnas
