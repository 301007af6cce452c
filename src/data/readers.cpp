#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <torch/torch.h>

#include "probnas/core/error.h"
#include "probnas/core/rng.h"
#include "probnas/data/dataset.h"

namespace probnas {
namespace {

// Whole file, decompressed if gzip (zlib reads plain files transparently).
std::string slurp(const std::string& path) {
  PROBNAS_CHECK(std::filesystem::is_regular_file(path), "data file '", path, "' does not exist");
  gzFile f = gzopen(path.c_str(), "rb");
  PROBNAS_CHECK(f != nullptr, "data file '", path, "' cannot be opened");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      const std::string msg = gzerror(f, &err);
      gzclose(f);
      PROBNAS_FAIL("data file '", path, "' is corrupt or truncated (", msg, ")");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string with_gz(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {dir + "/" + name + ".gz", dir + "/" + name})
    if (std::filesystem::is_regular_file(candidate)) return candidate;
  return "";
}

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
const std::vector<std::string> kCifar10Classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                  "dog",      "frog",       "horse", "ship", "truck"};

}  // namespace

Dataset Dataset::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  Dataset d = *this;
  d.images = images.narrow(0, 0, n);
  d.labels = labels.narrow(0, 0, n);
  return d;
}

torch::Tensor read_idx(const std::string& path, int expected_dims) {
  const std::string raw = slurp(path);
  const uint32_t expected_magic = 0x00000800u | static_cast<uint32_t>(expected_dims);
  PROBNAS_CHECK(raw.size() >= 4, "IDX file '", path, "' is truncated: ", raw.size(),
                " bytes, not even the 4-byte magic number");
  const uint32_t magic = be32(raw, 0);
  if (magic != expected_magic) {
    char found[16], want[16];
    std::snprintf(found, sizeof found, "0x%08x", magic);
    std::snprintf(want, sizeof want, "0x%08x", expected_magic);
    PROBNAS_FAIL("IDX file '", path, "' has the wrong magic number ", found, " (expected ", want,
                 ": unsigned bytes in ", expected_dims, " dimension", expected_dims > 1 ? "s" : "", ")");
  }
  const size_t header = 4 + 4 * static_cast<size_t>(expected_dims);
  PROBNAS_CHECK(raw.size() >= header, "IDX file '", path, "' is truncated: ", raw.size(),
                " bytes, less than its ", header, "-byte header");
  std::vector<int64_t> dims;
  size_t count = 1;
  std::string shape;
  for (int d = 0; d < expected_dims; ++d) {
    dims.push_back(be32(raw, 4 + 4 * static_cast<size_t>(d)));
    count *= static_cast<size_t>(dims.back());
    shape += (d ? "x" : "") + std::to_string(dims.back());
  }
  PROBNAS_CHECK(raw.size() - header >= count, "IDX file '", path, "' is truncated: its header promises ", shape,
                " = ", count, " bytes of data, found ", raw.size() - header);
  PROBNAS_CHECK(raw.size() - header == count, "IDX file '", path, "' has ", raw.size() - header - count,
                " bytes after the ", shape, " data its header promises");
  auto t = torch::empty(dims, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), raw.data() + header, count);
  return t;
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path, const std::string& name,
                         std::vector<std::string> class_names) {
  torch::Tensor images = read_idx(images_path, 3);
  torch::Tensor labels = read_idx(labels_path, 1);
  PROBNAS_CHECK(images.size(0) == labels.size(0), "IDX files disagree: '", images_path, "' holds ",
                images.size(0), " images but '", labels_path, "' holds ", labels.size(0), " labels");
  Dataset d;
  d.name = name;
  d.images = images.unsqueeze(1).contiguous();
  d.labels = labels.to(torch::kInt64);
  d.num_classes = static_cast<int64_t>(class_names.size());
  const int64_t max_label = d.labels.numel() ? d.labels.max().item<int64_t>() : 0;
  PROBNAS_CHECK(max_label < d.num_classes, "IDX file '", labels_path, "' has label ", max_label, " but ", name,
                " has ", d.num_classes, " classes");
  d.class_names = std::move(class_names);
  return d;
}

Dataset read_cifar_binary(const std::vector<std::string>& files, int label_bytes, int64_t num_classes,
                          const std::string& name, std::vector<std::string> class_names) {
  constexpr int64_t kPixels = 3 * 32 * 32;
  const int64_t record = label_bytes + kPixels;
  std::vector<torch::Tensor> images, labels;
  for (const auto& path : files) {
    const std::string raw = slurp(path);
    PROBNAS_CHECK(!raw.empty() && static_cast<int64_t>(raw.size()) % record == 0, "CIFAR file '", path, "' has ",
                  raw.size(), " bytes, not a whole number of ", record, "-byte records (", label_bytes,
                  " label byte", label_bytes > 1 ? "s" : "", " + 3x32x32 pixels): truncated or not a ", name,
                  " binary batch");
    const int64_t n = static_cast<int64_t>(raw.size()) / record;
    auto bytes = torch::from_blob(const_cast<char*>(raw.data()), {n, record}, torch::kUInt8).clone();
    auto lab = bytes.select(1, label_bytes - 1).to(torch::kInt64);
    const int64_t max_label = lab.max().item<int64_t>();
    PROBNAS_CHECK(max_label < num_classes, "CIFAR file '", path, "' has label ", max_label, " but ", name, " has ",
                  num_classes, " classes: is it a ", name, " binary batch?");
    images.push_back(bytes.narrow(1, label_bytes, kPixels).reshape({n, 3, 32, 32}));
    labels.push_back(lab);
  }
  Dataset d;
  d.name = name;
  d.images = torch::cat(images).contiguous();
  d.labels = torch::cat(labels);
  d.num_classes = num_classes;
  d.class_names = std::move(class_names);
  return d;
}

Dataset make_synthetic(const SyntheticOptions& o) {
  PROBNAS_CHECK(o.count > 0 && o.channels > 0 && o.size > 0 && o.classes > 1, "synthetic data needs count, channels, "
                "size > 0 and at least 2 classes");
  const RngKey key = RngKey(o.seed).with("synthetic");
  auto gen = make_generator(key.with("prototypes"));
  // Low-frequency class prototypes: a coarse random grid upsampled, so convolutions can tell them apart.
  const int64_t coarse = std::max<int64_t>(2, o.size / 4);
  auto proto = torch::rand({o.classes, o.channels, coarse, coarse}, gen, torch::kFloat32);
  proto = torch::upsample_bilinear2d(proto, {o.size, o.size}, false);
  auto gen2 = make_generator(key.with(o.test_split ? "test-examples" : "examples"));
  auto labels = torch::randint(o.classes, {o.count}, gen2, torch::kInt64);
  auto noise = torch::randn({o.count, o.channels, o.size, o.size}, gen2, torch::kFloat32) * 0.25;
  auto images = (proto.index_select(0, labels) * 0.6 + 0.2 + noise).clamp(0, 1).mul(255).round().to(torch::kUInt8);
  Dataset d;
  d.name = "synthetic";
  d.images = images.contiguous();
  d.labels = labels;
  d.num_classes = o.classes;
  for (int64_t c = 0; c < o.classes; ++c) d.class_names.push_back("class" + std::to_string(c));
  return d;
}

std::string default_data_path(const std::string& name) {
  if (name == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (name == "mnist") return "/usr/share/datasets/mnist";
  return "";
}

Dataset load_dataset(const std::string& name, const std::string& path_in, Split split) {
  const std::string path = path_in.empty() ? default_data_path(name) : path_in;
  const bool train = split == Split::train;
  if (name == "fashion-mnist" || name == "mnist") {
    PROBNAS_CHECK(!path.empty(), "data.path is empty and ", name, " has no default location");
    const std::string prefix = train ? "train" : "t10k";
    const std::string images = with_gz(path, prefix + "-images-idx3-ubyte");
    const std::string labels = with_gz(path, prefix + "-labels-idx1-ubyte");
    const std::string how = name == "fashion-mnist"
                                ? "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
                                : "download the MNIST IDX files there";
    PROBNAS_CHECK(!images.empty(), "data.path: no ", prefix, "-images-idx3-ubyte(.gz) in '", path, "'; ", how,
                  " or set data.path to the folder that holds the IDX files");
    PROBNAS_CHECK(!labels.empty(), "data.path: no ", prefix, "-labels-idx1-ubyte(.gz) in '", path, "'; ", how,
                  " or set data.path to the folder that holds the IDX files");
    std::vector<std::string> classes = kFashionClasses;
    if (name == "mnist") {
      classes.clear();
      for (int i = 0; i < 10; ++i) classes.push_back(std::to_string(i));
    }
    Dataset d = read_idx_dataset(images, labels, name, classes);
    d.files = {images, labels};
    return d;
  }
  if (name == "cifar10" || name == "cifar100") {
    PROBNAS_CHECK(!path.empty(), "data.path must name the folder of the ", name,
                  " binary version (e.g. cifar-10-batches-bin)");
    const bool ten = name == "cifar10";
    std::vector<std::string> names;
    if (ten && train)
      for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
    else if (ten) names.push_back("test_batch.bin");
    else names.push_back(train ? "train.bin" : "test.bin");
    std::string dir = path;
    const std::string sub = ten ? "cifar-10-batches-bin" : "cifar-100-binary";
    if (!std::filesystem::exists(dir + "/" + names.front()) && std::filesystem::exists(dir + "/" + sub))
      dir += "/" + sub;
    std::vector<std::string> files;
    for (const auto& n : names) {
      const std::string f = dir + "/" + n;
      PROBNAS_CHECK(std::filesystem::is_regular_file(f), "data.path: '", f, "' does not exist; set data.path to the "
                    "folder of the ", name, " binary version (from https://www.cs.toronto.edu/~kriz/cifar.html)");
      files.push_back(f);
    }
    std::vector<std::string> classes = kCifar10Classes;
    if (!ten) {
      classes.clear();
      for (int i = 0; i < 100; ++i) classes.push_back("class" + std::to_string(i));
    }
    Dataset d = read_cifar_binary(files, ten ? 1 : 2, ten ? 10 : 100, name, classes);
    d.files = files;
    return d;
  }
  PROBNAS_FAIL("data.dataset = '", name, "' has no file reader (allowed: fashion-mnist, mnist, cifar10, cifar100, "
               "synthetic)");
}

}  // namespace probnas
