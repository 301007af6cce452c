#pragma once
// The one table of options for each command: names, types, defaults, ranges, help.
#include "probnas/core/config.h"

namespace probnas {

// Options of `probnas search` (run.*, search.*, darts.*, drnas.*, data.*, space.*, report.*).
const OptionTable& search_option_table();
// Options of `probnas train` (run.*, ckpt.*, comm.*, data.*, train.*, report.nb201_table).
const OptionTable& train_option_table();

}  // namespace probnas
