#include "probnas/comm/comm_options.h"

namespace probnas {

const OptionBinding<CommOptions>& comm_options() {
  using O = CommOptions;
  static const auto b =
      OptionBinding<O>()
          .integer("comm.verify_interval", &O::verify_interval, 100, 0, 1000000000,
                   "steps between checks that every rank holds identical parameters (0: never)")
          .resumable()
          .choice("comm.backend", &O::backend, "auto", {"auto", "mpi", "nccl"},
                  "how CUDA tensors are reduced between ranks: auto (NCCL where this build has it and there is more "
                  "than one rank), nccl, or mpi (staged through the host); CPU tensors always use MPI")
          .resumable();
  return b;
}

}  // namespace probnas
