// The fused (foreach) optimiser updates, the flat float64 gradient sums and clipping, each against
// its formula written out element by element in double.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "probnas/method/gradient_sum.h"
#include "probnas/optim/optimizers.h"

namespace probnas {
namespace {

std::vector<torch::Tensor> make_params() {
  torch::manual_seed(3);
  return {torch::randn({3, 4}).requires_grad_(), torch::randn({5}).requires_grad_(),
          torch::randn({2, 2, 3}).requires_grad_()};
}

void set_grads(std::vector<torch::Tensor>& ps, int step, bool skip_second) {
  for (size_t i = 0; i < ps.size(); ++i) {
    if (skip_second && i == 1) {
      ps[i].mutable_grad() = torch::Tensor();
      continue;
    }
    ps[i].mutable_grad() = torch::sin(torch::arange(ps[i].numel(), torch::kFloat) * (step + 1) + static_cast<float>(i))
                               .view(ps[i].sizes());
  }
}

TEST(Sgd, MomentumNesterovAndWeightDecayFollowTorchOptimSgd) {
  for (bool nesterov : {false, true}) {
    SgdOptions o;
    o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 0.01, o.nesterov = nesterov;
    auto ps = make_params();
    std::vector<torch::Tensor> ref, buf(ps.size());
    for (const auto& p : ps) ref.push_back(p.detach().to(torch::kDouble).clone());
    Sgd sgd(ps, o);
    for (int step = 0; step < 4; ++step) {
      // parameter 1 has no gradient in the first two steps: skipped, and its momentum starts later
      set_grads(ps, step, step < 2);
      sgd.step();
      for (size_t i = 0; i < ps.size(); ++i) {
        if (step < 2 && i == 1) continue;
        auto d = ps[i].grad().to(torch::kDouble) + o.weight_decay * ref[i];
        buf[i] = buf[i].defined() ? o.momentum * buf[i] + d : d.clone();
        ref[i] = ref[i] - o.lr * (nesterov ? d + o.momentum * buf[i] : buf[i]);
      }
    }
    for (size_t i = 0; i < ps.size(); ++i)
      EXPECT_TRUE(torch::allclose(ps[i].detach().to(torch::kDouble), ref[i], 1e-6, 1e-6))
          << "nesterov " << nesterov << ", parameter " << i;
  }
}

TEST(Adam, BiasCorrectedMomentsFollowTorchOptimAdam) {
  AdamOptions o;
  o.lr = 0.05, o.weight_decay = 0.1;
  auto ps = make_params();
  std::vector<torch::Tensor> ref, m, v;
  for (const auto& p : ps) {
    ref.push_back(p.detach().to(torch::kDouble).clone());
    m.push_back(torch::zeros(p.sizes(), torch::kDouble));
    v.push_back(torch::zeros(p.sizes(), torch::kDouble));
  }
  Adam adam(ps, o);
  for (int step = 1; step <= 3; ++step) {
    set_grads(ps, step, false);
    adam.step();
    for (size_t i = 0; i < ps.size(); ++i) {
      const auto g = ps[i].grad().to(torch::kDouble) + o.weight_decay * ref[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const double bc1 = 1 - std::pow(o.beta1, step), bc2 = 1 - std::pow(o.beta2, step);
      ref[i] = ref[i] - o.lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + o.eps);
    }
  }
  for (size_t i = 0; i < ps.size(); ++i)
    EXPECT_TRUE(torch::allclose(ps[i].detach().to(torch::kDouble), ref[i], 1e-5, 1e-6)) << "parameter " << i;
}

TEST(ClipGradNorm, ScalesAllGradientsToTheJointNormAndOnlyAboveIt) {
  auto ps = make_params();
  set_grads(ps, 0, false);
  double joint = 0;
  for (const auto& p : ps) joint += p.grad().to(torch::kDouble).square().sum().item<double>();
  joint = std::sqrt(joint);
  std::vector<torch::Tensor> before;
  for (const auto& p : ps) before.push_back(p.grad().clone());
  const auto total = clip_grad_norm(ps, joint / 2);
  EXPECT_NEAR(total.item<double>(), joint, 1e-4);
  for (size_t i = 0; i < ps.size(); ++i)
    EXPECT_TRUE(torch::allclose(ps[i].grad(), before[i] * static_cast<float>((joint / 2) / (joint + 1e-6)), 1e-5, 1e-6));
  const auto kept = ps[0].grad().clone();
  clip_grad_norm(ps, joint);  // now at joint / 2: unchanged
  EXPECT_TRUE(torch::allclose(ps[0].grad(), kept, 1e-6, 0));
}

TEST(GradientSum, SumsMicroBatchesInDoubleAndLeavesViewsOfOneBuffer) {
  auto ps = make_params();
  GradientSum sum(ps);
  std::vector<torch::Tensor> expect;
  for (const auto& p : ps) expect.push_back(torch::zeros(p.sizes(), torch::kDouble));
  for (int mb = 0; mb < 3; ++mb) {
    set_grads(ps, mb, mb == 1);  // the second micro-batch leaves parameter 1 without a gradient
    for (size_t i = 0; i < ps.size(); ++i)
      if (ps[i].grad().defined()) expect[i] += ps[i].grad().to(torch::kDouble);
    sum.take();
    for (const auto& p : ps) EXPECT_FALSE(p.grad().defined());  // taken
  }
  sum.finish(nullptr);
  for (size_t i = 0; i < ps.size(); ++i) {
    ASSERT_TRUE(ps[i].grad().defined());
    EXPECT_EQ(ps[i].grad().sizes(), ps[i].sizes());
    EXPECT_EQ(ps[i].grad().scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::equal(ps[i].grad(), expect[i].to(torch::kFloat))) << "parameter " << i;
  }
  // one buffer: scaling it through one gradient's storage scales them all
  EXPECT_EQ(ps[0].grad().storage().data(), ps[2].grad().storage().data());
}

TEST(GradientSum, ReduceReturnsZerosForARankWithoutMicroBatches) {
  auto ps = make_params();
  GradientSum sum(ps);
  const auto totals = sum.reduce(nullptr);
  ASSERT_EQ(totals.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(totals[i].sizes(), ps[i].sizes());
    EXPECT_EQ(totals[i].scalar_type(), torch::kDouble);
    EXPECT_EQ(totals[i].abs().sum().item<double>(), 0.0);
  }
}

}  // namespace
}  // namespace probnas
