// Unit tests of checkpoint files (ckpt/checkpoint.h): the State <-> HDF5 mapping, the atomic write
// protocol, validation on reading, the checkpoints/ folder and the resume compatibility rules.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probnas/app/options.h"
#include "probnas/ckpt/checkpoint.h"
#include "probnas/core/hdf5.h"
#include "probnas/ckpt/state.h"
#include "probnas/core/config.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/ckpt/torch_state.h"
#include "probnas/engine/run_support.h"
#include "probnas/space/supernet.h"
#include "test_support.h"

namespace probnas {
namespace {

namespace fs = std::filesystem;
using ckpt::State;
using test::error_of;
using test::TempDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A State as the search writes it, reduced: /meta with the schema version and a step, some tensors.
State checkpoint_state(int64_t step, int64_t schema_version = ckpt::kSchemaVersion) {
  State s;
  State& meta = s.group("meta");
  meta.set_attr("schema_version", schema_version);
  meta.set_attr("probnas_version", std::string("test"));
  meta.set_attr("step", step);
  State& model = s.group("model");
  model.group("parameters").put("w", torch::arange(1000, torch::kFloat32) * 0.25f + static_cast<float>(step));
  model.group("buffers").put("n", torch::tensor({step}, torch::kInt64));
  s.group("method").put_lines("genotype", {"|nor_conv_3x3~0|", "+|skip_connect~0|"});
  return s;
}

// Writes an HDF5 file with the given top-level groups and /meta attributes, bypassing write_file.
void write_raw(const std::string& path, const std::vector<std::string>& groups, bool complete, int64_t complete_value = 1) {
  h5::File f = h5::File::create(path);
  h5::Group root = f.root();
  for (const auto& name : groups) {
    h5::Group g = root.create_group(name);
    if (name == "meta") {
      g.set_attr("schema_version", ckpt::kSchemaVersion);
      if (complete) g.set_attr("complete", complete_value);
    }
  }
  f.close();
}

std::vector<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return {names.begin(), names.end()};
}

// ---------------------------------------------------------------------------------------------
// State <-> HDF5

// `s` written as the group "state" of a new HDF5 file at `path`, then read back from the file.
State written_and_read(const State& s, const std::string& path) {
  {
    h5::File f = h5::File::create(path);
    h5::Group root = f.root();
    h5::Group g = root.create_group("state");
    ckpt::write_state(g, s, {});
    f.close();
  }
  h5::File f = h5::File::open(path);
  return ckpt::read_state(f.root().open_group("state"));
}

TEST(CheckpointState, WriteStateReadStateRoundTrip) {
  State s;
  s.set_attr("count", int64_t{-7});
  s.set_attr("rate", 0.125);
  s.set_attr("name", std::string("β = ELU(η)+1"));
  s.put("top", torch::arange(6, torch::kFloat64).reshape({2, 3}));
  s.put_text("note", "a single text");
  s.put_text("empty_note", "");
  s.put_lines("lines", {"one", "", "three"});
  s.put_lines("no_lines", {});
  State& a = s.group("a");
  a.set_attr("depth", int64_t{1});
  a.put("half", torch::tensor({1.5f, -2.25f}).to(torch::kHalf));
  State& b = a.group("b");
  b.set_attr("depth", 2.0);
  b.put("flags", torch::tensor({true, false, true}));
  b.put("scalar", torch::tensor(int64_t{9}));
  b.put("empty", torch::zeros({0, 4}, torch::kInt16));
  s.group("empty_group");

  TempDir dir;
  const State r = written_and_read(s, dir.file("s.h5"));

  EXPECT_EQ(r.attr_int("count"), -7);
  EXPECT_EQ(r.attr_real("rate"), 0.125);
  EXPECT_EQ(r.attr_text("name"), "β = ELU(η)+1");
  EXPECT_EQ(r.attrs().size(), 3u);
  // The kinds survive: an integer stays an integer, a real a real.
  EXPECT_TRUE(contains(error_of([&] { r.attr_real("count"); }), "is not a number"));
  EXPECT_TRUE(contains(error_of([&] { r.attr_int("rate"); }), "is not an integer"));

  ASSERT_TRUE(r.has("top"));
  EXPECT_EQ(r.get("top").scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(r.get("top"), s.get("top")));
  EXPECT_EQ(r.tensors().size(), 1u);

  EXPECT_EQ(r.text("note"), "a single text");
  EXPECT_TRUE(r.texts().at("note").scalar);
  EXPECT_EQ(r.text("empty_note"), "");
  EXPECT_TRUE(r.texts().at("empty_note").scalar);
  EXPECT_EQ(r.lines("lines"), (std::vector<std::string>{"one", "", "three"}));
  EXPECT_FALSE(r.texts().at("lines").scalar);
  EXPECT_TRUE(r.lines("no_lines").empty());
  EXPECT_FALSE(r.texts().at("no_lines").scalar);
  EXPECT_EQ(r.texts().size(), 4u);

  ASSERT_TRUE(r.has_group("a"));
  ASSERT_TRUE(r.has_group("empty_group"));
  EXPECT_EQ(r.groups().size(), 2u);
  const State& ra = r.group("a");
  EXPECT_EQ(ra.path(), "/a");
  EXPECT_EQ(ra.attr_int("depth"), 1);
  EXPECT_EQ(ra.get("half").scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(ra.get("half"), a.get("half")));
  const State& rb = ra.group("b");
  EXPECT_EQ(rb.path(), "/a/b");
  EXPECT_EQ(rb.attr_real("depth"), 2.0);
  EXPECT_EQ(rb.get("flags").scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal(rb.get("flags"), b.get("flags")));
  EXPECT_EQ(rb.get("scalar").dim(), 0);
  EXPECT_EQ(rb.get("scalar").item<int64_t>(), 9);
  EXPECT_EQ(rb.get("empty").sizes(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(rb.get("empty").scalar_type(), torch::kInt16);
  EXPECT_TRUE(r.group("empty_group").tensors().empty());
  // The dataset's `dtype` attribute is the layer's, not part of the state.
  EXPECT_EQ(rb.attrs().size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// write_file

// run.channels_last changes the weights' memory layout, not the file: a channels-last supernet
// writes NCHW datasets (each equal to the weight read in NCHW order), and the file loads into a
// supernet of either layout, which keeps its own layout.
TEST(CheckpointState, ChannelsLastWeightsAreWrittenInTheNchwLayoutAndLoadIntoEither) {
  SpaceOptions o;
  o.space = "darts", o.channels = 4, o.cells = 3, o.input_channels = 3, o.classes = 5;
  torch::manual_seed(1);
  auto saved = make_supernet(o);
  saved->set_channels_last(true);
  State s;
  save_module(s.group("model"), *saved);
  TempDir dir;
  const State r = written_and_read(s, dir.file("cl.h5"));
  size_t convs = 0;
  for (const auto& kv : saved->named_parameters()) {
    const auto stored = r.group("model").group("parameters").get(kv.key());
    if (kv.value().dim() == 4) {
      ASSERT_TRUE(kv.value().is_contiguous(at::MemoryFormat::ChannelsLast)) << kv.key();
      ++convs;
    }
    EXPECT_TRUE(stored.is_contiguous()) << kv.key();
    // The file's bytes in NCHW order are the weight's values (a layout mix-up would permute them).
    EXPECT_TRUE(torch::equal(stored.flatten(), kv.value().contiguous().flatten())) << kv.key();
  }
  EXPECT_GT(convs, 10u);
  for (const bool channels_last : {false, true}) {
    torch::manual_seed(2);  // other initial weights
    auto loaded = make_supernet(o);
    loaded->set_channels_last(channels_last);
    load_module(r.group("model"), *loaded);
    auto want = saved->named_parameters();
    for (const auto& kv : loaded->named_parameters()) {
      EXPECT_TRUE(torch::equal(kv.value(), want[kv.key()])) << kv.key();
      // (1x1 and depthwise weights are contiguous in both layouts)
      if (kv.value().dim() == 4 && kv.value().size(1) > 1 && kv.value().size(2) > 1)
        EXPECT_EQ(kv.value().is_contiguous(at::MemoryFormat::ChannelsLast), channels_last) << kv.key();
    }
  }
}

TEST(CheckpointFile, WriteFileIsCompleteWithAllGroupsAndNoTmp) {
  TempDir dir;
  const std::string path = dir.file("ckpt-5.h5");
  State s = checkpoint_state(5);  // meta, model, method only
  s.group("extra").set_attr("x", int64_t{3});
  ckpt::write_file(path, s, {});
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"ckpt-5.h5"});

  h5::File f = h5::File::open(path);
  const h5::Group root = f.root();
  const h5::Group meta = root.open_group("meta");
  EXPECT_EQ(meta.attr_int("complete"), 1);
  EXPECT_EQ(meta.attr_kind("complete"), h5::Object::AttrKind::integer);
  EXPECT_EQ(meta.attr_int("step"), 5);
  for (const auto& g : {"meta", "model", "optim", "method", "loader", "rng", "history", "extra"})
    EXPECT_TRUE(root.is_group(g)) << "no /" << g;
  EXPECT_EQ(root.children().size(), 8u);
  EXPECT_EQ(ckpt::top_level_groups(),
            (std::vector<std::string>{"meta", "model", "optim", "method", "loader", "rng", "history"}));
  EXPECT_TRUE(root.open_group("optim").children().empty());
  EXPECT_EQ(root.open_group("extra").attr_int("x"), 3);
}

TEST(CheckpointFile, WriteFileReplacesAStaleTmpAndReadsBack) {
  TempDir dir;
  const std::string path = dir.file("ckpt-9.h5");
  test::write_file(path + ".tmp", "debris of an interrupted write");
  const State s = checkpoint_state(9);
  ckpt::SaveOptions options;
  options.compression = 4;
  ckpt::write_file(path, s, options);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const State r = ckpt::read_file(path);
  EXPECT_EQ(r.group("meta").attr_int("step"), 9);
  EXPECT_EQ(r.group("meta").attr_int("complete"), 1);
  const auto& w = s.group("model").group("parameters").get("w");
  EXPECT_TRUE(torch::equal(r.group("model").group("parameters").get("w"), w));
  EXPECT_EQ(r.group("method").lines("genotype"), s.group("method").lines("genotype"));
  for (const auto& g : ckpt::top_level_groups()) EXPECT_TRUE(r.has_group(g)) << g;
}

TEST(CheckpointFile, WriteFileNeedsMeta) {
  TempDir dir;
  State s;
  s.group("model").put("w", torch::ones({1}));
  const std::string message = error_of([&] { ckpt::write_file(dir.file("x.h5"), s, {}); });
  EXPECT_TRUE(contains(message, "has no meta group")) << message;
  EXPECT_FALSE(fs::exists(dir.file("x.h5")));
}

// ---------------------------------------------------------------------------------------------
// read_image / read_file validation

TEST(CheckpointRead, NotHdf5) {
  TempDir dir;
  const std::string path = dir.file("ckpt-1.h5");
  test::write_file(path, "this is a text file, not a checkpoint\n");
  const std::string message = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(message, "is not an HDF5 file")) << message;
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(error_of([] { ckpt::read_image("", "empty.h5"); }), "is not an HDF5 file"));
}

TEST(CheckpointRead, MissingFile) {
  TempDir dir;
  const std::string message = error_of([&] { ckpt::read_file(dir.file("nope.h5")); });
  EXPECT_TRUE(contains(message, "nope.h5")) << message;
  EXPECT_TRUE(contains(message, "does not exist")) << message;
}

TEST(CheckpointRead, TruncatedFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt-2.h5");
  ckpt::write_file(path, checkpoint_state(2), {});
  const std::string bytes = read_file_bytes(path);
  ASSERT_NO_THROW(ckpt::read_image(bytes, path));
  test::write_file(path, bytes.substr(0, bytes.size() / 2));
  const std::string message = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(message, "damaged or truncated")) << message;
  EXPECT_TRUE(contains(message, path)) << message;
}

TEST(CheckpointRead, CorruptedDatasetFailsItsChecksum) {
  TempDir dir;
  const std::string path = dir.file("ckpt-3.h5");
  const State s = checkpoint_state(3);
  ckpt::write_file(path, s, {});
  std::string bytes = read_file_bytes(path);
  const torch::Tensor w = s.group("model").group("parameters").get("w");
  const std::string raw(static_cast<const char*>(w.data_ptr()), w.nbytes());
  const size_t at = bytes.find(raw);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 100] = static_cast<char>(bytes[at + 100] ^ 0x01);
  const std::string message = error_of([&] { ckpt::read_image(bytes, "flipped.h5"); });
  EXPECT_TRUE(contains(message, "checkpoint 'flipped.h5' is damaged")) << message;
  EXPECT_TRUE(contains(message, "/model/parameters/w")) << message;
}

TEST(CheckpointRead, IncompleteFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt-4.h5");
  write_raw(path, ckpt::top_level_groups(), /*complete=*/false);
  std::string message = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(message, "incomplete")) << message;
  EXPECT_TRUE(contains(message, path)) << message;
  write_raw(path, ckpt::top_level_groups(), /*complete=*/true, /*complete_value=*/0);
  message = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(message, "incomplete")) << message;
  // The control: the same file with complete = 1 reads.
  write_raw(path, ckpt::top_level_groups(), /*complete=*/true);
  EXPECT_NO_THROW(ckpt::read_file(path));
}

TEST(CheckpointRead, FutureSchemaIsIncompatible) {
  TempDir dir;
  const std::string path = dir.file("ckpt-6.h5");
  ckpt::write_file(path, checkpoint_state(6, ckpt::kSchemaVersion + 1), {});
  try {
    ckpt::read_file(path);
    ADD_FAILURE() << "a schema version " << ckpt::kSchemaVersion + 1 << " file was read";
  } catch (const ckpt::Incompatible& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "schema version " + std::to_string(ckpt::kSchemaVersion + 1))) << message;
    EXPECT_TRUE(contains(message, path)) << message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not ckpt::Incompatible: " << e.what();
  }
  // Schema 0 is invalid but not "newer": a plain error.
  ckpt::write_file(path, checkpoint_state(6, 0), {});
  const std::string message = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(message, "invalid schema version 0")) << message;
  try {
    ckpt::read_file(path);
    ADD_FAILURE() << "a schema version 0 file was read";
  } catch (const ckpt::Incompatible& e) {
    ADD_FAILURE() << "schema 0 is not Incompatible: " << e.what();
  } catch (const Error&) {
  }
}

TEST(CheckpointRead, MissingTopLevelGroup) {
  TempDir dir;
  const std::string path = dir.file("ckpt-7.h5");
  std::vector<std::string> groups = ckpt::top_level_groups();
  groups.erase(std::find(groups.begin(), groups.end(), "rng"));
  write_raw(path, groups, true);
  const std::string message = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(message, "lacks the /rng group")) << message;

  write_raw(path, {"model"}, true);
  const std::string no_meta = error_of([&] { ckpt::read_file(path); });
  EXPECT_TRUE(contains(no_meta, "has no /meta group")) << no_meta;
}

// ---------------------------------------------------------------------------------------------
// step_of

TEST(CheckpointStep, StepOfParsesOnlyCheckpointNames) {
  EXPECT_EQ(ckpt::step_of("ckpt-120.h5"), 120);
  EXPECT_EQ(ckpt::step_of("ckpt-0.h5"), 0);
  EXPECT_EQ(ckpt::step_of("ckpt-007.h5"), 7);
  EXPECT_EQ(ckpt::step_of("ckpt-9876543210.h5"), int64_t{9876543210});
  for (const char* bad : {"ckpt-.h5", "ckpt-12.h5.tmp", "x-1.h5", "ckpt-1a.h5", "ckpt--1.h5", "ckpt-+1.h5",
                          "ckpt- 1.h5", "ckpt-1.h6", "ckpt-1", "ckpt1.h5", "CKPT-1.h5", "", "LATEST"})
    EXPECT_EQ(ckpt::step_of(bad), -1) << "'" << bad << "'";
}

// ---------------------------------------------------------------------------------------------
// Directory

TEST(CheckpointDirectory, SaveWritesLatestKeepsNewestAndRemovesTmp) {
  TempDir tmp;
  const std::string dir = tmp.file("checkpoints");  // created by save()
  ckpt::Directory d(dir, {}, 2);
  EXPECT_EQ(d.path(), dir);
  EXPECT_TRUE(d.list().empty());

  const std::string first = d.save(checkpoint_state(20), 20);
  EXPECT_EQ(first, (fs::path(dir) / "ckpt-20.h5").string());
  EXPECT_TRUE(fs::exists(first));
  EXPECT_EQ(read_file_bytes(dir + "/LATEST"), "ckpt-20.h5\n");

  // Debris of interrupted writes and unrelated files.
  test::write_file(dir + "/ckpt-25.h5.tmp", "half");
  test::write_file(dir + "/ckpt-900.h5.tmp", "half");
  test::write_file(dir + "/notes.txt", "mine");
  test::write_file(dir + "/other.h5.tmp", "not ours");

  d.save(checkpoint_state(100), 100);  // numerically newer than 20, lexically older
  EXPECT_EQ(read_file_bytes(dir + "/LATEST"), "ckpt-100.h5\n");
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"LATEST", "ckpt-100.h5", "ckpt-20.h5", "notes.txt", "other.h5.tmp"}));

  d.save(checkpoint_state(300), 300);
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"LATEST", "ckpt-100.h5", "ckpt-300.h5", "notes.txt", "other.h5.tmp"}));
  EXPECT_EQ(read_file_bytes(dir + "/LATEST"), "ckpt-300.h5\n");
  EXPECT_EQ(ckpt::read_file(dir + "/ckpt-300.h5").group("meta").attr_int("step"), 300);

  // keep = 1: only the newest by step number (ckpt-1000 sorts before ckpt-300 as text).
  ckpt::Directory one(dir, {}, 1);
  one.save(checkpoint_state(1000), 1000);
  EXPECT_EQ(one.list(), std::vector<std::string>{(fs::path(dir) / "ckpt-1000.h5").string()});
}

TEST(CheckpointDirectory, ListIsNewestFirstByStepNumber) {
  TempDir tmp;
  const std::string dir = tmp.path();
  for (const char* name : {"ckpt-20.h5", "ckpt-100.h5", "ckpt-3.h5", "ckpt-5.h5.tmp", "ckpt-200.h5.tmp", "LATEST",
                           "ckpt-x.h5", "other.h5", "ckpt-7.h5.bak"})
    test::write_file(tmp.file(name), "x");
  fs::create_directories(tmp.file("ckpt-999.h5"));  // a folder, not a checkpoint
  ckpt::Directory d(dir, {}, 3);
  EXPECT_EQ(d.list(), (std::vector<std::string>{tmp.file("ckpt-100.h5"), tmp.file("ckpt-20.h5"), tmp.file("ckpt-3.h5")}));
}

TEST(CheckpointDirectory, NewestGoodOfEmptyOrMissingFolder) {
  TempDir tmp;
  EXPECT_FALSE(ckpt::Directory(tmp.path(), {}, 3).newest_good().has_value());
  EXPECT_FALSE(ckpt::Directory(tmp.file("missing"), {}, 3).newest_good().has_value());
  test::write_file(tmp.file("ckpt-1.h5.tmp"), "half");  // only debris: still nothing
  EXPECT_FALSE(ckpt::Directory(tmp.path(), {}, 3).newest_good().has_value());
}

TEST(CheckpointDirectory, NewestGoodFallsBackPastATruncatedFile) {
  TempDir tmp;
  ckpt::Directory d(tmp.path(), {}, 3);
  const std::string older = d.save(checkpoint_state(10), 10);
  const std::string newer = d.save(checkpoint_state(20), 20);
  {
    const auto found = d.newest_good();
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->path, newer);
    EXPECT_EQ(found->state.group("meta").attr_int("step"), 20);
  }
  const std::string bytes = read_file_bytes(newer);
  test::write_file(newer, bytes.substr(0, bytes.size() / 2));
  const auto found = d.newest_good();
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->path, older);
  EXPECT_EQ(found->bytes, read_file_bytes(older));
  EXPECT_EQ(found->state.group("meta").attr_int("step"), 10);
  EXPECT_TRUE(torch::equal(found->state.group("model").group("buffers").get("n"), torch::tensor({int64_t{10}})));
}

TEST(CheckpointDirectory, NewestGoodStopsAtAFutureSchema) {
  TempDir tmp;
  ckpt::Directory d(tmp.path(), {}, 3);
  d.save(checkpoint_state(10), 10);
  ckpt::write_file(tmp.file("ckpt-20.h5"), checkpoint_state(20, ckpt::kSchemaVersion + 1), {});
  EXPECT_THROW(d.newest_good(), ckpt::Incompatible);
  const std::string message = error_of([&] { d.newest_good(); });
  EXPECT_TRUE(contains(message, "ckpt-20.h5")) << message;
  EXPECT_TRUE(contains(message, "schema version")) << message;
}

TEST(CheckpointDirectory, NewestGoodThrowsListingEveryFileWhenNoneIsGood) {
  TempDir tmp;
  test::write_file(tmp.file("ckpt-1.h5"), "garbage");
  write_raw(tmp.file("ckpt-2.h5"), ckpt::top_level_groups(), /*complete=*/false);
  ckpt::write_file(tmp.file("ckpt-3.h5"), checkpoint_state(3), {});
  const std::string bytes = read_file_bytes(tmp.file("ckpt-3.h5"));
  test::write_file(tmp.file("ckpt-3.h5"), bytes.substr(0, bytes.size() / 3));
  ckpt::Directory d(tmp.path(), {}, 3);
  try {
    d.newest_good();
    ADD_FAILURE() << "no error";
  } catch (const ckpt::Incompatible& e) {
    ADD_FAILURE() << "damaged files are not Incompatible: " << e.what();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "no usable checkpoint")) << message;
    EXPECT_TRUE(contains(message, "3 files")) << message;
    for (const char* name : {"ckpt-1.h5", "ckpt-2.h5", "ckpt-3.h5"})
      EXPECT_TRUE(contains(message, tmp.file(name))) << name << " not listed: " << message;
    EXPECT_TRUE(contains(message, "is not an HDF5 file")) << message;
    EXPECT_TRUE(contains(message, "incomplete")) << message;
    EXPECT_TRUE(contains(message, "damaged or truncated")) << message;
  }
}

// ---------------------------------------------------------------------------------------------
// Resume compatibility

// The meta group the search writes for `config`.
State made_with(const Config& config, bool with_hash = true) {
  State s;
  State& meta = s.group("meta");
  meta.set_attr("method", config.text("search.method"));
  meta.set_attr("space", config.text("search.space"));
  if (with_hash) meta.set_attr("config_hash", ckpt::resume_hash(config));
  meta.put_text("config", config.to_ini());
  return s;
}

// The check a search makes when it resumes.
void check_search(const State& state, const std::string& file, const Config& config) {
  ckpt::check_compatible(state, file, config, config.text("search.method"), config.text("search.space"));
}

Config config_with(const std::vector<std::pair<std::string, std::string>>& values) {
  Config c(search_option_table());
  for (const auto& [k, v] : values) c.set(k, v);
  return c;
}

TEST(CheckpointCompatible, SameConfigIsAccepted) {
  const Config base = config_with({{"search.lr", "0.025"}, {"data.dataset", "synthetic"}});
  EXPECT_NO_THROW(check_search(made_with(base), "c.h5", base));
  EXPECT_NO_THROW(check_search(made_with(base, false), "c.h5", base));
}

// Another method's options (a release changing GibbsNAS's defaults) do not block a DrNAS resume,
// but the same change refuses a GibbsNAS resume.
TEST(CheckpointCompatible, OtherMethodsOptionsMayDifferButTheRunMethodsMayNot) {
  const Config base = config_with({{"search.method", "drnas"}});
  const Config changed = config_with({{"search.method", "drnas"}, {"gibbs.curvature_damping", "0.5"}});
  const std::set<std::string> unused = other_methods_keys("drnas");
  EXPECT_EQ(unused.count("gibbs.curvature_damping"), 1u);
  EXPECT_EQ(unused.count("drnas.reg_scale"), 0u) << "drnas's own keys must be checked";
  EXPECT_EQ(unused.count("search.lr"), 0u) << "shared keys must be checked";
  EXPECT_NO_THROW(ckpt::check_compatible(made_with(base), "c.h5", changed, "drnas", "nb201", unused));
  EXPECT_THROW(ckpt::check_compatible(made_with(base), "c.h5", changed, "drnas", "nb201"), ckpt::Incompatible);
  const Config gibbs = config_with({{"search.method", "gibbsnas"}});
  const Config gibbs_changed = config_with({{"search.method", "gibbsnas"}, {"gibbs.curvature_damping", "0.5"}});
  EXPECT_THROW(ckpt::check_compatible(made_with(gibbs), "c.h5", gibbs_changed, "gibbsnas", "nb201",
                                      other_methods_keys("gibbsnas")),
               ckpt::Incompatible);
}

TEST(CheckpointCompatible, ChangedLearningRateIsNamedWithBothValues) {
  const Config base = config_with({});
  const Config changed = config_with({{"search.lr", "0.05"}});
  for (bool with_hash : {true, false}) {
    SCOPED_TRACE(with_hash ? "with config_hash" : "without config_hash");
    try {
      check_search(made_with(base, with_hash), "run/ckpt-8.h5", changed);
      ADD_FAILURE() << "a changed search.lr was accepted";
    } catch (const ckpt::Incompatible& e) {
      const std::string message = e.what();
      EXPECT_TRUE(contains(message, "run/ckpt-8.h5")) << message;
      EXPECT_TRUE(contains(message, "search.lr = 0.025")) << message;
      EXPECT_TRUE(contains(message, "search.lr = 0.05")) << message;
      EXPECT_FALSE(contains(message, "also differing")) << message;
    }
  }
}

TEST(CheckpointCompatible, SeveralChangesAreAllNamed) {
  const Config base = config_with({});
  const Config changed = config_with({{"search.lr", "0.05"}, {"run.seed", "3"}, {"data.dataset", "mnist"}});
  const std::string message = error_of([&] { check_search(made_with(base), "c.h5", changed); });
  for (const char* key : {"search.lr", "run.seed", "data.dataset", "also differing"})
    EXPECT_TRUE(contains(message, key)) << key << ": " << message;
}

TEST(CheckpointCompatible, ChangedMethodNamesBothMethods) {
  const Config drnas = config_with({{"search.method", "drnas"}});
  const Config darts = config_with({{"search.method", "darts"}});
  try {
    check_search(made_with(drnas), "c.h5", darts);
    ADD_FAILURE() << "a drnas checkpoint was accepted for a darts run";
  } catch (const ckpt::Incompatible& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "from a drnas search")) << message;
    EXPECT_TRUE(contains(message, "this run is darts")) << message;
    EXPECT_TRUE(contains(message, "c.h5")) << message;
  }
}

TEST(CheckpointCompatible, ResumableChangesAreAccepted) {
  const Config base = config_with({});
  const std::vector<std::pair<std::string, std::string>> changes = {
      {"search.epochs", "250"}, {"run.threads", "4"}, {"ckpt.keep", "7"}, {"report.nb201_table", "/t/nats.csv"}};
  for (const auto& change : changes) {
    SCOPED_TRACE(change.first);
    const Config changed = config_with({change});
    ASSERT_NE(changed.values().at(change.first), base.values().at(change.first));
    EXPECT_NO_THROW(check_search(made_with(base), "c.h5", changed));
    EXPECT_NO_THROW(check_search(made_with(base, false), "c.h5", changed));
  }
  const Config all = config_with(changes);
  EXPECT_NO_THROW(check_search(made_with(base, false), "c.h5", all));
}

TEST(CheckpointCompatible, OptionsNewerThanTheCheckpointMayStayAtTheirDefault) {
  const Config base = config_with({});
  State s = made_with(base, /*with_hash=*/false);
  // An older probnas had no search.lr_min: drop it from the stored configuration.
  std::string ini = base.to_ini();
  const size_t at = ini.find("\nlr_min = ");
  ASSERT_NE(at, std::string::npos);
  ini.erase(at + 1, ini.find('\n', at + 1) - at);
  ASSERT_FALSE(contains(ini, "lr_min ="));
  s.group("meta").put_text("config", ini);
  EXPECT_NO_THROW(check_search(s, "old.h5", base));
  const std::string message =
      error_of([&] { check_search(s, "old.h5", config_with({{"search.lr_min", "0.002"}})); });
  EXPECT_TRUE(contains(message, "search.lr_min absent")) << message;
  EXPECT_TRUE(contains(message, "search.lr_min = 0.002")) << message;
}

TEST(CheckpointCompatible, MayChangeOnResume) {
  const OptionTable& table = search_option_table();
  for (const char* key : {"search.epochs", "run.threads", "ckpt.keep", "ckpt.compress", "report.nb201_table",
                          "run.dir", "run.resume", "data.path"})
    EXPECT_TRUE(table.find(key)->resumable) << key;
  for (const char* key : {"search.lr", "run.seed", "data.dataset", "search.method", "search.batch_size",
                          "space.channels", "data.limit"})
    EXPECT_FALSE(table.find(key)->resumable) << key;
  // Exactly these keys may change: the resume hash of every checkpoint written so far leaves out
  // these and no others, so a different set would refuse to resume them. A key added later must be
  // among them (run.lock): the checkpoints of earlier releases do not know it.
  const std::set<std::string> expected = {
      "run.dir", "run.threads", "run.device", "run.channels_last", "run.fused", "run.resume", "run.progress_interval",
      "run.log_level", "run.lock", "data.path",
      "data.test_path", "comm.verify_interval", "comm.backend", "search.epochs", "pgnas.candidates",
      "pgnas.sampling", "pgnas.random_drop", "pgnas.bn", "pgnas.bn_images", "pgnas.eval_images", "pgnas.eval_batch",
      "pgnas.test", "parsec.top_k", "ckpt.interval_steps", "ckpt.interval_minutes", "ckpt.epoch_end", "ckpt.keep",
      "ckpt.file_locking", "ckpt.compress", "report.nb201_table"};
  std::set<std::string> resumable;
  for (const auto& spec : table.specs())
    if (spec.resumable) resumable.insert(spec.key);
  EXPECT_EQ(resumable, expected);
  std::set<std::string> train_resumable;
  for (const auto& spec : train_option_table().specs())
    if (spec.resumable) train_resumable.insert(spec.key);
  for (const char* key : {"train.genotype", "train.epochs", "train.eval_every", "train.eval_batch", "data.test_path",
                          "run.lock"})
    EXPECT_TRUE(train_resumable.count(key)) << key;
  EXPECT_FALSE(train_resumable.count("train.lr"));
}

TEST(CheckpointCompatible, ResumeHashIgnoresResumableKeys) {
  const Config base = config_with({});
  const std::string h = ckpt::resume_hash(base);
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
  EXPECT_EQ(ckpt::resume_hash(config_with({})), h);
  for (const auto& change : std::vector<std::pair<std::string, std::string>>{
           {"search.epochs", "250"}, {"run.threads", "4"}, {"ckpt.keep", "7"}, {"report.nb201_table", "x.csv"}})
    EXPECT_EQ(ckpt::resume_hash(config_with({change})), h) << change.first;
  for (const auto& change : std::vector<std::pair<std::string, std::string>>{
           {"search.lr", "0.05"}, {"run.seed", "1"}, {"data.dataset", "mnist"}, {"search.method", "darts"}})
    EXPECT_NE(ckpt::resume_hash(config_with({change})), h) << change.first;
  EXPECT_NE(ckpt::resume_hash(config_with({{"search.lr", "0.05"}})),
            ckpt::resume_hash(config_with({{"search.lr", "0.06"}})));
}

}  // namespace
}  // namespace probnas
