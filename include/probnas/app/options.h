#pragma once
// The one place where a command's options come together: each layer declares its own typed options
// (core/option_binding.h), the method registry adds every method's section, and the functions
// below build each command's table and fill its typed settings from a Config. Nothing below app
// reads a key by its string.
#include "probnas/core/config.h"
#include "probnas/data/convert.h"
#include "probnas/engine/search_engine.h"
#include "probnas/engine/train_engine.h"

namespace probnas {

// Options of `probnas search` and `probnas sample` (run.*, ckpt.*, comm.*, search.*, every method's
// section, data.*, space.*, progressive.*, report.*).
const OptionTable& search_option_table();
// Options of `probnas train` (run.*, ckpt.*, comm.*, data.*, train.*, report.nb201_table).
const OptionTable& train_option_table();
// Options of `probnas convert` (undotted: --from, --in, --out, ...).
const OptionTable& convert_option_table();

// The typed settings of a search from a config on search_option_table(), with what follows from
// several sections resolved (the data's seed and locking, the supernet's first partial-channel
// factor, the method's own options) and cross-section checks made (the method against the space,
// other methods' options that would be ignored). `config` must outlive the result.
SearchSettings read_search_settings(const Config& config);
// The same for probnas train (config on train_option_table()).
TrainSettings read_train_settings(const Config& config);

}  // namespace probnas
