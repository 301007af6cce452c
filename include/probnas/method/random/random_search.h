#pragma once
// Random search with weight sharing (Li & Talwalkar, "Random Search and Reproducibility for Neural
// Architecture Search", UAI 2019), the baseline NAS papers measure against:
//   1. training: every micro-batch of every step trains the shared weights under an architecture
//      drawn uniformly from the space (keyed by (seed, "random", step, micro-batch)); NB201: one
//      operation per edge; DARTS space: per node two (input, operation) paths, as PARSEC's cells;
//   2. selection: a pool of random.candidates architectures, candidate i keyed by (seed,
//      "random-candidate", i), is scored with the shared weights on the architecture (validation)
//      split during the last random.eval_epochs epochs, one candidate per step in turn on that step's
//      validation batch, BatchNorm with the batch's statistics (scores summed over ranks); the
//      genotype is the candidate with the best validation accuracy (then the lower loss, then the
//      lower index). DARTS-space draws are rejected until every node has two distinct inputs and
//      no `none`, so every candidate is a DARTS cell.
// The scores are method state, checkpointed with it, so a resumed search selects the same genotype.
#include "probnas/method/categorical.h"
#include "probnas/method/method.h"
#include "probnas/optim/optimizers.h"

namespace probnas {

struct RandomSearchOptions {
  SgdOptions weights;
  double lr_min = 0.001;
  double grad_clip = 5;
  int64_t candidates = 100;  // the pool scored on validation data
  int64_t eval_epochs = 1;   // the last epochs that score the pool
};

class RandomSearch : public SearchMethod {
 public:
  RandomSearch(std::shared_ptr<Supernet> net, RandomSearchOptions options, const RngKey& key);
  std::string name() const override { return "random"; }
  void begin_epoch(int64_t epoch, int64_t epochs) override;
  void step(const std::vector<Batch>& train, const std::vector<Batch>& val, const StepContext& ctx,
            StepMetrics& metrics) override;
  // A uniformly drawn architecture.
  ArchSample sample(const RngKey& key) override;
  // The sampling distribution: uniform paths (the genotype is not derived from it).
  std::vector<torch::Tensor> expected_weights() const override;
  // The best scored candidate (before any is scored: candidate 0).
  Genotype derive() const override;
  void save(ckpt::State& method, ckpt::State& optim) const override;
  void load(const ckpt::State& method, const ckpt::State& optim) override;
  bool updates_architecture() const override { return scoring_; }
  std::string report_json() const override;
  std::string report_text() const override;
  std::vector<std::pair<std::string, double>> scalars() const override;

  // Candidate i of the pool.
  ArchDraw candidate(int64_t i) const;
  // [candidates, 3] float64 on the CPU: correct, loss sum, images per candidate.
  torch::Tensor scores() const { return scores_.to(torch::kCPU); }
  // Candidate indices by validation accuracy, best first (scored candidates only).
  std::vector<int64_t> ranking() const;

 private:
  Genotype genotype_of(const ArchDraw& draw) const;
  bool valid(const ArchDraw& draw) const;
  // A uniform draw over the space's cells (DARTS space: by rejection of invalid cells).
  ArchDraw uniform_draw(const RngKey& key) const;
  std::shared_ptr<Supernet> net_;
  RandomSearchOptions options_;
  ArchCategoricals dist_;
  RngKey key_;
  torch::Tensor uniform_;  // [variables, max options] float64 CPU: the uniform sampling probabilities
  std::vector<torch::Tensor> weights_;
  Sgd weight_opt_;
  torch::Tensor scores_;  // [candidates, 3] float64 on the device
  bool scoring_ = false;
  int64_t first_scoring_epoch_ = 0, steps_per_epoch_ = 0;
};

}  // namespace probnas
