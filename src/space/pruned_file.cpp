#include "probnas/space/pruned_file.h"

#include <torch/torch.h>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/ckpt/checkpoint.h"
#include "probnas/core/error.h"
#include "probnas/core/hdf5.h"

namespace probnas {

void export_pruned(const std::string& path, const PrunedNet& net, const ChannelStats& stats, bool normalized,
                   const std::string& description) {
  ckpt::State meta;
  meta.set_attr("description", description);
  meta.set_attr("probnas_version", std::string(PROBNAS_VERSION));
  meta.set_attr("input", std::string(normalized ? "images in [0, 1], then (x - mean) / std per channel"
                                                : "images in [0, 1]"));
  meta.put("mean", stats.mean);
  meta.put("std", stats.std);
  meta.set_attr("classes", net.fc_weight.size(0));
  meta.set_attr("parameters", net.parameters());
  ckpt::State network;
  net.to(torch::kCPU).save(network);
  ckpt::write_atomically(path, [&](const std::string& tmp) {
    h5::File file = h5::File::create(tmp);
    h5::Group root = file.root();
    h5::DatasetOptions options;
    h5::Group m = root.create_group("meta");
    ckpt::write_state(m, meta, options);
    h5::Group n = root.create_group("network");
    ckpt::write_state(n, network, options);
    file.close();
  });
}

PrunedNet import_pruned(const std::string& path) {
  PROBNAS_CHECK(h5::File::is_hdf5(path), "'", path, "' is not an HDF5 file written by probnas (best_network.h5)");
  h5::File file = h5::File::open(path);
  return PrunedNet::load(ckpt::read_state(file.root().open_group("network")));
}

}  // namespace probnas
