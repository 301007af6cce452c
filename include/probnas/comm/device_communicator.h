#pragma once
// The data plane for tensors on the compute device. In CUDA builds with NCCL, CUDA tensors are
// all-reduced, broadcast and gathered by NCCL on LibTorch's current CUDA stream (no host copy, no
// host synchronisation); CPU tensors, bytes and barriers always go through the control communicator
// (MPI). comm.backend = mpi stages CUDA tensors through the host instead.
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "probnas/comm/communicator.h"

namespace probnas {

// Whether this probnas was built with the NCCL backend (CUDA LibTorch and NCCL found by CMake).
bool nccl_built();

struct CommBackendChoice {
  bool nccl = false;
  std::string reason;  // one line for the run log: which backend and why
};

// What comm.backend = `requested` (auto, mpi or nccl) means for tensors on `device` in a world of
// `world_size` ranks. auto: NCCL for CUDA tensors when built with it and there is more than one rank
// (one rank has nothing to reduce). nccl: NCCL even for one rank, and an error naming the reason
// where it cannot be (CPU device, no NCCL in this build).
CommBackendChoice choose_comm_backend(const std::string& requested, const c10::Device& device, int world_size,
                                      bool built_with_nccl = nccl_built());

// A communicator over the same ranks as `control` for the tensors of one run on `device`. With NCCL
// it owns an NCCL communicator, bootstrapped from an ncclUniqueId that rank 0 broadcasts over
// `control`. Before that the ranks compare their GPUs' UUIDs: NCCL forbids two ranks on one GPU,
// so then `auto` falls back to MPI (with a warning) and `nccl` fails naming the ranks. Otherwise it
// forwards to `control`. `control` must outlive the result. Collective: every rank calls it.
std::unique_ptr<Communicator> make_device_communicator(Communicator& control, const c10::Device& device,
                                                       const std::string& backend);

}  // namespace probnas
