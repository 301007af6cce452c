// Restartable runs end to end: a search killed (SIGKILL) or signalled (SIGUSR1, SIGUSR2,
// SIGTERM) and started again with the same command ends exactly where the uninterrupted search
// ends; damaged, incomplete and foreign checkpoints give the promised messages.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "../unit/test_support.h"
#include "cli_support.h"
#include "probnas/ckpt/checkpoint.h"

namespace {

using namespace probnas::test;
namespace fs = std::filesystem;
namespace ckpt = probnas::ckpt;

// 3 epochs x 8 steps on tiny synthetic images, 2 micro-batches, no time or epoch-end checkpoints
// (the tests choose the step interval); the final checkpoint is ckpt-24.h5.
const std::string kTinyData =
    kTinySyntheticRun + "--space.channels 4 --space.cells_per_stage 1 --search.batch_size 16 --search.micro_batches 2 ";
const std::string kTiny = kTinyData + "--ckpt.epoch_end false --ckpt.interval_minutes 0 ";
const std::string kThreeEpochs = kTiny + "--search.epochs 3 ";
constexpr int64_t kSteps = 24;

std::string final_checkpoint(const std::string& dir, int64_t steps = kSteps) {
  return dir + "/checkpoints/ckpt-" + std::to_string(steps) + ".h5";
}

// The uninterrupted search of `args`, run once per test binary.
const std::string& reference(const std::string& args) {
  static TempDir dir;
  static std::map<std::string, std::string> done;
  auto it = done.find(args);
  if (it != done.end()) return it->second;
  const std::string run_dir = dir.file("ref" + std::to_string(done.size()));
  const auto r = run("search " + args + "--run.dir " + run_dir);
  EXPECT_EQ(r.code, 0) << r.output;
  return done.emplace(args, run_dir).first->second;
}

// Every tensor in a and b (recursively): bitwise equal (tolerance 0) or within `tolerance`.
void expect_same_tensors(const ckpt::State& a, const ckpt::State& b, double tolerance) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size()) << a.path();
  for (const auto& [name, ta] : a.tensors()) {
    ASSERT_TRUE(b.has(name)) << a.path() << "/" << name;
    const auto tb = b.get(name);
    if (tolerance == 0)
      EXPECT_TRUE(torch::equal(ta, tb)) << a.path() << "/" << name << " differs";
    else
      EXPECT_TRUE(torch::allclose(ta.to(torch::kFloat64), tb.to(torch::kFloat64), 0, tolerance))
          << a.path() << "/" << name << " differs by "
          << (ta.to(torch::kFloat64) - tb.to(torch::kFloat64)).abs().max().item<double>();
  }
  ASSERT_EQ(a.groups().size(), b.groups().size()) << a.path();
  for (const auto& [name, ga] : a.groups()) {
    ASSERT_TRUE(b.has_group(name)) << a.path() << "/" << name;
    expect_same_tensors(ga, b.group(name), tolerance);
  }
}

// The resumed run in `dir` ended where the uninterrupted `ref` did: genotype, weights, architecture
// parameters, optimiser state and metric history.
void expect_same_search(const std::string& ref, const std::string& dir, double tolerance = 0, int64_t steps = kSteps) {
  const auto a = ckpt::read_file(final_checkpoint(ref, steps)), b = ckpt::read_file(final_checkpoint(dir, steps));
  EXPECT_EQ(a.group("method").attr_text("genotype"), b.group("method").attr_text("genotype"));
  if (tolerance == 0) {
    for (const char* group : {"model", "method", "optim"}) expect_same_tensors(a.group(group), b.group(group), 0);
  } else {
    // Across world sizes: BatchNorm running statistics are per rank (each rank's micro-batches;
    // rank 0's are saved, and the search never uses them), so only parameters and state compare.
    expect_same_tensors(a.group("model").group("parameters"), b.group("model").group("parameters"), tolerance);
    for (const char* group : {"method", "optim"}) expect_same_tensors(a.group(group), b.group(group), tolerance);
  }
  if (tolerance == 0) {
    EXPECT_EQ(timeless_metrics(ref), timeless_metrics(dir));
    EXPECT_EQ(nlohmann::json::parse(read_file(ref + "/genotype.json")),
              nlohmann::json::parse(read_file(dir + "/genotype.json")));
  }
}

TEST(ResumeCli, KilledSearchResumesBitwiseIdentical) {
  const std::string& ref = reference(kThreeEpochs);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + kThreeEpochs + "--ckpt.interval_steps 6 --run.dir " + dir;
  // A real SIGKILL at the start of step 9: the checkpoint at step 6 is the newest, and the epoch-1
  // metrics line written after it must be replaced by the resumed run's.
  const auto killed = run_shell("PROBNAS_FAIL_AT=0:8:KILL " + std::string(PROBNAS_BINARY) + " " + cmd);
  EXPECT_NE(killed.code, 0) << killed.output;
  ASSERT_TRUE(fs::exists(dir + "/checkpoints/ckpt-6.h5")) << killed.output;
  ASSERT_FALSE(fs::exists(dir + "/checkpoints/ckpt-12.h5"));
  ASSERT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-6.h5\n");
  // The killed run's lock file stays, naming it; the kernel dropped its lock, so it blocks nothing.
  EXPECT_NE(read_file(dir + "/run.lock").find(", process "), std::string::npos);

  const auto resumed = run(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + dir + "/checkpoints/ckpt-6.h5 (step 6 of 24"), std::string::npos)
      << resumed.output;
  expect_same_search(ref, dir);
  // Only the newest ckpt.keep = 3 files stay.
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/ckpt-6.h5"));
  EXPECT_TRUE(fs::exists(dir + "/checkpoints/ckpt-12.h5"));
}

// run.channels_last and run.fused change how a step is computed, not what: a search stopped in
// NCHW memory, one edge at a time, resumes in channels-last memory with fused cells (both may
// change on resume) and ends on the uninterrupted NCHW search's genotype, its weights, method and
// optimiser state equal up to float rounding.
TEST(ResumeCli, ASearchStoppedInNchwMemoryResumesInChannelsLastWithFusedCells) {
  // One epoch: on these random labels float rounding differences grow chaotically over longer runs
  // (weights 1e-2 apart after 3 epochs, and the near-uniform genotype flips), within 1e-5 at step 8.
  const std::string one_epoch = kTiny + "--search.epochs 1 --ckpt.interval_steps 4 ";
  const std::string nchw = one_epoch + "--run.channels_last off --run.fused off ";
  const std::string& ref = reference(nchw);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const auto killed =
      run_shell("PROBNAS_FAIL_AT=0:5:KILL " + std::string(PROBNAS_BINARY) + " search " + nchw + "--run.dir " + dir);
  EXPECT_NE(killed.code, 0) << killed.output;
  EXPECT_NE(killed.output.find("NCHW, one edge at a time"), std::string::npos) << killed.output;
  ASSERT_TRUE(fs::exists(dir + "/checkpoints/ckpt-4.h5")) << killed.output;
  const auto resumed = run("search " + one_epoch + "--run.channels_last on --run.fused on --run.dir " + dir);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step 4 of 8"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("channels-last, fused cells"), std::string::npos) << resumed.output;
  expect_same_search(ref, dir, 1e-5, 8);
}

// A checkpoint written by the release before the restructuring (tests/fixtures/checkpoint-0.1.0)
// resumes with today's probnas: its schema reads, its resume hash matches today's config, and the
// search ends with the old run's metrics line in schema and in every number that no draw decides.
// The drawn numbers are compared with resumed-metrics.jsonl, today's resumed run (DrNAS's draws
// moved to host noise after 0.1.0, method/dirichlet.h; see the fixture's README).
TEST(ResumeCli, ACheckpointOfTheReleaseBeforeResumesAndCompletes) {
  const std::string fixture = std::string(PROBNAS_SOURCE_DIR) + "/tests/fixtures/checkpoint-0.1.0";
  TempDir tmp;
  const std::string dir = tmp.file("run");
  fs::create_directories(dir + "/checkpoints");
  fs::copy_file(fixture + "/ckpt-2.h5", dir + "/checkpoints/ckpt-2.h5");
  const auto resumed = run("search --search.method drnas --data.dataset synthetic --data.synthetic_count 64 "
                           "--data.synthetic_size 8 --data.synthetic_channels 1 --space.channels 2 "
                           "--space.cells_per_stage 1 --search.batch_size 16 --search.epochs 2 --run.threads 1 "
                           "--report.nb201_table none --run.dir " + dir);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + dir + "/checkpoints/ckpt-2.h5 (step 2 of 4"), std::string::npos)
      << resumed.output;
  auto expected = nlohmann::json::parse(read_lines(fixture + "/final-metrics.jsonl").back());
  expected.erase("wall_s");
  expected.erase("images_per_s");
  const auto got = timeless_metrics(dir).back();
  ASSERT_EQ(got.size(), expected.size()) << got.dump() << "\n" << expected.dump();
  // The same keys, types and shapes everywhere, and finite numbers.
  std::function<void(const nlohmann::json&, const nlohmann::json&, const std::string&)> same_schema =
      [&](const nlohmann::json& a, const nlohmann::json& b, const std::string& at) {
        ASSERT_EQ(a.type(), b.type()) << at;
        if (a.is_number_float()) {
          EXPECT_TRUE(std::isfinite(a.get<double>())) << at;
        } else if (a.is_object()) {
          ASSERT_EQ(a.size(), b.size()) << at;
          for (auto it = b.begin(); it != b.end(); ++it) {
            ASSERT_TRUE(a.contains(it.key())) << at << "/" << it.key();
            same_schema(a[it.key()], it.value(), at + "/" + it.key());
          }
        } else if (a.is_array()) {
          ASSERT_EQ(a.size(), b.size()) << at;
          for (size_t i = 0; i < a.size(); ++i) same_schema(a[i], b[i], at + "/" + std::to_string(i));
        }
      };
  same_schema(got, expected, "final metrics");
  // What no draw decides: where the search is, its schedule, what it saw.
  for (const char* k : {"epoch", "step", "images"}) EXPECT_EQ(got[k], expected[k]) << k;
  EXPECT_NEAR(got["lr"].get<double>(), expected["lr"].get<double>(), 1e-12);
  // Every number within 1e-6 of today's resumed run: the loaded weights, architecture and
  // optimiser state decide them (the channels-last memory of today's CPU default sums in another
  // order than a 1e-6 tolerance would notice).
  auto resumed_line = nlohmann::json::parse(read_lines(fixture + "/resumed-metrics.jsonl").back());
  resumed_line.erase("wall_s");
  resumed_line.erase("images_per_s");
  std::function<void(const nlohmann::json&, const nlohmann::json&, const std::string&)> same =
      [&](const nlohmann::json& a, const nlohmann::json& b, const std::string& at) {
        ASSERT_EQ(a.type(), b.type()) << at;
        if (a.is_number_float()) {
          EXPECT_NEAR(a.get<double>(), b.get<double>(), 1e-6 * std::abs(b.get<double>()) + 1e-9) << at;
        } else if (a.is_object()) {
          for (auto it = b.begin(); it != b.end(); ++it) same(a[it.key()], it.value(), at + "/" + it.key());
        } else if (a.is_array()) {
          for (size_t i = 0; i < a.size(); ++i) same(a[i], b[i], at + "/" + std::to_string(i));
        } else {
          EXPECT_EQ(a, b) << at;
        }
      };
  same(got, resumed_line, "final metrics");
}

// Runs `args` with a checkpoint every 6 steps, killed (SIGKILL) at step `kill_at`; the newest
// checkpoint must be ckpt-`latest`, and the same command must resume from it and end bitwise where
// the uninterrupted run does. Returns the run folder.
std::string expect_killed_run_resumes(TempDir& tmp, const std::string& args, int kill_at, int latest) {
  const std::string& ref = reference(args);
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + args + "--ckpt.interval_steps 6 --run.dir " + dir;
  const auto killed = run_shell("PROBNAS_FAIL_AT=0:" + std::to_string(kill_at) + ":KILL " +
                                std::string(PROBNAS_BINARY) + " " + cmd);
  EXPECT_NE(killed.code, 0) << killed.output;
  EXPECT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-" + std::to_string(latest) + ".h5\n") << killed.output;
  const auto resumed = run(cmd);
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step " + std::to_string(latest) + " of 24"), std::string::npos) << resumed.output;
  expect_same_search(ref, dir);
  return dir;
}

// GDAS's temperature is a function of the epoch: a search killed in the second epoch (tau 5.05 of
// 10 -> 0.1 over 3 epochs) resumes at the same temperature and ends bitwise where the uninterrupted one does.
TEST(ResumeCli, GdasKilledInTheSecondEpochResumesBitwiseIdentical) {
  TempDir tmp;
  const std::string dir = expect_killed_run_resumes(tmp, kThreeEpochs + "--search.method gdas ", 13, 12);
  const auto m = timeless_metrics(dir);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_DOUBLE_EQ(m[1]["tau"].get<double>(), 5.05);
}

// PARSEC killed mid-epoch resumes bitwise: its logits, their Adam state and the weights come from the
// checkpoint; its samples are keyed by the step. Then one rank resumes a two-rank run's checkpoint
// (the ranks split the samples) and ends where the one-rank run does.
TEST(ResumeCli, ParsecKilledResumesBitwiseIdenticalAndAcrossWorldSizes) {
  const std::string args = kThreeEpochs + "--search.method parsec --parsec.samples 4 --parsec.arch_lr 0.05 ";
  const std::string& ref = reference(args);
  TempDir tmp;
  const std::string dir = expect_killed_run_resumes(tmp, args, 10, 6);
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["parsec"]["most_probable"].size(), 10u);

  const std::string two = tmp.file("two");
  const std::string cmd2 = "search " + args + "--ckpt.interval_steps 12 --run.dir " + two;
  const auto first = run_shell("PROBNAS_FAIL_AT=0:14:KILL " + mpirun(2) + "-x PROBNAS_FAIL_AT " + PROBNAS_BINARY + " " + cmd2);
  EXPECT_NE(first.code, 0) << first.output;
  ASSERT_EQ(read_file(two + "/checkpoints/LATEST"), "ckpt-12.h5\n") << first.output;
  const auto second = run(cmd2);
  ASSERT_EQ(second.code, 0) << second.output;
  expect_same_search(ref, two, 1e-5);
}

// GibbsNAS (order 2, both samplers on) killed mid-epoch resumes bitwise: the weights, alpha, BFGS's H
// and its Cholesky factor, the diagonal estimate and its pair history come from the checkpoint; the
// noise is keyed by the step.
TEST(ResumeCli, GibbsKilledResumesBitwiseIdentical) {
  TempDir tmp;
  const std::string dir =
      expect_killed_run_resumes(tmp, kThreeEpochs + "--search.method gibbsnas --search.arch_batch_size 32 ", 16, 12);
  const auto g = nlohmann::json::parse(read_file(dir + "/genotype.json"));
  EXPECT_EQ(g["gibbsnas"]["order"], 2);
}

// --- signals, sent from outside to a running search -------------------------------------------

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Starts `argv` (argv[0] a path), output to `log`; returns its pid.
pid_t spawn_argv(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Starts probnas with `args`, output to `log`; returns its pid.
pid_t spawn(const std::string& args, const std::string& log) {
  std::vector<std::string> argv{PROBNAS_BINARY};
  for (auto& w : split_words(args)) argv.push_back(w);
  return spawn_argv(argv, log);
}

// Exit code, or -signal number when it was killed.
int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

class ResumeSignal : public ::testing::TestWithParam<int> {};

TEST_P(ResumeSignal, CheckpointsExits75AndResumesIdentical) {
  // 20 epochs (160 steps): long enough that the signal arrives mid-run.
  const std::string args = kTiny + "--search.epochs 20 ";
  const std::string& ref = reference(args);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + args + "--ckpt.interval_steps 2 --run.dir " + dir;
  const pid_t pid = spawn(cmd, tmp.file("log"));
  ASSERT_GT(pid, 0);
  // The first checkpoint shows the search is in its step loop (handlers installed long before).
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(dir + "/checkpoints/LATEST")) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "probnas ended before its first checkpoint:\n"
                                                    << read_file(tmp.file("log"));
    ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120)) << read_file(tmp.file("log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(::kill(pid, GetParam()), 0);
  const int code = wait_for(pid);
  const std::string log = read_file(tmp.file("log"));
  ASSERT_EQ(code, 75) << "(the search may have finished before the signal came)\n" << log;
  const std::string name = GetParam() == SIGUSR1 ? "SIGUSR1" : GetParam() == SIGUSR2 ? "SIGUSR2" : "SIGTERM";
  EXPECT_NE(log.find("received " + name + ": checkpointed at step"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(final_checkpoint(dir, 160)));

  // Debris a crash could leave: an interrupted write and a file without /meta@complete, both
  // "newer" than the signal's checkpoint. Resuming must ignore them.
  write_file(dir + "/checkpoints/ckpt-900.h5.tmp", "half a file");
  {
    auto f = probnas::h5::File::create(dir + "/checkpoints/ckpt-800.h5");
    f.root().create_group("meta").set_attr("schema_version", int64_t{1});
  }
  const auto resumed = run(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("ckpt-800.h5' is incomplete"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("ckpt-900"), std::string::npos) << resumed.output;
  expect_same_search(ref, dir, 0, 160);
}

INSTANTIATE_TEST_SUITE_P(Signals, ResumeSignal, ::testing::Values(SIGUSR1, SIGUSR2, SIGTERM),
                         [](const auto& info) {
                           return std::string(info.param == SIGUSR1 ? "USR1" : info.param == SIGUSR2 ? "USR2" : "TERM");
                         });

// --- run-folder safety: one run per folder, and exit 75 whatever follows the first signal --------

// Starts a shell command line (/bin/sh -c), output to `log`; returns the shell's pid.
pid_t spawn_shell(const std::string& cmd, const std::string& log) { return spawn_argv({"/bin/sh", "-c", cmd}, log); }

// Waits (up to 120 s) until `file` exists while `pid` runs; false (with the log) if it ended first.
::testing::AssertionResult wait_for_file(pid_t pid, const std::string& file, const std::string& log) {
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(file)) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) != 0)
      return ::testing::AssertionFailure() << "the run ended before '" << file << "' appeared:\n" << read_file(log);
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(120))
      return ::testing::AssertionFailure() << "no '" << file << "' after 120 s:\n" << read_file(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return ::testing::AssertionSuccess();
}

// The processes of the probnas binary whose command line holds `marker` (the ranks of an mpirun job).
std::vector<pid_t> probnas_processes(const std::string& marker) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmd = read_file(it->path().string() + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.rfind(std::string(PROBNAS_BINARY) + " ", 0) == 0 && cmd.find(marker) != std::string::npos)
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// Sends SIGTERM to `targets` five times 50 ms apart, then every 10 ms until `launcher` exits (so that
// some arrive while the run checkpoints and shuts down); returns its exit code (-signal if killed).
int terminate_repeatedly(pid_t launcher, const std::vector<pid_t>& targets) {
  int status = 0;
  for (int i = 0; i < 3000; ++i) {  // 30 s at most after the first five
    for (const pid_t p : targets) ::kill(p, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(i < 5 ? 50 : 10));
    if (i >= 4 && ::waitpid(launcher, &status, WNOHANG) == launcher)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  ::kill(launcher, SIGKILL);
  return wait_for(launcher);
}

// A second run on a folder a search is writing stops at once, naming the folder and the holder, and
// writes nothing there: the first run ends exactly as a lone run does. The same refusal under mpirun.
TEST(RunFolder, ASecondRunOnTheFolderIsRefusedAndTheFirstEndsAsALoneRun) {
  const std::string args = kTiny + "--search.epochs 20 ";
  const std::string& ref = reference(args);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + args + "--ckpt.interval_steps 2 --run.dir " + dir;
  const pid_t first = spawn(cmd, tmp.file("log"));
  ASSERT_GT(first, 0);
  ASSERT_TRUE(wait_for_file(first, dir + "/checkpoints/LATEST", tmp.file("log")));
  const auto second = run(cmd);
  EXPECT_EQ(second.code, 1) << second.output;
  EXPECT_NE(second.output.find("the run folder '" + dir + "' is in use by another run (host "), std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find(", process " + std::to_string(first) + ", since "), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("resuming"), std::string::npos) << second.output;
  if (!std::string(PROBNAS_MPIEXEC).empty()) {
    const auto two = run_shell(mpirun(2) + PROBNAS_BINARY + " " + cmd);
    EXPECT_NE(two.code, 0) << two.output;
    EXPECT_NE(two.output.find("is in use by another run"), std::string::npos) << two.output;
  }
  EXPECT_EQ(wait_for(first), 0) << read_file(tmp.file("log"));
  expect_same_search(ref, dir, 0, 160);
  // With the first run gone, the folder is free again (a finished search has nothing to do).
  const auto third = run(cmd);
  EXPECT_EQ(third.code, 0) << third.output;
}

// Five SIGTERMs 50 ms apart, and more while it shuts down: the first makes the search checkpoint, the
// rest are ignored, the exit code is 75 and the same command resumes exactly. On 1 rank and on 2
// ranks under mpirun (every rank signalled, as Slurm signals every process of a job).
class RepeatedSignals : public ::testing::TestWithParam<int> {};

TEST_P(RepeatedSignals, ExitWith75AndResumeExactly) {
  const int ranks = GetParam();
  if (ranks > 1 && std::string(PROBNAS_MPIEXEC).empty()) GTEST_SKIP() << "no mpiexec found at configure time";
  const std::string args = kTiny + "--search.epochs 20 ";
  const std::string& ref = reference(args);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + args + "--ckpt.interval_steps 2 --run.dir " + dir;
  const std::string launch = ranks > 1 ? mpirun(ranks) : std::string();
  const pid_t pid = spawn_shell(launch + PROBNAS_BINARY + " " + cmd, tmp.file("log"));
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for_file(pid, dir + "/checkpoints/LATEST", tmp.file("log")));
  const std::vector<pid_t> targets = probnas_processes(dir);  // not the shell, nor mpirun
  ASSERT_EQ(targets.size(), static_cast<size_t>(ranks));
  const int code = terminate_repeatedly(pid, targets);
  const std::string log = read_file(tmp.file("log"));
  ASSERT_EQ(code, 75) << log;
  EXPECT_NE(log.find("received SIGTERM: checkpointed at step"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(final_checkpoint(dir, 160)));
  const auto resumed = run_shell(launch + PROBNAS_BINARY + " " + cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  expect_same_search(ref, dir, ranks > 1 ? 1e-5 : 0, 160);
}

INSTANTIATE_TEST_SUITE_P(Ranks, RepeatedSignals, ::testing::Values(1, 2),
                         [](const auto& info) { return "np" + std::to_string(info.param); });

// --- faults at the worst moment ----------------------------------------------------------------

// A tmpfs of `kib` KiB mounted on a fresh folder for the test's life (root only).
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, int kib) : dir_(dir) {
    fs::create_directories(dir);
    mounted_ = run_shell("mount -t tmpfs -o size=" + std::to_string(kib) + "k probnas-test " + dir).code == 0;
  }
  ~SmallDisk() {
    if (mounted_) run_shell("umount " + dir_);
  }
  bool mounted() const { return mounted_; }
  bool resize(int kib) const {
    return run_shell("mount -o remount,size=" + std::to_string(kib) + "k " + dir_).code == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// The run folder's file system fills up while a checkpoint is written: one clear error naming the
// folder, the older checkpoints and LATEST intact, no temporary left, no crash at exit; once space
// is freed the same command resumes and ends bitwise where the uninterrupted run does.
TEST(Faults, AFullDiskStopsWithOneClearErrorAndTheRunResumesOnceSpaceIsFreed) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  const std::string& ref = reference(kThreeEpochs);
  TempDir tmp;
  const SmallDisk disk(tmp.file("disk"), 900);  // two checkpoints of ~320 KiB and the run's small files
  if (!disk.mounted()) GTEST_SKIP() << "mount -t tmpfs was refused here (no CAP_SYS_ADMIN)";
  const std::string dir = tmp.file("disk/run");
  const std::string cmd = "search " + kThreeEpochs + "--ckpt.interval_steps 2 --run.dir " + dir;
  const auto full = run(cmd);
  EXPECT_EQ(full.code, 1) << full.output;
  EXPECT_NE(full.output.find("cannot write checkpoint ckpt-6.h5 in '" + dir + "/checkpoints' ("), std::string::npos)
      << full.output;
  EXPECT_NE(full.output.find("No space left on device"), std::string::npos) << full.output;
  EXPECT_NE(full.output.find("the older checkpoints are intact, newest ckpt-4.h5: make room and run the same command "
                             "to resume"),
            std::string::npos)
      << full.output;
  EXPECT_EQ(full.output.find("Segmentation"), std::string::npos) << full.output;
  EXPECT_EQ(full.output.find("warning"), std::string::npos) << full.output;
  EXPECT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-4.h5\n");
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/ckpt-6.h5.tmp"));
  EXPECT_EQ(run("inspect " + dir + "/checkpoints/ckpt-4.h5").code, 0);

  ASSERT_TRUE(disk.resize(16384));
  const auto resumed = run(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + dir + "/checkpoints/ckpt-4.h5 (step 4 of 24"), std::string::npos)
      << resumed.output;
  expect_same_search(ref, dir);
}

// A rank killed (SIGKILL) mid-step under mpirun: the job ends within 60 s, non-zero, with a line
// naming the lost rank; the next start resumes from the last checkpoint and ends where the
// uninterrupted search does.
TEST(Faults, ARankKilledMidStepEndsTheJobNamingItAndTheNextStartResumes) {
  if (std::string(PROBNAS_MPIEXEC).empty()) GTEST_SKIP() << "no mpiexec found at configure time";
  const std::string& ref = reference(kThreeEpochs);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + kThreeEpochs + "--ckpt.interval_steps 6 --run.dir " + dir;
  const auto start = std::chrono::steady_clock::now();
  const auto killed = run_shell("PROBNAS_FAIL_AT=1:9:KILL " + mpirun(2) + "-x PROBNAS_FAIL_AT " + PROBNAS_BINARY + " " + cmd);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(killed.code, 0) << killed.output;
  EXPECT_LT(seconds, 60) << killed.output;
  EXPECT_NE(killed.output.find("rank 1"), std::string::npos) << killed.output;
  EXPECT_NE(killed.output.find("signal 9"), std::string::npos) << killed.output;
  ASSERT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-6.h5\n") << killed.output;
  const auto resumed = run_shell(mpirun(2) + PROBNAS_BINARY + " " + cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("(step 6 of 24"), std::string::npos) << resumed.output;
  expect_same_search(ref, dir, 1e-5);
}

// SIGTERM at start-up, after MPI started and before the search has built anything: kept by the
// handlers installed first thing, acted on at the first step boundary (checkpoint, exit 75), on one
// rank and on one rank of two; the same command then resumes to the uninterrupted search.
TEST(Faults, ASignalAtStartUpIsKeptAndTheRunStopsWith75) {
  const std::string& ref = reference(kThreeEpochs);
  TempDir tmp;
  for (const int ranks : {1, 2}) {
    if (ranks == 2 && std::string(PROBNAS_MPIEXEC).empty()) continue;
    const std::string dir = tmp.file("run" + std::to_string(ranks));
    const std::string cmd = "search " + kThreeEpochs + "--run.dir " + dir;
    const std::string launch = ranks == 1 ? std::string() : mpirun(2);
    const auto stopped = run_shell("PROBNAS_FAIL_AT=" + std::to_string(ranks - 1) + ":-1:TERM " + launch +
                                   (ranks == 1 ? "" : "-x PROBNAS_FAIL_AT ") + PROBNAS_BINARY + " " + cmd);
    ASSERT_EQ(stopped.code, 75) << stopped.output;
    // Rank 0 names the signal, or says it came to another rank.
    EXPECT_NE(stopped.output.find(ranks == 1 ? "received SIGTERM: checkpointed at step 1 of 24"
                                              : "received a signal on another rank: checkpointed at step 1 of 24"),
              std::string::npos)
        << stopped.output;
    const auto resumed = run_shell(launch + PROBNAS_BINARY + " " + cmd);
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    expect_same_search(ref, dir, ranks == 1 ? 0 : 1e-5);
  }
}

TEST(ResumeCli, SignalOnOneRankStopsBothAndTwoRanksResumeAOneRankRun) {
  if (std::string(PROBNAS_MPIEXEC).empty()) GTEST_SKIP() << "no mpiexec found at configure time";
  const std::string& ref = reference(kThreeEpochs);
  TempDir tmp;
  // 2 ranks; rank 1 alone gets SIGUSR2 at step 5: both checkpoint and exit 75.
  const std::string two = tmp.file("two");
  const auto stopped = run_shell("PROBNAS_FAIL_AT=1:5:USR2 " + mpirun(2) + "-x PROBNAS_FAIL_AT " + PROBNAS_BINARY +
                                 " search " + kThreeEpochs + "--run.dir " + two);
  EXPECT_EQ(stopped.code, 75) << stopped.output;
  EXPECT_TRUE(fs::exists(two + "/checkpoints/ckpt-6.h5")) << stopped.output;
  EXPECT_EQ(ckpt::read_file(two + "/checkpoints/ckpt-6.h5").group("meta").attr_int("world_size"), 2);

  // 1 rank stopped by SIGUSR1 at step 10, resumed on 2 ranks.
  const std::string one = tmp.file("one");
  const std::string cmd = "search " + kThreeEpochs + "--run.dir " + one;
  const auto first = run_shell("PROBNAS_FAIL_AT=0:10:USR1 " + std::string(PROBNAS_BINARY) + " " + cmd);
  ASSERT_EQ(first.code, 75) << first.output;
  const auto second = run_shell(mpirun(2) + PROBNAS_BINARY + " " + cmd);
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("saved by 1 rank"), std::string::npos) << second.output;
  expect_same_search(ref, one, 1e-5);
  EXPECT_EQ(ckpt::read_file(final_checkpoint(one)).group("meta").attr_int("world_size"), 2);
}

// A run checkpointed on 2 ranks resumes on 1 and on 3 ranks (6 micro-batches, so every world size
// takes whole ones) and ends where the straight 1-rank run ends: parameters, architecture and
// optimiser state within 1e-5 (reductions add in another order), the same genotype.
TEST(ResumeCli, TwoRanksCheckpointResumesOnOneAndOnThreeRanks) {
  if (std::string(PROBNAS_MPIEXEC).empty()) GTEST_SKIP() << "no mpiexec found at configure time";
  const std::string args = kTinySyntheticRun + "--space.channels 4 --space.cells_per_stage 1 --search.batch_size 24 "
                           "--search.micro_batches 6 --search.epochs 2 --ckpt.epoch_end false "
                           "--ckpt.interval_minutes 0 ";
  const std::string& ref = reference(args);
  const int64_t steps = 2 * (128 / 24);  // 5 steps per epoch of the 128 weight-split images
  TempDir tmp;
  for (const int ranks : {1, 3}) {
    const std::string dir = tmp.file("to" + std::to_string(ranks));
    const std::string cmd = "search " + args + "--ckpt.interval_steps 3 --run.dir " + dir;
    const auto first = run_shell("PROBNAS_FAIL_AT=0:4:KILL " + mpirun(2) + "-x PROBNAS_FAIL_AT " + PROBNAS_BINARY + " " + cmd);
    EXPECT_NE(first.code, 0) << first.output;
    ASSERT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-3.h5\n") << first.output;
    const auto resumed = run_shell((ranks == 1 ? std::string() : mpirun(ranks)) + PROBNAS_BINARY + " " + cmd);
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("(step 3 of " + std::to_string(steps) + ", saved by 2 ranks"), std::string::npos)
        << resumed.output;
    expect_same_search(ref, dir, 1e-5, steps);
    EXPECT_EQ(ckpt::read_file(final_checkpoint(dir, steps)).group("meta").attr_int("world_size"), ranks);
  }
}

// DrNAS progressive learning on the DARTS space: 2 epochs at K = 2 over all 8 operations, then 1
// epoch at K = 1 over the stronger 4 (pruned and widened at step 16). Killed just after the
// boundary checkpoint (the stage change happens after resuming) and killed inside the second
// stage (the checkpoint holds the pruned, widened network), both runs end bitwise where the
// uninterrupted one does.
const std::string kProgressive = kTiny + "--search.space darts --space.cells 3 --search.epochs 3 "
                                         "--progressive.k 2,1 --progressive.epochs 2,1 ";

class ResumeProgressive : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(ResumeProgressive, ResumesAcrossTheStageBoundary) {
  const auto [interval, kill_at] = GetParam();
  const std::string& ref = reference(kProgressive);
  const auto final_state = ckpt::read_file(final_checkpoint(ref));
  EXPECT_EQ(final_state.group("method").attr_int("stage"), 1);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + kProgressive + "--ckpt.interval_steps " + std::to_string(interval) + " --run.dir " + dir;
  const auto killed =
      run_shell("PROBNAS_FAIL_AT=0:" + std::to_string(kill_at) + ":KILL " + std::string(PROBNAS_BINARY) + " " + cmd);
  EXPECT_NE(killed.code, 0) << killed.output;
  EXPECT_NE(killed.output.find("progressive learning: stage 2 of 2 from epoch 3: kept the 4 strongest operations per "
                               "edge, partial channels K = 1"),
            std::string::npos)
      << killed.output;
  const int64_t newest = kill_at / interval * interval;
  ASSERT_EQ(read_file(dir + "/checkpoints/LATEST"), "ckpt-" + std::to_string(newest) + ".h5\n") << killed.output;
  EXPECT_EQ(ckpt::read_file(dir + "/checkpoints/ckpt-" + std::to_string(newest) + ".h5").group("method").attr_int("stage"),
            newest > 16 ? 1 : 0);
  const auto resumed = run(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  expect_same_search(ref, dir);
}

INSTANTIATE_TEST_SUITE_P(Boundary, ResumeProgressive,
                         ::testing::Values(std::make_pair(int64_t{8}, int64_t{17}), std::make_pair(int64_t{4}, int64_t{22})),
                         [](const auto& info) { return info.param.second == 17 ? "FromTheBoundary" : "InsideStage2"; });

TEST(ResumeCli, TruncatedNewestCheckpointFallsBackToThePreviousAndCompletes) {
  const std::string& ref = reference(kThreeEpochs);
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string cmd = "search " + kThreeEpochs + "--ckpt.interval_steps 4 --run.dir " + dir;
  const auto killed = run_shell("PROBNAS_FAIL_AT=0:10:KILL " + std::string(PROBNAS_BINARY) + " " + cmd);
  const std::string newest = dir + "/checkpoints/ckpt-8.h5";
  ASSERT_TRUE(fs::exists(newest)) << killed.output;
  fs::resize_file(newest, fs::file_size(newest) / 2);
  const auto resumed = run(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("skipping checkpoint: checkpoint '" + newest + "' is damaged or truncated"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + dir + "/checkpoints/ckpt-4.h5"), std::string::npos)
      << resumed.output;
  expect_same_search(ref, dir);
}

TEST(ResumeCli, TriggersWriteWhereAskedAndAFinishedRunHasNothingToDo) {
  TempDir tmp;
  // Epoch ends only (the default trigger besides the clock): steps 8 and 16.
  const std::string epochs = tmp.file("epochs");
  const auto r = run("search " + kTinyData + "--search.epochs 2 --ckpt.interval_minutes 0 --run.dir " + epochs);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(ckpt::Directory(epochs + "/checkpoints", {}, 3).list(),
            (std::vector<std::string>{epochs + "/checkpoints/ckpt-16.h5", epochs + "/checkpoints/ckpt-8.h5"}));
  // Started again, the finished search resumes at its end and changes nothing.
  const auto before = read_file(epochs + "/genotype.json");
  const auto again = run("search " + kTinyData + "--search.epochs 2 --ckpt.interval_minutes 0 --run.dir " + epochs);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("already complete at step 16 of 16"), std::string::npos) << again.output;
  EXPECT_EQ(read_file(epochs + "/genotype.json"), before);
  EXPECT_EQ(timeless_metrics(epochs).size(), 2u);

  // The clock: a 6 ms interval checkpoints many steps; every rank of the run agrees (1 rank here).
  const std::string clock = tmp.file("clock");
  const auto c = run("search " + kTinyData + "--search.epochs 2 --ckpt.epoch_end false --ckpt.interval_minutes 0.0001 "
                     "--ckpt.keep 100 --run.dir " + clock);
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_GT(ckpt::Directory(clock + "/checkpoints", {}, 100).list().size(), 4u) << c.output;
}

// --- checkpoints that must not be used --------------------------------------------------------

class ResumeRefusal : public ::testing::Test {
 protected:
  // A finished 1-epoch search with its checkpoints.
  void SetUp() override {
    const auto r = run("search " + kTiny + "--search.epochs 1 --run.dir " + dir);
    ASSERT_EQ(r.code, 0) << r.output;
  }
  TempDir tmp;
  const std::string dir = tmp.file("run");
  const std::string ckpt8 = dir + "/checkpoints/ckpt-8.h5";
};

TEST_F(ResumeRefusal, AnotherMethodIsNamed) {
  const auto r = run("search " + kTiny + "--search.epochs 2 --search.method darts --run.dir " + dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("checkpoint '" + ckpt8 + "' is from a drnas search of the nb201 space; this run is darts "
                          "on nb201"),
            std::string::npos)
      << r.output;
}

TEST_F(ResumeRefusal, AChangedKeyIsNamedWithBothValues) {
  const auto r = run("search " + kTiny + "--search.epochs 2 --search.lr 0.05 --run.dir " + dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("was made with search.lr = 0.025, this run has search.lr = 0.05"), std::string::npos)
      << r.output;
  // Keys that may change on resume do not stop it: more epochs carry on from step 8.
  const auto more = run("search " + kTiny + "--search.epochs 2 --ckpt.keep 5 --run.dir " + dir);
  EXPECT_EQ(more.code, 0) << more.output;
  EXPECT_NE(more.output.find("(step 8 of 16"), std::string::npos) << more.output;
}

TEST_F(ResumeRefusal, AFutureSchemaVersionIsRefused) {
  {
    auto f = probnas::h5::File::open(ckpt8, true);
    f.root().open_group("meta").set_attr("schema_version", ckpt::kSchemaVersion + 1);
  }
  const auto r = run("search " + kTiny + "--search.epochs 2 --run.dir " + dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("has schema version " + std::to_string(ckpt::kSchemaVersion + 1)), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("resume with a newer probnas"), std::string::npos) << r.output;
}

TEST_F(ResumeRefusal, ANonHdf5FileIsNamed) {
  write_file(tmp.file("notes.h5"), "these are my notes, not a checkpoint\n");
  const auto r = run("search " + kTiny + "--search.epochs 2 --run.dir " + tmp.file("other") + " --run.resume " +
                     tmp.file("notes.h5"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("checkpoint '" + tmp.file("notes.h5") + "' is not an HDF5 file"), std::string::npos)
      << r.output;
}

TEST_F(ResumeRefusal, NeverRefusesAFolderWithCheckpointsAndAFileStartsAnotherFolder) {
  const auto never = run("search " + kTiny + "--search.epochs 2 --run.resume never --run.dir " + dir);
  EXPECT_EQ(never.code, 1);
  EXPECT_NE(never.output.find("run.resume = never, but '" + dir + "/checkpoints' already holds"), std::string::npos)
      << never.output;
  const auto from_file = run("search " + kTiny + "--search.epochs 2 --run.dir " + tmp.file("other") +
                             " --run.resume " + ckpt8);
  EXPECT_EQ(from_file.code, 0) << from_file.output;
  EXPECT_NE(from_file.output.find("resuming from " + ckpt8 + " (step 8 of 16"), std::string::npos)
      << from_file.output;
}

TEST_F(ResumeRefusal, InspectShowsMetaGenotypeSizesAndValidity) {
  const auto ok = run("inspect " + ckpt8);
  EXPECT_EQ(ok.code, 0) << ok.output;
  for (const char* expected : {"valid: yes", "schema_version  1", "method          drnas", "step            8",
                               "world_size      1", "genotype: |",
                               "NAS-Bench-201 (200 epochs, test accuracy): CIFAR-10 ",
                               "probabilities of group 'cell' (6 edges x 5 operations",
                               "/model", "/optim", "/method", "/loader", "/rng", "/history", "/meta"})
    EXPECT_NE(ok.output.find(expected), std::string::npos) << expected << "\n" << ok.output;
  // --cells draws the checkpoint's cell; the search ended at this checkpoint, so as the run folder's picture.
  const auto pictures = run("inspect " + ckpt8 + " --cells " + tmp.file("pictures"));
  EXPECT_EQ(pictures.code, 0) << pictures.output;
  EXPECT_NE(pictures.output.find("cell pictures: " + tmp.file("pictures") + "/cell.dot"), std::string::npos)
      << pictures.output;
  EXPECT_EQ(read_file(tmp.file("pictures/cell.dot")), read_file(dir + "/cells/cell.dot"));
  fs::resize_file(ckpt8, fs::file_size(ckpt8) - 1000);
  const auto bad = run("inspect " + ckpt8);
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("valid: NO: checkpoint '" + ckpt8 + "' is damaged or truncated"), std::string::npos)
      << bad.output;
}

}  // namespace
