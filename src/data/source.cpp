#include "probnas/data/source.h"

#include <torch/torch.h>

#include <filesystem>

#include "probnas/core/error.h"

namespace probnas {

ChannelStats ChannelStats::of(const Dataset& data) {
  PROBNAS_CHECK(data.size() > 0, "dataset '", data.name, "' is empty");
  auto x = data.images.to(torch::kFloat64).div_(255.0);
  ChannelStats s;
  s.mean = x.mean({0, 2, 3}).to(torch::kFloat32);
  s.std = x.std({0, 2, 3}).clamp_min(1e-3).to(torch::kFloat32);
  return s;
}

namespace {

class MemorySource : public ImageSource {
 public:
  explicit MemorySource(Dataset d) : data_(std::move(d)) {}
  const std::string& name() const override { return data_.name; }
  int64_t size() const override { return data_.size(); }
  int64_t channels() const override { return data_.channels(); }
  int64_t height() const override { return data_.height(); }
  int64_t width() const override { return data_.width(); }
  int64_t num_classes() const override { return data_.num_classes; }
  const std::vector<std::string>& class_names() const override { return data_.class_names; }
  Examples read(const torch::Tensor& indices) const override {
    return {data_.images.index_select(0, indices), data_.labels.index_select(0, indices)};
  }
  ChannelStats stats() const override { return ChannelStats::of(data_); }
  std::string fingerprint() const override {
    std::string print = data_.name + " " + std::to_string(data_.size());
    for (const auto& f : data_.files) {
      std::error_code ec;
      print += " " + std::filesystem::path(f).filename().string() + ":" +
               std::to_string(std::filesystem::file_size(f, ec));
    }
    return print;
  }

 private:
  Dataset data_;
};

}  // namespace

std::shared_ptr<const ImageSource> memory_source(Dataset data, int64_t limit) {
  return std::make_shared<const MemorySource>(data.head(limit));
}

}  // namespace probnas
