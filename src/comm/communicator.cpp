#include "probnas/comm/communicator.h"

#include <mpi.h>
#include <torch/torch.h>

#include <cstdlib>

#include "probnas/core/error.h"
#include "probnas/core/log.h"

namespace probnas {

Range partition(int64_t n, int rank, int size) {
  PROBNAS_CHECK(size > 0 && rank >= 0 && rank < size, "partition: rank ", rank, " of ", size);
  const int64_t base = n / size, extra = n % size;
  Range r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

namespace {

bool g_mpi_active = false;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override { MPI_Barrier(comm_); }
  void allreduce_sum(std::vector<torch::Tensor>& tensors) override {
    if (size_ == 1 || tensors.empty()) return;
    std::vector<torch::Tensor> flat;
    for (auto& t : tensors) flat.push_back(t.detach().reshape(-1).to(torch::kCPU, torch::kFloat64));
    torch::Tensor bucket = torch::cat(flat).contiguous();
    MPI_Allreduce(MPI_IN_PLACE, bucket.data_ptr<double>(), static_cast<int>(bucket.numel()), MPI_DOUBLE, MPI_SUM,
                  comm_);
    int64_t offset = 0;
    for (auto& t : tensors) {
      const int64_t n = t.numel();
      torch::NoGradGuard guard;
      t.copy_(bucket.narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_world_communicator() {
  if (!g_mpi_active) return std::make_unique<SerialCommunicator>();
  return std::make_unique<MpiCommunicator>();
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  PROBNAS_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI provides thread level ", provided,
                " but probnas needs MPI_THREAD_FUNNELED");
  g_mpi_active = true;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  log::set_rank(rank, size);
}

MpiSession::~MpiSession() {
  g_mpi_active = false;
  MPI_Finalize();
}

void MpiSession::abort_if_parallel(int code) {
  if (!g_mpi_active) return;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

bool MpiSession::active() { return g_mpi_active; }

}  // namespace probnas
