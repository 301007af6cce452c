// Random search in the method registry: its [random] options and its factory.
#include "probnas/core/error.h"
#include "probnas/method/random/random_search.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

struct RandomSection {
  int64_t candidates = 100, eval_epochs = 1;
};

const OptionBinding<RandomSection>& random_section() {
  using O = RandomSection;
  static const auto b =
      OptionBinding<O>()
          .integer("random.candidates", &O::candidates, 100, 1, 100000000,
                   "random search: architectures drawn and scored with the shared weights on the validation split; "
                   "the best is the genotype")
          .integer("random.eval_epochs", &O::eval_epochs, 1, 1, 1000000,
                   "random search: the last epochs in which the candidates are scored, one per step in turn");
  return b;
}

}  // namespace

MethodEntry random_method_entry() {
  MethodEntry e = method_entry("random", "Random search",
                               "random search with weight sharing (Li & Talwalkar, UAI 2019): the baseline",
                               {"nb201", "darts"}, random_section());
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    const auto& s = b.options<RandomSection>();
    refuse_progressive(b.shared.progressive, "random search (which trains single sampled paths)");
    refuse_partial_paths(b, "random search samples whole architectures (leave it false)",
                         "random search runs whole sampled paths (leave it at 1)");
    RandomSearchOptions r;
    apply_weight_training(b.shared.weights, r);
    r.candidates = s.candidates;
    r.eval_epochs = s.eval_epochs;
    PROBNAS_CHECK(r.eval_epochs <= b.epochs, "random.eval_epochs = ", r.eval_epochs, " exceeds search.epochs = ", b.epochs);
    return std::make_unique<RandomSearch>(b.net, r, b.key);
  };
  return e;
}

}  // namespace probnas
