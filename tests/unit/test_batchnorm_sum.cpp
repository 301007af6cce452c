// BatchNormSum: the running statistics of a pass composed from units run apart equal those of the
// units run in order on one network (the world-size invariance of BatchNorm; the MPI tests run it
// across ranks).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "probnas/comm/communicator.h"
#include "probnas/method/batchnorm_sum.h"

namespace probnas {
namespace {

// Three BatchNorm modules and one functional pair (as pruned PGNAS networks have): `a` runs once per
// forward, `b` twice, `c` only when `use_c` (a skipped operation), the functional one once.
struct NormNet : torch::nn::Module {
  NormNet() {
    a = register_module("a", torch::nn::BatchNorm2d(3));
    b = register_module("b", torch::nn::BatchNorm2d(3));
    c = register_module("c", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(3).momentum(0.3)));
    f_mean = register_buffer("f_bn_running_mean", torch::zeros({3}));
    f_var = register_buffer("f_bn_running_var", torch::ones({3}));
  }
  torch::Tensor forward(const torch::Tensor& x, bool use_c) {
    auto y = a(x);
    y = b(b(y * 2 + 1));
    if (use_c) y = c(y.square());
    return torch::batch_norm(y + 3, {}, {}, f_mean, f_var, is_training(), kFunctionalBatchNormMomentum, 1e-5, true);
  }
  torch::nn::BatchNorm2d a{nullptr}, b{nullptr}, c{nullptr};
  torch::Tensor f_mean, f_var;
};

// Two networks with the same (non-trivial) statistics.
std::pair<std::shared_ptr<NormNet>, std::shared_ptr<NormNet>> twins() {
  auto gen = at::detail::createCPUGenerator(3);
  auto x = std::make_shared<NormNet>(), y = std::make_shared<NormNet>();
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : x->named_buffers().pairs()) {
    if (t.is_floating_point()) t.copy_(torch::rand(t.sizes(), gen) + 0.5);
    else t.fill_(7);
    y->named_buffers()[name].copy_(t);
  }
  return {x, y};
}

std::vector<torch::Tensor> unit_inputs(int64_t units) {
  auto gen = at::detail::createCPUGenerator(5);
  std::vector<torch::Tensor> xs;
  for (int64_t u = 0; u < units; ++u) xs.push_back(torch::randn({4, 3, 5, 5}, gen) * (1 + u) + u);
  return xs;
}

bool uses_c(int64_t unit) { return unit % 3 != 1; }

void expect_same_statistics(NormNet& got, NormNet& want) {
  auto g = got.named_buffers();
  for (const auto& [name, w] : want.named_buffers().pairs()) {
    if (!w.is_floating_point()) {
      EXPECT_TRUE(torch::equal(g[name], w)) << name << ": " << g[name] << " against " << w;
      continue;
    }
    const double diff = (g[name] - w).abs().max().item<double>();
    EXPECT_LE(diff, 2e-6 * std::max(1.0, w.abs().max().item<double>())) << name;
  }
}

TEST(BatchNormSum, UnitsRunApartInAnyOrderComposeToTheStatisticsOfTheUnitsRunInOrder) {
  const int64_t units = 5;
  const auto xs = unit_inputs(units);
  auto [seq, tracked] = twins();
  seq->train();
  tracked->train();
  torch::NoGradGuard no_grad;
  for (int64_t u = 0; u < units; ++u) seq->forward(xs[u], uses_c(u));

  BatchNormSum sum(*tracked, units);
  for (const int64_t u : {3, 0, 4, 2, 1}) {  // another order than the units'
    tracked->forward(xs[u], uses_c(u));
    sum.take(u);
  }
  sum.finish(nullptr);
  expect_same_statistics(*tracked, *seq);
  // c skipped units 1 and 4: 3 updates; b ran twice per unit: 10.
  EXPECT_EQ(tracked->c->num_batches_tracked.item<int64_t>(), 7 + 3);
  EXPECT_EQ(tracked->b->num_batches_tracked.item<int64_t>(), 7 + 10);
}

// A world of `n` ranks whose collectives do nothing (subclasses override what they need).
struct FakeCommunicator : Communicator {
  explicit FakeCommunicator(int n, int r = 0) : n_(n), r_(r) {}
  int rank() const override { return r_; }
  int size() const override { return n_; }
  int local_rank() const override { return r_; }
  int local_size() const override { return n_; }
  int node_count() const override { return 1; }
  void allreduce(std::vector<torch::Tensor>&, ReduceOp) override {}
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  torch::Tensor allgather(const torch::Tensor& t) override { return t.unsqueeze(0).clone(); }
  std::vector<std::string> allgather_bytes(const std::string& b) override { return {b}; }
  void broadcast_bytes(std::string&, int) override {}
  void barrier() override {}
  int n_, r_;
};

// Two "ranks" in two threads of this process: allreduce adds the two parties' tensors.
struct Exchange {
  std::mutex m;
  std::condition_variable cv;
  std::vector<torch::Tensor> slot[2];
  int arrived = 0, generation = 0;
  void meet(std::unique_lock<std::mutex>& lock) {
    const int gen = generation;
    if (++arrived == 2) {
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return generation != gen; });
    }
  }
};

struct PairCommunicator : FakeCommunicator {
  PairCommunicator(Exchange& e, int r) : FakeCommunicator(2, r), ex(e), me(r) {}
  void allreduce(std::vector<torch::Tensor>& t, ReduceOp) override {
    std::unique_lock<std::mutex> lock(ex.m);
    ex.slot[me].clear();
    for (const auto& x : t) ex.slot[me].push_back(x.clone());
    ex.meet(lock);
    for (size_t i = 0; i < t.size(); ++i) t[i].copy_(ex.slot[0][i] + ex.slot[1][i]);
    ex.meet(lock);  // both have read before either writes again
  }
  Exchange& ex;
  int me;
};

TEST(BatchNormSum, TwoRanksWithTheirOwnUnitsEndWithTheStatisticsOfOneRankRunningThemAll) {
  const int64_t units = 6;
  const auto xs = unit_inputs(units);
  auto [seq, unused] = twins();
  seq->train();
  {
    torch::NoGradGuard no_grad;
    for (int64_t u = 0; u < units; ++u) seq->forward(xs[u], uses_c(u));
  }
  auto [rank0, rank1] = twins();
  Exchange exchange;
  auto run = [&](NormNet& net, int rank, std::vector<int64_t> mine) {
    torch::NoGradGuard no_grad;
    net.train();
    PairCommunicator comm(exchange, rank);
    BatchNormSum sum(net, units);
    for (const int64_t u : mine) {
      net.forward(xs[u], uses_c(u));
      sum.take(u);
    }
    sum.finish(&comm);
  };
  std::thread other([&] { run(*rank1, 1, {1, 4}); });
  run(*rank0, 0, {0, 2, 3, 5});  // uneven shares: what a rank holds does not matter
  other.join();
  expect_same_statistics(*rank0, *seq);
  expect_same_statistics(*rank1, *seq);
  EXPECT_TRUE(torch::equal(rank0->a->running_mean, rank1->a->running_mean));

  // Averaging each rank's own running statistics (what the ranks did before) is not the same.
  auto [avg0, avg1] = twins();
  avg0->train();
  avg1->train();
  torch::NoGradGuard no_grad;
  for (const int64_t u : {0, 2, 3, 5}) avg0->forward(xs[u], uses_c(u));
  for (const int64_t u : {1, 4}) avg1->forward(xs[u], uses_c(u));
  const auto averaged = (avg0->a->running_mean + avg1->a->running_mean) / 2;
  EXPECT_GT((averaged - seq->a->running_mean).abs().max().item<double>(), 1e-3);
}

TEST(BatchNormSum, InEvaluationModeAPassReadsTheStatisticsAndChangesNothing) {
  // (Second-order DARTS's finite-difference tests run passes in evaluation mode.)
  auto [net, untouched] = twins();
  net->eval();
  untouched->eval();
  torch::NoGradGuard no_grad;
  const auto x = unit_inputs(1)[0];
  const auto want = untouched->forward(x, true);
  BatchNormSum sum(*net, 1);
  const auto got = net->forward(x, true);  // with the running statistics, not zeros
  sum.take(0);
  sum.finish(nullptr);
  EXPECT_TRUE(torch::equal(got, want));
  expect_same_statistics(*net, *untouched);
}

TEST(BatchNormSum, AnUnfinishedPassPutsTheStatisticsBack) {
  auto [net, untouched] = twins();
  net->train();
  torch::NoGradGuard no_grad;
  {
    BatchNormSum sum(*net, 2);
    net->forward(unit_inputs(1)[0], true);
    sum.take(0);
  }
  expect_same_statistics(*net, *untouched);
}

TEST(BatchNormSum, AUnitTakenTwiceOrOutsideThePassIsRefused) {
  auto [net, other] = twins();
  net->train();
  torch::NoGradGuard no_grad;
  BatchNormSum sum(*net, 2);
  net->forward(unit_inputs(1)[0], true);
  sum.take(1);
  EXPECT_THROW(sum.take(1), std::exception);
  EXPECT_THROW(sum.take(2), std::exception);
  FakeCommunicator two(2);
  BatchNormSum unsized(*other, 0);
  EXPECT_THROW(unsized.finish(&two), std::exception);
}

}  // namespace
}  // namespace probnas
