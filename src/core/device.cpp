#include "probnas/core/device.h"

#include <sched.h>
#include <torch/torch.h>

#include <thread>

#include "probnas/core/error.h"
#if defined(PROBNAS_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace probnas {

c10::Device select_device(const std::string& name, int local_rank) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  PROBNAS_CHECK(name == "cuda", "run.device = '", name, "' is not allowed (allowed: cpu, cuda)");
#if defined(PROBNAS_WITH_CUDA)
  const int count = static_cast<int>(torch::cuda::device_count());
  PROBNAS_CHECK(count > 0, "run.device = 'cuda' but no CUDA device is visible (check CUDA_VISIBLE_DEVICES "
                           "and the driver), or use run.device = cpu");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % count));
#else
  (void)local_rank;
  PROBNAS_FAIL("run.device = 'cuda' but this probnas was built against a CPU-only LibTorch; "
               "rebuild with a CUDA LibTorch (Torch_DIR) or use run.device = cpu");
#endif
}

int configure_threads(int threads) {
  if (threads <= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) threads = CPU_COUNT(&set);
    if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  torch::set_num_threads(threads);
  return threads;
}

std::string device_description(const c10::Device& device) {
#if defined(PROBNAS_WITH_CUDA)
  if (device.is_cuda()) {
    return device.str();
  }
#endif
  return device.str() + " (" + std::to_string(torch::get_num_threads()) + " threads)";
}

int64_t peak_device_memory(const c10::Device& device) {
#if defined(PROBNAS_WITH_CUDA)
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[0].peak;  // StatType::AGGREGATE
  }
#endif
  (void)device;
  return 0;
}

void reset_peak_device_memory(const c10::Device& device) {
#if defined(PROBNAS_WITH_CUDA)
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  (void)device;
}

void synchronize(const c10::Device& device) {
#if defined(PROBNAS_WITH_CUDA)
  if (device.is_cuda()) c10::cuda::device_synchronize();
#endif
  (void)device;
}

}  // namespace probnas
