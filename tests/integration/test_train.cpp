// probnas train, compare and the run report end to end: a search's genotype retrained with the
// search's data settings, killed (SIGKILL) and resumed bitwise identical, on two ranks like on one,
// a PGNAS candidate tested as sampled, random search selecting its best candidate, and compare
// reading it all back.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>

#include "../unit/test_support.h"
#include "cli_support.h"
#include "probnas/ckpt/checkpoint.h"

namespace {

using namespace probnas::test;
namespace fs = std::filesystem;
namespace ckpt = probnas::ckpt;

const std::string kData = kTinySyntheticRun;
const std::string kBest = "'|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'";
// 3 epochs x 8 steps of 32 images in 2 micro-batches, a checkpoint every 5 steps.
const std::string kTrain = kData + "--train.channels 4 --train.cells 1 --train.epochs 3 --train.batch_size 32 "
                                   "--train.micro_batches 2 --ckpt.epoch_end false --ckpt.interval_minutes 0 "
                                   "--ckpt.interval_steps 5 ";

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

void expect_same_tensors(const ckpt::State& a, const ckpt::State& b, double tolerance, const std::string& skip = "") {
  for (const auto& [name, ta] : a.tensors()) {
    ASSERT_TRUE(b.has(name)) << a.path() << "/" << name;
    if (!skip.empty() && name.find(skip) != std::string::npos) continue;
    const auto tb = b.get(name);
    if (tolerance == 0)
      EXPECT_TRUE(torch::equal(ta, tb)) << a.path() << "/" << name;
    else
      EXPECT_TRUE(torch::allclose(ta.to(torch::kFloat64), tb.to(torch::kFloat64), 0, tolerance)) << a.path() << "/" << name;
  }
  for (const auto& [name, ga] : a.groups()) {
    ASSERT_TRUE(b.has_group(name)) << a.path() << "/" << name;
    expect_same_tensors(ga, b.group(name), tolerance, skip);
  }
}

TEST(TrainCli, KilledTrainingResumesBitwiseIdenticalAndTwoRanksTrainTheSameWeights) {
  TempDir tmp;
  const std::string ref = tmp.file("ref"), dir = tmp.file("killed");
  const auto r = run("train --genotype " + kBest + " " + kTrain + "--run.dir " + ref);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("trained 3 epochs"), std::string::npos) << r.output;
  const auto result = read_json(ref + "/result.json");
  EXPECT_EQ(result["mode"], "retrained");
  EXPECT_EQ(result["epochs"], 3);
  EXPECT_EQ(result["nb201"]["index"], 9930);  // scored from the shipped NAS-Bench-201 table
  EXPECT_GT(result["test_images"].get<int64_t>(), 0);
  EXPECT_EQ(read_lines(ref + "/train-metrics.jsonl").size(), 3u);

  // SIGKILL at the start of step 13: the newest checkpoint is step 10; the same command resumes it.
  const std::string cmd = "train --genotype " + kBest + " " + kTrain + "--run.dir " + dir;
  const auto killed = run_shell("PROBNAS_FAIL_AT=0:12:KILL " + std::string(PROBNAS_BINARY) + " " + cmd);
  EXPECT_NE(killed.code, 0) << killed.output;
  ASSERT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-10.h5\n") << killed.output;
  EXPECT_FALSE(fs::exists(dir + "/result.json"));
  const auto resumed = run(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + dir + "/checkpoints/ckpt-10.h5 (step 10 of 24)"), std::string::npos)
      << resumed.output;
  const auto a = ckpt::read_file(ref + "/checkpoints/ckpt-24.h5"), b = ckpt::read_file(dir + "/checkpoints/ckpt-24.h5");
  for (const char* group : {"model", "optim"}) expect_same_tensors(a.group(group), b.group(group), 0);
  const auto resumed_result = read_json(dir + "/result.json");
  EXPECT_EQ(resumed_result["test_acc"], result["test_acc"]);
  EXPECT_EQ(resumed_result["test_loss"], result["test_loss"]);
  EXPECT_EQ(read_lines(dir + "/train-metrics.jsonl").size(), 3u);

  // Two ranks, one micro-batch each: the same weights, the running statistics one rank has (composed
  // over the ranks' micro-batches) and so the same test.
  if (std::string(PROBNAS_MPIEXEC).empty()) GTEST_SKIP() << "no mpiexec found at configure time";
  const std::string two = tmp.file("two");
  const auto two_ranks = run_shell(mpirun(2) + PROBNAS_BINARY + " train --genotype " + kBest + " " + kTrain +
                                   "--run.dir " + two);
  ASSERT_EQ(two_ranks.code, 0) << two_ranks.output;
  const auto c = ckpt::read_file(two + "/checkpoints/ckpt-24.h5");
  expect_same_tensors(a.group("model").group("parameters"), c.group("model").group("parameters"), 1e-5);
  expect_same_tensors(a.group("model").group("buffers"), c.group("model").group("buffers"), 1e-5);
  EXPECT_EQ(c.group("meta").attr_int("world_size"), 2);
  const auto two_result = read_json(two + "/result.json");
  EXPECT_NEAR(two_result["test_acc"].get<double>(), result["test_acc"].get<double>(), 1e-9);
  EXPECT_NEAR(two_result["test_loss"].get<double>(), result["test_loss"].get<double>(), 1e-5);
}

TEST(TrainCli, ASearchsGenotypeTrainsWithTheSearchsDataAndComparesAndReports) {
  TempDir tmp;
  const std::string search = tmp.file("darts-run");
  const auto s = run("search --search.method darts --space.channels 4 --space.cells_per_stage 1 --search.epochs 2 "
                     "--search.batch_size 32 " + kData + "--run.dir " + search);
  ASSERT_EQ(s.code, 0) << s.output;
  ASSERT_TRUE(fs::exists(search + "/report.html"));
  // No data options: the search's config.ini gives them (synthetic 8x8 images).
  const auto t = run("train --genotype " + search + "/genotype.json --train.channels 4 --train.cells 1 "
                     "--train.epochs 1 --train.batch_size 32 --run.threads 1");
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("on synthetic 256 images"), std::string::npos) << t.output;
  const auto result = read_json(search + "/train/result.json");
  EXPECT_EQ(result["search_run"], search);
  EXPECT_EQ(result["method"], "darts");
  EXPECT_EQ(result["genotype"], read_json(search + "/genotype.json")["genotype"]);
  EXPECT_EQ(result["image_size"], 8);
  EXPECT_EQ(result["protocol"]["name"], "nb201");  // an NB201 genotype: NAS-Bench-201's protocol
  // The search's report now shows the retraining.
  EXPECT_NE(read_file(search + "/report.html").find("retrained"), std::string::npos);

  // A random search on the same budget, and compare over both.
  const std::string random = tmp.file("random-run");
  const auto rs = run("search --search.method random --random.candidates 4 --space.channels 4 --space.cells_per_stage 1 "
                      "--search.epochs 2 --search.batch_size 32 " + kData + "--run.dir " + random);
  ASSERT_EQ(rs.code, 0) << rs.output;
  EXPECT_NE(rs.output.find("random search: 4 of 4 candidates scored"), std::string::npos) << rs.output;
  const auto g = read_json(random + "/genotype.json");
  ASSERT_TRUE(g.contains("random")) << g.dump();
  EXPECT_EQ(g["genotype"], g["random"]["best"][0]["architecture"]);  // the best scored candidate is the genotype
  const auto cmp = run("compare --csv " + tmp.file("cmp.csv") + " " + search + " " + random);
  ASSERT_EQ(cmp.code, 0) << cmp.output;
  EXPECT_NE(cmp.output.find("darts"), std::string::npos) << cmp.output;
  EXPECT_NE(cmp.output.find("random"), std::string::npos) << cmp.output;
  EXPECT_NE(cmp.output.find("retrained"), std::string::npos) << cmp.output;
  EXPECT_EQ(read_lines(tmp.file("cmp.csv")).size(), 3u);
}

TEST(TrainCli, ADartsSpaceGenotypeTrainsWithItsSearchMethodsProtocolKeptOnResume) {
  TempDir tmp;
  const std::string genotype =
      "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
      "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), "
      "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
      "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";
  nlohmann::json g = {{"space", "darts"}, {"genotype", genotype}, {"method", "gdas"}};
  std::ofstream(tmp.file("genotype.json")) << g.dump();
  const std::string args = " " + kData + "--train.channels 4 --train.cells 3 --train.epochs 2 --train.batch_size 32 ";
  // Another method's genotype: DARTS's protocol (drop-path 0.2).
  const auto darts = run("train --genotype " + tmp.file("genotype.json") + args + "--run.dir " + tmp.file("darts"));
  ASSERT_EQ(darts.code, 0) << darts.output;
  const auto result = read_json(tmp.file("darts") + "/result.json");
  EXPECT_EQ(result["protocol"]["name"], "darts");
  EXPECT_DOUBLE_EQ(result["protocol"]["drop_path"].get<double>(), 0.2);
  EXPECT_EQ(result["protocol"]["lr_schedule"], "cosine");
  // A DrNAS genotype: DrNAS's (drop-path 0.3), the last epoch's drop-path 0.3 x 1/2.
  g["method"] = "drnas";
  std::ofstream(tmp.file("genotype.json")) << g.dump();
  const auto drnas = run("train --genotype " + tmp.file("genotype.json") + args + "--run.dir " + tmp.file("drnas"));
  ASSERT_EQ(drnas.code, 0) << drnas.output;
  EXPECT_NE(drnas.output.find("protocol drnas:"), std::string::npos) << drnas.output;
  EXPECT_DOUBLE_EQ(read_json(tmp.file("drnas") + "/result.json")["protocol"]["drop_path"].get<double>(), 0.3);
  const auto lines = read_lines(tmp.file("drnas") + "/train-metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(lines[1])["drop_path"].get<double>(), 0.15);
  // train.protocol = auto resolves when a training begins: the DARTS-protocol training resumed now that the file
  // names DrNAS keeps DARTS's protocol, and says so.
  const auto again = run("train --genotype " + tmp.file("genotype.json") + args + "--run.dir " + tmp.file("darts"));
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("resuming with the darts protocol the training began with"), std::string::npos)
      << again.output;
  EXPECT_NE(again.output.find("protocol darts:"), std::string::npos) << again.output;
  // The ImageNet protocols on 128-pixel images (the ImageNet stem): DrNAS's lr 0.5 warms up over 5 epochs.
  const auto imagenet = run("train --genotype " + tmp.file("genotype.json") + " " + kData +
                            "--train.channels 4 --train.cells 3 --data.image_size 128 --train.epochs 0 --run.dir " +
                            tmp.file("imagenet"));
  ASSERT_EQ(imagenet.code, 0) << imagenet.output;
  const auto p = read_json(tmp.file("imagenet") + "/result.json")["protocol"];
  EXPECT_EQ(p["name"], "drnas-imagenet");
  EXPECT_EQ(p["lr_schedule"], "linear");
  EXPECT_EQ(p["warmup_epochs"], 5);
  EXPECT_DOUBLE_EQ(p["lr"].get<double>(), 0.5);
  EXPECT_EQ(p["batch_size"], 768);
  // DrNAS's code warms up for batches above 256 only.
  const auto small = run("train --genotype " + tmp.file("genotype.json") + args + "--data.image_size 128 "
                         "--train.epochs 0 --run.dir " + tmp.file("imagenet-small"));
  ASSERT_EQ(small.code, 0) << small.output;
  EXPECT_EQ(read_json(tmp.file("imagenet-small") + "/result.json")["protocol"]["warmup_epochs"], 0);
}

TEST(TrainCli, APgnasCandidateIsTestedAsSampledOrFineTuned) {
  TempDir tmp;
  const std::string search = tmp.file("pgnas-run");
  const auto s = run("search --search.method pgnas --search.space multibranch --space.channels 4 "
                     "--space.cells_per_stage 1 --search.epochs 1 --search.batch_size 32 --pgnas.candidates 6 " +
                     kData + "--run.dir " + search);
  ASSERT_EQ(s.code, 0) << s.output;
  const auto as_sampled = run("train --genotype " + search + " --run.threads 1");
  ASSERT_EQ(as_sampled.code, 0) << as_sampled.output;
  EXPECT_NE(as_sampled.output.find("tested as sampled"), std::string::npos) << as_sampled.output;
  const auto r = read_json(search + "/train/result.json");
  EXPECT_EQ(r["mode"], "as_sampled");
  EXPECT_EQ(r["epochs"], 0);
  // The candidate's own parameter count, as the search's genotype.json reports it.
  EXPECT_EQ(r["params"], read_json(search + "/genotype.json")["best"]["params"]);
  const auto tuned = run("train --genotype " + search + "/genotype.json --train.epochs 1 --train.batch_size 32 "
                         "--run.threads 1 --run.dir " + tmp.file("ft"));
  ASSERT_EQ(tuned.code, 0) << tuned.output;
  EXPECT_EQ(read_json(tmp.file("ft") + "/result.json")["mode"], "fine_tuned");
}

TEST(TrainCli, ErrorsNameWhatIsWrong) {
  TempDir tmp;
  auto error_of = [](const std::string& args) {
    const auto r = run("train " + args);
    EXPECT_NE(r.code, 0) << r.output;
    return r.output;
  };
  EXPECT_NE(error_of(kData).find("probnas train needs a genotype"), std::string::npos);
  EXPECT_NE(error_of("--genotype " + tmp.file("nope.json") + " " + kData).find("nope.json: no such file"),
            std::string::npos);
  EXPECT_NE(error_of("--genotype '|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|' " + kData)
                .find("unknown operation 'conv_9x9'"),
            std::string::npos);
  write_file(tmp.file("bad.json"), "{\"space\": \"nb201\"");
  EXPECT_NE(error_of("--genotype " + tmp.file("bad.json") + " " + kData).find("is not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("--genotype " + kBest + " --train.drop_path 0.2 " + kData).find("DARTS evaluation network"),
            std::string::npos);
  // A run folder that trained one genotype refuses to resume another.
  const std::string dir = tmp.file("run");
  ASSERT_EQ(run("train --genotype " + kBest + " " + kTrain + "--train.epochs 1 --run.dir " + dir).code, 0);
  EXPECT_NE(error_of("--genotype '|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|' " + kTrain +
                     "--train.epochs 1 --run.dir " + dir)
                .find("give another run.dir"),
            std::string::npos);
}

}  // namespace
