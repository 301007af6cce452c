#include "probnas/core/device.h"

#include <ATen/autocast_mode.h>
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
  const c10::Device device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % count));
  // This rank's GPU becomes the current device: streams, events, synchronisation and allocations
  // that name no device then use it rather than cuda:0.
  c10::cuda::set_device(device.index());
  return device;
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

namespace {
#define PROBNAS_AUTOCAST_2_4 (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
bool autocast_enabled(c10::DeviceType t) {
#if PROBNAS_AUTOCAST_2_4
  return at::autocast::is_autocast_enabled(t);
#else
  return t == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
c10::ScalarType autocast_dtype(c10::DeviceType t) {
#if PROBNAS_AUTOCAST_2_4
  return at::autocast::get_autocast_dtype(t);
#else
  return t == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_autocast(c10::DeviceType t, bool enabled, c10::ScalarType dtype) {
#if PROBNAS_AUTOCAST_2_4
  at::autocast::set_autocast_enabled(t, enabled);
  at::autocast::set_autocast_dtype(t, dtype);
#else
  if (t == c10::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}
}  // namespace

AutocastScope::AutocastScope(const c10::Device& device, c10::ScalarType dtype, bool enabled) : type_(device.type()) {
  if (!enabled) return;
  PROBNAS_CHECK(type_ == c10::kCPU || type_ == c10::kCUDA, "mixed precision on ", device.str(), " is not supported");
  active_ = true;
  was_enabled_ = autocast_enabled(type_);
  was_dtype_ = autocast_dtype(type_);
  set_autocast(type_, true, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // casts of weights made in the scope
  set_autocast(type_, was_enabled_, was_dtype_);
}

}  // namespace probnas
