#pragma once
// The method interface of DESIGN principle 3. A method owns its architecture distribution and
// its update rule; it sees the supernet only through forward(x, ArchSample).
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "probnas/ckpt/state.h"
#include "probnas/core/rng.h"
#include "probnas/data/loader.h"
#include "probnas/data/source.h"
#include "probnas/space/genotype.h"
#include "probnas/space/supernet.h"

namespace probnas {

class Communicator;

// Loss and accuracy sums kept on the device; read on the host only when logging (principle 8).
class StepMetrics {
 public:
  void add(bool validation, const torch::Tensor& logits, const torch::Tensor& labels);
  void reset();
  struct Values {
    double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;
    int64_t train_count = 0, val_count = 0;
  };
  // Sums over ranks when `comm` is given (one host sync).
  Values read(Communicator* comm = nullptr) const;
  // This rank's running sums ([6] float64; zeros before the first add), for checkpoints.
  torch::Tensor sums() const;
  void set_sums(const torch::Tensor& sums, const c10::Device& device);

 private:
  torch::Tensor sums_;  // [train_loss, train_correct, train_n, val_loss, val_correct, val_n]
};

struct StepContext {
  int64_t epoch = 0;        // 0-based
  int64_t global_step = 0;  // steps since the start of the search
  RngKey key{0};            // the run's key; methods derive their draws from it
  Communicator* comm = nullptr;
  int64_t train_examples = 0;  // examples in the weight split (N of PGNAS's KL term)
  // Micro-batches of a global training and validation batch over all ranks (BatchNormSum's units;
  // 0: only this rank's, which is right on one rank).
  int64_t train_micro_batches = 0, val_micro_batches = 0;
};

// What a method's post-search phase gets (SearchMethod::after_search).
struct AfterSearchContext {
  const ImageSource* data = nullptr;  // the training images the search split
  torch::Tensor weight_examples, arch_examples;  // the split: indices into `data`
  ChannelStats stats;                 // the training images' normalisation
  bool normalize = true;              // data.normalize
  int64_t image_size = 0;             // data.image_size (0: as stored)
  // The test images (nullptr where the data has no test split of its own).
  std::function<std::shared_ptr<const ImageSource>()> test_data;
  c10::Device device = c10::kCPU;
  Communicator* comm = nullptr;
  std::string dir;                    // the run folder (rank 0 writes)
  int64_t trained_steps = 0;
  RngKey key{0};
  int64_t seed = 0;                   // run.seed (for the results file)
  double progress_interval = 10;      // seconds between progress lines
  std::string config_hash;            // the checkpoint's resume hash: what the trained weights depend on
};

struct AfterSearchOutcome {
  bool interrupted = false;  // a signal stopped it (what is finished is on disk)
  std::string signal;
  std::string stopped_in;     // for the log: "during the candidate ranking; the ranked candidates are in ..."
  std::string genotype_text;  // the result, described (replaces the derived genotype's text)
  std::string report;         // lines for the terminal (rank 0)
  std::string files;          // what the run folder now holds, for the closing line
};

class SearchMethod {
 public:
  virtual ~SearchMethod() = default;
  virtual std::string name() const = 0;
  virtual void begin_epoch(int64_t epoch, int64_t epochs) = 0;
  // One search step on this rank's micro-batches of one global training and validation batch.
  virtual void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
                    StepMetrics& metrics) = 0;
  // An architecture drawn from the current distribution, reproducible from `key` alone.
  virtual ArchSample sample(const RngKey& key) = 0;
  // Expected mixing weights per group ([edges, ops] each): what the genotype is derived from.
  virtual std::vector<torch::Tensor> expected_weights() const = 0;
  virtual Genotype derive() const = 0;
  // The method's own state (architecture distribution, counters) into `method`, its optimisers'
  // state into `optim` (the checkpoint's /method and /optim groups).
  virtual void save(ckpt::State& method, ckpt::State& optim) const = 0;
  virtual void load(const ckpt::State& method, const ckpt::State& optim) = 0;
  // Before the network's tensors are loaded on resume: gives the supernet the shape the
  // checkpoint's tensors have (progressive learning prunes and widens it). Default: nothing.
  virtual void restore_structure(const ckpt::State& /*method*/) {}
  // Whether the current epoch's steps update the architecture (false in weight-only warm-up).
  virtual bool updates_architecture() const { return true; }
  // Whether ranks split the method's samples instead of the data: step() then receives every
  // micro-batch of the global batches on every rank (PARSEC's importance samples).
  virtual bool splits_samples() const { return false; }
  // The name in logs and titles: name(), with its variant ("darts (second order)").
  virtual std::string title() const { return name(); }
  // With splits_samples(): the samples per step that the ranks split (for the log).
  virtual int64_t samples_per_step() const { return 0; }
  // The architecture split's global batch when search.arch_batch_size = 0, in images (0: the
  // weight batch's size; GibbsNAS: the paper's 2048).
  virtual int64_t default_arch_batch() const { return 0; }
  // A phase after the last search step (PGNAS ranks candidates): run by the engine after the search
  // and by probnas sample. Collective: every rank calls it.
  virtual bool has_after_search() const { return false; }
  virtual AfterSearchOutcome after_search(const AfterSearchContext& /*context*/) { return {}; }
  // Method-specific results for genotype.json, as a JSON object (empty: none).
  virtual std::string report_json() const { return {}; }
  // The same for people: lines printed after the search (empty: none).
  virtual std::string report_text() const { return {}; }
  // Named scalars for metrics (entropy, concentration, ...). Reads from the device: log time only.
  virtual std::vector<std::pair<std::string, double>> scalars() const = 0;
};

// Mean over edges of the categorical entropy (nats) of each edge's mixing weights.
double mean_edge_entropy(const std::vector<torch::Tensor>& probs);

}  // namespace probnas
