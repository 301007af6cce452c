#pragma once
// Who computes which logical unit, and the collectives that keep ranks identical. MPI is the
// control plane everywhere and reduces CPU tensors; in CUDA builds, CUDA tensors go through NCCL
// (comm/device_communicator.h), or are staged through the host with comm.backend = mpi.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace probnas {

struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// Contiguous share of n logical units for `rank` of `size`: the first n % size ranks take one more.
Range partition(int64_t n, int rank, int size);

enum class ReduceOp { sum, mean };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // rank among the ranks on this node
  virtual int local_size() const = 0;  // ranks on this node
  virtual int node_count() const = 0;
  // In place, over ranks, of a list of tensors reduced as one flattened bucket (in double).
  virtual void allreduce(std::vector<torch::Tensor>& tensors, ReduceOp op = ReduceOp::sum) = 0;
  void allreduce_sum(std::vector<torch::Tensor>& tensors) { allreduce(tensors, ReduceOp::sum); }
  // In place: every rank ends with `root`'s values (same shapes and dtypes on every rank).
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root = 0) = 0;
  // Every rank's tensor (same shape and dtype everywhere), stacked along a new first dimension.
  virtual torch::Tensor allgather(const torch::Tensor& tensor) = 0;
  // Every rank's bytes, indexed by rank (lengths may differ).
  virtual std::vector<std::string> allgather_bytes(const std::string& bytes) = 0;
  // Root's bytes to every rank (any size; other ranks' `bytes` are replaced).
  virtual void broadcast_bytes(std::string& bytes, int root = 0) = 0;
  virtual void barrier() = 0;
  // Seconds spent inside collectives since construction (the communication share of a step). For
  // NCCL, the GPU time of its kernels (CUDA events; reading it waits for the pending ones).
  virtual double collective_seconds() const { return collective_seconds_; }

 protected:
  double collective_seconds_ = 0;
};

// A world of one (tests, benches, workstation runs without mpirun).
class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  int node_count() const override { return 1; }
  void allreduce(std::vector<torch::Tensor>&, ReduceOp) override {}
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  torch::Tensor allgather(const torch::Tensor& t) override { return t.unsqueeze(0).clone(); }
  std::vector<std::string> allgather_bytes(const std::string& b) override { return {b}; }
  void broadcast_bytes(std::string&, int) override {}
  void barrier() override {}
};

// The MPI library's own description, first line ("Open MPI v4.1.4, ..."); callable before MPI starts.
std::string mpi_library_version();

// MPI_COMM_WORLD (duplicated) when MPI is initialised, else a SerialCommunicator.
std::unique_ptr<Communicator> make_world_communicator();

// Intra-op threads for this rank when the config says 0: the node's cores shared by the ranks on
// the node (at least 1), never more than the cores this process may run on.
int default_threads_per_rank(const Communicator& comm);

// Fails (naming the variables) when Slurm says this step has N > 1 tasks but MPI sees a world of
// another size: the MPI library did not connect to Slurm's launcher. MpiSession calls it.
void check_launcher_world(int world_size);

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
