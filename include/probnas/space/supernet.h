#pragma once
// The interface every search space's supernet offers the engine and the methods.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "probnas/space/arch.h"
#include "probnas/space/genotype.h"

namespace probnas {

class Config;

class Supernet : public torch::nn::Module {
 public:
  // Logits for images `x` under architecture `arch` (dense mixing weights or one choice per edge).
  virtual torch::Tensor forward(const torch::Tensor& x, const ArchSample& arch) = 0;
  virtual const ArchShape& arch_shape() const = 0;
  virtual std::string space_name() const = 0;
  // The discrete architecture from per-edge operation probabilities (one [edges, ops] per group).
  virtual Genotype derive(const std::vector<torch::Tensor>& probs) const {
    return argmax_genotype(space_name(), arch_shape(), probs);
  }
  // The network weights the weight optimiser trains (all registered parameters).
  std::vector<torch::Tensor> weights() { return parameters(); }
};

struct SpaceOptions {
  std::string space = "nb201";
  int64_t channels = 16;        // C
  int64_t cells_per_stage = 5;  // N (NB201)
  int64_t cells = 8;            // cells of the DARTS space (8: the search proxy; 20: evaluation size)
  std::string stem = "cifar";   // DARTS space: "cifar" (3x3 conv, full size) or "imagenet" (three stride-2 convs, 1/8)
  int64_t input_channels = 3;
  int64_t classes = 10;
};

std::shared_ptr<Supernet> make_supernet(const SpaceOptions& options);

}  // namespace probnas
