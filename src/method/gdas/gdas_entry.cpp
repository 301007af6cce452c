// GDAS in the method registry: its [gdas] options and its factory.
#include "probnas/core/error.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

struct GdasSection {
  GdasOptions gdas;
  double arch_weight_decay = 1e-3;
};

const OptionBinding<GdasSection>& gdas_section() {
  static const auto b =
      OptionBinding<GdasSection>()
          .real("gdas.tau_max", [](GdasSection& o, double v) { o.gdas.tau_max = v; }, 10, 1e-4, 1e4,
                "GDAS Gumbel-softmax temperature in the first epoch")
          .real("gdas.tau_min", [](GdasSection& o, double v) { o.gdas.tau_min = v; }, 0.1, 1e-4, 1e4,
                "GDAS temperature in the last epoch (linear in between; at most gdas.tau_max)")
          .real("gdas.arch_weight_decay", &GdasSection::arch_weight_decay, 1e-3, 0, 1,
                "L2 decay of GDAS's alpha (Adam weight decay)");
  return b;
}

}  // namespace

MethodEntry gdas_method_entry() {
  MethodEntry e = method_entry("gdas", "GDAS",
                               "GDAS (Dong & Yang, CVPR 2019): one Gumbel-softmax sampled operation per edge",
                               {"nb201", "darts"}, gdas_section());
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    const auto& g = b.options<GdasSection>();
    GradientMethodOptions o = gradient_method_options(b, g.arch_weight_decay);
    PROBNAS_CHECK(o.stages.empty(), "progressive.k = ", b.shared.progressive.k_text, ": progressive learning is built "
                  "for DrNAS and DARTS (search.method = drnas or darts), not GDAS");
    return std::make_unique<Gdas>(b.net, o, g.gdas, b.key);
  };
  return e;
}

}  // namespace probnas
