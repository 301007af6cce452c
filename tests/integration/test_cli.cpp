// probnas end to end: the CLI on a small real dataset (Fashion-MNIST from Debian's
// dataset-fashion-mnist), determinism of a seeded run, and errors for people.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "../unit/test_support.h"
#include "cli_support.h"

namespace {

using namespace probnas::test;

bool have_fashion_mnist() { return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); }

const std::string kSmall =
    "--data.limit 384 --search.epochs 1 --search.batch_size 32 --space.channels 4 --space.cells_per_stage 1 "
    "--run.progress_interval 0 ";

class CliSearch : public ::testing::TestWithParam<std::string> {};

TEST_P(CliSearch, WritesValidRunFolderAndRepeatsExactlyWithOneSeed) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  probnas::test::TempDir tmp;
  const std::string method = GetParam();
  const std::string a = tmp.file("a"), b = tmp.file("b");
  const auto ra = run("search " + kSmall + "--search.method " + method + " --run.seed 3 --run.dir " + a);
  ASSERT_EQ(ra.code, 0) << ra.output;
  EXPECT_NE(ra.output.find("results in " + a), std::string::npos) << ra.output;
  EXPECT_NE(ra.output.find("ETA"), std::string::npos) << "no progress line:\n" << ra.output;

  const auto g = nlohmann::json::parse(read_file(a + "/genotype.json"));
  EXPECT_EQ(g["space"], "nb201");
  EXPECT_EQ(g["method"], method);
  const std::set<std::string> ops{"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};
  ASSERT_EQ(g["edges"].size(), 6u);
  std::string rebuilt;
  int e = 0;
  for (int node = 1; node <= 3; ++node) {
    rebuilt += node > 1 ? "+|" : "|";
    for (int from = 0; from < node; ++from, ++e) {
      const auto& edge = g["edges"][static_cast<size_t>(e)];
      const std::string op = edge["op"];
      EXPECT_TRUE(ops.count(op)) << op;
      double sum = 0, best = -1;
      std::string argmax;
      for (auto& [name, p] : edge["probs"].items()) {
        sum += p.get<double>();
        if (p.get<double>() > best) best = p.get<double>(), argmax = name;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
      EXPECT_EQ(op, argmax);
      rebuilt += op + "~" + std::to_string(from) + "|";
    }
  }
  EXPECT_EQ(g["genotype"], rebuilt);

  const auto ma = timeless_metrics(a);
  ASSERT_EQ(ma.size(), 1u);
  for (const char* key : {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "arch_entropy", "genotype"})
    EXPECT_TRUE(ma[0].contains(key)) << key;
  EXPECT_EQ(ma[0]["genotype"], g["genotype"]);
  EXPECT_TRUE(std::filesystem::exists(a + "/config.ini"));

  const auto rb = run("search " + kSmall + "--search.method " + method + " --run.seed 3 --run.dir " + b);
  ASSERT_EQ(rb.code, 0) << rb.output;
  EXPECT_EQ(read_file(a + "/genotype.json"), read_file(b + "/genotype.json"));
  EXPECT_EQ(ma, timeless_metrics(b));
}

INSTANTIATE_TEST_SUITE_P(Methods, CliSearch, ::testing::Values("drnas", "darts", "gdas"));

// GDAS on both spaces, two epochs: the run finishes, writes the genotype, and logs the temperature
// of each epoch (tau_max, then tau_min).
class CliGdas : public ::testing::TestWithParam<std::string> {};

TEST_P(CliGdas, SearchesWritesTheGenotypeAndLogsTau) {
  TempDir tmp;
  const std::string space = GetParam(), dir = tmp.file("gdas");
  const auto r = run("search --search.method gdas --search.space " + space +
                     " --space.cells 3 --space.cells_per_stage 1 --space.channels 2 --data.dataset synthetic "
                     "--data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 --search.epochs 2 "
                     "--gdas.tau_max 8 --gdas.tau_min 0.3 --run.threads 1 --run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("gdas on " + space + " (C=2"), std::string::npos) << r.output;
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["space"], space);
  EXPECT_EQ(g["method"], "gdas");
  EXPECT_EQ(g["edges"].size(), space == "darts" ? 28u : 6u);
  const auto m = timeless_metrics(dir);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_DOUBLE_EQ(m[0]["tau"].get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(m[1]["tau"].get<double>(), 0.3);
  EXPECT_TRUE(m[1].contains("arch_entropy"));
  EXPECT_EQ(m[1]["genotype"], g["genotype"]);
}

INSTANTIATE_TEST_SUITE_P(Spaces, CliGdas, ::testing::Values("nb201", "darts"));

TEST(Cli, ALargerArchitectureBatchIsCutIntoMicroBatchesOfTheWeightBatchsSize) {
  TempDir tmp;
  const std::string args = "search --data.dataset synthetic --data.synthetic_count 128 --data.synthetic_size 8 "
                           "--space.channels 2 --space.cells_per_stage 1 --search.batch_size 16 "
                           "--search.micro_batches 2 --search.arch_batch_size 32 --search.epochs 1 --run.threads 1 ";
  const auto one = run(args + "--run.dir " + tmp.file("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("architecture batches of 32 images in 4 micro-batches"), std::string::npos) << one.output;
  const auto m = timeless_metrics(tmp.file("one"));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]["images"], 4 * (16 + 32));  // 64 weight images: 4 steps, each with 16 + 32 images
  // The ranks share the 4 architecture micro-batches: the same search on 2 ranks.
  const auto two = run_shell(mpirun(2) + PROBNAS_BINARY + " " + args + "--run.dir " + tmp.file("two"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(tmp.file("one/genotype.json")))["genotype"],
            nlohmann::json::parse(read_file(tmp.file("two/genotype.json")))["genotype"]);
  const auto m2 = timeless_metrics(tmp.file("two"));
  ASSERT_EQ(m2.size(), 1u);
  for (const char* key : {"train_loss", "val_loss", "arch_entropy"})
    EXPECT_NEAR(m[0][key].get<double>(), m2[0][key].get<double>(), 1e-5 * std::abs(m[0][key].get<double>())) << key;
  // A size that is not a whole number of micro-batches is refused, naming the keys.
  const auto bad = run(args + "--search.arch_batch_size 20 --run.dir " + tmp.file("bad"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("search.arch_batch_size = 20 must be a multiple of the micro-batch size"), std::string::npos)
      << bad.output;
}

// 64 tiny synthetic images in batches of 16 (splits of 32), for commands that must be refused.
std::string refusal_data(TempDir& tmp) {
  return " --data.dataset synthetic --data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 "
         "--run.dir " + tmp.file("run");
}

class CliParsec : public ::testing::TestWithParam<std::string> {};

TEST_P(CliParsec, SearchesAndReportsTheMostProbableArchitectures) {
  TempDir tmp;
  const std::string space = GetParam(), dir = tmp.file("parsec");
  const auto r = run("search --search.method parsec --search.space " + space +
                     " --space.cells 3 --space.cells_per_stage 1 --space.channels 2 --data.dataset synthetic "
                     "--data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 --search.epochs 2 "
                     "--parsec.samples 3 --parsec.arch_lr 0.05 --parsec.top_k 4 --run.threads 1 --run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("parsec on " + space + " (C=2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the ranks split the 3 samples"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("PARSEC distribution: entropy"), std::string::npos) << r.output;
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["method"], "parsec");
  EXPECT_EQ(g["edges"].size(), space == "darts" ? 28u : 6u);
  const auto& p = g["parsec"];
  EXPECT_EQ(p["samples"], 3);
  EXPECT_LT(p["entropy_nats"].get<double>(), p["uniform_entropy_nats"].get<double>());
  ASSERT_EQ(p["most_probable"].size(), 4u);
  for (size_t i = 1; i < 4; ++i)
    EXPECT_LE(p["most_probable"][i]["probability"].get<double>(), p["most_probable"][i - 1]["probability"].get<double>());
  const std::string first = p["most_probable"][0]["architecture"];
  EXPECT_EQ(first.rfind(space == "darts" ? "Genotype(normal=[('" : "|", 0), 0u) << first;
  const auto m = timeless_metrics(dir);
  ASSERT_EQ(m.size(), 2u);
  for (const char* key : {"arch_entropy", "total_entropy", "mode_log_prob", "ess"}) EXPECT_TRUE(m[1].contains(key)) << key;
  EXPECT_GE(m[1]["ess"].get<double>(), 1.0 - 1e-9);
  EXPECT_LE(m[1]["ess"].get<double>(), 3.0 + 1e-9);
  // PARSEC's default warm-up (3/10 of the 2 epochs, rounded up): in epoch 1 pi stays uniform.
  EXPECT_NE(r.output.find("epoch 1/2 done: weight-only warm-up"), std::string::npos) << r.output;
  EXPECT_NEAR(m[0]["total_entropy"].get<double>(), p["uniform_entropy_nats"].get<double>(), 1e-5);
  EXPECT_EQ(m[1]["genotype"], g["genotype"]);

  // parsec.init_from: a wider network starts from this run's distribution. With the one epoch a
  // warm-up, pi never moves, so the new run ends with exactly the distribution it was given.
  const std::string wider = tmp.file("wider");
  const auto t = run("search --search.method parsec --search.space " + space +
                     " --space.cells 3 --space.cells_per_stage 1 --space.channels 4 --data.dataset synthetic "
                     "--data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 --search.epochs 1 "
                     "--search.warmup_epochs 1 --parsec.samples 3 --parsec.top_k 4 --run.threads 1 --parsec.init_from " +
                     dir + " --run.dir " + wider);
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("PARSEC: pi starts from " + dir + "/checkpoints/ckpt-"), std::string::npos) << t.output;
  const auto w = nlohmann::json::parse(read_file(wider + "/genotype.json"))["parsec"];
  EXPECT_DOUBLE_EQ(w["entropy_nats"].get<double>(), p["entropy_nats"].get<double>());
  EXPECT_EQ(w["most_probable"][0]["architecture"], p["most_probable"][0]["architecture"]);
  EXPECT_EQ(t.output.find("(step -1)"), std::string::npos) << "the log names the step: " << t.output;
  // A resume continues from its own checkpoint: the source folder is no longer needed.
  std::filesystem::rename(dir, dir + ".moved");
  const auto again = run("search --search.method parsec --search.space " + space +
                         " --space.cells 3 --space.cells_per_stage 1 --space.channels 4 --data.dataset synthetic "
                         "--data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 --search.epochs 2 "
                         "--search.warmup_epochs 1 --parsec.samples 3 --parsec.top_k 4 --run.threads 1 "
                         "--parsec.init_from " + dir + " --run.dir " + wider);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(again.output.find("PARSEC: pi starts from"), std::string::npos) << again.output;
  std::filesystem::rename(dir + ".moved", dir);
  // Another space's distribution, or a folder without checkpoints, is refused naming the key.
  const std::string other = space == "darts" ? "nb201" : "darts";
  EXPECT_REFUSED(run("search --search.method parsec --search.space " + other + " --space.cells 3 --space.channels 2" +
                     refusal_data(tmp) + " --parsec.init_from " + dir),
                 "parsec.init_from = " + dir + ": " + dir + "/checkpoints/ckpt-");
  EXPECT_REFUSED(run("search --search.method parsec --search.space " + space + refusal_data(tmp) +
                     " --parsec.init_from " + tmp.file("nothing")),
                 "parsec.init_from = " + tmp.file("nothing") + ": no checkpoint in");
}

INSTANTIATE_TEST_SUITE_P(Spaces, CliParsec, ::testing::Values("nb201", "darts"));


// Both GibbsNAS variants from the CLI: the Gaussian samplers run, alpha's spread per edge and
// operation lands in genotype.json and the curvature estimates in metrics.jsonl.
class CliGibbs : public ::testing::TestWithParam<int> {};

TEST_P(CliGibbs, SearchesAndReportsAlphasPosteriorSpread) {
  TempDir tmp;
  const int order = GetParam();
  const std::string dir = tmp.file("gibbs");
  const auto r = run("search --search.method gibbsnas --gibbs.order " + std::to_string(order) +
                     " --space.cells_per_stage 1 --space.channels 2 --data.dataset synthetic --data.synthetic_count 64 "
                     "--data.synthetic_size 8 --search.batch_size 8 --search.arch_batch_size 16 --search.epochs 2 "
                     "--run.threads 1 --run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("gibbsnas on nb201 (C=2"), std::string::npos) << r.output;
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["method"], "gibbsnas");
  const auto& report = g["gibbsnas"];
  EXPECT_EQ(report["order"], order);
  ASSERT_EQ(report["alpha_std"]["cell"].size(), 6u) << report.dump();
  for (const auto& [edge, ops] : report["alpha_std"]["cell"].items()) {
    ASSERT_EQ(ops.size(), 5u) << edge;
    for (const auto& [op, sd] : ops.items()) EXPECT_GT(sd.get<double>(), 0.0) << edge << " " << op;
  }
  const auto m = timeless_metrics(dir);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_TRUE(m[1].contains("arch_variance_mean"));
  EXPECT_GT(m[1]["arch_variance_mean"].get<double>(), 0.0);
  // alpha's learning rate on today's default cosine: the paper's 0.1 in the first epoch, lower in the second.
  EXPECT_EQ(report["arch_lr_schedule"], "cosine");
  ASSERT_TRUE(m[0].contains("arch_lr") && m[1].contains("arch_lr"));
  EXPECT_DOUBLE_EQ(m[0]["arch_lr"].get<double>(), 0.1);
  EXPECT_LT(m[1]["arch_lr"].get<double>(), 0.06);
  EXPECT_EQ(m[1].contains("weight_inverse_curvature_mean"), order == 2);
}

INSTANTIATE_TEST_SUITE_P(Orders, CliGibbs, ::testing::Values(1, 2));

TEST(Cli, GibbsRefusesWhatItCannotSampleNamingTheKeys) {
  TempDir tmp;
  const std::string data = refusal_data(tmp);
  EXPECT_REFUSED(run("search --search.method gibbsnas --gibbs.order 1 --gibbs.sample_weights false" + data),
                 "gibbs.sample_weights = false with gibbs.order = 1");
  EXPECT_REFUSED(run("search --search.method gibbsnas --search.space darts --search.edge_norm true "
                     "--space.channels 4" + data),
                 "search.edge_norm = true");
  EXPECT_REFUSED(run("search --search.method gibbsnas --gibbs.order 3" + data), "gibbs.order");
  // The architecture batch defaults to the paper's 2048 images, more than this split holds.
  EXPECT_REFUSED(run("search --search.method gibbsnas" + data),
                 "a split of 32 examples holds no whole batch of 2048 (raise data.limit or lower "
                 "search.arch_batch_size)");
}

TEST(Cli, ParsecRefusesWhatItCannotSearchNamingTheKeys) {
  TempDir tmp;
  const std::string data = refusal_data(tmp);
  EXPECT_REFUSED(run("search --search.method parsec --search.space multibranch" + data),
                 "search.method = parsec with search.space = multibranch");
  EXPECT_REFUSED(run("search --search.method parsec --search.space darts --space.partial_channels 2 "
                     "--space.channels 4" + data),
                 "space.partial_channels = 2");
  EXPECT_REFUSED(run("search --search.method parsec --search.space darts --progressive.k 2 "
                     "--progressive.epochs 1" + data),
                 "progressive.k = 2");
  EXPECT_REFUSED(run_shell(mpirun(2) + PROBNAS_BINARY + " search --search.method parsec --parsec.samples 3" + data),
                 "parsec.samples = 3 must be a multiple of the 2 ranks");
}

TEST(Cli, GdasTemperaturesOutOfOrderFailNamingTheKeys) {
  TempDir tmp;
  const auto r = run("search --search.method gdas --gdas.tau_max 0.5 --gdas.tau_min 2 --data.dataset synthetic "
                     "--data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 --run.dir " +
                     tmp.file("run"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("gdas.tau_max = 0.5 is below gdas.tau_min = 2"), std::string::npos) << r.output;
}

TEST(Cli, DartsSpaceSearchWritesADartsGenotype) {
  TempDir tmp;
  const std::string dir = tmp.file("darts");
  const auto r = run("search --search.space darts --space.cells 3 --space.channels 2 --data.dataset synthetic "
                     "--data.synthetic_count 64 --data.synthetic_size 8 --search.batch_size 16 --search.epochs 1 "
                     "--run.threads 1 --run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("drnas on darts (C=2, cells=3"), std::string::npos) << r.output;
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["space"], "darts");
  EXPECT_EQ(g["genotype"].get<std::string>().rfind("Genotype(normal=[('", 0), 0u) << g["genotype"];
  EXPECT_EQ(g["edges"].size(), 28u);

  // The cell pictures: per group, one labelled DOT edge per kept (non-`none`) edge of genotype.json.
  for (const std::string group : {"normal", "reduce"}) {
    const std::string path = dir + "/cells/" + group + ".dot";
    ASSERT_TRUE(std::filesystem::exists(path)) << path << "\n" << r.output;
    const std::string dot = read_file(path);
    std::multiset<std::string> kept, drawn;
    for (const auto& e : g["edges"])
      if (e["group"] == group && e["op"] != "none") kept.insert(e["op"].get<std::string>());
    for (size_t at = dot.find("[label=\""); at != std::string::npos; at = dot.find("[label=\"", at + 1)) {
      const size_t from = at + 8;
      drawn.insert(dot.substr(from, dot.find('"', from) - from));
    }
    EXPECT_EQ(kept.size(), 8u);
    EXPECT_EQ(drawn, kept) << dot;
  }
  const bool have_dot = run_shell("command -v dot").code == 0;
  EXPECT_EQ(std::filesystem::exists(dir + "/cells/normal.svg"), have_dot) << r.output;
  if (!have_dot) {
    EXPECT_NE(r.output.find("dot is not on PATH"), std::string::npos) << r.output;
  }
  // `probnas inspect --cells` derives the same cells from the final checkpoint's probabilities.
  std::string latest = read_file(dir + "/checkpoints/LATEST");
  latest.erase(latest.find_last_not_of(" \n") + 1);
  const auto inspect = run("inspect " + dir + "/checkpoints/" + latest + " --cells " + tmp.file("pictures"));
  ASSERT_EQ(inspect.code, 0) << inspect.output;
  for (const std::string group : {"normal", "reduce"})
    EXPECT_EQ(read_file(tmp.file("pictures/" + group + ".dot")), read_file(dir + "/cells/" + group + ".dot")) << group;
}

TEST(Cli, CellPicturesNeverFailARunAndAFinishedRunStartedAgainRendersThem) {
  TempDir tmp;
  const std::string dir = tmp.file("nb201"), bin = tmp.file("bin");
  // A Graphviz that fails: the run still succeeds, says why, and leaves the DOT file.
  std::filesystem::create_directories(bin);
  std::ofstream(bin + "/dot") << "#!/bin/sh\necho 'dot: cannot load the svg plugin' >&2\nexit 1\n";
  std::filesystem::permissions(bin + "/dot", std::filesystem::perms::owner_all);
  const std::string args = "search --space.channels 2 --space.cells_per_stage 1 --data.dataset synthetic "
                           "--data.synthetic_count 32 --data.synthetic_size 8 --search.batch_size 16 --search.epochs 1 "
                           "--run.threads 1 --run.dir " + dir;
  const auto broken = run_shell("PATH='" + bin + "':\"$PATH\" " + PROBNAS_BINARY + " " + args);
  ASSERT_EQ(broken.code, 0) << broken.output;
  EXPECT_NE(broken.output.find("cannot load the svg plugin"), std::string::npos) << broken.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/cells/cell.dot"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/cells/cell.svg"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/cells/cell.svg.tmp"));
  // The finished run started again draws the pictures with what is installed now.
  const auto again = run(args);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("nothing to do"), std::string::npos) << again.output;
  if (run_shell("command -v dot").code == 0) {
    const std::string svg = read_file(dir + "/cells/cell.svg");
    EXPECT_NE(svg.find("<svg"), std::string::npos) << again.output;
  } else {
    EXPECT_NE(again.output.find("dot is not on PATH"), std::string::npos) << again.output;
  }
}

TEST(Cli, ImageNetStemRunsOnTheDartsSpaceAndIsRefusedOnNb201) {
  TempDir tmp;
  const std::string data = "--data.dataset synthetic --data.synthetic_count 32 --data.synthetic_size 32 "
                           "--search.batch_size 16 --search.epochs 1 --space.channels 2 --run.threads 1 ";
  const auto nb201 = run("search " + data + "--space.cells_per_stage 1 --space.stem imagenet --run.dir " +
                         tmp.file("nb201"));
  EXPECT_NE(nb201.code, 0);
  EXPECT_NE(nb201.output.find("space.stem = imagenet"), std::string::npos) << nb201.output;
  const auto darts = run("search " + data + "--search.space darts --space.cells 3 --space.stem imagenet --run.dir " +
                         tmp.file("darts"));
  ASSERT_EQ(darts.code, 0) << darts.output;
  EXPECT_NE(read_file(tmp.file("darts/config.ini")).find("stem = imagenet"), std::string::npos);
}

TEST(Cli, SecondOrderDartsSearchWritesAGenotype) {
  TempDir tmp;
  const std::string dir = tmp.file("darts2");
  const auto r = run("search --search.method darts --darts.order 2 --search.space darts --space.cells 3 "
                     "--space.channels 2 --data.dataset synthetic --data.synthetic_count 64 --data.synthetic_size 8 "
                     "--search.batch_size 16 --search.micro_batches 2 --search.epochs 1 --run.threads 1 --run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("darts (second order) on darts (C=2, cells=3"), std::string::npos) << r.output;
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["genotype"].get<std::string>().rfind("Genotype(normal=[('", 0), 0u) << g["genotype"];
  EXPECT_NE(read_file(dir + "/config.ini").find("order = 2"), std::string::npos);

  // Only DARTS has a second order; DrNAS refuses it, naming the key.
  const auto drnas = run("search --search.method drnas --darts.order 2 --data.dataset synthetic --run.dir " +
                         tmp.file("drnas"));
  EXPECT_NE(drnas.code, 0);
  EXPECT_NE(drnas.output.find("darts.order = 2"), std::string::npos) << drnas.output;
  const auto range = run("search --search.method darts --darts.order 3 --run.dir " + tmp.file("three"));
  EXPECT_NE(range.code, 0);
  EXPECT_NE(range.output.find("darts.order"), std::string::npos) << range.output;
}

TEST(Cli, EffectiveConfigRunsAgainAsAConfigFile) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  probnas::test::TempDir tmp;
  const auto r1 = run("search " + kSmall + "--run.seed 5 --run.dir " + tmp.file("one"));
  ASSERT_EQ(r1.code, 0) << r1.output;
  // The written config.ini names run.dir "one"; the command line moves the copy elsewhere.
  const auto r2 = run("search --config " + tmp.file("one/config.ini") + " --run.dir " + tmp.file("two"));
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_EQ(read_file(tmp.file("one/genotype.json")), read_file(tmp.file("two/genotype.json")));
}

TEST(Cli, UnknownKeyAndBadValueFailNamingTheKey) {
  const auto unknown = run("search --search.bogus 3");
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.output.find("search.bogus"), std::string::npos) << unknown.output;

  const auto range = run("search --search.epochs 0");
  EXPECT_NE(range.code, 0);
  EXPECT_NE(range.output.find("search.epochs"), std::string::npos) << range.output;
  EXPECT_NE(range.output.find("allowed"), std::string::npos) << range.output;

  const auto choice = run("search --search.method magic");
  EXPECT_NE(choice.code, 0);
  EXPECT_NE(choice.output.find("darts, drnas"), std::string::npos) << choice.output;

  probnas::test::TempDir tmp;
  std::ofstream(tmp.file("bad.ini")) << "[search]\nmethdo = drnas\n";
  const auto file = run("search --config " + tmp.file("bad.ini"));
  EXPECT_NE(file.code, 0);
  EXPECT_NE(file.output.find("search.methdo"), std::string::npos) << file.output;
  EXPECT_NE(file.output.find("bad.ini"), std::string::npos) << file.output;

  const auto missing = run("search --data.dataset cifar10 --data.path " + tmp.file("nowhere"));
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.output.find("data_batch_1.bin"), std::string::npos) << missing.output;
}

TEST(Cli, HelpListsEveryOptionWithItsDefaultAndVersionPrints) {
  const auto help = run("search --help");
  ASSERT_EQ(help.code, 0);
  for (const char* key : {"run.dir", "run.seed", "run.device", "search.method", "search.space", "search.epochs",
                          "search.batch_size", "search.micro_batches", "data.dataset", "data.path", "data.limit",
                          "data.train_portion", "space.channels", "space.cells_per_stage", "drnas.reg_scale"})
    EXPECT_NE(help.output.find(std::string("--") + key + " <"), std::string::npos) << key;
  EXPECT_NE(help.output.find("default: drnas"), std::string::npos);
  const auto version = run("--version");
  EXPECT_EQ(version.code, 0);
  EXPECT_EQ(version.output.rfind("probnas 0.", 0), 0u) << version.output;
  EXPECT_NE(version.output.find("\nbuilt with CUDA: "), std::string::npos) << version.output;
  EXPECT_NE(version.output.find("; NCCL: "), std::string::npos) << version.output;
  EXPECT_NE(version.output.find("\nMPI: "), std::string::npos) << version.output;
  EXPECT_NE(run("frobnicate").code, 0);
}

}  // namespace

namespace {

// Checks every 2 steps that the ranks hold identical parameters (a false alarm would fail the run).
const std::string kRanks = kSmall + "--search.micro_batches 2 --run.threads 1 --comm.verify_interval 2 ";

TEST(CliRanks, TwoRanksFindTheSameGenotypeAsOne) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  probnas::test::TempDir tmp;
  const auto one = run("search " + kRanks + "--run.dir " + tmp.file("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  const auto two = run_shell(mpirun(2) + PROBNAS_BINARY + " search " + kRanks + "--run.dir " + tmp.file("two"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_EQ(read_file(tmp.file("one/genotype.json")), read_file(tmp.file("two/genotype.json")));
  const auto m1 = timeless_metrics(tmp.file("one")), m2 = timeless_metrics(tmp.file("two"));
  ASSERT_EQ(m1.size(), m2.size());
  for (size_t i = 0; i < m1.size(); ++i)
    for (const char* key : {"train_loss", "val_loss", "arch_entropy"})
      EXPECT_NEAR(m1[i][key].get<double>(), m2[i][key].get<double>(), 1e-5 * std::abs(m1[i][key].get<double>())) << key;
  // Only rank 0 writes and prints: one "results in" line.
  EXPECT_EQ(two.output.find("results in"), two.output.rfind("results in")) << two.output;
}

TEST(CliRanks, AConfigMismatchBetweenRanksStopsTheJobNamingTheRank) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  probnas::test::TempDir tmp;
  const std::string common = std::string(PROBNAS_BINARY) + " search " + kRanks + "--run.dir " + tmp.file("x");
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_shell(mpirun(1) + common + " --run.seed 1 : -np 1 " + common + " --run.seed 2");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("rank 1's effective configuration differs from rank 0's"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 60) << "the job did not end promptly";
}

TEST(CliRanks, AnExceptionOnOneRankAbortsTheWholeJob) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  probnas::test::TempDir tmp;
  const auto start = std::chrono::steady_clock::now();
  // Rank 1 throws at step 2 while rank 0 waits in the step's allreduce: MPI_Abort must end both.
  const auto r = run_shell("PROBNAS_FAIL_AT=1:2 " + mpirun(2) + "-x PROBNAS_FAIL_AT " + PROBNAS_BINARY + " search " +
                           kRanks + "--run.dir " + tmp.file("y"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("probnas[1] error: injected failure on rank 1 at step 2"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 60) << "the job did not end promptly";
}

}  // namespace

// ---- PGNAS ----------------------------------------------------------------------------------

const std::string kPgnasSmall =
    "search --search.method pgnas --search.space multibranch --data.dataset synthetic --data.synthetic_count 192 "
    "--data.synthetic_size 12 --data.synthetic_channels 1 --data.synthetic_classes 4 --search.epochs 1 "
    "--search.batch_size 32 --space.channels 4 --space.cells_per_stage 1 --space.kernels 1,3 "
    "--pgnas.candidates 6 --pgnas.eval_batch 40 --run.progress_interval 0 ";

constexpr size_t kPgnasFmnistCandidates = 40;
const std::string kPgnasFmnist =
    "search --search.method pgnas --search.space multibranch --data.limit 4000 --search.epochs 3 "
    "--search.batch_size 64 --search.lr 0.05 --space.channels 8 --space.cells_per_stage 1 --space.kernels 1,3 "
    "--data.crop false --data.flip false --pgnas.init_drop 0.2 --pgnas.drop_lr 0.05 --pgnas.length_scale 3 "
    "--pgnas.candidates 40 --pgnas.eval_images 800 --pgnas.test false --run.progress_interval 30 ";

TEST(CliPgnas, TrainsRanksBothSamplingsAndWritesTheBestCandidate) {
  probnas::test::TempDir tmp;
  const std::string dir = tmp.file("pg");
  const auto r = run(kPgnasSmall + "--run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("guided candidates (6): best #"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("random candidates (6): best #"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("supernet (expected gates 1 - p): val acc"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("candidates/s | ETA"), std::string::npos) << r.output;
  // candidates.csv: a header and 6 + 6 rows, ranked by accuracy within each sampling.
  std::istringstream csv(read_file(dir + "/candidates.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "sampling,rank,index,val_acc,val_loss,params,kept_fraction");
  int guided = 0, random = 0;
  double previous = 2;
  std::string previous_sampling;
  while (std::getline(csv, line)) {
    const std::string sampling = line.substr(0, line.find(','));
    (sampling == "guided" ? guided : random)++;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 7u) << line;
    const double acc = std::stod(f[3]);
    if (sampling == previous_sampling) {
      EXPECT_LE(acc, previous) << line;
    }
    previous = acc;
    previous_sampling = sampling;
    EXPECT_GT(std::stoll(f[5]), 0);
  }
  EXPECT_EQ(guided, 6);
  EXPECT_EQ(random, 6);
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["method"], "pgnas");
  EXPECT_EQ(g["space"], "multibranch");
  EXPECT_EQ(g["best"]["sampling"], "guided");
  EXPECT_EQ(g["best"]["kept_channels"].size(), 3u * 2u * 2u);
  EXPECT_TRUE(g["best"]["test_acc"].is_null());  // synthetic data has no test split
  EXPECT_LE(g["best"]["params"].get<int64_t>(), g["supernet"]["params"].get<int64_t>());
  EXPECT_NEAR(g["random"]["drop"].get<double>(), g["guided"]["mean_drop"].get<double>(), 1e-12);
  EXPECT_TRUE(std::filesystem::exists(dir + "/best_network.h5"));
  const auto h5 = run_shell("h5ls -r " + dir + "/best_network.h5");
  if (h5.code == 0) {
    EXPECT_NE(h5.output.find("/network/fc/weight"), std::string::npos) << h5.output;
  }

  // probnas sample on the finished run: more candidates, guided only; the first 6 are not ranked again.
  const std::string before = read_file(dir + "/ranking/guided.csv");
  std::string sample_args = kPgnasSmall;
  sample_args.replace(0, 6, "sample");
  const auto again = run(sample_args + "--run.dir " + dir + " --pgnas.candidates 8 --pgnas.sampling guided");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("8 candidates on"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("6 already ranked"), std::string::npos) << again.output;
  EXPECT_EQ(read_file(dir + "/ranking/guided.csv").substr(0, before.size()), before);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir + "/genotype.json"))["guided"]["candidates"], 8);
}

TEST(CliPgnas, WrongPairingsAndSamplingWithoutASearchFailNamingTheKeys) {
  probnas::test::TempDir tmp;
  const auto a = run("search --search.method pgnas --search.space nb201 --run.dir " + tmp.file("a"));
  EXPECT_EQ(a.code, 1);
  EXPECT_NE(a.output.find("search.method = pgnas with search.space = nb201"), std::string::npos) << a.output;
  const auto b = run("search --search.method drnas --search.space multibranch --run.dir " + tmp.file("b"));
  EXPECT_EQ(b.code, 1);
  EXPECT_NE(b.output.find("use search.method = pgnas with search.space = multibranch"), std::string::npos) << b.output;
  std::string sample_args = kPgnasSmall;
  sample_args.replace(0, 6, "sample");
  const auto c = run(sample_args + "--run.dir " + tmp.file("c"));
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.output.find("holds no checkpoint to sample from"), std::string::npos) << c.output;
  const auto d = run(kPgnasSmall + "--space.kernels 2,3 --run.dir " + tmp.file("d"));
  EXPECT_EQ(d.code, 1);
  EXPECT_NE(d.output.find("space.kernels = 2,3"), std::string::npos) << d.output;
}

// The paper's claim in miniature, on real images: candidates drawn from the learned posterior
// beat candidates drawn at the same mean drop rate. A statistic over many candidates: the guided
// mean must exceed the random mean by more than twice the standard error of the difference.
TEST(CliPgnas, GuidedCandidatesBeatRandomOnesAtTheSameKeptFraction) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)";
  probnas::test::TempDir tmp;
  const std::string dir = tmp.file("pg");
  const auto r = run(kPgnasFmnist + "--run.dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  std::istringstream csv(read_file(dir + "/candidates.csv"));
  std::string line;
  std::getline(csv, line);
  std::map<std::string, std::vector<double>> acc, kept;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 7u) << line;
    acc[f[0]].push_back(std::stod(f[3]));
    kept[f[0]].push_back(std::stod(f[6]));
  }
  auto mean = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); };
  auto var = [&](const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (const double x : v) s += (x - m) * (x - m);
    return s / static_cast<double>(v.size() - 1);
  };
  ASSERT_EQ(acc["guided"].size(), kPgnasFmnistCandidates);
  ASSERT_EQ(acc["random"].size(), kPgnasFmnistCandidates);
  const double n = static_cast<double>(kPgnasFmnistCandidates);
  const double diff = mean(acc["guided"]) - mean(acc["random"]);
  const double se = std::sqrt(var(acc["guided"]) / n + var(acc["random"]) / n);
  const auto best = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  const std::string report = "guided mean " + std::to_string(mean(acc["guided"])) + " best " +
                             std::to_string(best(acc["guided"])) + " kept " + std::to_string(mean(kept["guided"])) +
                             "; random mean " + std::to_string(mean(acc["random"])) + " best " +
                             std::to_string(best(acc["random"])) + " kept " + std::to_string(mean(kept["random"]));
  std::cout << "[ PGNAS    ] " << report << "\n";
  EXPECT_NEAR(mean(kept["guided"]), mean(kept["random"]), 0.03) << report;  // a comparable kept fraction
  EXPECT_GT(diff, 2 * se) << report << "; difference " << diff << ", standard error " << se;
}

// The drop logits, both SGDs and Adam go through the checkpoint: a PGNAS search killed in its
// second epoch resumes and ends with the same metrics and the same candidate scores.
TEST(CliPgnas, KilledTrainingResumesToTheSameCandidates) {
  probnas::test::TempDir tmp;
  const std::string args = kPgnasSmall + "--search.epochs 2 --pgnas.drop_lr 0.05 --ckpt.interval_steps 2 ";
  const auto ref = run(args + "--run.dir " + tmp.file("ref"));
  ASSERT_EQ(ref.code, 0) << ref.output;
  const std::string dir = tmp.file("run");
  const auto killed = run_shell("PROBNAS_FAIL_AT=0:5:KILL " + std::string(PROBNAS_BINARY) + " " + args + "--run.dir " + dir);
  EXPECT_NE(killed.code, 0) << killed.output;
  const auto resumed = run(args + "--run.dir " + dir);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + dir + "/checkpoints/ckpt-4.h5"), std::string::npos) << resumed.output;
  EXPECT_EQ(timeless_metrics(tmp.file("ref")), timeless_metrics(dir));
  EXPECT_EQ(read_file(tmp.file("ref") + "/candidates.csv"), read_file(dir + "/candidates.csv"));
}

// BatchNorm's running statistics are composed over the ranks' micro-batches as one rank updates
// them (BatchNormSum): the validation with running statistics and the candidates' scores match.
TEST(CliPgnas, TwoRanksWriteTheCandidatesAndValidationOfOne) {
  if (std::string(PROBNAS_MPIEXEC).empty()) GTEST_SKIP() << "no mpiexec found at configure time";
  probnas::test::TempDir tmp;
  const std::string args = kPgnasSmall + "--search.epochs 2 --pgnas.drop_lr 0.05 --search.micro_batches 2 --run.threads 1 ";
  const auto one = run(args + "--run.dir " + tmp.file("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  const auto two = run_shell(mpirun(2) + PROBNAS_BINARY + " " + args + "--run.dir " + tmp.file("two"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_EQ(read_file(tmp.file("one") + "/candidates.csv"), read_file(tmp.file("two") + "/candidates.csv"));
  const auto m1 = timeless_metrics(tmp.file("one")), m2 = timeless_metrics(tmp.file("two"));
  ASSERT_EQ(m1.size(), 2u);
  ASSERT_EQ(m2.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    for (const char* key : {"val_loss", "val_acc", "train_loss"})
      EXPECT_EQ(m1[i][key].get<double>(), m2[i][key].get<double>()) << key << " of epoch " << i + 1;
}

namespace probnas {
namespace {

// probnas convert on 2 ranks writes shards; a search reads them on 2 ranks (each rank its own
// micro-batches) with the ImageNet augmentation, is killed, and resumes at the step it stopped.
TEST(CliShards, ConvertOnTwoRanksThenSearchOnTwoRanksKilledAndResumed) {
  TempDir tmp;
  const std::string shards = tmp.file("shards");
  const auto conv = run_shell(mpirun(2) + PROBNAS_BINARY + " convert --synthetic 640 --shape 3x20x20 --classes 4 "
                              "--shard_size 100 --out " + shards);
  ASSERT_EQ(conv.code, 0) << conv.output;
  EXPECT_NE(conv.output.find("converted 640 images of 4 classes into 7 shards"), std::string::npos) << conv.output;
  EXPECT_NE(conv.output.find("0 skipped"), std::string::npos) << conv.output;
  const std::string args = " search --search.method darts --search.space nb201 --space.channels 4 "
                           "--space.cells_per_stage 1 --data.dataset shards --data.path " + shards +
                           " --data.random_resized_crop true --data.image_size 16 --search.batch_size 32 "
                           "--search.micro_batches 2 --search.epochs 2 --ckpt.interval_steps 5 --run.dir " +
                           tmp.file("run");
  const auto killed = run_shell("PROBNAS_FAIL_AT=1:7:KILL " + mpirun(2) + "-x PROBNAS_FAIL_AT " + PROBNAS_BINARY + args);
  EXPECT_NE(killed.code, 0) << killed.output;
  EXPECT_NE(killed.output.find("shards 640 images (320 weights / 320 architecture), 2 ranks"), std::string::npos)
      << killed.output;
  const auto resumed = run_shell(mpirun(2) + PROBNAS_BINARY + args);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step 5 of 20"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("search finished"), std::string::npos) << resumed.output;
}

TEST(CliShards, ConvertHelpAndRefusals) {
  const auto help = run("convert --help");
  EXPECT_EQ(help.code, 0);
  for (const char* option : {"--from", "--in", "--out", "--encoding", "--size", "--fraction", "--synthetic",
                             "--shape", "--classes", "--shard_size", "--threads"})
    EXPECT_NE(help.output.find(option), std::string::npos) << option;
  TempDir tmp;
  EXPECT_REFUSED(run("convert --in " + tmp.file("missing") + " --out " + tmp.file("o")), tmp.file("missing"));
  EXPECT_REFUSED(run("search --data.dataset shards --data.path " + tmp.file("missing")), tmp.file("missing"));
  EXPECT_REFUSED(run("search --data.dataset shards"), "data.path");
}

}  // namespace
}  // namespace probnas

namespace probnas {
namespace {

// srun started 2 tasks but MPI sees a world of 1 (an MPI library not connected to Slurm's
// launcher): probnas refuses instead of running 2 runs that overwrite each other's checkpoints.
TEST(CliSlurm, TasksThatMpiDoesNotJoinAreRefused) {
  TempDir tmp;
  const auto r = run_shell("SLURM_STEP_NUM_TASKS=2 " + std::string(PROBNAS_BINARY) +
                           " search --data.dataset synthetic --run.dir " + tmp.file("run"));
  EXPECT_REFUSED(r, "Slurm started 2 tasks (SLURM_STEP_NUM_TASKS=2) but MPI reports a world of 1");
  EXPECT_NE(r.output.find("srun --mpi=pmix"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("run")));
  const auto one = run_shell("SLURM_STEP_NUM_TASKS=1 SLURM_JOB_ID=77 SLURM_RESTART_COUNT=3 " +
                             std::string(PROBNAS_BINARY) + " search --data.dataset synthetic --data.synthetic_count 128 "
                             "--search.epochs 1 --search.batch_size 32 --space.channels 4 --space.cells_per_stage 1 "
                             "--run.dir " + tmp.file("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("Slurm job 77"), std::string::npos) << one.output;
  EXPECT_NE(read_file(tmp.file("one/metrics.jsonl")).find("\"slurm_job_id\":\"77\",\"slurm_restart_count\":3"),
            std::string::npos);
}

}  // namespace
}  // namespace probnas
