#pragma once
// What probnas train trains and how: the train.* options, the genotype they name, and the
// evaluation protocol with its automatic values resolved for the genotype's space (DARTS's
// train.py / train_imagenet.py, NAS-Bench-201's 200-epoch schedule, PGNAS's fine-tuning).
#include <cstdint>
#include <string>

#include "probnas/core/option_binding.h"
#include "probnas/run/genotype.h"

namespace probnas {

// train.*; a negative or zero value means "the protocol's" where the help says so.
struct TrainOptions {
  std::string genotype;
  int64_t epochs = -1, batch_size = 0, micro_batches = 1;
  double lr = 0, lr_min = 0, momentum = 0.9, weight_decay = -1;
  std::string nesterov = "auto";
  double grad_clip = -1;
  int64_t channels = 0, cells = 0;
  std::string stem = "auto";
  double auxiliary_weight = -1, drop_path = -1;
  int64_t cutout = -1;
  double label_smoothing = -1;
  int64_t eval_every = 0, eval_batch = 500;
};
const OptionBinding<TrainOptions>& train_options();

// What train.genotype names: a genotype.json (with the search run folder it is in), or a genotype string.
struct TrainTarget {
  Genotype genotype;
  std::string file;    // the genotype.json ("" for a string)
  std::string folder;  // the search run folder holding it ("" for a string)
  bool pgnas = false;  // a PGNAS run: the network is its best_network.h5
};
TrainTarget resolve_train_target(const std::string& value);

// The evaluation protocol with train.*'s automatic values resolved for the genotype's space.
struct TrainProtocol {
  std::string name;  // "darts", "darts-imagenet", "nb201", "pgnas"
  int64_t epochs = 0, batch_size = 0, channels = 0, cells = 0, cutout = 0;
  double lr = 0, lr_min = 0, momentum = 0, weight_decay = 0, grad_clip = 0, auxiliary_weight = 0, drop_path = 0,
         label_smoothing = 0;
  bool nesterov = false;
  std::string stem = "cifar";
  std::string to_json() const;
};
TrainProtocol resolve_train_protocol(const TrainOptions& options, const std::string& space, int64_t image_size);

}  // namespace probnas
