// GPU tests (ctest label `gpu`: gpu_tests_np1, gpu_tests_np2; built in CUDA builds, where they skip
// when no CUDA device is visible). Run under mpirun: NCCL needs its ranks.
//   - NCCL collectives on CUDA tensors: real sums over ranks where every rank has a GPU of its own;
//     where ranks share one GPU, the clear error naming the ranks instead of NCCL's failure.
//   - One search step on CUDA equals the same step on the CPU (TF32 off): every method draws on keyed
//     host generators (core/host_draws.h), so DrNAS's Dirichlet and GDAS's Gumbel draws are the
//     same numbers on both.
//   - DrNAS's Dirichlet draws and their pathwise gradients on CUDA.
// In a CPU-only build this file compiles to one skipped test; ctest's cuda_paths_compile compiles
// the CUDA part here with the CUDA toolkit's headers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "probnas/comm/communicator.h"
#include "probnas/comm/device_communicator.h"
#include "probnas/core/error.h"

#if defined(PROBNAS_WITH_CUDA)
#include <ATen/Context.h>
#include <c10/cuda/CUDAFunctions.h>

#include "probnas/core/rng.h"
#include "probnas/data/dataset.h"
#include "probnas/data/loader.h"
#include "probnas/method/darts/darts.h"
#include "probnas/method/dirichlet.h"
#include "probnas/method/drnas/drnas.h"
#include "probnas/method/gdas/gdas.h"
#include "probnas/method/gibbsnas/gibbsnas.h"
#include "probnas/method/parsec/parsec.h"
#include "probnas/space/supernet.h"
#endif

namespace probnas {
namespace {

std::unique_ptr<Communicator> g_world;

#if !defined(PROBNAS_WITH_CUDA)

TEST(Gpu, NeedsACudaBuild) { GTEST_SKIP() << "this probnas was built against a CPU-only LibTorch"; }

#else

bool have_gpu() { return torch::cuda::is_available(); }
#define REQUIRE_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device visible"

c10::Device my_gpu() {
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(g_world->local_rank() % torch::cuda::device_count()));
}

// ---- NCCL -------------------------------------------------------------------------------------

TEST(Nccl, CollectivesOnCudaTensorsOrTheSharedGpuError) {
  REQUIRE_GPU();
  const int r = g_world->rank(), p = g_world->size();
  const bool gpu_each = static_cast<int>(torch::cuda::device_count()) >= g_world->local_size();
  std::unique_ptr<Communicator> comm;
  try {
    comm = make_device_communicator(*g_world, my_gpu(), "nccl");
  } catch (const Error& e) {
    ASSERT_FALSE(gpu_each) << "NCCL failed with a GPU per rank: " << e.what();
    EXPECT_NE(std::string(e.what()).find("use the same GPU"), std::string::npos) << e.what();
    GTEST_SKIP() << "ranks share a GPU here; checked the error: " << e.what();
  }
  ASSERT_TRUE(gpu_each) << "ranks sharing a GPU were not refused";
  const auto dev = my_gpu();
  // allreduce: float, double, half and int64 in one call, and a CPU tensor among them (MPI).
  std::vector<torch::Tensor> ts{torch::full({2, 3}, static_cast<float>(r + 1), torch::device(dev)),
                                torch::arange(5, torch::TensorOptions().dtype(torch::kFloat64).device(dev)) * (r + 1),
                                torch::full({4}, static_cast<double>(r), torch::TensorOptions().dtype(torch::kHalf).device(dev)),
                                torch::full({3}, static_cast<int64_t>(r + 1), torch::TensorOptions().dtype(torch::kInt64).device(dev)),
                                torch::full({2}, static_cast<float>(10 * r))};
  const auto before = comm->collective_seconds();
  comm->allreduce(ts, ReduceOp::sum);
  const double s = p * (p + 1) / 2.0;
  EXPECT_TRUE(ts[0].is_cuda() && ts[0].scalar_type() == torch::kFloat);
  EXPECT_TRUE(torch::allclose(ts[0].cpu(), torch::full({2, 3}, static_cast<float>(s))));
  EXPECT_TRUE(torch::allclose(ts[1].cpu(), torch::arange(5, torch::kFloat64) * s));
  EXPECT_TRUE(torch::allclose(ts[2].cpu().to(torch::kFloat), torch::full({4}, static_cast<float>(p * (p - 1) / 2))));
  EXPECT_TRUE(torch::equal(ts[3].cpu(), torch::full({3}, static_cast<int64_t>(s), torch::kInt64)));
  EXPECT_TRUE(torch::allclose(ts[4], torch::full({2}, static_cast<float>(10 * p * (p - 1) / 2))));
  std::vector<torch::Tensor> m{torch::full({7}, static_cast<float>(r), torch::device(dev))};
  comm->allreduce(m, ReduceOp::mean);
  EXPECT_TRUE(torch::allclose(m[0].cpu(), torch::full({7}, static_cast<float>((p - 1) / 2.0))));
  // A non-contiguous tensor is reduced in place through the bucket.
  auto base = torch::full({4, 4}, static_cast<float>(r + 1), torch::device(dev));
  std::vector<torch::Tensor> nc{base.t()};
  comm->allreduce(nc, ReduceOp::sum);
  EXPECT_TRUE(torch::allclose(base.cpu(), torch::full({4, 4}, static_cast<float>(s))));
  // broadcast from every root, of a non-contiguous tensor too
  for (int root = 0; root < p; ++root) {
    auto grid = torch::full({3, 2}, static_cast<float>(r), torch::device(dev));
    std::vector<torch::Tensor> b{torch::full({5}, static_cast<int64_t>(r), torch::TensorOptions().dtype(torch::kInt64).device(dev)),
                                 grid.t()};
    comm->broadcast(b, root);
    EXPECT_TRUE(torch::equal(b[0].cpu(), torch::full({5}, static_cast<int64_t>(root), torch::kInt64)));
    EXPECT_TRUE(torch::equal(grid.cpu(), torch::full({3, 2}, static_cast<float>(root))));
  }
  const auto all = comm->allgather(torch::tensor({r, 2 * r}, torch::TensorOptions().dtype(torch::kInt32).device(dev)));
  ASSERT_TRUE(all.is_cuda());
  ASSERT_EQ(all.sizes(), torch::IntArrayRef({p, 2}));
  for (int i = 0; i < p; ++i) EXPECT_EQ(all[i][1].item<int>(), 2 * i);
  EXPECT_GT(comm->collective_seconds(), before);  // NCCL's kernels ran and were timed by CUDA events
}

TEST(Nccl, AutoUsesNcclOnlyWithSeveralRanks) {
  REQUIRE_GPU();
  EXPECT_EQ(choose_comm_backend("auto", my_gpu(), g_world->size()).nccl, nccl_built() && g_world->size() > 1);
}

TEST(Nccl, AutoFallsBackToMpiWhereRanksShareAGpu) {
  REQUIRE_GPU();
  if (static_cast<int>(torch::cuda::device_count()) >= g_world->local_size()) GTEST_SKIP() << "a GPU per rank here";
  const int r = g_world->rank(), p = g_world->size();
  auto comm = make_device_communicator(*g_world, my_gpu(), "auto");  // no error: staged through the host
  std::vector<torch::Tensor> ts{torch::full({3}, static_cast<float>(r + 1), torch::device(my_gpu()))};
  comm->allreduce(ts, ReduceOp::sum);
  EXPECT_TRUE(ts[0].is_cuda());
  EXPECT_TRUE(torch::allclose(ts[0].cpu(), torch::full({3}, static_cast<float>(p * (p + 1) / 2))));
}

// ---- one search step: CUDA equals CPU -----------------------------------------------------------

struct StepResult {
  std::vector<torch::Tensor> tensors;  // the supernet's parameters, then the architecture distribution
};

// Two steps of `method` on an NB201 supernet (C=8, N=1) with 32 synthetic 3x16x16 images per split,
// initialised identically on the CPU, computed on `device`. `checked_step` >= 0: that step runs
// with LibTorch's CUDA sync check set to error, so any host synchronisation in it throws.
StepResult one_step(const std::string& method, const c10::Device& device, int checked_step = -1) {
  torch::manual_seed(7);
  SpaceOptions space;
  space.space = "nb201", space.channels = 8, space.input_channels = 3, space.classes = 10, space.cells_per_stage = 1;
  auto net = make_supernet(space);
  net->to(device);
  GradientMethodOptions go;
  go.second_order = method == "darts2";
  std::unique_ptr<SearchMethod> m;
  if (method == "parsec") {
    ParsecOptions po;
    po.samples = 3;
    m = std::make_unique<Parsec>(net, po, RngKey(3));
  } else if (method == "gibbs") {
    GibbsOptions g;
    g.order = 1;  // SGD on the weights
    m = std::make_unique<GibbsNas>(net, go, g, RngKey(3));
  } else if (method == "drnas") {
    m = std::make_unique<Drnas>(net, go, RngKey(3));
  } else if (method == "gdas") {
    m = std::make_unique<Gdas>(net, go, GdasOptions{}, RngKey(3));
  } else {
    m = std::make_unique<Darts>(net, go, RngKey(3));
  }
  m->begin_epoch(0, 2);
  SyntheticOptions so;
  so.count = 64, so.channels = 3, so.size = 16, so.classes = 10;
  auto data = std::make_shared<const Dataset>(make_synthetic(so));
  const auto stats = ChannelStats::of(*data);
  SplitOptions lo;
  lo.global_batch = 32, lo.micro_batches = 2;
  const auto all = torch::arange(64, torch::kInt64);
  SplitLoader train(data, all.narrow(0, 0, 32), stats, lo, RngKey(1).with("w"), device, 0, 1);
  SplitLoader val(data, all.narrow(0, 32, 32), stats, lo, RngKey(1).with("a"), device, 0, 1);
  StepContext ctx;
  ctx.key = RngKey(5);
  ctx.train_examples = 32;
  StepMetrics metrics;
  for (int64_t s = 0; s < 2; ++s) {
    ctx.global_step = s;
    const auto tb = train.batch(0, s), vb = val.batch(0, s);
    if (s == checked_step) {
      c10::cuda::device_synchronize();
      auto& state = c10::cuda::warning_state();
      state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
      try {
        m->step(tb, vb, ctx, metrics);
      } catch (...) {
        state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
        throw;
      }
      state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
      continue;
    }
    m->step(tb, vb, ctx, metrics);
  }
  StepResult out;
  for (const auto& p : net->parameters()) out.tensors.push_back(p.detach().cpu().to(torch::kFloat64));
  for (const auto& w : m->expected_weights()) out.tensors.push_back(w.detach().cpu().to(torch::kFloat64));
  return out;
}

class CudaMatchesCpu : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaMatchesCpu, TwoSearchStepsWithTheSameKeys) {
  REQUIRE_GPU();
  // Full float32 on both sides: TF32 would make the GPU's convolutions differ by ~1e-3.
  const bool tf32_conv = at::globalContext().allowTF32CuDNN(), tf32_mm = at::globalContext().allowTF32CuBLAS();
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  const auto cpu = one_step(GetParam(), c10::Device(c10::kCPU));
  const auto gpu = one_step(GetParam(), my_gpu());
  at::globalContext().setAllowTF32CuDNN(tf32_conv);
  at::globalContext().setAllowTF32CuBLAS(tf32_mm);
  ASSERT_EQ(cpu.tensors.size(), gpu.tensors.size());
  for (size_t i = 0; i < cpu.tensors.size(); ++i) {
    const auto diff = (cpu.tensors[i] - gpu.tensors[i]).abs().max().item<double>();
    const auto scale = cpu.tensors[i].abs().max().item<double>();
    EXPECT_LE(diff, 1e-4 * std::max(1.0, scale)) << GetParam() << ": tensor " << i << " of " << cpu.tensors.size();
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, CudaMatchesCpu,
                         ::testing::Values("darts", "darts2", "parsec", "gibbs", "drnas", "gdas"));

// ---- no host synchronisation inside a step ------------------------------------------------------

class StepWithoutSync : public ::testing::TestWithParam<std::string> {};

TEST_P(StepWithoutSync, TheSecondStepNeverWaitsForTheGpu) {
  REQUIRE_GPU();
  // The first step may allocate and pick algorithms; the second is the steady state of a search.
  EXPECT_NO_THROW(one_step(GetParam(), my_gpu(), 1)) << GetParam() << " synchronised with the host in its step";
}

INSTANTIATE_TEST_SUITE_P(Methods, StepWithoutSync, ::testing::Values("drnas", "darts", "darts2"));

TEST(StepWithoutSync, TheCheckCatchesAStepThatReadsTheGpu) {
  REQUIRE_GPU();
  // GDAS reads its chosen operations to the host once per draw (they decide which modules run):
  // the check above must see that, or it proves nothing.
  EXPECT_THROW(one_step("gdas", my_gpu(), 1), c10::Error);
}

// ---- DrNAS's Dirichlet on CUDA ----------------------------------------------------------------

TEST(CudaDirichlet, DrawsAreOnTheSimplexWithTheRightMeanAndFiniteGradients) {
  REQUIRE_GPU();
  const auto dev = my_gpu();
  auto beta = torch::tensor({0.5, 1.0, 2.0, 4.0, 8.0}, torch::TensorOptions().dtype(torch::kFloat).device(dev))
                  .repeat({20000, 1})
                  .requires_grad_(true);
  auto gen = make_generator(RngKey(11));  // a host generator: the noise is drawn on the CPU
  const auto theta = dirichlet_rsample(beta, gen);
  ASSERT_TRUE(theta.is_cuda());
  EXPECT_TRUE(torch::allclose(theta.sum(-1).cpu(), torch::ones({20000}), 1e-5, 1e-5));
  EXPECT_GT(theta.min().item<float>(), 0.0f);
  const auto mean = theta.mean(0).detach().cpu();
  const auto expect = torch::tensor({0.5, 1.0, 2.0, 4.0, 8.0}) / 15.5;
  EXPECT_TRUE(torch::allclose(mean, expect.to(torch::kFloat), 0, 4e-3)) << mean;
  // d E[theta_k] / d beta_j, pathwise: sum_k w_k theta_k has gradient w.r.t. beta whose mean over
  // rows approaches the analytic derivative of w . beta / sum(beta).
  const auto w = torch::tensor({1.0, -1.0, 0.5, 0.0, 2.0}, torch::TensorOptions().dtype(torch::kFloat).device(dev));
  (theta * w).sum().backward();
  const auto g = beta.grad().mean(0).cpu().to(torch::kDouble);
  ASSERT_TRUE(torch::isfinite(g).all().item<bool>());
  const auto b = torch::tensor({0.5, 1.0, 2.0, 4.0, 8.0}, torch::kDouble);
  const auto wd = w.cpu().to(torch::kDouble);
  const auto analytic = (wd - (wd * b).sum() / b.sum()) / b.sum();
  EXPECT_TRUE(torch::allclose(g, analytic, 0, 5e-3)) << g << "\nanalytic " << analytic;
}

TEST(CudaDirichlet, TheGpuDrawsWhatTheCpuDrawsForTheSameKey) {
  REQUIRE_GPU();
  const auto dev = my_gpu();
  const auto beta = torch::linspace(0.2, 6.0, 14 * 5, torch::kFloat).reshape({14, 5});
  const auto cpu = dirichlet_rsample(beta, make_generator(RngKey(4).with(9)));
  const auto gpu = dirichlet_rsample(beta.to(dev), make_generator(RngKey(4).with(9)));
  const auto other = dirichlet_rsample(beta.to(dev), make_generator(RngKey(4).with(10)));
  ASSERT_TRUE(gpu.is_cuda());
  EXPECT_TRUE(torch::allclose(gpu.cpu(), cpu, 1e-4, 1e-6)) << (gpu.cpu() - cpu).abs().max();
  EXPECT_FALSE(torch::allclose(other.cpu(), cpu, 1e-4, 1e-6));
}

#endif  // PROBNAS_WITH_CUDA

}  // namespace
}  // namespace probnas

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  probnas::MpiSession mpi(&argc, &argv);
  probnas::g_world = probnas::make_world_communicator();
  const int rc = RUN_ALL_TESTS();
  probnas::g_world.reset();
  return rc;
}
