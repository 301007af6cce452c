// PGNAS in the method registry: its [pgnas] options (training and the candidate ranking), its
// factory and its report sections.
#include "probnas/core/error.h"
#include "probnas/method/pgnas/pgnas.h"
#include "probnas/method/pgnas/pgnas_report.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

const OptionBinding<PgnasOptions>& pgnas_section() {
  using O = PgnasOptions;
  static const auto b =
      OptionBinding<O>()
          .real("pgnas.temperature", &O::temperature, 0.2, 1e-3, 100,
                "PGNAS: temperature tau of the concrete (Gumbel-sigmoid) gates (0.2: 1/5 as the PGNAS code)")
          .real("pgnas.length_scale", &O::length_scale, 0, 0, 1e6,
                "PGNAS: prior length scale l of the KL term's l^2 (1 - p) / (2N) ||m||^2 (0: l^2 = N x "
                "search.weight_decay, the gated kernels then decay like the other weights at p = 0)")
          .boolean("pgnas.shake", &O::shake, true,
                   "PGNAS: shake-shake the supernet's branches in training (each image's branch weights drawn from "
                   "Dirichlet(1), another draw for the gradient; evaluation averages them), as the paper's "
                   "shake-shake supernets (SupNet-M/MI); false: a plain average")
          .choice("pgnas.prior", &O::prior, "spike_slab", {"spike_slab", "constant_l2"},
                  "PGNAS: the gated kernels' prior term: spike_slab (Eq. 15: l^2 (1 - p) / (2N) ||m||^2, tied to the "
                  "keep probability) or constant_l2 (the paper's ablation, Table 2: l^2 / (2N) ||m||^2, a plain "
                  "weight decay)")
          .real("pgnas.init_drop", &O::init_drop, 0.1, 1e-4, 0.9999, "PGNAS: initial drop probability of every gate group")
          .real("pgnas.drop_lr", [](O& o, double v) { o.drop.lr = v; }, 1e-3, 0, 10,
                "PGNAS: Adam learning rate of the drop logits")
          .integer("pgnas.candidates", [](O& o, int64_t v) { o.ranking.candidates = v; }, 1500, 1, 100000000,
                   "PGNAS: candidates (gates + shared weights) drawn and ranked on the validation split after training")
          .resumable()
          .choice("pgnas.sampling", [](O& o, const std::string& v) { o.ranking.sampling = v; }, "both",
                  {"guided", "random", "both"},
                  "PGNAS: guided (from the learned posterior), random (every gate dropped with pgnas.random_drop: the "
                  "paper's Random baseline), or both (the best guided candidate is the result)")
          .resumable()
          .real("pgnas.random_drop", [](O& o, double v) { o.ranking.random_drop = v; }, -1, -1, 1,
                "PGNAS: drop probability of the random baseline (-1: the learned mean, a comparable kept-channel "
                "fraction)")
          .resumable()
          .choice("pgnas.bn", [](O& o, const std::string& v) { o.ranking.bn = v; }, "running", {"running", "recalibrate"},
                  "PGNAS: BatchNorm statistics of a candidate: running (the supernet's, as the PGNAS code) or "
                  "recalibrate (recomputed on pgnas.bn_images training images per candidate)")
          .resumable()
          .integer("pgnas.bn_images", [](O& o, int64_t v) { o.ranking.bn_images = v; }, 512, 1, 100000000,
                   "PGNAS: training images for pgnas.bn = recalibrate")
          .resumable()
          .integer("pgnas.eval_images", [](O& o, int64_t v) { o.ranking.eval_images = v; }, 0, 0, 1000000000,
                   "PGNAS: held-out images each candidate is scored on (0: the whole architecture split)")
          .resumable()
          .integer("pgnas.eval_batch", [](O& o, int64_t v) { o.ranking.eval_batch = v; }, 500, 1, 1000000,
                   "PGNAS: batch size of candidate evaluation")
          .resumable()
          .boolean("pgnas.test", [](O& o, bool v) { o.ranking.test = v; }, true,
                   "PGNAS: evaluate the best candidates and the supernet on the test split")
          .resumable();
  return b;
}

}  // namespace

MethodEntry pgnas_method_entry() {
  MethodEntry e = method_entry("pgnas", "PGNAS",
                               "PGNAS (Zhou et al., AAAI 2020): variational channel gates on a multi-branch ResNet, then "
                               "candidates drawn and ranked",
                               {"multibranch"}, pgnas_section());
  e.has_phase_after_search = true;
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    refuse_progressive(b.shared.progressive, "PGNAS");
    PgnasOptions p = b.options<PgnasOptions>();
    apply_weight_training(b.shared.weights, p);
    auto net = std::dynamic_pointer_cast<MultiBranchNet>(b.net);
    PROBNAS_CHECK(net != nullptr, "PGNAS needs the multi-branch supernet (search.space = multibranch)");
    return std::make_unique<Pgnas>(net, p, b.key);
  };
  e.report = pgnas_report_sections();
  e.report.title = e.title;
  return e;
}

}  // namespace probnas
