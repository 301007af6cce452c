// DARTS in the method registry: its [darts] options and its factory.
#include "probnas/core/error.h"
#include "probnas/method/darts/darts.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

struct DartsSection {
  double arch_weight_decay = 1e-3;
  int64_t order = 1;
};

const OptionBinding<DartsSection>& darts_section() {
  using O = DartsSection;
  static const auto b =
      OptionBinding<O>()
          .real("darts.arch_weight_decay", &O::arch_weight_decay, 1e-3, 0, 1, "L2 decay of DARTS's alpha (Adam weight decay)")
          .integer("darts.order", &O::order, 1, 1, 2,
                   "DARTS's architecture gradient: 1 first order (weights held fixed); 2 second order (validation loss "
                   "after one unrolled weight step, Hessian-vector product by finite differences; a search step takes "
                   "about 3x as long)");
  return b;
}

}  // namespace

MethodEntry darts_method_entry() {
  MethodEntry e = method_entry("darts", "DARTS",
                               "DARTS (Liu et al., ICLR 2019): softmax over the operations, first or second order",
                               {"nb201", "darts"}, darts_section());
  e.variant_keys = {"darts.order"};
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    const auto& d = b.options<DartsSection>();
    GradientMethodOptions o = gradient_method_options(b, d.arch_weight_decay);
    o.second_order = d.order == 2;
    return std::make_unique<Darts>(b.net, o, b.key);
  };
  e.check_unselected = [](const std::any& own, const std::string& selected) {
    const auto& d = std::any_cast<const DartsSection&>(own);
    PROBNAS_CHECK(d.order == 1, "darts.order = ", d.order, " applies to search.method = darts only; ", selected,
                  " does not use it (leave darts.order at 1)");
  };
  return e;
}

}  // namespace probnas
