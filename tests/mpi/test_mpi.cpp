// Run under mpirun on 1, 2 and 3 ranks (ctest: mpi_tests_np1/2/3). Every rank runs every test;
// a failure on any rank fails the job.
#include <gtest/gtest.h>
#include <unistd.h>

#include "probnas/method/pgnas/ranking.h"
#include "probnas/method/parsec/parsec.h"
#include "probnas/method/pgnas/pgnas.h"
#include <mpi.h>
#include <torch/torch.h>

#include <filesystem>

#include "probnas/comm/communicator.h"
#include "probnas/comm/device_communicator.h"
#include "probnas/core/error.h"
#include "probnas/method/darts/darts.h"
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/method/gibbsnas/gibbsnas.h"
#include "probnas/app/options.h"
#include "probnas/data/convert.h"
#include "probnas/data/shards.h"

namespace probnas {
namespace {

std::unique_ptr<Communicator> g_comm;

TEST(Communicator, RanksAndNodes) {
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(g_comm->rank(), rank);
  EXPECT_EQ(g_comm->size(), size);
  // ctest runs every rank on this one machine.
  EXPECT_EQ(g_comm->node_count(), 1);
  EXPECT_EQ(g_comm->local_size(), size);
  EXPECT_EQ(g_comm->local_rank(), rank);
  EXPECT_GE(default_threads_per_rank(*g_comm), 1);
}

TEST(Communicator, AllreduceSumsAndAveragesEveryTensorOfTheBucket) {
  const int r = g_comm->rank(), p = g_comm->size();
  std::vector<torch::Tensor> ts{torch::full({2, 3}, static_cast<float>(r + 1)),
                                torch::arange(5, torch::kFloat64) * (r + 1), torch::tensor(1.5f * static_cast<float>(r))};
  g_comm->allreduce(ts, ReduceOp::sum);
  const double s = p * (p + 1) / 2.0;  // sum of (r + 1)
  EXPECT_TRUE(torch::allclose(ts[0], torch::full({2, 3}, static_cast<float>(s))));
  EXPECT_TRUE(torch::allclose(ts[1], torch::arange(5, torch::kFloat64) * s));
  EXPECT_FLOAT_EQ(ts[2].item<float>(), 1.5f * static_cast<float>(p * (p - 1) / 2));
  std::vector<torch::Tensor> m{torch::full({4}, static_cast<double>(r), torch::kFloat64)};
  g_comm->allreduce(m, ReduceOp::mean);
  EXPECT_DOUBLE_EQ(m[0][0].item<double>(), (p - 1) / 2.0);
}

TEST(Communicator, BroadcastFromEveryRoot) {
  for (int root = 0; root < g_comm->size(); ++root) {
    std::vector<torch::Tensor> ts{torch::full({3}, static_cast<float>(g_comm->rank())),
                                  torch::full({2, 2}, static_cast<int64_t>(10 * g_comm->rank()), torch::kInt64)};
    g_comm->broadcast(ts, root);
    EXPECT_TRUE(torch::equal(ts[0], torch::full({3}, static_cast<float>(root))));
    EXPECT_TRUE(torch::equal(ts[1], torch::full({2, 2}, static_cast<int64_t>(10 * root), torch::kInt64)));
  }
}

TEST(Communicator, AllgatherOfTensorsAndBytes) {
  const int r = g_comm->rank(), p = g_comm->size();
  auto all = g_comm->allgather(torch::tensor({r, 2 * r}, torch::kInt32));
  ASSERT_EQ(all.sizes(), torch::IntArrayRef({p, 2}));
  for (int i = 0; i < p; ++i) {
    EXPECT_EQ(all[i][0].item<int>(), i);
    EXPECT_EQ(all[i][1].item<int>(), 2 * i);
  }
  const auto bytes = g_comm->allgather_bytes(std::string(static_cast<size_t>(r), 'x') + "rank" + std::to_string(r));
  ASSERT_EQ(bytes.size(), static_cast<size_t>(p));
  for (int i = 0; i < p; ++i) EXPECT_EQ(bytes[static_cast<size_t>(i)], std::string(static_cast<size_t>(i), 'x') + "rank" + std::to_string(i));
  g_comm->barrier();
  EXPECT_GT(g_comm->collective_seconds(), 0.0);
}

TEST(DeviceCommunicator, CpuRunsForwardEveryCollectiveToTheControlPlane) {
  const int r = g_comm->rank(), p = g_comm->size();
  for (const char* backend : {"auto", "mpi"}) {
    auto dc = make_device_communicator(*g_comm, c10::Device(c10::kCPU), backend);
    EXPECT_EQ(dc->rank(), r);
    EXPECT_EQ(dc->size(), p);
    EXPECT_EQ(dc->local_rank(), g_comm->local_rank());
    const double before = dc->collective_seconds();
    std::vector<torch::Tensor> ts{torch::full({3}, static_cast<float>(r + 1))};
    dc->allreduce(ts, ReduceOp::sum);
    EXPECT_TRUE(torch::allclose(ts[0], torch::full({3}, static_cast<float>(p * (p + 1) / 2))));
    std::vector<torch::Tensor> b{torch::full({2}, static_cast<int64_t>(r), torch::kInt64)};
    dc->broadcast(b, p - 1);
    EXPECT_TRUE(torch::equal(b[0], torch::full({2}, static_cast<int64_t>(p - 1), torch::kInt64)));
    const auto all = dc->allgather(torch::tensor({r}, torch::kInt32));
    for (int i = 0; i < p; ++i) EXPECT_EQ(all[i][0].item<int>(), i);
    EXPECT_EQ(dc->allgather_bytes(std::to_string(r)).size(), static_cast<size_t>(p));
    dc->barrier();
    EXPECT_GT(dc->collective_seconds(), before);  // the control plane's clock
  }
}

TEST(DeviceCommunicator, NcclForACpuRunFailsOnEveryRankAlike) {
  // Decided from the config alone: every rank throws the same error before any collective, so the
  // job ends with one message instead of ranks waiting for each other.
  try {
    make_device_communicator(*g_comm, c10::Device(c10::kCPU), "nccl");
    FAIL() << "comm.backend = nccl on the CPU was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs run.device = cuda"), std::string::npos) << e.what();
  }
  g_comm->barrier();
}

// ---- world-size invariance --------------------------------------------------------------------
// Each rank runs the distributed search and, alone, the 1-rank reference of the same config, then
// compares: same genotype, weights and architecture within 1e-5 relative, same Dirichlet draws.

std::shared_ptr<const Dataset> search_data() {
  if (std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    return std::make_shared<const Dataset>(load_dataset("fashion-mnist", "", Split::train).head(384));
  SyntheticOptions so;  // a user's machine without Fashion-MNIST still checks the invariance
  so.count = 384, so.channels = 1, so.size = 28, so.classes = 10;
  return std::make_shared<const Dataset>(make_synthetic(so));
}

struct SearchRun {
  std::shared_ptr<Supernet> net;
  std::unique_ptr<GradientMethod> method;
  std::vector<torch::Tensor> first_draws;  // architecture-phase draw of every micro-batch at step 0 (GDAS: the choices)
};

// This rank's loaders of the weight and architecture halves: global batch 24 in `micro_batches`.
struct Loaders {
  SplitLoader train, val;
};

Loaders search_loaders(Communicator& comm, int64_t micro_batches, const RngKey& key) {
  auto data = search_data();
  const auto split = make_search_split(data->size(), 0.5, key);
  SplitOptions so;
  so.global_batch = 24;
  so.micro_batches = micro_batches;
  const auto stats = ChannelStats::of(*data);
  return {SplitLoader(data, split.weights, stats, so, key.with("w"), torch::kCPU, comm.rank(), comm.size()),
          SplitLoader(data, split.arch, stats, so, key.with("a"), torch::kCPU, comm.rank(), comm.size())};
}

SearchRun run_search_steps(const std::string& name, Communicator& comm, int64_t micro_batches, int64_t steps) {
  const RngKey key(5);
  const auto [train, val] = search_loaders(comm, micro_batches, key);
  torch::manual_seed(key.with("init").value());
  SpaceOptions space;
  space.channels = 4, space.cells_per_stage = 1, space.input_channels = 1, space.classes = 10;
  SearchRun run;
  run.net = make_supernet(space);
  GradientMethodOptions o;
  o.arch.lr = 3e-2;  // large enough that the architecture really moves in a few steps
  o.second_order = name == "darts2";  // every gradient of the unrolled step reduced before use
  if (name == "darts" || name == "darts2") run.method = std::make_unique<Darts>(run.net, o, key);
  else if (name == "gdas") run.method = std::make_unique<Gdas>(run.net, o, GdasOptions{}, key);
  else if (name == "gibbs1" || name == "gibbs2") {  // sampled weights (2) or SGD (1), sampled alpha
    GibbsOptions g;
    g.order = name == "gibbs1" ? 1 : 2;
    g.arch_lr = 1, g.arch_noise = 1e-3;  // Newton steps and wide noise: alpha really moves
    run.method = std::make_unique<GibbsNas>(run.net, o, g, key);
  }
  else run.method = std::make_unique<Drnas>(run.net, o, key);
  run.method->begin_epoch(0, 1);
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = key;
  ctx.comm = comm.size() > 1 ? &comm : nullptr;
  ctx.train_micro_batches = ctx.val_micro_batches = micro_batches;
  for (int64_t k = 0; k < micro_batches; ++k) {
    const auto draw = run.method->sample(run.method->draw_key(ctx, true, k));
    run.first_draws.push_back(draw.has_weights() ? draw.weights[0] : torch::tensor(draw.choices[0]));
  }
  for (int64_t s = 0; s < steps; ++s) {
    ctx.global_step = s;
    run.method->step(train.batch_at(s), val.batch_at(s), ctx, metrics);
  }
  return run;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  const double scale = std::max(1e-8, b.abs().max().item<double>());
  const double diff = (a - b).abs().max().item<double>();
  EXPECT_LE(diff / scale, 1e-5) << what << ": max |difference| " << diff << " relative to " << scale;
}

// BatchNorm running statistics: as one rank's (to float32's last bits: the ranks' float64 sums are
// grouped differently), the same on every rank, and moved from their start (mean 0, variance 1).
void expect_same_running_statistics(torch::nn::Module& got, torch::nn::Module& want) {
  auto g = got.named_buffers();
  int64_t moved = 0;
  for (const auto& kv : want.named_buffers()) {
    const auto& w = kv.value();
    if (!w.is_floating_point()) {
      EXPECT_TRUE(torch::equal(g[kv.key()], w)) << kv.key();
      continue;
    }
    const double scale = std::max(1e-3, w.abs().max().item<double>());
    EXPECT_LE((g[kv.key()] - w).abs().max().item<double>() / scale, 1e-6) << "buffer " << kv.key();
    moved += (w.abs() - 1).abs().gt(1e-3).any().item<bool>() && w.abs().gt(1e-3).any().item<bool>();
    const auto sums = g_comm->allgather(g[kv.key()].to(torch::kFloat64).reshape({1, -1}));
    for (int r = 1; r < g_comm->size(); ++r) EXPECT_TRUE(torch::equal(sums[r], sums[0])) << kv.key() << " on rank " << r;
  }
  EXPECT_GT(moved, 0) << "no running statistic moved";
}

class WorldSizeInvariance : public ::testing::TestWithParam<std::string> {};

TEST_P(WorldSizeInvariance, SameSearchOnOneAndOnManyRanks) {
  const int64_t micro_batches = 6;  // a multiple of 1, 2 and 3 ranks
  if (micro_batches % g_comm->size() != 0) GTEST_SKIP() << "micro-batches must divide among the ranks";
  const int64_t steps = 6;
  auto distributed = run_search_steps(GetParam(), *g_comm, micro_batches, steps);
  SerialCommunicator alone;
  auto reference = run_search_steps(GetParam(), alone, micro_batches, steps);

  EXPECT_EQ(distributed.method->derive().text, reference.method->derive().text);
  expect_close(distributed.method->arch_parameters()[0], reference.method->arch_parameters()[0], "architecture");
  auto pd = distributed.net->named_parameters(), pr = reference.net->named_parameters();
  for (const auto& kv : pr) expect_close(pd[kv.key()], kv.value(), "weight " + kv.key());
  expect_same_running_statistics(*distributed.net, *reference.net);
  // The architecture moved, so the comparison above is not of two untouched initialisations.
  EXPECT_GT((reference.method->arch_parameters()[0]).abs().max().item<double>(), 1e-2);
  // Draw k is the same tensor whichever rank computes micro-batch k.
  for (int64_t k = 0; k < micro_batches; ++k)
    EXPECT_TRUE(torch::equal(distributed.first_draws[static_cast<size_t>(k)], reference.first_draws[static_cast<size_t>(k)]));
  // And every rank ends with the same parameters (bitwise).
  auto sums = g_comm->allgather(torch::tensor({distributed.method->arch_parameters()[0].sum().item<double>()}, torch::kFloat64));
  for (int r = 1; r < g_comm->size(); ++r) EXPECT_TRUE(torch::equal(sums[r], sums[0]));
}

INSTANTIATE_TEST_SUITE_P(Methods, WorldSizeInvariance,
                         ::testing::Values("drnas", "darts", "darts2", "gdas", "gibbs1", "gibbs2"));


// ---- PARSEC: the ranks split the K samples; every rank sees the whole global batches ------------

struct ParsecRun {
  std::shared_ptr<Supernet> net;
  std::unique_ptr<Parsec> method;
  std::vector<ArchDraw> first_draws;
  std::vector<torch::Tensor> importance;  // per step
};

ParsecRun parsec_steps(const std::string& space_name, Communicator& comm, int64_t steps) {
  const RngKey key(7);
  SerialCommunicator whole;  // PARSEC's loaders hand every rank all micro-batches
  const auto [train, val] = search_loaders(whole, 2, key);
  torch::manual_seed(key.with("init").value());
  SpaceOptions space;
  space.space = space_name;
  space.channels = 4, space.cells_per_stage = 1, space.cells = 3, space.input_channels = 1, space.classes = 10;
  ParsecRun run;
  run.net = make_supernet(space);
  ParsecOptions o;
  o.samples = 6;     // a multiple of 1, 2 and 3 ranks
  o.arch.lr = 0.05;  // pi really moves in a few steps
  run.method = std::make_unique<Parsec>(run.net, o, key);
  run.method->begin_epoch(0, 1);
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = key;
  ctx.comm = comm.size() > 1 ? &comm : nullptr;
  run.first_draws = run.method->step_draws(ctx);
  for (int64_t s = 0; s < steps; ++s) {
    ctx.global_step = s;
    run.method->step(train.batch_at(s), val.batch_at(s), ctx, metrics);
    run.importance.push_back(run.method->last_weights().clone());
  }
  return run;
}

class ParsecWorldSize : public ::testing::TestWithParam<std::string> {};

TEST_P(ParsecWorldSize, SameSamplesSameImportanceWeightsSameUpdatesOnOneAndOnManyRanks) {
  if (6 % g_comm->size() != 0) GTEST_SKIP() << "parsec.samples = 6 must divide among the ranks";
  auto distributed = parsec_steps(GetParam(), *g_comm, 4);
  SerialCommunicator alone;
  auto reference = parsec_steps(GetParam(), alone, 4);
  EXPECT_EQ(distributed.first_draws, reference.first_draws);
  for (size_t s = 0; s < reference.importance.size(); ++s)
    expect_close(distributed.importance[s], reference.importance[s], "importance weights of step " + std::to_string(s));
  // The weights are not all equal: the samples' likelihoods differ, so the check above has teeth.
  EXPECT_GT((reference.importance.back() - 1.0 / 6).abs().max().item<double>(), 1e-3);
  expect_close(distributed.method->logits(), reference.method->logits(), "logits");
  EXPECT_GT(reference.method->logits().abs().max().item<double>(), 1e-2);
  auto pd = distributed.net->named_parameters(), pr = reference.net->named_parameters();
  for (const auto& kv : pr) expect_close(pd[kv.key()], kv.value(), "weight " + kv.key());
  expect_same_running_statistics(*distributed.net, *reference.net);
  auto sums = g_comm->allgather(torch::tensor({distributed.method->logits().sum().item<double>()}, torch::kFloat64));
  for (int r = 1; r < g_comm->size(); ++r) EXPECT_TRUE(torch::equal(sums[r], sums[0]));
}

INSTANTIATE_TEST_SUITE_P(Spaces, ParsecWorldSize, ::testing::Values("nb201", "darts"));

TEST(ParsecWorldSize, SamplesThatDoNotDivideAmongTheRanksAreRefused) {
  if (g_comm->size() == 1) GTEST_SKIP() << "needs more than one rank";
  SerialCommunicator whole;
  const RngKey key(7);
  const auto [train, val] = search_loaders(whole, 1, key);
  SpaceOptions space;
  space.channels = 4, space.cells_per_stage = 1, space.input_channels = 1, space.classes = 10;
  auto net = make_supernet(space);
  ParsecOptions o;
  o.samples = g_comm->size() + 1;
  Parsec m(net, o, key);
  m.begin_epoch(0, 1);
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = key;
  ctx.comm = g_comm.get();
  try {
    m.step(train.batch_at(0), val.batch_at(0), ctx, metrics);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("parsec.samples"), std::string::npos) << e.what();
  }
}

// ---- PGNAS: training and candidate ranking on P ranks against 1 ------------------------------

std::pair<std::shared_ptr<MultiBranchNet>, std::unique_ptr<Pgnas>> pgnas_steps(Communicator& comm, int64_t micro_batches,
                                                                               int64_t steps) {
  const RngKey key(6);
  const auto [train, val] = search_loaders(comm, micro_batches, key);
  torch::manual_seed(key.with("init").value());
  SpaceOptions space;
  space.space = "multibranch";
  space.channels = 4, space.cells_per_stage = 1, space.input_channels = 1, space.classes = 10;
  space.kernels = {1, 3};
  auto net = std::make_shared<MultiBranchNet>(space);
  PgnasOptions o;
  o.drop.lr = 0.05;  // the drop probabilities really move in a few steps
  auto method = std::make_unique<Pgnas>(net, o, key);
  method->begin_epoch(0, 1);
  StepMetrics metrics;
  StepContext ctx;
  ctx.key = key;
  ctx.comm = comm.size() > 1 ? &comm : nullptr;
  ctx.train_examples = train.examples();
  ctx.train_micro_batches = ctx.val_micro_batches = micro_batches;
  for (int64_t s = 0; s < steps; ++s) {
    ctx.global_step = s;
    method->step(train.batch_at(s), val.batch_at(s), ctx, metrics);
  }
  return {net, std::move(method)};
}

TEST(PgnasWorldSize, SameTrainingAndSameCandidateScoresOnOneAndOnManyRanks) {
  const int64_t micro_batches = 6;
  const auto [net, method] = pgnas_steps(*g_comm, micro_batches, 4);
  SerialCommunicator alone;
  const auto [ref_net, ref_method] = pgnas_steps(alone, micro_batches, 4);
  expect_close(method->drop_logits(), ref_method->drop_logits(), "drop logits");
  EXPECT_GT((ref_method->drop_logits() - std::log(0.1 / 0.9)).abs().min().item<double>(), 1e-2)
      << "every drop probability should have moved from its start";
  auto pd = net->named_parameters(), pr = ref_net->named_parameters();
  for (const auto& kv : pr) expect_close(pd[kv.key()], kv.value(), "weight " + kv.key());
  expect_same_running_statistics(*net, *ref_net);

  // Ranking: 10 candidates in rounds of 2 per rank, on every rank of the job (the supernet trained
  // there) and on this rank alone (the supernet trained alone). The candidates use the supernet's
  // running statistics, so before they were one rank's they ranked differently on 2 ranks.
  auto gen = make_generator(RngKey(11));
  EvalSet val, calib;
  val.x.push_back(torch::randn({30, 1, 28, 28}, gen));
  val.y.push_back(torch::randint(10, {30}, gen));
  std::string dir = "/tmp/probnas-mpi-pgnas-" + std::to_string(::getpid());
  g_comm->broadcast_bytes(dir);  // rank 0's name for the distributed run
  RankingOptions o;
  o.candidates = 10;
  o.round = 2;
  o.progress_interval = 1e9;
  o.fingerprint = "mpi";
  o.dir = dir + "-dist";
  const auto dist = rank_candidates(*method, RngKey(6), val, calib, o, *g_comm);
  o.dir = dir + "-alone-rank" + std::to_string(g_comm->rank());
  const auto one = rank_candidates(*ref_method, RngKey(6), val, calib, o, alone);
  ASSERT_EQ(dist.phases.size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    ASSERT_EQ(dist.phases[p].scores.size(), 10u);
    ASSERT_EQ(one.phases[p].scores.size(), 10u);
    for (size_t i = 0; i < 10; ++i) {
      const auto& a = dist.phases[p].scores[i];
      const auto& b = one.phases[p].scores[i];
      EXPECT_EQ(a.index, b.index);
      EXPECT_EQ(a.correct, b.correct);
      EXPECT_NEAR(a.loss_sum, b.loss_sum, 1e-9 * std::abs(b.loss_sum));
      EXPECT_EQ(a.params, b.params);
      EXPECT_EQ(a.kept, b.kept);
    }
  }
  g_comm->barrier();
  std::error_code ec;
  std::filesystem::remove_all(o.dir, ec);
  if (g_comm->rank() == 0) std::filesystem::remove_all(dir + "-dist", ec);
}

// probnas convert on every rank of the job writes the same shards as one rank alone: which example
// goes in which shard is fixed by the input and the seed; the ranks only share the work. Then each
// rank's loader reads its micro-batches of the shards, and together they make the global batch.
TEST(ShardsWorldSize, ConvertingOnManyRanksWritesWhatOneRankWritesAndRanksReadTheirShare) {
  std::string dir = "/tmp/probnas-mpi-shards-" + std::to_string(::getpid());
  g_comm->broadcast_bytes(dir);
  Config c(convert_option_table());
  c.set("synthetic", "230");
  c.set("shape", "3x10x10");
  c.set("classes", "5");
  c.set("shard_size", "40");  // 6 shards: some ranks convert more than others
  c.set("threads", "1");
  c.set("log_level", "warn");
  c.set("out", dir + "-dist");
  const ConvertSummary dist = run_convert(convert_options().read(c), *g_comm);
  SerialCommunicator alone;
  c.set("out", dir + "-alone-rank" + std::to_string(g_comm->rank()));
  run_convert(convert_options().read(c), alone);
  const ShardedSource a(dir + "-dist"), b(dir + "-alone-rank" + std::to_string(g_comm->rank()));
  EXPECT_EQ(a.index().dataset_id, b.index().dataset_id);
  ASSERT_EQ(a.size(), 230);
  const auto all = torch::arange(230, torch::kInt64);
  const auto ea = a.read(all), eb = b.read(all);
  EXPECT_TRUE(torch::equal(ea.images, eb.images));
  EXPECT_TRUE(torch::equal(ea.labels, eb.labels));
  EXPECT_TRUE(torch::allclose(a.stats().mean, b.stats().mean));
  if (g_comm->rank() == 0) {
    EXPECT_EQ(dist.images, 230);
  }

  // Each rank reads its micro-batches; gathered, they are the one-rank loader's global batch.
  auto src = std::make_shared<const ShardedSource>(dir + "-dist");
  SplitOptions so;
  so.global_batch = 30;
  so.micro_batches = 6;
  so.workers = 1;
  so.transform.resized_crop = true;
  so.transform.size = 8;
  const SplitLoader mine(src, all, src->stats(), so, RngKey(5), torch::kCPU, g_comm->rank(), g_comm->size());
  const SplitLoader whole(src, all, src->stats(), so, RngKey(5), torch::kCPU, 0, 1);
  for (int64_t g : {0, 3, 8}) {
    std::vector<torch::Tensor> xs;
    for (const auto& m : mine.batch_at(g)) xs.push_back(m.x);
    const auto gathered = g_comm->allgather(torch::cat(xs));  // [ranks, share, ...]
    std::vector<torch::Tensor> ref;
    for (const auto& m : whole.batch_at(g)) ref.push_back(m.x);
    EXPECT_TRUE(torch::equal(gathered.flatten(0, 1), torch::cat(ref))) << "global step " << g;
  }
  g_comm->barrier();
  std::error_code ec;
  std::filesystem::remove_all(dir + "-alone-rank" + std::to_string(g_comm->rank()), ec);
  if (g_comm->rank() == 0) std::filesystem::remove_all(dir + "-dist", ec);
}
}  // namespace
}  // namespace probnas

int main(int argc, char** argv) {
  probnas::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  torch::set_num_threads(1);
  probnas::g_comm = probnas::make_world_communicator();
  // Only rank 0 prints the usual report; the exit code of every rank still counts.
  if (probnas::g_comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  probnas::g_comm.reset();
  return worst;
}
