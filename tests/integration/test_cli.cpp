// probnas end to end: the CLI on a small real dataset (Fashion-MNIST from Debian's
// dataset-fashion-mnist), determinism of a seeded run, and errors for people.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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

INSTANTIATE_TEST_SUITE_P(Methods, CliSearch, ::testing::Values("drnas", "darts"));

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
