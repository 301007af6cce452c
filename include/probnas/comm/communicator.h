#pragma once
// Who computes which logical unit. The "Ranks" issue adds node-local ranks, NCCL and the
// collectives beyond these; the engine already routes every reduction through this interface.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace probnas {

struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// Contiguous share of n logical units for `rank` of `size`: the first n % size ranks take one more.
Range partition(int64_t n, int rank, int size);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sum over ranks of a list of tensors, reduced as one flattened bucket.
  virtual void allreduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  virtual void barrier() = 0;
};

// A world of one (tests, benches, workstation runs without mpirun).
class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(std::vector<torch::Tensor>&) override {}
  void barrier() override {}
};

// MPI_COMM_WORLD (duplicated). CPU tensors; CUDA tensors are staged through the host until the
// NCCL backend lands.
std::unique_ptr<Communicator> make_world_communicator();

// MPI_Init_thread / MPI_Finalize, once per process (in main).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  // With more than one rank, tears the whole job down (a failing rank must not leave the
  // others hanging); with one, returns so the caller can exit normally.
  static void abort_if_parallel(int code);
  static bool active();
};

}  // namespace probnas
