#include "probnas/comm/device_communicator.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <sstream>
#include <utility>
#include <vector>

#include "probnas/core/error.h"
#include "probnas/core/log.h"

#if defined(PROBNAS_WITH_NCCL)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace probnas {

bool nccl_built() {
#if defined(PROBNAS_WITH_NCCL)
  return true;
#else
  return false;
#endif
}

CommBackendChoice choose_comm_backend(const std::string& requested, const c10::Device& device, int world_size,
                                      bool built_with_nccl) {
  PROBNAS_CHECK(requested == "auto" || requested == "mpi" || requested == "nccl", "comm.backend = '", requested,
                "' is not allowed (allowed: auto, mpi, nccl)");
  CommBackendChoice c;
  if (requested == "mpi") {
    c.reason = device.is_cuda() ? "MPI (comm.backend = mpi: CUDA tensors are staged through the host)" : "MPI";
    return c;
  }
  if (requested == "nccl") {
    PROBNAS_CHECK(device.is_cuda(), "comm.backend = nccl needs run.device = cuda (NCCL reduces CUDA tensors; "
                                    "this run computes on ", device.str(), "): use comm.backend = auto or mpi");
    PROBNAS_CHECK(built_with_nccl, "comm.backend = nccl but this probnas was built without NCCL (it needs a CUDA "
                                   "LibTorch and NCCL at configure time: -DPROBNAS_NCCL=ON, NCCL found through "
                                   "PROBNAS_NCCL_ROOT or the CUDA toolkit): use comm.backend = auto or mpi");
    c.nccl = true;
    c.reason = "NCCL (comm.backend = nccl)";
    return c;
  }
  if (!device.is_cuda()) {
    c.reason = "MPI";
  } else if (world_size == 1) {
    c.reason = "none needed (one rank)";
  } else if (!built_with_nccl) {
    c.reason = "MPI, CUDA tensors staged through the host (this build has no NCCL)";
  } else {
    c.nccl = true;
    c.reason = "NCCL for CUDA tensors, MPI for the rest";
  }
  return c;
}

namespace {

// Forwards everything to the control communicator (CPU runs, comm.backend = mpi, no NCCL).
class ForwardingCommunicator final : public Communicator {
 public:
  explicit ForwardingCommunicator(Communicator& control) : control_(control) {}
  int rank() const override { return control_.rank(); }
  int size() const override { return control_.size(); }
  int local_rank() const override { return control_.local_rank(); }
  int local_size() const override { return control_.local_size(); }
  int node_count() const override { return control_.node_count(); }
  void allreduce(std::vector<torch::Tensor>& t, ReduceOp op) override { control_.allreduce(t, op); }
  void broadcast(std::vector<torch::Tensor>& t, int root) override { control_.broadcast(t, root); }
  torch::Tensor allgather(const torch::Tensor& t) override { return control_.allgather(t); }
  std::vector<std::string> allgather_bytes(const std::string& b) override { return control_.allgather_bytes(b); }
  void broadcast_bytes(std::string& b, int root) override { control_.broadcast_bytes(b, root); }
  void barrier() override { control_.barrier(); }
  double collective_seconds() const override { return control_.collective_seconds(); }

 private:
  Communicator& control_;
};

#if defined(PROBNAS_WITH_NCCL)

void check_cuda(cudaError_t rc, const char* what) {
  PROBNAS_CHECK(rc == cudaSuccess, "CUDA ", what, " failed: ", cudaGetErrorString(rc));
}

// Owner of one NCCL communicator. While an exception unwinds (a rank failed; the job is about to
// be aborted) it aborts the communicator instead of finalising it, which would wait for peers.
class NcclHandle {
 public:
  NcclHandle() = default;
  NcclHandle(const NcclHandle&) = delete;
  NcclHandle& operator=(const NcclHandle&) = delete;
  ~NcclHandle() {
    if (comm_ == nullptr) return;
    if (std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm_);
      return;
    }
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
    ncclCommFinalize(comm_);
#endif
    ncclCommDestroy(comm_);
  }
  ncclComm_t* out() { return &comm_; }
  ncclComm_t get() const { return comm_; }

 private:
  ncclComm_t comm_ = nullptr;
};

std::string nccl_error(ncclResult_t rc, ncclComm_t comm) {
  std::string msg = ncclGetErrorString(rc);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && *last != '\0') msg += std::string(" (") + last + ")";
#else
  (void)comm;
#endif
  return msg;
}

// The ranks (indices) that share a GPU with an earlier rank, by the GPUs' UUIDs: NCCL forbids that
// ("Duplicate GPU detected" deep in its setup). Collective; every rank gets the same answer.
std::vector<std::pair<size_t, size_t>> shared_gpus(Communicator& control, const c10::Device& device) {
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, device.index()), "GetDeviceProperties");
  const std::string mine(reinterpret_cast<const char*>(&prop.uuid), sizeof(prop.uuid));
  const auto all = control.allgather_bytes(mine);
  std::vector<std::pair<size_t, size_t>> shared;
  for (size_t b = 1; b < all.size(); ++b)
    for (size_t a = 0; a < b; ++a)
      if (all[a] == all[b]) {
        shared.emplace_back(a, b);
        break;
      }
  return shared;
}

// CUDA tensors through NCCL on the current stream of `device_`; everything else through `control_`.
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& control, const c10::Device& device) : control_(control), device_(device) {
    c10::cuda::CUDAGuard guard(device_);
    ncclUniqueId id;
    std::string bytes;
    if (control_.rank() == 0) {
      check(ncclGetUniqueId(&id), "GetUniqueId");
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
    }
    control_.broadcast_bytes(bytes, 0);
    PROBNAS_CHECK(bytes.size() == sizeof(id), "NCCL bootstrap: rank ", control_.rank(), " received ", bytes.size(),
                  " bytes of ncclUniqueId, expected ", sizeof(id));
    std::memcpy(&id, bytes.data(), sizeof(id));
    check(ncclCommInitRank(comm_.out(), control_.size(), id, control_.rank()), "CommInitRank");
    int version = 0;
    ncclGetVersion(&version);
    PROBNAS_LOG(debug) << "rank " << control_.rank() << ": NCCL " << version << " communicator of " << control_.size()
                       << " on " << device_.str();
  }

  ~NcclCommunicator() override {
    for (auto& p : pending_) {
      cudaEventDestroy(p.first);
      cudaEventDestroy(p.second);
    }
  }

  int rank() const override { return control_.rank(); }
  int size() const override { return control_.size(); }
  int local_rank() const override { return control_.local_rank(); }
  int local_size() const override { return control_.local_size(); }
  int node_count() const override { return control_.node_count(); }
  std::vector<std::string> allgather_bytes(const std::string& b) override { return control_.allgather_bytes(b); }
  void broadcast_bytes(std::string& b, int root) override { control_.broadcast_bytes(b, root); }
  void barrier() override { control_.barrier(); }

  // One float64 bucket per call, as the MPI backend does: the sum over ranks is in double whatever
  // the ranks' count, which keeps 1-rank and P-rank runs within float tolerance of each other.
  void allreduce(std::vector<torch::Tensor>& tensors, ReduceOp op) override {
    std::vector<torch::Tensor> host, cuda;
    split(tensors, host, cuda);
    if (!host.empty()) control_.allreduce(host, op);
    if (cuda.empty()) return;
    torch::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(device_);
    std::vector<torch::Tensor> flat;
    flat.reserve(cuda.size());
    for (auto& x : cuda) flat.push_back(x.detach().reshape(-1).to(torch::kFloat64));
    torch::Tensor bucket = torch::cat(flat);
    Timing timing(*this);
    check(ncclAllReduce(bucket.data_ptr(), bucket.data_ptr(), static_cast<size_t>(bucket.numel()), ncclFloat64, ncclSum,
                        comm_.get(), stream()),
          "AllReduce");
    timing.end();
    if (op == ReduceOp::mean) bucket.div_(static_cast<double>(size()));
    int64_t offset = 0;
    for (auto& x : cuda) {
      const int64_t n = x.numel();
      x.detach().copy_(bucket.narrow(0, offset, n).view(x.sizes()));
      offset += n;
    }
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    std::vector<torch::Tensor> host, cuda;
    split(tensors, host, cuda);
    if (!host.empty()) control_.broadcast(host, root);
    if (cuda.empty()) return;
    torch::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(device_);
    std::vector<torch::Tensor> buffers;
    for (auto& x : cuda) buffers.push_back(x.detach().contiguous());
    Timing timing(*this);
    check(ncclGroupStart(), "GroupStart");
    // The group is always closed, also after a failed call: an open group would defer every later call.
    ncclResult_t first = ncclSuccess;
    for (auto& b : buffers) {
      const auto rc = ncclBroadcast(b.data_ptr(), b.data_ptr(), b.nbytes(), ncclUint8, root, comm_.get(), stream());
      if (first == ncclSuccess) first = rc;
    }
    const auto end = ncclGroupEnd();
    check(first, "Broadcast");
    check(end, "GroupEnd");
    timing.end();
    for (size_t i = 0; i < cuda.size(); ++i)
      if (buffers[i].data_ptr() != cuda[i].data_ptr()) cuda[i].detach().copy_(buffers[i]);
  }

  torch::Tensor allgather(const torch::Tensor& tensor) override {
    if (!tensor.is_cuda()) return control_.allgather(tensor);
    torch::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(device_);
    const auto in = tensor.detach().contiguous();
    std::vector<int64_t> shape{size()};
    for (auto s : in.sizes()) shape.push_back(s);
    auto out = torch::empty(shape, in.options());
    Timing timing(*this);
    check(ncclAllGather(in.data_ptr(), out.data_ptr(), in.nbytes(), ncclUint8, comm_.get(), stream()), "AllGather");
    timing.end();
    return out;
  }

  double collective_seconds() const override {
    harvest(true);
    return control_.collective_seconds() + nccl_seconds_;
  }

 private:
  // Events around one NCCL call on the current stream, skipped while the stream is being captured
  // into a CUDA graph (events there cannot be timed).
  class Timing {
   public:
    explicit Timing(const NcclCommunicator& owner) : owner_(owner), stream_(owner.stream()) {
      cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
      check_cuda(cudaStreamIsCapturing(stream_, &status), "StreamIsCapturing");
      if (status != cudaStreamCaptureStatusNone) return;
      if (owner_.pending_.size() >= kMaxPending) owner_.harvest(false);
      if (owner_.pending_.size() >= kMaxPending) return;  // the GPU is that far behind: this one goes untimed
      check_cuda(cudaEventCreate(&start_), "EventCreate");
      check_cuda(cudaEventCreate(&end_), "EventCreate");
      check_cuda(cudaEventRecord(start_, stream_), "EventRecord");
    }
    void end() {
      if (start_ == nullptr) return;
      check_cuda(cudaEventRecord(end_, stream_), "EventRecord");
      owner_.pending_.emplace_back(start_, end_);
      start_ = end_ = nullptr;
    }
    ~Timing() {
      if (start_ != nullptr) cudaEventDestroy(start_);
      if (end_ != nullptr) cudaEventDestroy(end_);
    }

   private:
    static constexpr size_t kMaxPending = 1024;  // finished ones are harvested without waiting
    const NcclCommunicator& owner_;
    cudaStream_t stream_;
    cudaEvent_t start_ = nullptr, end_ = nullptr;
  };

  cudaStream_t stream() const { return c10::cuda::getCurrentCUDAStream(device_.index()).stream(); }

  // Adds up the GPU time of recorded collectives: all of them, waiting for each (`wait`), or only
  // those already finished (no host wait, for a run that never reads the time).
  void harvest(bool wait) const {
    std::vector<std::pair<cudaEvent_t, cudaEvent_t>> left;
    for (auto& p : pending_) {
      if (wait) {
        check_cuda(cudaEventSynchronize(p.second), "EventSynchronize");
      } else {
        const auto rc = cudaEventQuery(p.second);
        if (rc == cudaErrorNotReady) {
          left.push_back(p);
          continue;
        }
        check_cuda(rc, "EventQuery");
      }
      float ms = 0;
      check_cuda(cudaEventElapsedTime(&ms, p.first, p.second), "EventElapsedTime");
      nccl_seconds_ += static_cast<double>(ms) / 1e3;
      cudaEventDestroy(p.first);
      cudaEventDestroy(p.second);
    }
    pending_ = std::move(left);
  }

  void check(ncclResult_t rc, const char* what) const {
    PROBNAS_CHECK(rc == ncclSuccess, "NCCL ", what, " failed on rank ", control_.rank(), " (",
                  device_.str(), "): ", nccl_error(rc, comm_.get()));
  }

  void split(const std::vector<torch::Tensor>& tensors, std::vector<torch::Tensor>& host,
             std::vector<torch::Tensor>& cuda) const {
    for (const auto& x : tensors) {
      if (!x.is_cuda()) {
        host.push_back(x);
        continue;
      }
      PROBNAS_CHECK(x.device() == device_, "NCCL collective on a tensor on ", x.device().str(), " but this rank's "
                                           "communicator is on ", device_.str());
      cuda.push_back(x);
    }
    // Keep the caller's order within each group: `host` and `cuda` alias the caller's tensors.
  }

  Communicator& control_;
  c10::Device device_;
  NcclHandle comm_;
  mutable std::vector<std::pair<cudaEvent_t, cudaEvent_t>> pending_;
  mutable double nccl_seconds_ = 0;
};

#endif  // PROBNAS_WITH_NCCL

}  // namespace

std::unique_ptr<Communicator> make_device_communicator(Communicator& control, const c10::Device& device,
                                                       const std::string& backend) {
  const auto choice = choose_comm_backend(backend, device, control.size());
  if (control.rank() == 0 && control.size() > 1) {
    PROBNAS_LOG(info) << "collectives: " << choice.reason;
  }
#if defined(PROBNAS_WITH_NCCL)
  if (choice.nccl) {
    const auto shared = shared_gpus(control, device);
    if (shared.empty()) return std::make_unique<NcclCommunicator>(control, device);
    const auto [a, b] = shared.front();
    PROBNAS_CHECK(backend != "nccl", "comm.backend = nccl but ranks ", a, " and ", b, " use the same GPU, and NCCL "
                  "needs one GPU per rank: start as many ranks per node as it has GPUs (srun --ntasks-per-node = "
                  "--gpus-per-node), or use comm.backend = auto or mpi (tensors staged through the host)");
    if (control.rank() == 0) {
      PROBNAS_LOG(warn) << "ranks " << a << " and " << b << " share a GPU"
                        << (shared.size() > 1 ? " (" + std::to_string(shared.size()) + " ranks share with an earlier one)" : "")
                        << ", which NCCL forbids: collectives go through MPI, staged through the host (slower); start "
                        << "one rank per GPU for NCCL";
    }
  }
#endif
  return std::make_unique<ForwardingCommunicator>(control);
}

}  // namespace probnas
