#pragma once
// The interface every search space's supernet offers the engine and the methods.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "probnas/core/option_binding.h"
#include "probnas/space/arch.h"
#include "probnas/space/genotype.h"
#include "probnas/space/ops.h"

namespace probnas {

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

  // Progressive learning (DrNAS), where the space supports it: drop the operations whose `keep`
  // entry ([edges, ops] bool per group) is false, and re-split the mixed edges with partial-channel
  // factor K = k, widening the operations (new weights from `widener`'s random mapping).
  virtual void prune_operations(const std::vector<torch::Tensor>& keep);
  virtual void set_partial_channels(int64_t k, Widener& widener);
  virtual int64_t partial_channels() const { return 1; }
  // Fused cells (the default where a space has them) or one edge and operation at a time, the
  // reference path the tests compare the fused one with. Spaces without fused cells ignore it.
  virtual void set_fused(bool) {}
  // Channels-last (NHWC) memory for every 4-D weight and for the images `forward` takes: oneDNN's
  // fast layout on CPU (see run.channels_last). Values agree with NCHW up to float rounding;
  // checkpoints stay NCHW (they are written contiguous) and load into either. Kept through
  // progressive widening.
  void set_channels_last(bool on);
  bool channels_last() const { return channels_last_; }

 protected:
  // The images in the supernet's memory format: the first step of every space's forward.
  torch::Tensor in_memory_format(const torch::Tensor& x) const { return images_in_format(x, channels_last_); }
  // Re-applies the memory format to weights an operation rebuilt (after widening).
  void apply_memory_format() { to_memory_format(*this, channels_last_); }

 private:
  bool channels_last_ = false;
};

struct SpaceOptions {
  std::string space = "nb201";
  int64_t channels = 16;        // C
  int64_t cells_per_stage = 5;  // N (NB201)
  int64_t cells = 8;            // cells of the DARTS space (8: the search proxy; 20: evaluation size)
  std::string stem = "cifar";   // DARTS space: "cifar" (3x3 conv, full size) or "imagenet" (three stride-2 convs, 1/8)
  int64_t input_channels = 3;
  int64_t classes = 10;
  std::vector<std::string> ops;   // DARTS space: candidate operations (empty: all 8 primitives)
  int64_t partial_channels = 1;   // DARTS space: PC-DARTS's K (1: every channel through the operations)
  std::vector<int64_t> kernels;   // multibranch: branch kernel sizes (empty: parsed from kernels_text)
  std::string kernels_text = "1,3,5,7";  // space.kernels as written
};

// space.* (search.space is the engine's: it names the space, these shape it).
const OptionBinding<SpaceOptions>& space_options();

std::shared_ptr<Supernet> make_supernet(const SpaceOptions& options);

}  // namespace probnas
