#pragma once
// The options every method reads (search.lr ... search.edge_norm, progressive.*), typed, with their
// declarations (core/option_binding.h). A method's own [section] lives in its folder.
#include <cstdint>
#include <string>
#include <vector>

#include <any>
#include <memory>

#include "probnas/core/option_binding.h"
#include "probnas/core/rng.h"
#include "probnas/optim/optimizers.h"
#include "probnas/space/supernet.h"

namespace probnas {

// The weights' momentum SGD with its cosine schedule and clipping: the same for every method.
struct WeightTrainingOptions {
  double lr = 0.025, lr_min = 0.001, momentum = 0.9, weight_decay = 3e-4, grad_clip = 5;
  SgdOptions sgd() const;  // lr, momentum, weight_decay (the schedule's maximum lr)
};

// The architecture parameters' Adam and initialisation (the gradient methods), the warm-up and
// PC-DARTS edge normalisation.
struct ArchitectureOptions {
  double lr = 3e-4, beta1 = 0.5, beta2 = 0.999, init_std = 1e-3;
  int64_t warmup_epochs = 0;
  bool edge_norm = false;
};

// DrNAS's progressive learning as given (progressive.k / epochs / keep; empty lists: off). The
// stages are validated against the supernet when the method is built (method/progressive.h).
struct ProgressiveOptions {
  std::vector<int64_t> k, epochs, keep;
  std::string k_text, epochs_text, keep_text;  // as written, for messages
  bool enabled() const { return !k.empty(); }
};

struct SharedMethodOptions {
  WeightTrainingOptions weights;
  ArchitectureOptions arch;
  ProgressiveOptions progressive;
};

const OptionBinding<WeightTrainingOptions>& weight_training_options();  // search.lr ... search.grad_clip
const OptionBinding<ArchitectureOptions>& architecture_options();       // search.arch_lr ... search.edge_norm
const OptionBinding<ProgressiveOptions>& progressive_options();         // progressive.*

// What a method's factory gets (MethodEntry::make): the supernet, the run's key, the options every
// method shares, the space and schedule it runs in, and its own options (the std::any its entry's
// read_options returned).
struct MethodBuild {
  std::shared_ptr<Supernet> net;
  RngKey key{0};
  SpaceOptions space;  // as the supernet was built (space name, channels, K)
  int64_t epochs = 1;  // search.epochs
  SharedMethodOptions shared;
  std::any own;
  // A checkpoint is loaded into the method after it is built (a resume): the method takes nothing
  // from elsewhere at start-up (PARSEC's parsec.init_from is read on a fresh start only).
  bool resuming = false;
  template <class T>
  const T& options() const { return std::any_cast<const T&>(own); }
};

// The checks every method's factory makes on the shared options: search.lr_min <= search.lr.
void check_weight_training(const WeightTrainingOptions& weights);
// Checks the shared weight training and copies it into a method's options struct (any with the
// members weights, lr_min and grad_clip).
template <class Options>
void apply_weight_training(const WeightTrainingOptions& w, Options& o) {
  check_weight_training(w);
  o.weights = w.sgd();
  o.lr_min = w.lr_min;
  o.grad_clip = w.grad_clip;
}
// For methods that do not mix operations: progressive.k must be empty (`who` names the method in
// the message, with why).
void refuse_progressive(const ProgressiveOptions& progressive, const std::string& who);
// For methods that run whole sampled paths: no edge normalisation, no partial channels.
void refuse_partial_paths(const MethodBuild& build, const std::string& edge_norm_why, const std::string& partial_why);

// "6,3" -> {6, 3}; errors name `key`.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& key);

}  // namespace probnas
