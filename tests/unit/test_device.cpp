// Mixed-precision scopes (bench --bf16 and, after its GPU measurement, run.precision).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/core/device.h"

namespace probnas {
namespace {

TEST(AutocastScope, Bf16MatmulsInsideAndFloatAgainAfter) {
  const auto a = torch::randn({8, 8}), b = torch::randn({8, 8});
  const c10::Device cpu(c10::kCPU);
  {
    AutocastScope scope(cpu, torch::kBFloat16, true);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastScope off(cpu, torch::kBFloat16, false);  // disabled: changes nothing
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  // A bf16 product is close to, but not exactly, the float one: the scope really changed the math.
  torch::Tensor low;
  {
    AutocastScope scope(cpu, torch::kBFloat16, true);
    low = torch::mm(a, b).to(torch::kFloat);
  }
  const auto full = torch::mm(a, b);
  EXPECT_FALSE(torch::equal(low, full));
  EXPECT_TRUE(torch::allclose(low, full, 5e-2, 5e-2));
}

}  // namespace
}  // namespace probnas
