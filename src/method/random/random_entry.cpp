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
  MethodEntry e;
  e.name = "random";
  e.title = "Random search";
  e.summary = "random search with weight sharing (Li & Talwalkar, UAI 2019): the baseline";
  e.spaces = {"nb201", "darts"};
  e.declare_options = [](OptionTable& t) { random_section().declare(t); };
  e.read_options = [](const Config& c) { return std::any(random_section().read(c)); };
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    const auto& s = b.options<RandomSection>();
    refuse_progressive(b.shared.progressive, "random search (which trains single sampled paths)");
    refuse_partial_paths(b, "random search samples whole architectures (leave it false)",
                         "random search runs whole sampled paths (leave it at 1)");
    check_weight_training(b.shared.weights);
    RandomSearchOptions r;
    r.weights = b.shared.weights.sgd();
    r.lr_min = b.shared.weights.lr_min;
    r.grad_clip = b.shared.weights.grad_clip;
    r.candidates = s.candidates;
    r.eval_epochs = s.eval_epochs;
    PROBNAS_CHECK(r.eval_epochs <= b.epochs, "random.eval_epochs = ", r.eval_epochs, " exceeds search.epochs = ", b.epochs);
    return std::make_unique<RandomSearch>(b.net, r, b.key);
  };
  e.report.title = e.title;
  return e;
}

}  // namespace probnas
