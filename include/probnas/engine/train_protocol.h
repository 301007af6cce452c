#pragma once
// What probnas train trains and how: the train.* options, the genotype they name, and the
// evaluation protocol with its automatic values resolved for the genotype's space and the paper of
// the method that found it (DARTS's train.py / train_imagenet.py, DrNAS's, NAS-Bench-201's
// 200-epoch schedule, PGNAS's fine-tuning).
#include <cstdint>
#include <string>

#include "probnas/core/option_binding.h"
#include "probnas/run/genotype.h"

namespace probnas {

// train.*; a negative or zero value means "the protocol's" where the help says so.
struct TrainOptions {
  std::string genotype;
  std::string protocol = "auto";
  int64_t epochs = -1, batch_size = 0, micro_batches = 1;
  double lr = 0, lr_min = 0, momentum = 0.9, weight_decay = -1;
  std::string lr_schedule = "auto";
  int64_t warmup_epochs = -1;
  double lr_decay = -1;
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
  std::string method;  // the search method genotype.json records ("" for a string or an older file)
};
TrainTarget resolve_train_target(const std::string& value);

// The evaluation protocol with train.*'s automatic values resolved for the genotype's space, its
// image size and the search method that found it (train.protocol = auto: DrNAS's genotypes train
// with DrNAS's protocol, every other DARTS-space genotype with DARTS's).
struct TrainProtocol {
  std::string name;  // "darts", "darts-imagenet", "drnas", "drnas-imagenet", "nb201", "pgnas"
  int64_t epochs = 0, batch_size = 0, channels = 0, cells = 0, cutout = 0, warmup_epochs = 0;
  double lr = 0, lr_min = 0, momentum = 0, weight_decay = 0, grad_clip = 0, auxiliary_weight = 0, drop_path = 0,
         label_smoothing = 0, lr_decay = 0;
  std::string lr_schedule = "cosine";  // "cosine", "linear" (PC-DARTS's and DrNAS's), "exponential" (x lr_decay per epoch)
  bool nesterov = false;
  std::string stem = "cifar";
  std::string to_json() const;
  // The learning rate of epoch `epoch` (0-based) of `epochs`: the schedule, with the first
  // warmup_epochs epochs at lr (e + 1) / warmup_epochs instead.
  double lr_at(int64_t epoch, int64_t epochs) const;
};
TrainProtocol resolve_train_protocol(const TrainOptions& options, const std::string& space, int64_t image_size,
                                     const std::string& method = "");
// A resumed training whose checkpoint's protocol (its JSON) predates train.lr_schedule ran a cosine
// schedule without warm-up: `p` is set back to that where the schedule is automatic. True if it changed.
bool adopt_older_schedule(TrainProtocol& p, const std::string& stored_json, const TrainOptions& options);

}  // namespace probnas
