// Every NB201 operation: output shape for stride 1 and 2, and gradients (input and weights)
// against central finite differences in double precision.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "probnas/space/ops.h"

namespace probnas {
namespace {

struct OpCase {
  std::string name;
  int64_t c_in, c_out, stride;
};

OpPtr build(const OpCase& c) {
  if (c.name == "resnet_block") return std::make_shared<ResNetBasicBlock>(c.c_in, c.c_out, c.stride);
  if (c.name == "max_pool_3x3") return std::make_shared<Pooling>(c.c_in, c.c_out, c.stride, false, BnOptions{false, true});
  return make_nb201_op(c.name, c.c_in, c.c_out, c.stride, BnOptions{false, true});
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> cases;
  for (const std::string name :
       {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "max_pool_3x3", "resnet_block"})
    for (int64_t stride : {1, 2})
      for (auto [ci, co] : std::vector<std::pair<int64_t, int64_t>>{{3, 3}, {3, 4}}) cases.push_back({name, ci, co, stride});
  return cases;
}

std::string case_name(const OpCase& c) {
  return c.name + " stride " + std::to_string(c.stride) + " " + std::to_string(c.c_in) + "->" + std::to_string(c.c_out);
}

TEST(Ops, OutputShapeForStrideOneAndTwo) {
  torch::manual_seed(0);
  for (const auto& c : all_cases()) {
    auto op = build(c);
    op->train();
    auto x = torch::randn({2, c.c_in, 6, 6});
    auto y = op->forward(x);
    const int64_t side = 6 / c.stride;
    EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, c.c_out, side, side})) << case_name(c);
  }
}

TEST(Ops, NoneIsZeroAndSkipIsIdentity) {
  auto x = torch::randn({2, 3, 6, 6});
  EXPECT_EQ(make_nb201_op("none", 3, 3, 1, {})->forward(x).abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(make_nb201_op("none", 3, 3, 1, {})->is_zero());
  EXPECT_TRUE(torch::equal(make_nb201_op("skip_connect", 3, 3, 1, {})->forward(x), x));
  EXPECT_THROW(make_nb201_op("conv_9x9", 3, 3, 1, {}), std::exception);
}

// f(params, x) = sum(op(x) * r); compares autograd with central differences on a few entries
// of the input and of every parameter.
void check_gradients(const OpCase& c) {
  torch::manual_seed(1);
  auto op = build(c);
  op->to(torch::kFloat64);
  op->train();
  auto x = torch::randn({3, c.c_in, 6, 6}, torch::kFloat64).requires_grad_(true);
  auto r = torch::randn_like(op->forward(x));
  auto f = [&] { return (op->forward(x) * r).sum(); };
  auto params = op->parameters();
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  f().backward();
  std::vector<torch::Tensor> targets{x};
  for (auto& p : params) targets.push_back(p);
  const double eps = 1e-6;
  for (auto& t : targets) {
    auto analytic = t.grad().clone();
    auto flat = t.data().view(-1);
    const int64_t n = flat.numel();
    for (int64_t i : {int64_t{0}, n / 3, n / 2, n - 1}) {
      torch::NoGradGuard guard;
      const double orig = flat[i].item<double>();
      flat[i] = orig + eps;
      const double up = f().item<double>();
      flat[i] = orig - eps;
      const double down = f().item<double>();
      flat[i] = orig;
      const double numeric = (up - down) / (2 * eps);
      const double a = analytic.view(-1)[i].item<double>();
      EXPECT_NEAR(a, numeric, 1e-5 + 1e-4 * std::abs(numeric)) << case_name(c) << " entry " << i;
    }
  }
}

TEST(Ops, GradientsMatchFiniteDifferences) {
  for (const auto& c : all_cases()) {
    if (c.name == "none") continue;  // no inputs influence its output
    check_gradients(c);
  }
}

}  // namespace
}  // namespace probnas

namespace probnas {
namespace {

// to_memory_format changes the layout of every 4-D weight in place: the same tensor objects (an
// optimiser holding them, and its state keyed by them, stay valid), the same values, and back.
TEST(Ops, MemoryFormatChangesLayoutInPlaceKeepingTensorsAndValues) {
  torch::nn::Sequential m(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 5, 3).bias(false)), torch::nn::BatchNorm2d(5),
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(5, 4, 3).padding(1)));
  std::vector<torch::Tensor> before, values;
  for (const auto& p : m->parameters()) {
    before.push_back(p);
    values.push_back(p.detach().clone());
  }
  for (const bool channels_last : {true, false}) {
    to_memory_format(*m, channels_last);
    const auto params = m->parameters();
    ASSERT_EQ(params.size(), before.size());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(params[i].is_same(before[i])) << i;
      EXPECT_TRUE(torch::equal(params[i], values[i])) << i;
      if (params[i].dim() == 4) {
        EXPECT_EQ(params[i].is_contiguous(at::MemoryFormat::ChannelsLast), channels_last) << i;
        EXPECT_EQ(params[i].is_contiguous(), !channels_last) << i;
      }
    }
  }
  const auto x = torch::randn({2, 3, 6, 6});
  EXPECT_TRUE(images_in_format(x, true).is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(images_in_format(x, true), x));
}

}  // namespace
}  // namespace probnas
