#include "probnas/core/config.h"
#include "probnas/space/supernet.h"

namespace probnas {

const OptionBinding<SpaceOptions>& space_options() {
  using O = SpaceOptions;
  static const auto b =
      OptionBinding<O>()
          .integer("space.channels", &O::channels, 16, 1, 4096, "initial channels C of the supernet")
          .integer("space.cells_per_stage", &O::cells_per_stage, 5, 1, 64,
                   "NB201: cells per stage N (3 stages); multibranch: residual blocks per stage")
          .text("space.kernels", &O::kernels_text, "1,3,5,7",
                "multibranch: kernel sizes of the branches of every block (1 to 4 odd sizes, one branch each)")
          .integer("space.cells", &O::cells, 8, 3, 1000,
                   "DARTS space: cells (8: the search proxy; 20: evaluation size); reduction cells at 1/3 and 2/3")
          .text("space.ops", [](O& o, const std::string& v) { o.ops = split_list(v); }, "",
                "DARTS space: candidate operations, comma-separated (empty: all 8 of DARTS: none, max_pool_3x3, "
                "avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5; DrNAS searches "
                "the 7 without none)")
          .integer("space.partial_channels", &O::partial_channels, 1, 1, 4096,
                   "DARTS space: PC-DARTS partial channels K: 1/K of each edge's channels go through the operations, "
                   "the rest bypass, then channels are shuffled (1: all channels; K must divide space.channels)")
          .choice("space.stem", &O::stem, "cifar", {"cifar", "imagenet"},
                  "DARTS space: cifar (one 3x3 conv, 3C channels; the cells see full-size images) or imagenet (the "
                  "224x224 search stem of DrNAS and PC-DARTS: three stride-2 3x3 convs; the cells start at 1/8)");
  return b;
}

}  // namespace probnas
