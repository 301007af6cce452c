#pragma once
// Device selection and thread setup: the one place that knows about CUDA devices.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace probnas {

// "cpu" or "cuda" (-> cuda:<local_rank mod visible devices>, made the current CUDA device). Fails
// with a clear message when CUDA is asked for but this build or machine has none.
c10::Device select_device(const std::string& name, int local_rank = 0);
// Intra-op threads: `threads` > 0 as given, 0 = every core this process may use.
int configure_threads(int threads);
std::string device_description(const c10::Device& device);
// Peak GPU memory since the last reset (bytes); 0 on CPU.
int64_t peak_device_memory(const c10::Device& device);
void reset_peak_device_memory(const c10::Device& device);
void synchronize(const c10::Device& device);

// Mixed precision for the operations of one scope: LibTorch's autocast on `device`'s type with
// `dtype` (bf16), restored on exit. Disabled (`enabled` false) it changes nothing. The autocast API
// moved in LibTorch 2.4; this is the one place that knows both. Autocast caches its casts of leaf
// weights until the outermost scope ends, whatever their version: code that changes weights in
// place inside a scope (second-order DARTS's w +- eps, GibbsNAS's order-2 pairs) must not run in
// one, or must call at::autocast::clear_cache() after the change.
class AutocastScope {
 public:
  AutocastScope(const c10::Device& device, c10::ScalarType dtype, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, was_enabled_ = false;
  c10::DeviceType type_;
  c10::ScalarType was_dtype_ = c10::ScalarType::Undefined;
};

}  // namespace probnas
