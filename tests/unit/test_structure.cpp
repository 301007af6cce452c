// Unit tests of the pieces that hold the structure together: typed option bindings
// (core/option_binding.h), the method registry (method/registry.h), the torch-free run folder model
// and genotype notation (run/), the checkpoint schema (ckpt/run_checkpoint.h), the shared step loop
// (engine/step_loop.h) and the report thread (engine/run_report.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <set>
#include <thread>

#include "probnas/app/options.h"
#include "probnas/ckpt/atomic_file.h"
#include "probnas/ckpt/checkpoint.h"
#include "probnas/ckpt/run_checkpoint.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/files.h"
#include "probnas/core/option_binding.h"
#include "probnas/core/signals.h"
#include "probnas/engine/run_report.h"
#include "probnas/engine/step_loop.h"
#include "probnas/method/registry.h"
#include "probnas/run/notation.h"
#include "probnas/run/run_folder.h"
#include "test_support.h"

namespace probnas {
namespace {

using test::error_of;
using test::TempDir;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- option bindings -------------------------------------------------------------------------------

struct Inner {
  double rate = 0;
};
struct Sample {
  int64_t count = 0;
  std::string name;
  bool flag = false, name_given = false;
  std::vector<std::string> items;
  Inner inner;
};

OptionBinding<Inner> inner_binding() { return OptionBinding<Inner>().real("x.rate", &Inner::rate, 0.5, 0, 1, "a rate"); }

OptionBinding<Sample> sample_binding() {
  return OptionBinding<Sample>()
      .integer("x.count", &Sample::count, 3, 1, 10, "a count")
      .resumable()
      .text("x.name", &Sample::name, "abc", "a name")
      .given(&Sample::name_given)
      .boolean("x.flag", &Sample::flag, true, "a flag")
      .text("x.items", [](Sample& s, const std::string& v) { s.items = split_list(v); }, "a, b", "items")
      .nest(&Sample::inner, inner_binding());
}

TEST(OptionBinding, DeclaresEachOptionOnceAndFillsTheStructFromTheConfig) {
  OptionTable table;
  sample_binding().declare(table);
  ASSERT_EQ(table.specs().size(), 5u);
  EXPECT_EQ(table.find("x.count")->default_value, "3");
  EXPECT_EQ(table.find("x.count")->hi, 10);
  EXPECT_TRUE(table.find("x.count")->resumable);
  EXPECT_FALSE(table.find("x.name")->resumable);
  EXPECT_TRUE(contains(table.help_text(), "may change on resume"));
  Config c(table);
  Sample d = sample_binding().read(c);
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.name, "abc");
  EXPECT_FALSE(d.name_given);
  EXPECT_TRUE(d.flag);
  EXPECT_EQ(d.items, (std::vector<std::string>{"a", "b"}));
  EXPECT_DOUBLE_EQ(d.inner.rate, 0.5);
  c.set("x.count", "7");
  c.set("x.name", "abc");  // given, though equal to the default
  c.set("x.flag", "false");
  c.set("x.items", "q");
  c.set("x.rate", "0.25");
  const Sample s = sample_binding().read(c);
  EXPECT_EQ(s.count, 7);
  EXPECT_TRUE(s.name_given);
  EXPECT_FALSE(s.flag);
  EXPECT_EQ(s.items, (std::vector<std::string>{"q"}));
  EXPECT_DOUBLE_EQ(s.inner.rate, 0.25);
  EXPECT_TRUE(contains(error_of([&] { c.set("x.count", "11"); }), "x.count"));
  EXPECT_TRUE(contains(error_of([&] { sample_binding().declare(table); }), "declared twice"));
}

// Every key of a command's table belongs to exactly one binding, and reading every binding of the
// search table touches every key: a key the table declares but no struct receives would be dead.
TEST(OptionBinding, TheSearchTableIsTheUnionOfTheLayersBindings) {
  std::set<std::string> bound;
  auto add = [&](const std::vector<std::string>& keys) {
    for (const auto& k : keys) EXPECT_TRUE(bound.insert(k).second) << k << " is bound twice";
  };
  add(run_options("").keys());
  add(checkpoint_options().keys());
  add(comm_options().keys());
  add(search_options().keys());
  add(weight_training_options().keys());
  add(architecture_options().keys());
  add(data_options().keys());
  add(space_options().keys());
  add(progressive_options().keys());
  add(report_options("").keys());
  for (const auto& e : method_registry()) {
    OptionTable t;
    e.declare_options(t);
    for (const auto& spec : t.specs()) EXPECT_TRUE(bound.insert(spec.key).second) << spec.key << " is bound twice";
  }
  std::set<std::string> table;
  for (const auto& spec : search_option_table().specs()) table.insert(spec.key);
  EXPECT_EQ(bound, table);
}

TEST(OptionBinding, TheResumableKeysAreSummarisedBySection) {
  EXPECT_EQ(search_option_table().resumable_summary(),
            "run.* except run.seed, ckpt.*, comm.*, search.epochs, parsec.top_k, pgnas.* except pgnas.temperature, "
            "pgnas.length_scale, pgnas.shake, pgnas.prior, pgnas.init_drop, pgnas.drop_lr, data.path, data.test_path, "
            "report.*");
}

TEST(OptionBinding, SearchSettingsResolveWhatFollowsFromSeveralSections) {
  Config c(search_option_table());
  c.set("run.seed", "7");
  c.set("ckpt.file_locking", "false");
  c.set("search.space", "darts");
  c.set("search.epochs", "50");
  c.set("progressive.k", "6,3");
  c.set("progressive.epochs", "25,25");
  c.set("space.channels", "36");
  const SearchSettings s = read_search_settings(c);
  EXPECT_EQ(s.data.seed, 7u);
  EXPECT_FALSE(s.data.file_locking);
  EXPECT_EQ(s.space.space, "darts");
  EXPECT_EQ(s.space.partial_channels, 6);  // the first stage's K sizes the supernet
  EXPECT_EQ(s.method.progressive.k, (std::vector<int64_t>{6, 3}));
  EXPECT_EQ(s.config, &c);
  // darts.order = 2 means nothing to another method: refused rather than ignored.
  c.set("darts.order", "2");
  EXPECT_TRUE(contains(error_of([&] { read_search_settings(c); }), "darts.order = 2"));
  c.set("search.method", "darts");
  EXPECT_NO_THROW(read_search_settings(c));
}

// ---- the method registry ---------------------------------------------------------------------------

TEST(MethodRegistry, EveryEntryIsCompleteAndOwnsItsSections) {
  std::set<std::string> names, sections;
  for (const auto& e : method_registry()) {
    SCOPED_TRACE(e.name);
    EXPECT_TRUE(names.insert(e.name).second);
    EXPECT_FALSE(e.title.empty());
    EXPECT_FALSE(e.summary.empty());
    EXPECT_FALSE(e.spaces.empty());
    ASSERT_TRUE(e.declare_options && e.read_options && e.make);
    EXPECT_EQ(e.report.title, e.title);
    OptionTable t;
    e.declare_options(t);
    std::set<std::string> own;
    for (const auto& spec : t.specs()) own.insert(spec.key.substr(0, spec.key.find('.')));
    for (const auto& s : own) EXPECT_TRUE(sections.insert(s).second) << "section [" << s << "] is another method's";
  }
  EXPECT_EQ(names.size(), 7u);
  const OptionSpec* method = search_option_table().find("search.method");
  std::vector<std::string> sorted(names.begin(), names.end());
  EXPECT_EQ(method->choices, sorted);
}

// Each entry builds its method on a tiny supernet of each space it searches, from the default
// options, and the method answers to the entry's name.
TEST(MethodRegistry, EveryEntryBuildsItsMethodOnEachOfItsSpaces) {
  const Config defaults(search_option_table());
  for (const auto& e : method_registry()) {
    for (const auto& space : e.spaces) {
      SCOPED_TRACE(e.name + " on " + space);
      MethodBuild b;
      b.space.space = space;
      b.space.channels = 4;
      b.space.cells_per_stage = 1;
      b.space.cells = 3;
      b.space.input_channels = 1;
      b.space.classes = 3;
      b.net = make_supernet(b.space);
      b.key = RngKey(1);
      b.epochs = 2;
      b.own = e.read_options(defaults);
      const auto method = e.make(b);
      ASSERT_NE(method, nullptr);
      EXPECT_EQ(method->name(), e.name);
      EXPECT_EQ(method->has_after_search(), e.has_phase_after_search);
      EXPECT_FALSE(method->derive().text.empty());
    }
  }
}

TEST(MethodRegistry, MethodAndSpaceMismatchesAndUnknownNamesAreNamed) {
  EXPECT_NO_THROW(check_method_and_space("drnas", "darts"));
  const std::string pgnas = error_of([] { check_method_and_space("pgnas", "nb201"); });
  EXPECT_TRUE(contains(pgnas, "search.method = pgnas with search.space = nb201")) << pgnas;
  const std::string drnas = error_of([] { check_method_and_space("drnas", "multibranch"); });
  EXPECT_TRUE(contains(drnas, "use search.method = pgnas with search.space = multibranch")) << drnas;
  const std::string unknown = error_of([] { find_method("bogus"); });
  EXPECT_TRUE(contains(unknown, "bogus") && contains(unknown, "darts, drnas")) << unknown;
  EXPECT_EQ(method_entry_or_null("bogus"), nullptr);
}

// ---- genotype notation and the run folder -------------------------------------------------------------

TEST(RunNotation, Nb201AndDartsRoundTripAndMalformedTextIsNamed) {
  const std::vector<std::string> ops = {"nor_conv_3x3", "nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3",
                                        "nor_conv_1x1"};
  const std::string text = format_nb201(ops);
  EXPECT_EQ(text, "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|");
  EXPECT_EQ(parse_nb201(text), ops);
  EXPECT_TRUE(looks_like_nb201(text));
  EXPECT_TRUE(contains(error_of([] { parse_nb201("|a~0|+|b~1|c~1|+|d~0|e~1|f~2|"); }), "should be op~0"));
  const DartsGene normal = {{"sep_conv_3x3", 0}, {"skip_connect", 1}, {"sep_conv_3x3", 0}, {"dil_conv_3x3", 2},
                            {"max_pool_3x3", 1}, {"sep_conv_5x5", 3}, {"skip_connect", 0}, {"avg_pool_3x3", 4}};
  DartsGene reduce = normal;
  reduce[0].first = "max_pool_3x3";
  const std::string darts = format_darts(normal, reduce);
  EXPECT_TRUE(looks_like_darts(darts));
  EXPECT_EQ(parse_darts_cell(darts, "normal"), normal);
  EXPECT_EQ(parse_darts_cell(darts, "reduce"), reduce);
  DartsGene bad = normal;
  bad[1].second = 2;  // node 2 cannot take input 2
  EXPECT_TRUE(contains(error_of([&] { parse_darts_cell(format_darts(bad, reduce), "normal"); }), "takes input 2"));
  EXPECT_TRUE(contains(error_of([] { parse_darts_cell("Genotype(normal=[('a', 0)])", "normal"); }), "pairs"));
  EXPECT_TRUE(parameter_free("skip_connect") && parameter_free("max_pool_3x3") && !parameter_free("sep_conv_3x3"));
}

TEST(RunFolder, FilesRoundTripAndATornMetricsLineIsCounted) {
  TempDir dir;
  Genotype g;
  g.space = "nb201";
  g.text = "|a~0|+|b~0|c~1|+|d~0|e~1|f~2|";
  g.edges.push_back({"cell", "1<-0", "a", {{"a", 0.75}, {"b", 0.25}}});
  write_genotype_json(dir.path(), g, {{"method", "drnas"}, {"seed", 3}});
  const Genotype back = read_genotype_file(run_path(dir.path(), run_files::genotype));
  EXPECT_EQ(back.text, g.text);
  ASSERT_EQ(back.edges.size(), 1u);
  EXPECT_EQ(back.edges[0].probs, g.edges[0].probs);
  EXPECT_EQ(read_json_object(run_path(dir.path(), run_files::genotype))["seed"], 3);

  const std::string metrics = run_path(dir.path(), run_files::metrics);
  write_metrics_log(metrics, {R"({"epoch": 1, "val_acc": 0.5})", R"({"epoch": 2, "val_acc": 0.6})"});
  append_metrics_line(metrics, R"({"epoch": 2, "val_acc": 0.7})");  // a resumed run repeats epoch 2
  append_line(metrics, R"({"epoch": 3, "val_a)");                  // killed mid-line
  const MetricsLog log = read_metrics_log(metrics);
  EXPECT_EQ(log.lines.size(), 3u);
  EXPECT_EQ(log.bad_lines, 1u);
  EXPECT_TRUE(log.last_line_torn);
  const auto epochs = log.by_epoch();
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_DOUBLE_EQ(epochs[1]["val_acc"].get<double>(), 0.7);

  write_candidates(dir.path(), {{"guided", 1, 17, 1234, 0.9, 0.3, 0.5}, {"random", 1, 4, 999, 0.8, 0.4, 0.5}});
  const CandidateTable t = read_candidates(run_path(dir.path(), run_files::candidates));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.sampling[1], "random");
  EXPECT_DOUBLE_EQ(t.index[0], 17);
  EXPECT_DOUBLE_EQ(t.val_acc[0], 0.9);
  EXPECT_DOUBLE_EQ(t.params[1], 999);
  test::write_file(dir.file("bad.csv"), "sampling,index\nx,1\n");
  EXPECT_TRUE(contains(error_of([&] { read_candidates(dir.file("bad.csv")); }), "val_acc"));
  EXPECT_EQ(run_name("outputs/abc/"), "abc");
}

TEST(AtomicFile, AFailedWriterLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("f.txt");
  ckpt::write_file_atomic(path, "old");
  EXPECT_THROW(ckpt::write_atomically(path,
                                      [](const std::string& tmp) {
                                        ckpt::write_file_atomic(tmp + ".x", "ignored");
                                        test::write_file(tmp, "half");
                                        PROBNAS_FAIL("writer failed");
                                      }),
               Error);
  EXPECT_EQ(read_file_bytes(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  ckpt::write_file_atomic(path, "new");
  EXPECT_EQ(read_file_bytes(path), "new");
}

// ---- the checkpoint schema -------------------------------------------------------------------------

TEST(RunCheckpoint, TheSchemaRoundTripsThroughAFile) {
  TempDir dir;
  ckpt::RunCheckpoint c;
  c.meta.method = "drnas";
  c.meta.space = "nb201";
  c.meta.dataset = "synthetic";
  c.meta.world_size = 2;
  c.meta.step = 7;
  c.meta.steps_per_epoch = 3;
  c.meta.total_steps = 9;
  c.meta.wall_seconds = 1.5;
  c.meta.config_ini = "[run]\nseed = 1\n";
  c.meta.config_hash = "0123456789abcdef";
  c.position.global_step = 7;
  c.position.steps_per_epoch = 3;
  c.position.global_batch = 16;
  c.position.micro_batches = 2;
  c.position.examples = 48;
  c.position.arch_examples = 40;
  c.position.arch_global_batch = 32;
  c.position.next_example = 5;
  c.position.data = "fingerprint";
  c.history.metrics = {"{\"epoch\": 1}", "{\"epoch\": 2}"};
  c.history.epoch_sums = torch::arange(12, torch::kFloat64).view({2, 6});
  c.history.images = 123;
  c.seed = 1;
  c.generator_states = {"cpu\n3\nabc", "cpu\n3\ndef"};
  c.model.group("parameters").put("w", torch::ones({2}));
  c.method.set_attr("name", std::string("drnas"));
  const std::string path = dir.file("ckpt-7.h5");
  ckpt::write_file(path, ckpt::to_state(c), {});
  const ckpt::State s = ckpt::read_file(path);
  const auto meta = ckpt::read_meta(s);
  EXPECT_EQ(meta.method, "drnas");
  EXPECT_EQ(meta.world_size, 2);
  EXPECT_EQ(meta.step, 7);
  EXPECT_EQ(meta.config_hash, "0123456789abcdef");
  EXPECT_EQ(meta.config_ini, c.meta.config_ini);
  EXPECT_TRUE(meta.genotype.empty());
  EXPECT_EQ(s.group("meta").attr_int("epoch"), 2);
  EXPECT_EQ(s.group("meta").attr_int("step_in_epoch"), 1);
  const auto p = ckpt::read_position(s);
  EXPECT_EQ(p.examples, 48);
  EXPECT_EQ(p.arch_examples, 40);
  EXPECT_EQ(p.arch_global_batch, 32);
  EXPECT_EQ(p.next_example, 5);
  EXPECT_EQ(p.data, "fingerprint");
  EXPECT_TRUE(s.group("loader").has_attr("weight_examples"));  // the search's names, as schema 1 wrote them
  const auto h = ckpt::read_history(s);
  EXPECT_EQ(h.metrics, c.history.metrics);
  EXPECT_EQ(h.images, 123);
  EXPECT_TRUE(torch::equal(h.sums_for(1, 2), c.history.epoch_sums[1]));
  // Another world size: rank 0 carries the totals, the others zeros, so the sum is unchanged.
  EXPECT_TRUE(torch::equal(h.sums_for(0, 3), c.history.epoch_sums.sum(0)));
  EXPECT_EQ(h.sums_for(2, 3).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(s.group("model").group("parameters").get("w"), torch::ones({2})));
  // A training's position has one split.
  ckpt::RunCheckpoint t = c;
  t.position.arch_examples.reset();
  t.position.arch_global_batch.reset();
  t.position.next_example.reset();
  const auto tp = ckpt::read_position(ckpt::to_state(t));
  EXPECT_EQ(tp.examples, 48);
  EXPECT_FALSE(tp.arch_examples.has_value());
}

// ---- the step loop -----------------------------------------------------------------------------------

TEST(StepLoop, CallsTheHooksInOrderAndCheckpointsWhereThePolicySays) {
  SerialCommunicator comm;
  StepLoopPolicy policy;
  policy.ckpt.interval_steps = 4;
  policy.ckpt.interval_minutes = 0;
  policy.ckpt.epoch_end = true;
  policy.progress_interval = 1e9;
  std::vector<std::string> calls;
  std::vector<int64_t> checkpoints;
  StepLoop loop(comm, policy, /*images=*/100);
  StepLoop::Hooks hooks;
  hooks.begin_epoch = [&](int64_t e) { calls.push_back("begin " + std::to_string(e)); };
  hooks.resume_epoch = [&](int64_t e) { calls.push_back("resume " + std::to_string(e)); };
  hooks.step = [&](int64_t e, int64_t s, int64_t g) {
    calls.push_back("step " + std::to_string(e) + "." + std::to_string(s) + " " + std::to_string(g));
    return int64_t{10};
  };
  hooks.end_epoch = [&](int64_t e, int64_t done) { calls.push_back("end " + std::to_string(e) + " " + std::to_string(done)); };
  hooks.checkpoint = [&](int64_t done) {
    checkpoints.push_back(done);
    return "ckpt-" + std::to_string(done);
  };
  // 3 epochs of 3 steps, resumed at step 4 (epoch 1, step 1).
  const auto end = loop.run(4, 9, 3, hooks);
  EXPECT_FALSE(end.interrupted);
  EXPECT_EQ(end.steps, 9);
  EXPECT_EQ(end.checkpoint, "ckpt-9");
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{6, 8, 9}));  // epoch end, every 4 steps, epoch end + last
  EXPECT_EQ(calls, (std::vector<std::string>{"resume 1", "step 1.1 4", "step 1.2 5", "end 1 6", "begin 2",
                                             "step 2.0 6", "step 2.1 7", "step 2.2 8", "end 2 9"}));
  EXPECT_EQ(loop.images(), 150);
}

TEST(StepLoop, ASignalCheckpointsAndStopsAfterTheStep) {
  SerialCommunicator comm;
  StepLoopPolicy policy;
  policy.ckpt.interval_minutes = 0;
  policy.ckpt.epoch_end = false;
  policy.progress_interval = 1e9;
  const SignalWatch watch;
  std::vector<int64_t> checkpoints;
  StepLoop loop(comm, policy);
  StepLoop::Hooks hooks;
  hooks.step = [&](int64_t, int64_t, int64_t g) {
    if (g == 2) std::raise(SIGUSR2);
    return int64_t{1};
  };
  hooks.checkpoint = [&](int64_t done) {
    checkpoints.push_back(done);
    return std::string("c");
  };
  const auto end = loop.run(0, 10, 5, hooks);
  EXPECT_TRUE(end.interrupted);
  EXPECT_EQ(end.signal, "SIGUSR2");
  EXPECT_EQ(end.steps, 3);
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{3}));
  SignalWatch::clear();
}

// ---- the report thread -----------------------------------------------------------------------------

TEST(BackgroundReport, RequestsReturnAtOnceAndFinishLeavesTheReport) {
  TempDir dir;
  write_metrics_log(run_path(dir.path(), run_files::metrics), {R"({"epoch": 1, "train_acc": 0.5, "val_acc": 0.4})"});
  const std::string page = run_path(dir.path(), run_files::report);
  {
    BackgroundReport report(dir.path());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) report.request();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.5);
    report.finish();
    ASSERT_TRUE(std::filesystem::exists(page));
    std::filesystem::remove(page);
    report.finish();  // once only
    EXPECT_FALSE(std::filesystem::exists(page));
  }
  {
    BackgroundReport report(dir.path());  // the destructor finishes too
  }
  EXPECT_TRUE(contains(read_file_bytes(page), "<section id=\"curves\">"));
}

}  // namespace
}  // namespace probnas
