#include "probnas/comm/communicator.h"

#include <algorithm>
#include <mpi.h>
#include <sched.h>
#include <torch/torch.h>

#include <cstdlib>
#include <exception>
#include <thread>

#include "probnas/core/error.h"
#include "probnas/core/log.h"
#include "probnas/core/timer.h"

namespace probnas {

Range partition(int64_t n, int rank, int size) {
  PROBNAS_CHECK(size > 0 && rank >= 0 && rank < size, "partition: rank ", rank, " of ", size);
  const int64_t base = n / size, extra = n % size;
  Range r;
  r.begin = rank * base + std::min<int64_t>(rank, extra);
  r.end = r.begin + base + (rank < extra ? 1 : 0);
  return r;
}

int default_threads_per_rank(const Communicator& comm) {
  int node_cores = static_cast<int>(std::thread::hardware_concurrency());
  if (node_cores <= 0) node_cores = 1;
  int threads = std::max(1, node_cores / std::max(1, comm.local_size()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) threads = std::min(threads, CPU_COUNT(&set));
  return threads;
}

namespace {

bool g_mpi_active = false;

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  PROBNAS_FAIL("MPI ", what, " failed: ", std::string(msg, static_cast<size_t>(len)));
}

// Owner of one MPI communicator handle.
class MpiComm {
 public:
  MpiComm() = default;
  explicit MpiComm(MPI_Comm c) : comm_(c) {}
  MpiComm(MpiComm&& o) noexcept : comm_(o.comm_) { o.comm_ = MPI_COMM_NULL; }
  MpiComm& operator=(MpiComm&& o) noexcept {
    std::swap(comm_, o.comm_);
    return *this;
  }
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  ~MpiComm() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    // Freeing is collective in spirit: skip it while an exception unwinds (the job is about to
    // be aborted, and a rank waiting here would never reach MPI_Abort).
    if (comm_ != MPI_COMM_NULL && !finalized && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
  }
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end && *end == '\0') ? static_cast<int>(x) : fallback;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm world;
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &world), "Comm_dup");
    world_ = MpiComm(world);
    MPI_Comm_rank(world_.get(), &rank_);
    MPI_Comm_size(world_.get(), &size_);
    MPI_Comm node;
    check_mpi(MPI_Comm_split_type(world_.get(), MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "Comm_split_type");
    node_ = MpiComm(node);
    MPI_Comm_rank(node_.get(), &local_rank_);
    MPI_Comm_size(node_.get(), &local_size_);
    int leader = local_rank_ == 0 ? 1 : 0;
    MPI_Allreduce(&leader, &nodes_, 1, MPI_INT, MPI_SUM, world_.get());
    // The launcher's view of the node-local rank must agree with MPI's shared-memory split.
    for (const char* var : {"SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"}) {
      const int launcher = env_int(var, -1);
      if (launcher >= 0 && launcher != local_rank_) {
        PROBNAS_LOG(warn) << "rank " << rank_ << ": " << var << "=" << launcher << " but MPI's shared-memory split "
                          << "gives node-local rank " << local_rank_ << "; using " << local_rank_;
      }
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  int node_count() const override { return nodes_; }

  void barrier() override {
    Stopwatch t;
    check_mpi(MPI_Barrier(world_.get()), "Barrier");
    collective_seconds_ += t.seconds();
  }

  void allreduce(std::vector<torch::Tensor>& tensors, ReduceOp op) override {
    if (tensors.empty() || size_ == 1) return;  // nothing to add (and no device-to-host copy)
    Stopwatch t;
    torch::NoGradGuard guard;
    std::vector<torch::Tensor> flat;
    for (auto& x : tensors) flat.push_back(x.detach().reshape(-1).to(torch::kCPU, torch::kFloat64));
    torch::Tensor bucket = torch::cat(flat).contiguous();
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, bucket.data_ptr<double>(), static_cast<int>(bucket.numel()), MPI_DOUBLE,
                            MPI_SUM, world_.get()),
              "Allreduce");
    if (op == ReduceOp::mean) bucket.div_(static_cast<double>(size_));
    int64_t offset = 0;
    for (auto& x : tensors) {
      const int64_t n = x.numel();
      x.copy_(bucket.narrow(0, offset, n).view(x.sizes()));
      offset += n;
    }
    collective_seconds_ += t.seconds();
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    if (size_ == 1) return;
    Stopwatch t;
    torch::NoGradGuard guard;
    for (auto& x : tensors) {
      auto host = x.detach().to(torch::kCPU).contiguous().clone();
      check_mpi(MPI_Bcast(host.data_ptr(), static_cast<int>(host.nbytes()), MPI_BYTE, root, world_.get()), "Bcast");
      x.copy_(host);
    }
    collective_seconds_ += t.seconds();
  }

  torch::Tensor allgather(const torch::Tensor& tensor) override {
    if (size_ == 1) return tensor.detach().unsqueeze(0).clone();
    Stopwatch t;
    auto host = tensor.detach().to(torch::kCPU).contiguous();
    std::vector<int64_t> shape{size_};
    for (auto s : host.sizes()) shape.push_back(s);
    auto out = torch::empty(shape, host.options());
    check_mpi(MPI_Allgather(host.data_ptr(), static_cast<int>(host.nbytes()), MPI_BYTE, out.data_ptr(),
                            static_cast<int>(host.nbytes()), MPI_BYTE, world_.get()),
              "Allgather");
    collective_seconds_ += t.seconds();
    return out.to(tensor.device());
  }

  std::vector<std::string> allgather_bytes(const std::string& bytes) override {
    Stopwatch t;
    int mine = static_cast<int>(bytes.size());
    std::vector<int> lengths(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    check_mpi(MPI_Allgather(&mine, 1, MPI_INT, lengths.data(), 1, MPI_INT, world_.get()), "Allgather");
    int total = 0;
    for (int r = 0; r < size_; ++r) offsets[static_cast<size_t>(r)] = total, total += lengths[static_cast<size_t>(r)];
    std::string all(static_cast<size_t>(total), '\0');
    check_mpi(MPI_Allgatherv(bytes.data(), mine, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE,
                             world_.get()),
              "Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r)
      out.push_back(all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]),
                               static_cast<size_t>(lengths[static_cast<size_t>(r)])));
    collective_seconds_ += t.seconds();
    return out;
  }

  void broadcast_bytes(std::string& bytes, int root) override {
    Stopwatch t;
    uint64_t size = bytes.size();
    check_mpi(MPI_Bcast(&size, 1, MPI_UINT64_T, root, world_.get()), "Bcast");
    bytes.resize(size);
    constexpr uint64_t kChunk = uint64_t{1} << 30;  // MPI counts are ints
    for (uint64_t done = 0; done < size; done += kChunk) {
      const int n = static_cast<int>(std::min(kChunk, size - done));
      check_mpi(MPI_Bcast(bytes.data() + done, n, MPI_BYTE, root, world_.get()), "Bcast");
    }
    collective_seconds_ += t.seconds();
  }

 private:
  MpiComm world_, node_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, nodes_ = 1;
};

}  // namespace

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "?";
  std::string v(text, static_cast<size_t>(std::max(0, length)));
  const auto end = v.find_first_of("\n,");
  return v.substr(0, end);
}

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
  check_launcher_world(size);
}

void check_launcher_world(int world_size) {
  // srun started this step's tasks; an MPI library that cannot talk to Slurm's launcher (srun
  // --mpi=none, or no PMIx support) gives each task a world of its own: N unrelated runs that would
  // write the same run folder and overwrite each other's checkpoints.
  const char* tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (tasks == nullptr) return;
  const long n = std::strtol(tasks, nullptr, 10);
  PROBNAS_CHECK(n <= 1 || world_size == n, "Slurm started ", n, " tasks (SLURM_STEP_NUM_TASKS=", tasks,
                ") but MPI reports a world of ", world_size, ": this MPI library was not started through Slurm's "
                "launcher, and the tasks would be ", n, " separate runs overwriting each other's checkpoints. "
                "Launch with srun --mpi=pmix (see srun --mpi=list), or with mpirun inside the allocation");
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
