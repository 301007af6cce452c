// HDF5 image shards (data/shards.h), probnas convert (data/convert.h) and the threaded loader on
// shards: round trips of a folder of real JPEG files made here with libturbojpeg, corrupt files
// skipped and counted, class-balanced subsets, errors that name the file, and a loader that gives
// the same global batches on 1 and 2 ranks, with and without threads, and after a restart.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <turbojpeg.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "probnas/core/hdf5.h"
#include "probnas/comm/communicator.h"
#include "probnas/app/options.h"
#include "probnas/data/convert.h"
#include "probnas/data/jpeg.h"
#include "probnas/data/loader.h"
#include "probnas/data/shards.h"
#include "test_support.h"

namespace probnas {
namespace {

using test::error_of;
using test::TempDir;
namespace fs = std::filesystem;

// A smooth, distinct image per (class, k): JPEG keeps smooth images to within a few levels.
torch::Tensor smooth_image(int64_t cls, int64_t k, int64_t h, int64_t w) {
  auto y = torch::linspace(0, 1, h).view({1, h, 1}).expand({3, h, w});
  auto x = torch::linspace(0, 1, w).view({1, 1, w}).expand({3, h, w});
  auto c = torch::tensor({0.2 + 0.2 * static_cast<double>(cls), 0.5, 0.8 - 0.1 * static_cast<double>(k)})
               .view({3, 1, 1});
  return ((c * 0.6 + 0.2 * y + 0.2 * x) * 255).round().clamp(0, 255).to(torch::kUInt8);
}

// JPEG file bytes of a uint8 [3, H, W] image, written with TurboJPEG directly (not with our encoder).
std::string jpeg_file(const torch::Tensor& chw) {
  tjhandle h = tjInitCompress();
  const torch::Tensor hwc = chw.permute({1, 2, 0}).contiguous();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(h, hwc.data_ptr<uint8_t>(), static_cast<int>(chw.size(2)), 0,
                             static_cast<int>(chw.size(1)), TJPF_RGB, &out, &size, TJSAMP_444, 98, 0);
  EXPECT_EQ(rc, 0) << tjGetErrorStr2(h);
  std::string bytes(reinterpret_cast<char*>(out), size);
  tjFree(out);
  tjDestroy(h);
  return bytes;
}

Config convert_config(const std::map<std::string, std::string>& options) {
  Config c(convert_option_table());
  for (const auto& [k, v] : options) c.set(k, v);
  return c;
}

ConvertSummary convert(const std::map<std::string, std::string>& options) {
  SerialCommunicator comm;
  return run_convert(convert_options().read(convert_config(options)), comm);
}

// classes "cat", "ant", "bee" (sorted: ant=0, bee=1, cat=2), 4 images each, 20x20.
struct Tree {
  std::map<std::string, torch::Tensor> images;  // path -> pixels
  std::map<std::string, int64_t> labels;        // path -> label
  std::string root, corrupt;
};
Tree make_tree(const TempDir& tmp) {
  Tree t;
  t.root = tmp.file("tree");
  const std::vector<std::string> names = {"cat", "ant", "bee"};
  const std::map<std::string, int64_t> label = {{"ant", 0}, {"bee", 1}, {"cat", 2}};
  for (size_t c = 0; c < names.size(); ++c) {
    fs::create_directories(t.root + "/" + names[c]);
    for (int64_t k = 0; k < 4; ++k) {
      const std::string path = t.root + "/" + names[c] + "/img" + std::to_string(k) + ".JPEG";
      const auto img = smooth_image(static_cast<int64_t>(c), k, 20, 20);
      test::write_file(path, jpeg_file(img));
      t.images[path] = img;
      t.labels[path] = label.at(names[c]);
    }
  }
  t.corrupt = t.root + "/bee/broken.JPEG";
  test::write_file(t.corrupt, "this is not a JPEG file at all");
  return t;
}

// Every example of a shard folder with its source file.
std::map<std::string, std::pair<torch::Tensor, int64_t>> read_back(const std::string& dir) {
  const ShardedSource src(dir);
  std::map<std::string, std::pair<torch::Tensor, int64_t>> out;
  const Examples ex = src.read(torch::arange(src.size(), torch::kInt64));
  int64_t i = 0;
  for (const auto& file : src.index().shard_files) {
    h5::File f = h5::File::open(dir + "/" + file);
    for (const auto& s : f.root().open_dataset("sources").read_strings()) {
      out[s] = {ex.images[i], ex.labels[i].item<int64_t>()};
      ++i;
    }
  }
  EXPECT_EQ(i, src.size());
  return out;
}

TEST(Convert, FolderTreeRoundTripsLabelsShapesAndPixelsAndCountsTheCorruptFile) {
  TempDir tmp;
  const Tree tree = make_tree(tmp);
  for (const std::string encoding : {"raw", "jpeg"}) {
    SCOPED_TRACE(encoding);
    const std::string out = tmp.file("shards-" + encoding);
    const auto s = convert({{"in", tree.root}, {"out", out}, {"encoding", encoding}, {"shard_size", "5"}});
    EXPECT_EQ(s.images, 12);
    EXPECT_EQ(s.skipped, 1);
    EXPECT_EQ(s.classes, 3);
    EXPECT_EQ(s.shards, 3);  // 13 files, 5 per shard
    const ShardIndex index = read_index(out);
    EXPECT_EQ(index.class_names, (std::vector<std::string>{"ant", "bee", "cat"}));
    EXPECT_EQ(index.layout.height, 20);
    ASSERT_EQ(index.skipped.size(), 1u);
    EXPECT_NE(index.skipped[0].find(tree.corrupt), std::string::npos) << index.skipped[0];
    EXPECT_NE(index.skipped[0].find("not a readable JPEG"), std::string::npos) << index.skipped[0];
    EXPECT_TRUE(fs::exists(out + "/skipped.txt"));

    const auto back = read_back(out);
    ASSERT_EQ(back.size(), 12u);
    for (const auto& [path, pixels] : tree.images) {
      ASSERT_TRUE(back.count(path)) << path;
      const auto& [img, label] = back.at(path);
      EXPECT_EQ(label, tree.labels.at(path)) << path;
      ASSERT_EQ(img.sizes().vec(), (std::vector<int64_t>{3, 20, 20}));
      const auto diff = (img.to(torch::kInt32) - pixels.to(torch::kInt32)).abs().to(torch::kFloat32);
      // One JPEG generation (raw) or two (jpeg, quality 90 and 4:2:0) of a smooth image.
      EXPECT_LT(diff.mean().item<float>(), encoding == "raw" ? 1.5 : 3.0) << path;
      EXPECT_LT(diff.max().item<float>(), encoding == "raw" ? 8 : 24) << path;
    }
    // Mean and std over the stored pixels (jpeg: the pixels before the shard's JPEG encoding).
    const ShardedSource src(out);
    const auto all = src.read(torch::arange(12)).images.to(torch::kFloat64).div(255);
    const double tol = encoding == "raw" ? 1e-5 : 3e-3;
    EXPECT_TRUE(torch::allclose(src.stats().mean.to(torch::kFloat64), all.mean({0, 2, 3}), 0, tol))
        << src.stats().mean << all.mean({0, 2, 3});
  }
}

TEST(Convert, ResizesTheShorterSideAndCropsTheCentre) {
  TempDir tmp;
  fs::create_directories(tmp.file("t/a"));
  // 40 wide, 20 high; the left and right quarters black, the middle white.
  auto img = torch::zeros({3, 20, 40}, torch::kUInt8);
  img.narrow(2, 10, 20).fill_(255);
  test::write_file(tmp.file("t/a/wide.jpg"), jpeg_file(img));
  test::write_file(tmp.file("t/a/tall.jpg"), jpeg_file(img.transpose(1, 2).contiguous()));
  convert({{"in", tmp.file("t")}, {"out", tmp.file("s")}, {"size", "10"}, {"encoding", "raw"}});
  const ShardedSource src(tmp.file("s"));
  ASSERT_EQ(src.size(), 2);
  EXPECT_EQ(src.height(), 10);
  const auto x = src.read(torch::arange(2)).images.to(torch::kFloat32);
  // 40x20 -> 20x10, centre 10x10 = the white middle.
  EXPECT_GT(x.min().item<float>(), 200) << x;
}

TEST(Convert, FractionIsAClassBalancedSeededSubsetAndShardsDoNotDependOnTheirSize) {
  TempDir tmp;
  auto ids = [&](const std::string& dir) {
    std::set<std::string> s;
    for (const auto& [src, v] : read_back(dir)) s.insert(src);
    return s;
  };
  const std::map<std::string, std::string> base = {{"synthetic", "300"}, {"classes", "3"}, {"shape", "3x8x8"},
                                                    {"fraction", "0.2"}};
  auto with = [&](std::map<std::string, std::string> o, const std::string& out,
                  std::map<std::string, std::string> more) {
    o["out"] = tmp.file(out);
    for (auto& [k, v] : more) o[k] = v;
    return convert(o);
  };
  const auto a = with(base, "a", {{"seed", "1"}});
  with(base, "b", {{"seed", "1"}, {"shard_size", "7"}});
  with(base, "c", {{"seed", "2"}});
  EXPECT_EQ(a.images, 60);
  const ShardedSource src(tmp.file("a"));
  const auto labels = src.read(torch::arange(60)).labels;
  EXPECT_TRUE(torch::equal(torch::bincount(labels), torch::full({3}, 20, torch::kInt64))) << torch::bincount(labels);
  EXPECT_EQ(ids(tmp.file("a")), ids(tmp.file("b")));
  EXPECT_NE(ids(tmp.file("a")), ids(tmp.file("c")));
  // Pixels of an example do not depend on the shard it landed in.
  const auto ra = read_back(tmp.file("a")), rb = read_back(tmp.file("b"));
  for (const auto& [s, v] : ra) EXPECT_TRUE(torch::equal(v.first, rb.at(s).first)) << s;
}

TEST(Convert, ARerunKeepsFinishedShardsAndReportsTheSameSkippedFiles) {
  TempDir tmp;
  const Tree tree = make_tree(tmp);
  const std::map<std::string, std::string> o = {{"in", tree.root}, {"out", tmp.file("s")}, {"shard_size", "4"}};
  const auto first = convert(o);
  EXPECT_EQ(first.reused_shards, 0);
  const std::string id = read_index(tmp.file("s")).dataset_id;
  fs::remove(tmp.file("s/shard-00001.h5"));  // as if killed before this shard was written
  const auto second = convert(o);
  EXPECT_EQ(second.reused_shards, first.shards - 1);
  EXPECT_EQ(second.images, first.images);
  EXPECT_EQ(second.skipped, 1);
  EXPECT_EQ(read_index(tmp.file("s")).dataset_id, id);
}

TEST(Convert, RefusesWhatItCannotDo) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { convert({{"in", tmp.file("none")}, {"out", tmp.file("s")}}); }).find(tmp.file("none")),
            std::string::npos);
  EXPECT_NE(error_of([&] { convert({{"in", tmp.path()}, {"out", tmp.file("s")}}); }).find("no class folders"),
            std::string::npos);
  EXPECT_NE(error_of([&] { convert({{"synthetic", "10"}, {"shape", "3x8"}, {"out", tmp.file("s")}}); }).find("--shape"),
            std::string::npos);
  EXPECT_NE(error_of([&] { convert({{"synthetic", "10"}}); }).find("--out"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The reader's errors name the file.

std::string synthetic_shards(const TempDir& tmp, const std::string& name, const std::string& encoding = "raw",
                             int64_t n = 120) {
  convert({{"synthetic", std::to_string(n)}, {"classes", "4"}, {"shape", "3x12x12"}, {"shard_size", "50"},
           {"encoding", encoding}, {"out", tmp.file(name)}});
  return tmp.file(name);
}

TEST(ShardedSource, AWrongFormatVersionFailsNamingTheFile) {
  TempDir tmp;
  const std::string dir = synthetic_shards(tmp, "s");
  {
    h5::File f = h5::File::open(dir + "/shard-00001.h5", true);
    h5::Group root = f.root();
    root.set_attr("format_version", int64_t{7});
    f.close();
  }
  const ShardedSource src(dir);
  const std::string e = error_of([&] { src.read(torch::tensor({60}, torch::kInt64)); });
  EXPECT_NE(e.find(dir + "/shard-00001.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("format_version 7"), std::string::npos) << e;
  EXPECT_EQ(src.read(torch::tensor({3}, torch::kInt64)).labels.numel(), 1);  // shard 0 is fine
  {
    h5::File f = h5::File::open(dir + "/index.h5", true);
    h5::Group root = f.root();
    root.set_attr("format_version", int64_t{2});
    f.close();
  }
  const std::string e2 = error_of([&] { ShardedSource s(dir); });
  EXPECT_NE(e2.find(dir + "/index.h5"), std::string::npos) << e2;
  EXPECT_NE(e2.find("format_version 2"), std::string::npos) << e2;
}

TEST(ShardedSource, AMissingIndexEntryOrShardFailsNamingTheFile) {
  TempDir tmp;
  const std::string dir = synthetic_shards(tmp, "s");
  fs::remove(dir + "/shard-00002.h5");
  std::string e = error_of([&] { ShardedSource s(dir); });
  EXPECT_NE(e.find(dir + "/shard-00002.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;

  const std::string dir2 = synthetic_shards(tmp, "t");
  {
    h5::File f = h5::File::open(dir2 + "/index.h5", true);
    ASSERT_GE(H5Ldelete(f.root().id(), "shard_counts", H5P_DEFAULT), 0);
    f.close();
  }
  e = error_of([&] { ShardedSource s(dir2); });
  EXPECT_NE(e.find(dir2 + "/index.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("'shard_counts'"), std::string::npos) << e;

  e = error_of([&] { ShardedSource s(tmp.file("nothing")); });
  EXPECT_NE(e.find(tmp.file("nothing")), std::string::npos) << e;
}

TEST(ShardedSource, AShardFromAnotherConversionFailsNamingIt) {
  TempDir tmp;
  const std::string a = synthetic_shards(tmp, "a", "raw", 120);
  const std::string b = synthetic_shards(tmp, "b", "raw", 110);  // shard 2 holds 10, not 20
  fs::copy_file(b + "/shard-00002.h5", a + "/shard-00002.h5", fs::copy_options::overwrite_existing);
  const ShardedSource src(a);
  const std::string e = error_of([&] { src.read(torch::tensor({119}, torch::kInt64)); });
  EXPECT_NE(e.find(a + "/shard-00002.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("mixes two conversions"), std::string::npos) << e;
}

TEST(ShardedSource, ReadsAnyOrderWithRepeatsLikeAnInMemoryCopy) {
  TempDir tmp;
  for (const std::string encoding : {"raw", "jpeg"}) {
    const ShardedSource src(synthetic_shards(tmp, encoding, encoding));
    const auto all = src.read(torch::arange(src.size(), torch::kInt64));
    const auto idx = torch::tensor({119, 3, 60, 3, 0, 59, 100, 119}, torch::kInt64);
    const auto some = src.read(idx);
    EXPECT_TRUE(torch::equal(some.images, all.images.index_select(0, idx))) << encoding;
    EXPECT_TRUE(torch::equal(some.labels, all.labels.index_select(0, idx))) << encoding;
    EXPECT_EQ(src.locate(60), std::make_pair(int64_t{1}, int64_t{10}));
    const ShardedSource limited(tmp.file(encoding), 70);
    EXPECT_EQ(limited.size(), 70);
    EXPECT_NE(limited.fingerprint(), src.fingerprint());
  }
}

TEST(Hdf5Rows, ReadRowsReturnsTheRangesInTheCallersOrder) {
  TempDir tmp;
  h5::File f = h5::File::create(tmp.file("r.h5"));
  h5::DatasetOptions o;
  o.chunk_rows = 1;
  auto data = torch::arange(40, torch::kInt32).view({10, 4});
  f.root().write_tensor("x", data, o);
  const auto d = f.root().open_dataset("x");
  const auto got = d.read_rows({{7, 2}, {0, 1}, {3, 3}});
  EXPECT_TRUE(torch::equal(got, torch::cat({data.narrow(0, 7, 2), data.narrow(0, 0, 1), data.narrow(0, 3, 3)})));
  EXPECT_NE(error_of([&] { d.read_rows({{9, 2}}); }).find("outside"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The loader on shards.

SplitLoader shard_loader(std::shared_ptr<const ImageSource> src, int rank, int ranks, int64_t workers) {
  SplitOptions so;
  so.global_batch = 16;
  so.micro_batches = 4;
  so.workers = workers;
  so.prefetch = 3;
  so.transform.resized_crop = true;
  so.transform.size = 8;
  return SplitLoader(src, torch::arange(src->size(), torch::kInt64), src->stats(), so, RngKey(3).with("w"),
                     torch::kCPU, rank, ranks);
}

TEST(ShardLoader, OneAndTwoRanksThreadsOrNotAndARestartSeeTheSameGlobalBatches) {
  TempDir tmp;
  auto src = std::make_shared<const ShardedSource>(synthetic_shards(tmp, "s", "jpeg"));
  const auto one = shard_loader(src, 0, 1, 0);
  const auto threaded = shard_loader(src, 0, 1, 2);
  const auto r0 = shard_loader(src, 0, 2, 2), r1 = shard_loader(src, 1, 2, 1);
  EXPECT_EQ(one.steps_per_epoch(), 7);
  torch::Tensor seen = torch::zeros({src->size()}, torch::kInt64);
  for (int64_t g = 0; g < 10; ++g) {  // across the epoch boundary
    const auto whole = one.batch_at(g);
    ASSERT_EQ(whole.size(), 4u);
    std::vector<torch::Tensor> xs, ys;
    for (const auto& b : whole) xs.push_back(b.x), ys.push_back(b.y);
    const auto x = torch::cat(xs), y = torch::cat(ys);
    EXPECT_EQ(x.sizes().vec(), (std::vector<int64_t>{16, 3, 8, 8}));
    std::vector<torch::Tensor> tx, two_x, two_y;
    for (const auto& b : threaded.batch_at(g)) tx.push_back(b.x);
    const auto a = r0.batch_at(g), b = r1.batch_at(g);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].index, 0);
    EXPECT_EQ(b[0].index, 2);
    for (const auto* part : {&a, &b})
      for (const auto& m : *part) two_x.push_back(m.x), two_y.push_back(m.y);
    EXPECT_TRUE(torch::equal(torch::cat(tx), x)) << g;
    EXPECT_TRUE(torch::equal(torch::cat(two_x), x)) << g;
    EXPECT_TRUE(torch::equal(torch::cat(two_y), y)) << g;
    if (g < 7) seen.index_add_(0, one.global_batch_indices(g), torch::ones({16}, torch::kInt64));
  }
  EXPECT_EQ(seen.max().item<int64_t>(), 1);  // an epoch draws without replacement
  // A restarted loader (a resumed run) continues at the same examples, whatever the old one prefetched.
  const auto restarted = shard_loader(src, 0, 1, 2);
  for (int64_t g : {4, 5}) {
    const auto before = threaded.batch_at(g), after = restarted.batch_at(g);
    for (size_t m = 0; m < before.size(); ++m) EXPECT_TRUE(torch::equal(before[m].x, after[m].x)) << g;
  }
  EXPECT_TRUE(torch::equal(restarted.global_batch_indices(5), one.global_batch_indices(5)));
}

TEST(ShardLoader, ALoaderThreadsErrorReachesTheCallerNamingTheShard) {
  TempDir tmp;
  const std::string dir = synthetic_shards(tmp, "s");
  auto src = std::make_shared<const ShardedSource>(dir);
  {
    h5::File f = h5::File::open(dir + "/shard-00000.h5", true);
    h5::Group root = f.root();
    root.set_attr("format_version", int64_t{9});
    f.close();
  }
  const auto loader = shard_loader(src, 0, 1, 2);
  std::string e;
  for (int64_t g = 0; g < 4 && e.empty(); ++g) {
    try {
      loader.batch_at(g);
    } catch (const Error& err) {
      e = err.what();
    }
  }
  EXPECT_NE(e.find(dir + "/shard-00000.h5"), std::string::npos) << e;
}

TEST(Transform, RandomResizedCropIsKeyedAndAtFullScaleIsAPlainResize) {
  const auto images = torch::randint(0, 256, {6, 3, 20, 20}, torch::kInt64).to(torch::kUInt8);
  ChannelStats stats{torch::zeros({3}), torch::ones({3})};
  TransformOptions o;
  o.resized_crop = true;
  o.flip = false;
  o.normalize = false;
  o.size = 10;
  auto draw = [&](uint64_t key, double scale_min) {
    o.crop_scale_min = scale_min;
    auto gen = make_generator(RngKey(key));
    return transform_images(images, o, stats, true, &gen);
  };
  const auto a = draw(1, 0.08), b = draw(1, 0.08), c = draw(2, 0.08);
  EXPECT_EQ(a.sizes().vec(), (std::vector<int64_t>{6, 3, 10, 10}));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // Scale 1 on a square image admits only the whole image: the crop is a plain resize.
  const auto full = draw(3, 1.0);
  const auto plain = transform_images(images, o, stats, false, nullptr);
  EXPECT_TRUE(torch::allclose(full, plain, 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(a, plain, 1e-2, 1e-2));
}

// Loader and decode threads run LibTorch's ops on one thread each (no OpenMP team per loader thread).
TEST(LoaderThreads, RunSingleThreadedOps) {
#if AT_PARALLEL_OPENMP
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  int inside = -1;
  std::thread t([&] {
    single_threaded_ops();
    (void)torch::rand({512, 512}).sum().item<float>();
    inside = at::get_num_threads();
  });
  t.join();
  EXPECT_EQ(inside, 1);
  EXPECT_EQ(at::get_num_threads(), 2);  // the calling thread keeps its count
  at::set_num_threads(before);
#else
  GTEST_SKIP() << "LibTorch without OpenMP";
#endif
}

TEST(Jpeg, CorruptDataIsAnErrorNamingWhat) {
  const std::string bytes = jpeg_file(smooth_image(0, 0, 16, 16));
  const std::string truncated = bytes.substr(0, bytes.size() / 2);
  const std::string e = error_of([&] { jpeg::decode(truncated.data(), truncated.size(), 3, "x/y.jpg"); });
  EXPECT_NE(e.find("x/y.jpg"), std::string::npos) << e;
  EXPECT_EQ(jpeg::decode(bytes.data(), bytes.size(), 1, "gray").size(0), 1);
}

}  // namespace
}  // namespace probnas
