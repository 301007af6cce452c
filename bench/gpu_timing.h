#pragma once
// How busy the GPU is during search steps, for bench_search_step on CUDA:
//   - GpuStepTimer: CUDA events around each step on the current stream (the GPU's span of a step);
//   - GpuProfile: LibTorch's Kineto profiler (CUPTI) records every kernel, copy and memset of a few
//     steps; their union over time, divided by the steps' wall time, is the GPU-busy share (the
//     share of the step in which the GPU computes rather than waits for the host to launch work).
// Kineto's event times are in microseconds in LibTorch 1.13 and in nanoseconds in 2.x: detected.
// Kineto also files GPU user annotations and CUDA sync events under the CUDA device; with the
// default configuration used here it collects no sync events, and probnas adds no annotations, so
// the CUDA-device events are kernels, copies and memsets.
#if defined(PROBNAS_WITH_CUDA)
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

namespace probnas::bench {

class GpuStepTimer {
 public:
  explicit GpuStepTimer(c10::DeviceIndex device) : device_(device) {}
  void start() { start_.record(c10::cuda::getCurrentCUDAStream(device_)); }
  // Milliseconds between start() and now on the GPU (waits for the step to finish).
  double stop_ms() {
    end_.record(c10::cuda::getCurrentCUDAStream(device_));
    end_.synchronize();
    return static_cast<double>(start_.elapsed_time(end_));
  }

 private:
  c10::DeviceIndex device_;
  at::cuda::CUDAEvent start_{cudaEventDefault}, end_{cudaEventDefault};
};

template <class E, class = void>
struct HasNanoseconds : std::false_type {};
template <class E>
struct HasNanoseconds<E, std::void_t<decltype(std::declval<const E&>().startNs())>> : std::true_type {};

// [start, end) of one Kineto event in microseconds.
template <class E>
std::pair<double, double> interval_us(const E& e) {
  if constexpr (HasNanoseconds<E>::value) {
    const double s = static_cast<double>(e.startNs()) / 1e3;
    return {s, s + static_cast<double>(e.durationNs()) / 1e3};
  } else {
    const double s = static_cast<double>(e.startUs());
    return {s, s + static_cast<double>(e.durationUs())};
  }
}

struct GpuActivity {
  double busy_ms = 0;     // union of the GPU's activity intervals
  double summed_ms = 0;   // their plain sum (> busy_ms where streams overlap)
  double span_ms = 0;     // first start to last end
  int64_t activities = 0; // kernels, copies and memsets recorded
};

class GpuProfile {
 public:
  GpuProfile() {
    namespace P = torch::profiler::impl;
    const P::ProfilerConfig config(P::ProfilerState::KINETO);
    const std::set<P::ActivityType> activities{P::ActivityType::CPU, P::ActivityType::CUDA};
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
  }
  GpuActivity stop() {
    auto result = torch::autograd::profiler::disableProfiler();
    std::vector<std::pair<double, double>> iv;
    for (const auto& e : result->events())
      if (e.deviceType() == c10::DeviceType::CUDA) iv.push_back(interval_us(e));
    GpuActivity a;
    a.activities = static_cast<int64_t>(iv.size());
    if (iv.empty()) return a;
    std::sort(iv.begin(), iv.end());
    double cur_s = iv.front().first, cur_e = iv.front().second, busy = 0, summed = 0, last = 0;
    for (const auto& [s, e] : iv) {
      summed += e - s;
      last = std::max(last, e);
      if (s > cur_e) {
        busy += cur_e - cur_s;
        cur_s = s, cur_e = e;
      } else {
        cur_e = std::max(cur_e, e);
      }
    }
    busy += cur_e - cur_s;
    a.busy_ms = busy / 1e3, a.summed_ms = summed / 1e3, a.span_ms = (last - iv.front().first) / 1e3;
    return a;
  }
};

}  // namespace probnas::bench
#endif  // PROBNAS_WITH_CUDA
