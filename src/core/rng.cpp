#include "probnas/core/rng.h"

#include <ATen/CPUGeneratorImpl.h>
#if defined(PROBNAS_WITH_CUDA)
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include "probnas/core/error.h"

namespace probnas {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view text, uint64_t h) {
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

RngKey RngKey::with(std::string_view purpose) const {
  // FNV-1a of the purpose, then mixed with the parent
  return RngKey(mix64(value_ ^ mix64(fnv1a(purpose))), 0);
}

RngKey RngKey::with(uint64_t index) const { return RngKey(mix64(value_ + mix64(index + 0x632BE59BD9B4E019ULL)), 0); }

at::Generator make_generator(const RngKey& key, const c10::Device& device) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(key.value());
#if defined(PROBNAS_WITH_CUDA)
  if (device.is_cuda()) {
    auto gen = at::make_generator<at::CUDAGeneratorImpl>(device.has_index() ? device.index() : 0);
    gen.set_current_seed(key.value());
    return gen;
  }
#endif
  PROBNAS_FAIL("no random generator for device '", device.str(), "' in this build");
}

}  // namespace probnas
