// The fused DARTS cell (the edges that leave one node computed together: one ReLU, each pooling
// once, stacked factorized-reduce convolutions with one BatchNorm over the stacked channels) against the
// reference, one edge and operation at a time: logits, the gradients of every parameter, of the
// mixing weights and of the edge weights, and the BatchNorm running statistics, in training and
// in evaluation mode. Cases: every operation set the searches use, normal and reduction cells,
// partial channels, pruned operations and widened (progressive) stages, in NCHW and channels-last
// memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <torch/torch.h>

#include "probnas/space/darts_space.h"

namespace probnas {
namespace {

struct Case {
  std::string name;
  std::vector<std::string> ops;  // empty: all 8
  int64_t k = 1;                 // partial channels
  bool prune = false;            // drop a random half of each edge's operations
  int64_t widen_to_k = 0;        // after pruning, re-split with this K (a progressive stage change)
  bool edge_weights = false;     // PC-DARTS edge normalisation
  bool channels_last = false;    // both nets in channels-last memory
};

// `floor`: relative to the tensor's largest value, at least `floor`. A running mean of pooled
// features can be ~1e-6 (momentum 0.1 times a mean of O(1) terms that cancel), where float32
// rounding alone differs by ~1e-9 (NCHW) to ~2e-8 (channels-last's other summation order): buffers
// take floor 1e-2, the 1e-5 of the O(1) features a batch mean rounds against.
void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what, double floor = 1e-3) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double scale = std::max(floor, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>() / scale, 1e-5) << what << ": max |a - b| " << (a - b).abs().max().item<double>() << ", max |b| " << scale;
}

std::shared_ptr<DartsSupernet> make_net(const Case& c, int64_t channels) {
  SpaceOptions o;
  o.space = "darts", o.channels = channels, o.cells = 3, o.input_channels = 3, o.classes = 5;
  o.ops = c.ops, o.partial_channels = c.k;
  torch::manual_seed(21);
  return std::static_pointer_cast<DartsSupernet>(make_supernet(o));
}

class DartsFused : public ::testing::TestWithParam<Case> {};

TEST_P(DartsFused, EqualsTheOneEdgeAtATimeReference) {
  const Case& c = GetParam();
  const int64_t channels = 8;
  auto fused = make_net(c, channels), reference = make_net(c, channels);
  reference->set_fused(false);
  fused->set_channels_last(c.channels_last);
  reference->set_channels_last(c.channels_last);
  const int64_t ops = fused->arch_shape()[0].num_ops();
  std::vector<torch::Tensor> keep;
  if (c.prune) {
    torch::manual_seed(3);
    for (int g = 0; g < 2; ++g) {
      // Keep about half, at least one operation other than `none` per edge (so edges differ in
      // which operations they keep, and some operation is missing on some edges only).
      auto k = torch::rand({DartsCell::kEdges, ops}) < 0.5;
      k.select(1, ops - 1).fill_(true);
      keep.push_back(k);
    }
    fused->prune_operations(keep);
    reference->prune_operations(keep);
  }
  if (c.widen_to_k > 0) {
    Widener a(RngKey(4)), b(RngKey(4));
    fused->set_partial_channels(c.widen_to_k, a);
    reference->set_partial_channels(c.widen_to_k, b);
  }
  torch::manual_seed(5);
  const auto x = torch::randn({4, 3, 8, 8});
  const auto y = torch::randint(5, {4});
  std::vector<torch::Tensor> w0, e0;
  for (int g = 0; g < 2; ++g) {
    auto w = torch::softmax(torch::randn({DartsCell::kEdges, ops}), -1);
    if (c.prune) w = w * keep[static_cast<size_t>(g)].to(torch::kFloat);  // pruned weights are 0, as DrNAS's
    w0.push_back(w);
    e0.push_back(torch::rand({DartsCell::kEdges}) + 0.5);
  }
  for (const bool training : {true, false}) {
    fused->train(training);
    reference->train(training);
    fused->zero_grad();
    reference->zero_grad();
    std::vector<torch::Tensor> wf, wr, ef, er;
    for (int g = 0; g < 2; ++g) {
      wf.push_back(w0[static_cast<size_t>(g)].clone().requires_grad_(true));
      wr.push_back(w0[static_cast<size_t>(g)].clone().requires_grad_(true));
      ef.push_back(e0[static_cast<size_t>(g)].clone().requires_grad_(true));
      er.push_back(e0[static_cast<size_t>(g)].clone().requires_grad_(true));
    }
    auto sf = ArchSample::dense(wf), sr = ArchSample::dense(wr);
    if (c.edge_weights) sf.edge_weights = ef, sr.edge_weights = er;
    const auto out_f = fused->forward(x, sf), out_r = reference->forward(x, sr);
    const std::string mode = training ? " (training)" : " (evaluation)";
    expect_close(out_f, out_r, "logits" + mode);
    torch::nn::functional::cross_entropy(out_f, y).backward();
    torch::nn::functional::cross_entropy(out_r, y).backward();
    for (int g = 0; g < 2; ++g) {
      expect_close(wf[static_cast<size_t>(g)].grad(), wr[static_cast<size_t>(g)].grad(), "mixing-weight gradient" + mode);
      if (c.edge_weights)
        expect_close(ef[static_cast<size_t>(g)].grad(), er[static_cast<size_t>(g)].grad(), "edge-weight gradient" + mode);
    }
    auto pr = reference->named_parameters();
    size_t compared = 0;
    for (const auto& kv : fused->named_parameters()) {
      const auto& gr = pr[kv.key()].grad();
      if (!gr.defined()) {  // a parameter the loss does not reach must not be reached in the fused net either
        EXPECT_FALSE(kv.value().grad().defined() && kv.value().grad().abs().max().item<double>() > 0) << kv.key();
        continue;
      }
      expect_close(kv.value().grad(), gr, "gradient of " + kv.key() + mode);
      ++compared;
    }
    EXPECT_GT(compared, 20u);
    auto br = reference->named_buffers();
    for (const auto& kv : fused->named_buffers()) {
      if (kv.value().is_floating_point()) expect_close(kv.value(), br[kv.key()], "buffer " + kv.key() + mode, 1e-2);
      else EXPECT_TRUE(torch::equal(kv.value(), br[kv.key()])) << kv.key() << mode;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DartsFused,
    ::testing::Values(Case{"all_ops", {}}, Case{"no_none", {"max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                                        "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"}},
                      Case{"convolutions_only", {"sep_conv_3x3", "dil_conv_5x5"}},
                      Case{"partial_channels_k2", {}, 2, false, 0, true},
                      Case{"pruned", {}, 1, true},
                      Case{"progressive_k4_pruned_then_k2", {}, 4, true, 2},
                      Case{"edge_weights", {}, 1, false, 0, true},
                      Case{"channels_last", {}, 1, false, 0, false, true},
                      Case{"channels_last_progressive_k4_pruned_then_k2", {}, 4, true, 2, true, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// GDAS's choices with weights run only the chosen operation on each edge (mixed_edge), never the
// fused sum over all operations: with one-hot weights the fused sum would give the same logits but
// other weight gradients (each unchosen weight receives <op_k(x), dL/dy>, not GDAS's sum of dL/dy)
// and would update every operation's BatchNorm statistics, not the chosen one's.
TEST(DartsFusedChoices, GdasChoicesWithWeightsKeepThePerEdgePath) {
  Case c{"all", {}};
  auto fused = make_net(c, 4), reference = make_net(c, 4);
  reference->set_fused(false);
  ArchSample sf, sr;
  std::vector<torch::Tensor> wf, wr;
  for (int g = 0; g < 2; ++g) {
    std::vector<int64_t> choice(DartsCell::kEdges);
    for (int64_t e = 0; e < DartsCell::kEdges; ++e) choice[static_cast<size_t>(e)] = 1 + (e + g) % 7;  // never none
    sf.choices.push_back(choice);
    auto w = torch::zeros({DartsCell::kEdges, 8});
    for (int64_t e = 0; e < DartsCell::kEdges; ++e) w[e][choice[static_cast<size_t>(e)]] = 1.0;
    wf.push_back(w.clone().requires_grad_(true));
    wr.push_back(w.clone().requires_grad_(true));
  }
  sr.choices = sf.choices;
  sf.weights = wf, sr.weights = wr;
  torch::manual_seed(6);
  const auto x = torch::randn({2, 3, 8, 8});
  const auto out_f = fused->forward(x, sf), out_r = reference->forward(x, sr);
  EXPECT_TRUE(torch::equal(out_f, out_r));
  out_f.pow(2).sum().backward();
  out_r.pow(2).sum().backward();
  for (int g = 0; g < 2; ++g) EXPECT_TRUE(torch::equal(wf[static_cast<size_t>(g)].grad(), wr[static_cast<size_t>(g)].grad()));
  auto br = reference->named_buffers();
  for (const auto& kv : fused->named_buffers()) EXPECT_TRUE(torch::equal(kv.value(), br[kv.key()])) << kv.key();
}

}  // namespace
}  // namespace probnas

namespace probnas {
namespace {

// A graph built one edge at a time (PARSEC's paths, GDAS's choices) saves each BatchNorm's
// running statistics for its backward; a fused forward before that backward updates the same
// statistics (the stacked factorized reduce's BatchNorm) and must not invalidate the graph, as
// batch_norm's own update does not. PARSEC's path test forwards so; this failed with "modified by
// an inplace operation" when the fused cell wrote its statistics back in a way autograd sees.
TEST(DartsFusedGraphs, AnEarlierGraphSurvivesAFusedForwardBeforeItsBackward) {
  for (const bool channels_last : {false, true}) {
    Case c{"all", {}};
    auto net = make_net(c, 4);
    net->set_channels_last(channels_last);
    net->train();
    const auto& shape = net->arch_shape();
    const int64_t skip = std::find(shape[0].ops.begin(), shape[0].ops.end(), "skip_connect") - shape[0].ops.begin();
    // skip_connect everywhere: the reduction cell's strided edges run their factorized reduces.
    std::vector<std::vector<int64_t>> choices(2, std::vector<int64_t>(DartsCell::kEdges, skip));
    const auto x = torch::randn({4, 3, 8, 8});
    const auto first = net->forward(x, ArchSample::discrete(choices));
    std::vector<torch::Tensor> w;
    for (int g = 0; g < 2; ++g) w.push_back(torch::softmax(torch::randn({DartsCell::kEdges, shape[0].num_ops()}), -1));
    const auto second = net->forward(x, ArchSample::dense(w));
    EXPECT_NO_THROW(first.square().sum().backward()) << (channels_last ? "channels-last" : "NCHW");
    EXPECT_NO_THROW(second.square().sum().backward());
  }
}

}  // namespace
}  // namespace probnas
