#pragma once
// The method interface of DESIGN principle 3. A method owns its architecture distribution and
// its update rule; it sees the supernet only through forward(x, ArchSample).
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "probnas/ckpt/state.h"
#include "probnas/core/rng.h"
#include "probnas/data/loader.h"
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
  // Method-specific results for genotype.json, as a JSON object (empty: none).
  virtual std::string report_json() const { return {}; }
  // The same for people: lines printed after the search (empty: none).
  virtual std::string report_text() const { return {}; }
  // Named scalars for metrics (entropy, concentration, ...). Reads from the device: log time only.
  virtual std::vector<std::pair<std::string, double>> scalars() const = 0;
};

class Config;
// Fails naming both keys when search.method and search.space do not go together.
void check_method_and_space(const Config& config);
std::unique_ptr<SearchMethod> make_method(const Config& config, std::shared_ptr<Supernet> net, const RngKey& key);

// Mean over edges of the categorical entropy (nats) of each edge's mixing weights.
double mean_edge_entropy(const std::vector<torch::Tensor>& probs);

}  // namespace probnas
