// Unit tests of the dataset readers (data/dataset.h): IDX (plain and gzip), CIFAR binary, load_dataset
// and the synthetic generator.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "probnas/core/error.h"
#include "probnas/data/dataset.h"
#include "test_support.h"

namespace probnas {
namespace {

using test::TempDir;


bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

using Bytes = std::vector<uint8_t>;

void put_be32(Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << "cannot open " << path;
  if (!bytes.empty()) {
    const int written = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    EXPECT_EQ(written, static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

void write_file(const std::string& path, const Bytes& bytes, bool gzip) {
  if (gzip) write_gzip(path, bytes);
  else write_plain(path, bytes);
}

// Pixel bytes that use the whole 0..255 range (so a signed/unsigned mix-up shows) and differ by position.
Bytes pattern(size_t n, uint32_t salt) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((i * 37u + salt * 101u + (i >> 8) * 13u) & 0xffu);
  return out;
}

Bytes idx_images(uint32_t n, uint32_t h, uint32_t w, const Bytes& pixels) {
  Bytes out;
  put_be32(out, 0x00000803u);
  put_be32(out, n);
  put_be32(out, h);
  put_be32(out, w);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes idx_labels(const Bytes& labels) {
  Bytes out;
  put_be32(out, 0x00000801u);
  put_be32(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

const std::vector<std::string> kTenClasses = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};

class ReadersIdx : public ::testing::TestWithParam<bool> {};  // parameter: gzip-compressed

TEST_P(ReadersIdx, ImagesRoundTripWithExactBytesAndShape) {
  const bool gzip = GetParam();
  constexpr int64_t N = 3, H = 4, W = 5;
  const Bytes pixels = pattern(N * H * W, 1);
  TempDir dir;
  const std::string path = dir.file(gzip ? "images.gz" : "images");
  write_file(path, idx_images(N, H, W, pixels), gzip);

  const torch::Tensor t = read_idx(path, 3);
  EXPECT_EQ(t.scalar_type(), torch::kUInt8);
  ASSERT_EQ(t.sizes().vec(), (std::vector<int64_t>{N, H, W}));
  ASSERT_TRUE(t.is_contiguous());
  const uint8_t* data = t.data_ptr<uint8_t>();
  for (int64_t i = 0; i < N * H * W; ++i) ASSERT_EQ(data[i], pixels[static_cast<size_t>(i)]) << "byte " << i;
  // Spot-check the layout: [n][y][x] is byte n*H*W + y*W + x.
  EXPECT_EQ(t[2][3][4].item<int64_t>(), pixels[2 * H * W + 3 * W + 4]);
  EXPECT_EQ(t[1][0][2].item<int64_t>(), pixels[1 * H * W + 0 * W + 2]);
}

TEST_P(ReadersIdx, DatasetRoundTripsImagesAndLabels) {
  const bool gzip = GetParam();
  constexpr int64_t N = 4, H = 3, W = 2;
  const Bytes pixels = pattern(N * H * W, 2);
  const Bytes labels = {9, 0, 3, 7};
  TempDir dir;
  const std::string images_path = dir.file(gzip ? "img.gz" : "img");
  const std::string labels_path = dir.file(gzip ? "lab.gz" : "lab");
  write_file(images_path, idx_images(N, H, W, pixels), gzip);
  write_file(labels_path, idx_labels(labels), gzip);

  const Dataset d = read_idx_dataset(images_path, labels_path, "test-set", kTenClasses);
  EXPECT_EQ(d.name, "test-set");
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.class_names, kTenClasses);
  EXPECT_EQ(d.size(), N);
  ASSERT_EQ(d.images.scalar_type(), torch::kUInt8);
  ASSERT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{N, 1, H, W}));
  EXPECT_EQ(d.channels(), 1);
  EXPECT_EQ(d.height(), H);
  EXPECT_EQ(d.width(), W);
  const torch::Tensor images = d.images.contiguous();
  const uint8_t* data = images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < N * H * W; ++i) ASSERT_EQ(data[i], pixels[static_cast<size_t>(i)]) << "byte " << i;
  ASSERT_EQ(d.labels.scalar_type(), torch::kInt64);
  ASSERT_EQ(d.labels.sizes().vec(), (std::vector<int64_t>{N}));
  for (int64_t i = 0; i < N; ++i) EXPECT_EQ(d.labels[i].item<int64_t>(), labels[static_cast<size_t>(i)]);

  const Dataset head = d.head(2);
  EXPECT_EQ(head.size(), 2);
  EXPECT_EQ(head.labels[1].item<int64_t>(), 0);
  EXPECT_EQ(d.head(0).size(), N);
}

TEST_P(ReadersIdx, TruncatedDataFailsNamingFile) {
  const bool gzip = GetParam();
  Bytes file = idx_images(3, 4, 5, pattern(60, 3));
  file.resize(file.size() - 50);  // header promises 60 data bytes, 10 present
  TempDir dir;
  const std::string path = dir.file(gzip ? "short.gz" : "short");
  write_file(path, file, gzip);
  const std::string error = test::error_of([&] { read_idx(path, 3); });
  EXPECT_TRUE(contains(error, path)) << error;
  EXPECT_TRUE(contains(error, "truncated")) << error;
  EXPECT_TRUE(contains(error, "3x4x5")) << error;
}

TEST_P(ReadersIdx, TruncatedHeaderFailsNamingFile) {
  const bool gzip = GetParam();
  Bytes file;
  put_be32(file, 0x00000803u);
  put_be32(file, 10);  // N only; H and W missing
  TempDir dir;
  const std::string path = dir.file("header");
  write_file(path, file, gzip);
  const std::string error = test::error_of([&] { read_idx(path, 3); });
  EXPECT_TRUE(contains(error, path)) << error;
  EXPECT_TRUE(contains(error, "truncated")) << error;
}

TEST_P(ReadersIdx, WrongMagicFailsNamingFile) {
  const bool gzip = GetParam();
  TempDir dir;
  const std::string labels_path = dir.file("labels");
  write_file(labels_path, idx_labels({1, 2, 3}), gzip);
  // A label file (1 dimension) read as an image file (3 dimensions).
  std::string error = test::error_of([&] { read_idx(labels_path, 3); });
  EXPECT_TRUE(contains(error, labels_path)) << error;
  EXPECT_TRUE(contains(error, "magic")) << error;
  EXPECT_TRUE(contains(error, "0x00000801")) << error;
  EXPECT_TRUE(contains(error, "0x00000803")) << error;

  Bytes junk;
  put_be32(junk, 0x12345678u);
  put_be32(junk, 0);
  const std::string junk_path = dir.file("junk");
  write_file(junk_path, junk, gzip);
  error = test::error_of([&] { read_idx(junk_path, 1); });
  EXPECT_TRUE(contains(error, junk_path)) << error;
  EXPECT_TRUE(contains(error, "magic")) << error;
}

TEST_P(ReadersIdx, FileShorterThanMagicFails) {
  const bool gzip = GetParam();
  TempDir dir;
  for (const Bytes& content : {Bytes{0x00, 0x00}, Bytes{0x00, 0x00, 0x08}, Bytes{}}) {
    SCOPED_TRACE(std::to_string(content.size()) + " bytes");
    const std::string path = dir.file("tiny" + std::to_string(content.size()));
    write_file(path, content, gzip);
    const std::string error = test::error_of([&] { read_idx(path, 3); });
    EXPECT_TRUE(contains(error, path)) << error;
    EXPECT_TRUE(contains(error, "truncated")) << error;
  }
}

TEST_P(ReadersIdx, TrailingBytesFail) {
  const bool gzip = GetParam();
  Bytes file = idx_labels({1, 2, 3});
  file.push_back(4);
  TempDir dir;
  const std::string path = dir.file("long");
  write_file(path, file, gzip);
  const std::string error = test::error_of([&] { read_idx(path, 1); });
  EXPECT_TRUE(contains(error, path)) << error;
  EXPECT_TRUE(contains(error, "1 bytes after")) << error;
}

INSTANTIATE_TEST_SUITE_P(Readers, ReadersIdx, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "gzip" : "plain"; });

TEST(ReadersIdxFiles, TruncatedGzipStreamFailsNamingFile) {
  TempDir dir;
  const std::string whole = dir.file("whole.gz");
  write_gzip(whole, idx_images(20, 28, 28, pattern(20 * 28 * 28, 4)));
  std::ifstream in(whole, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(compressed.size(), 100u);
  const std::string cut = dir.file("cut.gz");
  write_plain(cut, Bytes(compressed.begin(), compressed.begin() + static_cast<std::ptrdiff_t>(compressed.size() / 2)));
  const std::string error = test::error_of([&] { read_idx(cut, 3); });
  EXPECT_TRUE(contains(error, cut)) << error;
  EXPECT_TRUE(contains(error, "truncated")) << error;
}

TEST(ReadersIdxFiles, MissingFileFailsNamingIt) {
  TempDir dir;
  const std::string path = dir.file("absent-idx3-ubyte");
  const std::string error = test::error_of([&] { read_idx(path, 3); });
  EXPECT_TRUE(contains(error, path)) << error;
  EXPECT_TRUE(contains(error, "does not exist")) << error;
}

TEST(ReadersIdxFiles, CountMismatchBetweenImagesAndLabelsFails) {
  TempDir dir;
  const std::string images_path = dir.file("img"), labels_path = dir.file("lab");
  write_plain(images_path, idx_images(3, 2, 2, pattern(12, 5)));
  write_plain(labels_path, idx_labels({1, 2}));
  const std::string error =
      test::error_of([&] { read_idx_dataset(images_path, labels_path, "test-set", kTenClasses); });
  EXPECT_TRUE(contains(error, images_path)) << error;
  EXPECT_TRUE(contains(error, labels_path)) << error;
  EXPECT_TRUE(contains(error, "3 images")) << error;
  EXPECT_TRUE(contains(error, "2 labels")) << error;
}

TEST(ReadersIdxFiles, LabelOutOfRangeFailsNamingFile) {
  TempDir dir;
  const std::string images_path = dir.file("img"), labels_path = dir.file("lab");
  write_plain(images_path, idx_images(2, 2, 2, pattern(8, 6)));
  write_plain(labels_path, idx_labels({1, 10}));
  const std::string error =
      test::error_of([&] { read_idx_dataset(images_path, labels_path, "test-set", kTenClasses); });
  EXPECT_TRUE(contains(error, labels_path)) << error;
  EXPECT_TRUE(contains(error, "label 10")) << error;
}

constexpr int64_t kCifarPixels = 3 * 32 * 32;

// CIFAR records: `label_bytes` label bytes (values from `label_values`, record-major) + pixels.
Bytes cifar_records(int64_t n, int label_bytes, const Bytes& label_values, uint32_t salt) {
  Bytes out;
  for (int64_t r = 0; r < n; ++r) {
    for (int b = 0; b < label_bytes; ++b) out.push_back(label_values[static_cast<size_t>(r * label_bytes + b)]);
    const Bytes px = pattern(kCifarPixels, salt + static_cast<uint32_t>(r));
    out.insert(out.end(), px.begin(), px.end());
  }
  return out;
}

// Checks images[r] (layout [3, 32, 32]) against the record's raw pixel bytes: R plane, G plane, B plane.
void expect_cifar_pixels(const torch::Tensor& images, int64_t index, const Bytes& file, int64_t record_in_file,
                         int label_bytes) {
  const auto a = images.accessor<uint8_t, 4>();
  const size_t base = static_cast<size_t>(record_in_file * (label_bytes + kCifarPixels) + label_bytes);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x = 0; x < 32; ++x)
        ASSERT_EQ(a[index][c][y][x], file[base + static_cast<size_t>(c * 1024 + y * 32 + x)])
            << "image " << index << " c" << c << " y" << y << " x" << x;
}

TEST(ReadersCifar, Cifar10RoundTripsWithChannelMajorLayout) {
  TempDir dir;
  const Bytes file = cifar_records(3, 1, {7, 0, 9}, 10);
  const std::string path = dir.file("data_batch_1.bin");
  write_plain(path, file);
  const Dataset d = read_cifar_binary({path}, 1, 10, "cifar10", kTenClasses);
  EXPECT_EQ(d.name, "cifar10");
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.class_names, kTenClasses);
  ASSERT_EQ(d.images.scalar_type(), torch::kUInt8);
  ASSERT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{3, 3, 32, 32}));
  ASSERT_EQ(d.labels.scalar_type(), torch::kInt64);
  ASSERT_EQ(d.labels.sizes().vec(), (std::vector<int64_t>{3}));
  EXPECT_EQ(d.labels[0].item<int64_t>(), 7);
  EXPECT_EQ(d.labels[1].item<int64_t>(), 0);
  EXPECT_EQ(d.labels[2].item<int64_t>(), 9);
  for (int64_t r = 0; r < 3; ++r) expect_cifar_pixels(d.images, r, file, r, 1);
  // Explicit spot checks: first red pixel, first green pixel (byte 1024), last blue pixel of record 2.
  EXPECT_EQ(d.images[0][0][0][0].item<int64_t>(), file[1]);
  EXPECT_EQ(d.images[0][1][0][0].item<int64_t>(), file[1 + 1024]);
  EXPECT_EQ(d.images[2][2][31][31].item<int64_t>(), file[static_cast<size_t>(3 * (1 + kCifarPixels) - 1)]);
}

TEST(ReadersCifar, SeveralFilesAreConcatenatedInOrder) {
  TempDir dir;
  const Bytes first = cifar_records(2, 1, {1, 2}, 20), second = cifar_records(1, 1, {3}, 30);
  const std::string a = dir.file("a.bin"), b = dir.file("b.bin");
  write_plain(a, first);
  write_plain(b, second);
  const Dataset d = read_cifar_binary({a, b}, 1, 10, "cifar10", kTenClasses);
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.labels[0].item<int64_t>(), 1);
  EXPECT_EQ(d.labels[1].item<int64_t>(), 2);
  EXPECT_EQ(d.labels[2].item<int64_t>(), 3);
  expect_cifar_pixels(d.images, 0, first, 0, 1);
  expect_cifar_pixels(d.images, 1, first, 1, 1);
  expect_cifar_pixels(d.images, 2, second, 0, 1);
}

TEST(ReadersCifar, Cifar100UsesTheFineLabel) {
  TempDir dir;
  // (coarse, fine) pairs: the coarse byte differs from the fine one in every record.
  const Bytes file = cifar_records(3, 2, {4, 57, 19, 99, 0, 30}, 40);
  const std::string path = dir.file("train.bin");
  write_plain(path, file);
  std::vector<std::string> classes;
  for (int i = 0; i < 100; ++i) classes.push_back("class" + std::to_string(i));
  const Dataset d = read_cifar_binary({path}, 2, 100, "cifar100", classes);
  EXPECT_EQ(d.num_classes, 100);
  ASSERT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{3, 3, 32, 32}));
  ASSERT_EQ(d.labels.sizes().vec(), (std::vector<int64_t>{3}));
  EXPECT_EQ(d.labels[0].item<int64_t>(), 57);
  EXPECT_EQ(d.labels[1].item<int64_t>(), 99);
  EXPECT_EQ(d.labels[2].item<int64_t>(), 30);
  for (int64_t r = 0; r < 3; ++r) expect_cifar_pixels(d.images, r, file, r, 2);
}

TEST(ReadersCifar, PartialRecordFailsNamingFile) {
  TempDir dir;
  Bytes file = cifar_records(2, 1, {1, 2}, 50);
  file.resize(file.size() - 5);
  const std::string path = dir.file("data_batch_1.bin");
  write_plain(path, file);
  const std::string error = test::error_of([&] { read_cifar_binary({path}, 1, 10, "cifar10", kTenClasses); });
  EXPECT_TRUE(contains(error, path)) << error;
  EXPECT_TRUE(contains(error, "truncated")) << error;
  EXPECT_TRUE(contains(error, std::to_string(file.size()) + " bytes")) << error;

  const std::string empty = dir.file("empty.bin");
  write_plain(empty, {});
  const std::string error2 = test::error_of([&] { read_cifar_binary({empty}, 1, 10, "cifar10", kTenClasses); });
  EXPECT_TRUE(contains(error2, empty)) << error2;
  EXPECT_TRUE(contains(error2, "truncated")) << error2;
}

TEST(ReadersCifar, LabelOutOfRangeFailsNamingFile) {
  TempDir dir;
  const std::string good = dir.file("good.bin"), bad = dir.file("bad.bin");
  write_plain(good, cifar_records(1, 1, {9}, 60));
  write_plain(bad, cifar_records(2, 1, {3, 10}, 61));
  const std::string error =
      test::error_of([&] { read_cifar_binary({good, bad}, 1, 10, "cifar10", kTenClasses); });
  EXPECT_TRUE(contains(error, bad)) << error;
  EXPECT_FALSE(contains(error, good)) << error;
  EXPECT_TRUE(contains(error, "label 10")) << error;
}

TEST(ReadersLoad, MissingFashionMnistFilesNameTheFileAndPackage) {
  TempDir dir;
  const std::string error = test::error_of([&] { load_dataset("fashion-mnist", dir.path(), Split::train); });
  EXPECT_TRUE(contains(error, "train-images-idx3-ubyte")) << error;
  EXPECT_TRUE(contains(error, "dataset-fashion-mnist")) << error;
  EXPECT_TRUE(contains(error, dir.path())) << error;

  const std::string test_error = test::error_of([&] { load_dataset("fashion-mnist", dir.path(), Split::test); });
  EXPECT_TRUE(contains(test_error, "t10k-images-idx3-ubyte")) << test_error;
}

TEST(ReadersLoad, MissingLabelsFileIsNamed) {
  TempDir dir;
  write_gzip(dir.file("train-images-idx3-ubyte.gz"), idx_images(2, 2, 2, pattern(8, 7)));
  const std::string error = test::error_of([&] { load_dataset("mnist", dir.path(), Split::train); });
  EXPECT_TRUE(contains(error, "train-labels-idx1-ubyte")) << error;
  EXPECT_TRUE(contains(error, dir.path())) << error;
}

TEST(ReadersLoad, LoadsIdxFilesFromAFolder) {
  TempDir dir;
  const Bytes pixels = pattern(2 * 3 * 3, 8);
  write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(2, 3, 3, pixels));
  write_plain(dir.file("t10k-labels-idx1-ubyte"), idx_labels({4, 8}));
  const Dataset d = load_dataset("mnist", dir.path(), Split::test);
  EXPECT_EQ(d.name, "mnist");
  EXPECT_EQ(d.num_classes, 10);
  ASSERT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[3], "3");
  ASSERT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{2, 1, 3, 3}));
  EXPECT_EQ(d.images[1][0][2][2].item<int64_t>(), pixels[17]);
  EXPECT_EQ(d.labels[0].item<int64_t>(), 4);
  EXPECT_EQ(d.labels[1].item<int64_t>(), 8);
}

TEST(ReadersLoad, MissingCifarFileIsNamed) {
  TempDir dir;
  const std::string error = test::error_of([&] { load_dataset("cifar10", dir.path(), Split::test); });
  EXPECT_TRUE(contains(error, "test_batch.bin")) << error;
  EXPECT_TRUE(contains(error, dir.path())) << error;
}

TEST(ReadersLoad, UnknownDatasetFailsNamingIt) {
  TempDir dir;
  const std::string error = test::error_of([&] { load_dataset("imagenet-42", dir.path(), Split::train); });
  EXPECT_TRUE(contains(error, "imagenet-42")) << error;
  EXPECT_TRUE(contains(error, "allowed")) << error;
}

TEST(ReadersLoad, DefaultPaths) {
  EXPECT_EQ(default_data_path("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(default_data_path("mnist"), "/usr/share/datasets/mnist");
  EXPECT_EQ(default_data_path("cifar10"), "");
}

TEST(ReadersLoad, InstalledFashionMnistTrainSplit) {
  const std::string folder = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::is_directory(folder))
    GTEST_SKIP() << folder << " does not exist (install Debian's dataset-fashion-mnist to run this test)";
  const Dataset d = load_dataset("fashion-mnist", "", Split::train);
  EXPECT_EQ(d.name, "fashion-mnist");
  ASSERT_EQ(d.images.scalar_type(), torch::kUInt8);
  ASSERT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{60000, 1, 28, 28}));
  ASSERT_EQ(d.labels.scalar_type(), torch::kInt64);
  ASSERT_EQ(d.labels.sizes().vec(), (std::vector<int64_t>{60000}));
  EXPECT_EQ(d.labels.min().item<int64_t>(), 0);
  EXPECT_EQ(d.labels.max().item<int64_t>(), 9);
  EXPECT_EQ(d.num_classes, 10);
  ASSERT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[9], "Ankle boot");
  // Fashion-MNIST's training split is balanced: 6000 images of each class.
  const torch::Tensor counts = torch::bincount(d.labels, {}, 10);
  for (int64_t c = 0; c < 10; ++c) EXPECT_EQ(counts[c].item<int64_t>(), 6000) << "class " << c;
}

TEST(SyntheticData, ShapeLabelsAndDeterminism) {
  SyntheticOptions o;
  o.count = 50, o.channels = 2, o.size = 8, o.classes = 3, o.seed = 7;
  const Dataset a = make_synthetic(o);
  EXPECT_EQ(a.name, "synthetic");
  ASSERT_EQ(a.images.scalar_type(), torch::kUInt8);
  ASSERT_EQ(a.images.sizes().vec(), (std::vector<int64_t>{50, 2, 8, 8}));
  ASSERT_EQ(a.labels.scalar_type(), torch::kInt64);
  ASSERT_EQ(a.labels.sizes().vec(), (std::vector<int64_t>{50}));
  EXPECT_GE(a.labels.min().item<int64_t>(), 0);
  EXPECT_LT(a.labels.max().item<int64_t>(), 3);
  EXPECT_EQ(a.num_classes, 3);
  EXPECT_EQ(a.class_names, (std::vector<std::string>{"class0", "class1", "class2"}));
  // 50 draws over 3 classes: every class appears (probability of missing one is ~1e-8).
  const torch::Tensor per_class = torch::bincount(a.labels, {}, 3);
  ASSERT_EQ(per_class.size(0), 3);
  for (int64_t c = 0; c < 3; ++c) EXPECT_GT(per_class[c].item<int64_t>(), 0) << "class " << c;

  const Dataset same = make_synthetic(o);
  EXPECT_TRUE(torch::equal(a.images, same.images));
  EXPECT_TRUE(torch::equal(a.labels, same.labels));

  SyntheticOptions other = o;
  other.seed = 8;
  const Dataset b = make_synthetic(other);
  ASSERT_EQ(b.images.sizes(), a.images.sizes());
  EXPECT_FALSE(torch::equal(a.images, b.images));
  EXPECT_FALSE(torch::equal(a.labels, b.labels));
}

TEST(SyntheticData, RejectsBadOptions) {
  SyntheticOptions o;
  o.classes = 1;
  EXPECT_TRUE(contains(test::error_of([&] { make_synthetic(o); }), "at least 2 classes"));
  o.classes = 10, o.count = 0;
  EXPECT_NE(test::error_of([&] { make_synthetic(o); }), "<no error>");
}

}  // namespace
}  // namespace probnas
