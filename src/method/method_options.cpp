#include "probnas/method/method_options.h"

#include "probnas/core/error.h"

namespace probnas {

SgdOptions WeightTrainingOptions::sgd() const {
  SgdOptions s;
  s.lr = lr;
  s.momentum = momentum;
  s.weight_decay = weight_decay;
  return s;
}

const OptionBinding<WeightTrainingOptions>& weight_training_options() {
  using O = WeightTrainingOptions;
  static const auto b =
      OptionBinding<O>()
          .real("search.lr", &O::lr, 0.025, 0, 10, "weight learning rate (start of the cosine schedule)")
          .real("search.lr_min", &O::lr_min, 0.001, 0, 10, "weight learning rate at the end of the cosine schedule")
          .real("search.momentum", &O::momentum, 0.9, 0, 1, "SGD momentum of the weights")
          .real("search.weight_decay", &O::weight_decay, 3e-4, 0, 1, "L2 weight decay of the weights")
          .real("search.grad_clip", &O::grad_clip, 5, 0, 1e9, "clip the weight gradient's L2 norm to this (0: no clipping)");
  return b;
}

const OptionBinding<ArchitectureOptions>& architecture_options() {
  using O = ArchitectureOptions;
  static const auto b =
      OptionBinding<O>()
          .real("search.arch_lr", &O::lr, 3e-4, 0, 10, "Adam learning rate of the architecture parameters")
          .real("search.arch_beta1", &O::beta1, 0.5, 0, 0.999999, "Adam beta1 of the architecture parameters")
          .real("search.arch_beta2", &O::beta2, 0.999, 0, 0.999999, "Adam beta2 of the architecture parameters")
          .real("search.arch_init_std", &O::init_std, 1e-3, 0, 10, "architecture parameters start at N(0, std^2)")
          .integer("search.warmup_epochs", &O::warmup_epochs, 0, 0, 1000000,
                   "epochs of weight-only training before architecture steps (progressive learning: at the start of "
                   "every stage)")
          .boolean("search.edge_norm", &O::edge_norm, false,
                   "PC-DARTS edge normalisation (DARTS space): learned softmax weights over the edges into each node "
                   "scale the edges; the genotype keeps the edges with the largest weight x operation weight");
  return b;
}

const OptionBinding<ProgressiveOptions>& progressive_options() {
  using O = ProgressiveOptions;
  static const auto b =
      OptionBinding<O>()
          .text("progressive.k",
                [](O& o, const std::string& v) {
                  o.k_text = v;
                  o.k = parse_int_list(v, "progressive.k");
                },
                "", "DrNAS progressive learning (DARTS space): partial-channel K per stage, e.g. 6,3 (empty: no "
                    "stages); operations widen to C/K at each stage's start")
          .text("progressive.epochs",
                [](O& o, const std::string& v) {
                  o.epochs_text = v;
                  o.epochs = parse_int_list(v, "progressive.epochs");
                },
                "", "epochs per progressive stage, e.g. 25,25 (must add up to search.epochs)")
          .text("progressive.keep",
                [](O& o, const std::string& v) {
                  o.keep_text = v;
                  o.keep = parse_int_list(v, "progressive.keep");
                },
                "", "operations kept per edge in each progressive stage, by learned concentration, e.g. 7,4 (empty: "
                    "all in the first stage, then the stronger half per stage)");
  return b;
}

void check_weight_training(const WeightTrainingOptions& w) {
  PROBNAS_CHECK(w.lr_min <= w.lr, "search.lr_min = ", w.lr_min, " exceeds search.lr = ", w.lr);
}

void refuse_progressive(const ProgressiveOptions& p, const std::string& who) {
  PROBNAS_CHECK(p.k_text.empty(), "progressive.k = ", p.k_text, ": progressive learning is built for DrNAS and DARTS, not ",
                who);
}

void refuse_partial_paths(const MethodBuild& b, const std::string& edge_norm_why, const std::string& partial_why) {
  PROBNAS_CHECK(!b.shared.arch.edge_norm, "search.edge_norm = true: ", edge_norm_why);
  PROBNAS_CHECK(b.space.partial_channels == 1, "space.partial_channels = ", b.space.partial_channels, ": ", partial_why);
}

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& key) {
  std::vector<int64_t> values;
  for (const auto& item : split_list(text)) {
    PROBNAS_CHECK(!item.empty(), key, " = '", text, "': empty entry (write numbers separated by commas)");
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    PROBNAS_CHECK(used == item.size(), key, " = '", text, "': '", item, "' is not an integer");
    values.push_back(v);
  }
  return values;
}

}  // namespace probnas
