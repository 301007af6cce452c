#include "probnas/ckpt/state.h"

#include <torch/torch.h>

#include "probnas/core/error.h"

namespace probnas::ckpt {

State& State::group(const std::string& name) {
  auto [it, inserted] = groups_.try_emplace(name);
  if (inserted) it->second.path_ = path_ + "/" + name;
  return it->second;
}

const State& State::group(const std::string& name) const {
  auto it = groups_.find(name);
  PROBNAS_CHECK(it != groups_.end(), "checkpoint state: group '", path_, "/", name, "' is missing");
  return it->second;
}

void State::put(const std::string& name, const torch::Tensor& tensor) {
  tensors_[name] = tensor.detach().to(torch::kCPU).clone();
}

torch::Tensor State::get(const std::string& name) const {
  auto it = tensors_.find(name);
  PROBNAS_CHECK(it != tensors_.end(), "checkpoint state: dataset '", path_, "/", name, "' is missing");
  return it->second;
}

void State::put_text(const std::string& name, std::string text) {
  texts_[name] = Text{{std::move(text)}, true};
}

void State::put_lines(const std::string& name, std::vector<std::string> lines) {
  texts_[name] = Text{std::move(lines), false};
}

std::string State::text(const std::string& name) const {
  auto it = texts_.find(name);
  PROBNAS_CHECK(it != texts_.end(), "checkpoint state: text '", path_, "/", name, "' is missing");
  std::string out;
  for (size_t i = 0; i < it->second.lines.size(); ++i) out += (i ? "\n" : "") + it->second.lines[i];
  return out;
}

std::vector<std::string> State::lines(const std::string& name) const {
  auto it = texts_.find(name);
  PROBNAS_CHECK(it != texts_.end(), "checkpoint state: text '", path_, "/", name, "' is missing");
  return it->second.lines;
}

namespace {
template <typename T>
const T& attr_as(const std::map<std::string, Attribute>& attrs, const std::string& path, const std::string& name,
                 const char* type) {
  auto it = attrs.find(name);
  PROBNAS_CHECK(it != attrs.end(), "checkpoint state: attribute '", path, "@", name, "' is missing");
  const T* v = std::get_if<T>(&it->second);
  PROBNAS_CHECK(v != nullptr, "checkpoint state: attribute '", path, "@", name, "' is not ", type);
  return *v;
}
}  // namespace

int64_t State::attr_int(const std::string& name) const { return attr_as<int64_t>(attrs_, path_, name, "an integer"); }
double State::attr_real(const std::string& name) const { return attr_as<double>(attrs_, path_, name, "a number"); }
std::string State::attr_text(const std::string& name) const {
  return attr_as<std::string>(attrs_, path_, name, "text");
}

}  // namespace probnas::ckpt
