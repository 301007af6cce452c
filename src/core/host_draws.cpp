#include "probnas/core/host_draws.h"

#include <torch/torch.h>

#include <unordered_set>

#include "probnas/core/error.h"

namespace probnas {

torch::Tensor host_to_device(const torch::Tensor& host, const c10::Device& device) {
  PROBNAS_CHECK(host.device().is_cpu(), "internal: host_to_device of a tensor on ", host.device().str());
  if (device.is_cpu()) return host;
  return host.contiguous().pin_memory().to(device, /*non_blocking=*/true);
}

torch::Tensor host_rand(at::IntArrayRef sizes, at::Generator& gen, const torch::TensorOptions& options) {
  const auto host = torch::rand(sizes, gen, torch::TensorOptions().dtype(options.dtype()));
  return host_to_device(host, options.device());
}

torch::Tensor host_randn(at::IntArrayRef sizes, at::Generator& gen, const torch::TensorOptions& options) {
  const auto host = torch::randn(sizes, gen, torch::TensorOptions().dtype(options.dtype()));
  return host_to_device(host, options.device());
}

void StagedDraws::stage(const std::vector<RngKey>& keys, const Draw& draw, const c10::Device& device) {
  views_.clear();
  std::vector<std::pair<uint64_t, torch::Tensor>> drawn;
  std::unordered_set<uint64_t> seen;  // a key staged twice draws the same numbers: stage it once
  int64_t total = 0;
  for (const auto& key : keys) {
    if (!seen.insert(key.value()).second) continue;
    auto host = draw(key);
    if (!host.defined()) continue;
    PROBNAS_CHECK(host.device().is_cpu(), "internal: a staged draw on ", host.device().str());
    PROBNAS_CHECK(drawn.empty() || host.scalar_type() == drawn.front().second.scalar_type(),
                  "internal: staged draws of different dtypes");
    total += host.numel();
    drawn.emplace_back(key.value(), host);
  }
  if (drawn.empty()) return;
  const auto dtype = drawn.front().second.scalar_type();
  // The packed host tensor: pinned where the buffer is a device's, so the copy needs no sync.
  auto host_options = torch::TensorOptions().dtype(dtype);
  if (!device.is_cpu()) host_options = host_options.pinned_memory(true);
  auto packed = torch::empty({total}, host_options);
  int64_t offset = 0;
  for (const auto& [_, t] : drawn) {
    packed.narrow(0, offset, t.numel()).copy_(t.reshape({-1}));
    offset += t.numel();
  }
  if (!buffer_.defined() || buffer_.numel() != total || buffer_.scalar_type() != dtype ||
      buffer_.device() != device)
    buffer_ = torch::empty({total}, torch::TensorOptions().dtype(dtype).device(device));
  buffer_.copy_(packed, /*non_blocking=*/!device.is_cpu());
  offset = 0;
  for (const auto& [value, t] : drawn) {
    views_.emplace(value, buffer_.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

torch::Tensor StagedDraws::find(const RngKey& key) const {
  const auto it = views_.find(key.value());
  return it == views_.end() ? torch::Tensor() : it->second;
}

}  // namespace probnas
