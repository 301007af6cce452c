// PARSEC in the method registry: its [parsec] options, its factory and its report sections.
#include "probnas/method/parsec/parsec.h"
#include "probnas/method/parsec/parsec_report.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

struct ParsecSection {
  int64_t samples = 8, top_k = 10, warmup_epochs = -1;
  double arch_lr = 3e-2;
  std::string init_from;
};

const OptionBinding<ParsecSection>& parsec_section() {
  using O = ParsecSection;
  static const auto b =
      OptionBinding<O>()
          .integer("parsec.samples", &O::samples, 8, 1, 1000000,
                   "PARSEC: architectures K sampled per step for the importance-weighted gradients (ranks split them: "
                   "a multiple of the number of ranks)")
          .real("parsec.arch_lr", &O::arch_lr, 3e-2, 0, 10,
                "PARSEC: Adam learning rate of the categorical logits pi (the paper gives none; 3e-2 validated best of "
                "1e-3, 3e-3, 1e-2 and 3e-2, docs/methods/parsec.md)")
          .integer("parsec.warmup_epochs", &O::warmup_epochs, -1, -1, 1000000,
                   "PARSEC: epochs of weight training on uniform samples before pi moves (-1: search.warmup_epochs "
                   "where above 0, else 3/10 of search.epochs rounded up, leaving pi at least the last epoch: with less PARSEC collapsed to "
                   "parameter-free cells, docs/methods/parsec.md; 0: none, as the paper)")
          .text("parsec.init_from", &O::init_from, "",
                "PARSEC: the run folder of an earlier PARSEC search of the same space whose learned distribution pi "
                "starts this one (the paper's transfer to a larger network or data set; empty: uniform)")
          .integer("parsec.top_k", &O::top_k, 10, 1, 100000, "PARSEC: most probable architectures listed in genotype.json")
          .resumable();
  return b;
}

}  // namespace

MethodEntry parsec_method_entry() {
  MethodEntry e = method_entry("parsec", "PARSEC",
                               "PARSEC (Casale et al., 2019): a categorical architecture distribution by "
                               "importance-weighted empirical Bayes",
                               {"nb201", "darts"}, parsec_section());
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    const auto& s = b.options<ParsecSection>();
    refuse_progressive(b.shared.progressive, "PARSEC (which samples single paths)");
    refuse_partial_paths(b, "edge normalisation is built for the gradient methods, not PARSEC",
                         "PARSEC runs whole sampled paths (leave it at 1)");
    ParsecOptions p;
    apply_weight_training(b.shared.weights, p);
    p.arch.lr = s.arch_lr;
    p.samples = s.samples;
    p.warmup_epochs = parsec_warmup_epochs(s.warmup_epochs, b.shared.arch.warmup_epochs, b.epochs);
    p.legacy_warmup_epochs = b.shared.arch.warmup_epochs;
    p.top_k = s.top_k;
    if (!s.init_from.empty() && !b.resuming) {  // a resume continues from its own checkpoint
      const ArchCategoricals dist(b.net->space_name(), b.net->arch_shape());
      std::vector<std::string> names;
      for (const auto& v : dist.variable_list()) names.push_back(v.name);
      p.initial_logits = read_parsec_logits(s.init_from, b.net->space_name(), names);
    }
    return std::make_unique<Parsec>(b.net, p, b.key);
  };
  e.variant_keys = {"parsec.arch_lr"};  // compare keeps searches with other rates of pi apart
  e.report = parsec_report_sections();
  e.report.title = e.title;
  return e;
}

}  // namespace probnas
