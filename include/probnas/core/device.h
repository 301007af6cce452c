#pragma once
// Device selection and thread setup: the one place that knows about CUDA devices.
#include <c10/core/Device.h>

#include <string>

namespace probnas {

// "cpu" or "cuda" (-> cuda:<local_rank mod visible devices>). Fails with a clear message when
// CUDA is asked for but this build or machine has none.
c10::Device select_device(const std::string& name, int local_rank = 0);
// Intra-op threads: `threads` > 0 as given, 0 = every core this process may use.
int configure_threads(int threads);
std::string device_description(const c10::Device& device);
// Peak GPU memory since the last reset (bytes); 0 on CPU.
int64_t peak_device_memory(const c10::Device& device);
void reset_peak_device_memory(const c10::Device& device);
void synchronize(const c10::Device& device);

}  // namespace probnas
