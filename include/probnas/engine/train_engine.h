#pragma once
// probnas train: a searched architecture trained from scratch on the whole training split and
// tested on the test split, data-parallel across ranks (the same global batches and keyed draws as
// the search, so 1 and P ranks train the same network), checkpointed and resumable like a search.
// PGNAS's result is a trained candidate already: it is tested as sampled, or fine-tuned.
#include <cstdint>
#include <string>

#include "probnas/core/config.h"
#include "probnas/space/genotype.h"

namespace probnas {

class Communicator;

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
TrainProtocol resolve_train_protocol(const Config& config, const std::string& space, int64_t image_size);

struct TrainSummary {
  std::string run_dir;
  std::string mode;  // retrained, as_sampled, fine_tuned
  double test_acc = 0, test_loss = 0;
  int64_t test_images = 0, params = 0, flops = 0, epochs = 0, steps = 0;
  double wall_seconds = 0;
  bool interrupted = false;
  std::string signal, checkpoint;
};

// Runs the training the config describes on `comm`'s ranks and writes the run folder (rank 0).
TrainSummary run_training(const Config& config, Communicator& comm);
// The run folder: run.dir, or <the genotype file's folder>/train, or outputs/train-<space>-<dataset>-seed<seed>.
std::string train_directory(const Config& config, const TrainTarget& target);

}  // namespace probnas
