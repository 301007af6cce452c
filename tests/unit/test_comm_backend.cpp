// comm.backend: which collectives a run uses for its device's tensors, and the errors for people.
#include <gtest/gtest.h>

#include "probnas/comm/device_communicator.h"
#include "probnas/core/error.h"
#include "probnas/engine/run_support.h"

namespace probnas {
namespace {

const c10::Device kCpu(c10::kCPU);
const c10::Device kGpu(c10::kCUDA, 0);

std::string error_of(const std::string& backend, const c10::Device& device, int ranks, bool built) {
  try {
    choose_comm_backend(backend, device, ranks, built);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CommBackend, AutoUsesNcclOnlyForCudaTensorsOfSeveralRanksInAnNcclBuild) {
  EXPECT_TRUE(choose_comm_backend("auto", kGpu, 2, true).nccl);
  EXPECT_TRUE(choose_comm_backend("auto", kGpu, 64, true).nccl);
  EXPECT_FALSE(choose_comm_backend("auto", kGpu, 1, true).nccl);   // nothing to reduce
  EXPECT_FALSE(choose_comm_backend("auto", kCpu, 4, true).nccl);   // CPU tensors: MPI
  EXPECT_FALSE(choose_comm_backend("auto", kGpu, 4, false).nccl);  // no NCCL built: staged through the host
  EXPECT_NE(choose_comm_backend("auto", kGpu, 4, false).reason.find("no NCCL"), std::string::npos);
}

TEST(CommBackend, MpiIsNeverNcclAndNcclIsAlwaysNcclWhereItCanBe) {
  for (int ranks : {1, 2, 8}) {
    EXPECT_FALSE(choose_comm_backend("mpi", kGpu, ranks, true).nccl);
    EXPECT_TRUE(choose_comm_backend("nccl", kGpu, ranks, true).nccl);  // also one rank: a one-GPU check of NCCL
  }
  EXPECT_NE(choose_comm_backend("mpi", kGpu, 2, true).reason.find("staged through the host"), std::string::npos);
}

TEST(CommBackend, ImpossibleChoicesFailNamingTheOptionAndTheWayOut) {
  const auto cpu = error_of("nccl", kCpu, 2, true);
  EXPECT_NE(cpu.find("comm.backend = nccl needs run.device = cuda"), std::string::npos) << cpu;
  const auto unbuilt = error_of("nccl", kGpu, 2, false);
  EXPECT_NE(unbuilt.find("built without NCCL"), std::string::npos) << unbuilt;
  EXPECT_NE(unbuilt.find("PROBNAS_NCCL_ROOT"), std::string::npos) << unbuilt;
  const auto bad = error_of("gloo", kGpu, 2, true);
  EXPECT_NE(bad.find("comm.backend = 'gloo' is not allowed (allowed: auto, mpi, nccl)"), std::string::npos) << bad;
  EXPECT_EQ(error_of("auto", kCpu, 3, false), "");
}

TEST(CommBackend, ThisBuildSaysWhetherItHasNccl) {
#if defined(PROBNAS_WITH_NCCL)
  EXPECT_TRUE(nccl_built());
#else
  EXPECT_FALSE(nccl_built());
  // A CPU run never needs NCCL, whatever it asks for short of nccl itself.
  EXPECT_FALSE(choose_comm_backend("auto", kCpu, 2).nccl);
#endif
}

TEST(Placement, NodesInTheOrderOfTheirFirstRankWithTheirRanksAndLocalRanks) {
  EXPECT_EQ(placement_text({"a\n0", "b\n0", "a\n1", "b\n1"}), "a ranks 0,2 (local 0,1); b ranks 1,3 (local 0,1)");
  EXPECT_EQ(placement_text({"n1\n0"}), "n1 ranks 0 (local 0)");
  std::vector<std::string> many;
  for (int r = 0; r < 10; ++r) many.push_back("node" + std::to_string(r) + "\n0");
  const auto text = placement_text(many);
  EXPECT_NE(text.find("node7 ranks 7 (local 0); and 2 more nodes"), std::string::npos) << text;
  EXPECT_EQ(text.find("node8"), std::string::npos) << text;
}

}  // namespace
}  // namespace probnas
