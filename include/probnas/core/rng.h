#pragma once
// Randomness keyed by logical work, never by rank (DESIGN principle 1): every draw comes from a
// generator seeded by hash(run seed, purpose, indices...). Which rank computes a logical unit
// never changes what is drawn for it, so 1 rank and P ranks, and a restart, draw the same.
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string_view>

namespace probnas {

// SplitMix64 finaliser: a bijective 64-bit mixer with good avalanche.
uint64_t mix64(uint64_t x);
// FNV-1a of `text`, continuing from `h` (start: the FNV offset basis). For keys, config hashes and
// data fingerprints.
inline constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
uint64_t fnv1a(std::string_view text, uint64_t h = kFnvOffset);

class RngKey {
 public:
  explicit RngKey(uint64_t seed) : value_(mix64(seed ^ 0x9E3779B97F4A7C15ULL)) {}
  // Derive a child key: key.with("drnas").with(step).with(draw).
  RngKey with(std::string_view purpose) const;
  RngKey with(uint64_t index) const;
  uint64_t value() const { return value_; }

 private:
  explicit RngKey(uint64_t v, int) : value_(v) {}
  uint64_t value_;
};

// A fresh generator on `device` seeded with the key (CPU always; CUDA in CUDA builds).
at::Generator make_generator(const RngKey& key, const c10::Device& device = c10::Device(c10::kCPU));

}  // namespace probnas
