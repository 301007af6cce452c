#include "probnas/ckpt/torch_state.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <cstring>
#include <mutex>
#include <set>

#include "probnas/core/error.h"

namespace probnas {

namespace {
void save_tensors(ckpt::State& group, const torch::OrderedDict<std::string, torch::Tensor>& tensors) {
  for (const auto& kv : tensors) group.put(kv.key(), kv.value());
}

void load_tensors(const ckpt::State& group, torch::OrderedDict<std::string, torch::Tensor> tensors,
                  const char* kind) {
  torch::NoGradGuard no_grad;
  std::set<std::string> wanted;
  for (auto& kv : tensors) {
    wanted.insert(kv.key());
    PROBNAS_CHECK(group.has(kv.key()), "checkpoint: ", group.path(), " lacks the ", kind, " '", kv.key(),
                  "' this supernet has (made for another space or size?)");
    const auto t = group.get(kv.key());
    auto& dst = kv.value();
    PROBNAS_CHECK(t.sizes() == dst.sizes() && t.scalar_type() == dst.scalar_type(), "checkpoint: ", group.path(),
                  "/", kv.key(), " is ", t.sizes(), " ", t.scalar_type(), ", this supernet's is ", dst.sizes(), " ",
                  dst.scalar_type(), " (another space.channels or space.cells_per_stage?)");
    dst.copy_(t);
  }
  for (const auto& [name, t] : group.tensors())
    PROBNAS_CHECK(wanted.count(name), "checkpoint: ", group.path(), "/", name, " is not a ", kind,
                  " of this supernet (made for another space or size?)");
}

std::vector<std::pair<std::string, at::Generator>> default_generators() {
  std::vector<std::pair<std::string, at::Generator>> gens;
  gens.emplace_back("cpu", at::globalContext().defaultGenerator(c10::Device(c10::kCPU)));
  if (at::globalContext().hasCUDA()) {
    const int n = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < n; ++i)
      gens.emplace_back("cuda" + std::to_string(i),
                        at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))));
  }
  return gens;
}
}  // namespace

void save_module(ckpt::State& group, const torch::nn::Module& module) {
  save_tensors(group.group("parameters"), module.named_parameters());
  save_tensors(group.group("buffers"), module.named_buffers());
}

void load_module(const ckpt::State& group, torch::nn::Module& module) {
  load_tensors(group.group("parameters"), module.named_parameters(), "parameter");
  load_tensors(group.group("buffers"), module.named_buffers(), "buffer");
}

// Format: per generator, "<name>\n<byte count>\n<bytes>".
std::string generator_states() {
  std::string out;
  for (auto& [name, gen] : default_generators()) {
    torch::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state().contiguous();
    }
    out += name + "\n" + std::to_string(state.nbytes()) + "\n";
    out.append(static_cast<const char*>(state.data_ptr()), state.nbytes());
  }
  return out;
}

void put_generator_states(ckpt::State& rng, const std::vector<std::string>& per_rank) {
  for (size_t r = 0; r < per_rank.size(); ++r) {
    auto& group = rng.group("rank" + std::to_string(r));
    const std::string& s = per_rank[r];
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t a = s.find('\n', pos), b = s.find('\n', a + 1);
      PROBNAS_CHECK(a != std::string::npos && b != std::string::npos, "generator state of rank ", r, " is malformed");
      const std::string name = s.substr(pos, a - pos);
      const size_t n = std::stoull(s.substr(a + 1, b - a - 1));
      auto t = torch::empty({static_cast<int64_t>(n)}, torch::kUInt8);
      std::memcpy(t.data_ptr(), s.data() + b + 1, n);
      group.put(name, t);
      pos = b + 1 + n;
    }
  }
}

void restore_generator_states(const ckpt::State& rng, int rank) {
  std::string name = "rank" + std::to_string(rank);
  if (!rng.has_group(name)) name = "rank0";
  const ckpt::State& group = rng.group(name);
  for (auto& [gen_name, gen] : default_generators()) {
    if (!group.has(gen_name)) continue;
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(group.get(gen_name));
  }
}

}  // namespace probnas
