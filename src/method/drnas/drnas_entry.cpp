// DrNAS in the method registry: its [drnas] options and its factory.
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

struct DrnasSection {
  double reg_scale = 1e-3;
};

const OptionBinding<DrnasSection>& drnas_section() {
  static const auto b = OptionBinding<DrnasSection>().real(
      "drnas.reg_scale", &DrnasSection::reg_scale, 1e-3, 0, 1, "DrNAS L2 anchor on eta (Adam weight decay lambda)");
  return b;
}

}  // namespace

MethodEntry drnas_method_entry() {
  MethodEntry e = method_entry("drnas", "DrNAS",
                               "DrNAS (Chen et al., ICLR 2021): Dirichlet mixing weights, pathwise gradients; "
                               "progressive learning",
                               {"nb201", "darts"}, drnas_section());
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    return std::make_unique<Drnas>(b.net, gradient_method_options(b, b.options<DrnasSection>().reg_scale), b.key);
  };
  return e;
}

}  // namespace probnas
