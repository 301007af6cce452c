#include "probnas/space/multibranch.h"

#include <algorithm>
#include <iomanip>
#include <set>
#include <sstream>

#include "probnas/core/config.h"
#include "probnas/core/error.h"

namespace probnas {

namespace nn = torch::nn;

std::vector<int64_t> parse_kernels(const std::string& text) {
  std::vector<int64_t> kernels;
  std::set<int64_t> seen;
  for (const auto& item : split_list(text)) {
    int64_t k = 0;
    size_t used = 0;
    try {
      k = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    PROBNAS_CHECK(used == item.size() && k >= 1 && k <= 15 && k % 2 == 1, "space.kernels = ", text, ": '", item,
                  "' is not an odd kernel size from 1 to 15");
    PROBNAS_CHECK(seen.insert(k).second, "space.kernels = ", text, ": kernel size ", k, " appears twice");
    kernels.push_back(k);
  }
  PROBNAS_CHECK(!kernels.empty() && kernels.size() <= 4, "space.kernels = ", text,
                ": the multi-branch space takes 1 to 4 kernel sizes (one branch each)");
  return kernels;
}

namespace {
torch::Tensor gate_view(const torch::Tensor& g) {
  return g.dim() == 1 ? g.view({1, -1, 1, 1}) : g.view({g.size(0), -1, 1, 1});
}
// 1 where a gate vector has an open gate, 0 where all are closed: [1,1,1,1] or [B,1,1,1].
torch::Tensor any_open(const torch::Tensor& g) {
  auto open = (g != 0).any(-1).to(g.scalar_type());
  return open.dim() == 0 ? open.view({1, 1, 1, 1}) : open.view({-1, 1, 1, 1});
}
}  // namespace

GatedBranch::GatedBranch(int64_t c_in, int64_t c_out, int64_t k, int64_t s) : kernel(k), stride(s) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(c_in, c_out, k).stride(s).padding(k / 2).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(c_out));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(c_out, c_out, k).padding(k / 2).bias(false)));
  bn2 = register_module("bn2", nn::BatchNorm2d(c_out));
}

torch::Tensor GatedBranch::forward(const torch::Tensor& relu_x, const torch::Tensor& gate1, const torch::Tensor& gate2) {
  auto h = gate1.defined() ? relu_x * gate_view(gate1) : relu_x;
  h = torch::relu(bn1->forward(conv1->forward(h)));
  if (gate2.defined()) h = h * gate_view(gate2);
  h = bn2->forward(conv2->forward(h));
  if (gate1.defined()) h = h * any_open(gate1);
  if (gate2.defined()) h = h * any_open(gate2);
  return h;
}

MultiBranchBlock::MultiBranchBlock(int64_t c_in, int64_t c_out, int64_t stride, const std::vector<int64_t>& kernels) {
  for (const int64_t k : kernels)
    branches.push_back(register_module("k" + std::to_string(k), std::make_shared<GatedBranch>(c_in, c_out, k, stride)));
  if (stride != 1 || c_in != c_out) {
    shortcut_conv = register_module("shortcut_conv", nn::Conv2d(nn::Conv2dOptions(c_in, c_out, 1).stride(stride).bias(false)));
    shortcut_bn = register_module("shortcut_bn", nn::BatchNorm2d(c_out));
  }
}

torch::Tensor MultiBranchBlock::forward(const torch::Tensor& x, const std::vector<torch::Tensor>& gates,
                                        const std::pair<torch::Tensor, torch::Tensor>& shake) {
  const auto r = torch::relu(x);
  const bool shaken = shake.first.defined();
  torch::Tensor sum, forward_only;
  for (size_t b = 0; b < branches.size(); ++b) {
    auto h = branches[b]->forward(r, gates.empty() ? torch::Tensor() : gates[2 * b],
                                  gates.empty() ? torch::Tensor() : gates[2 * b + 1]);
    if (shaken) {
      // beta_b h_b carries the gradient; (alpha_b - beta_b) h_b, detached, makes the value alpha_b h_b.
      const auto i = static_cast<int64_t>(b);
      const auto alpha = shake.first.select(1, i).view({-1, 1, 1, 1}).to(h.scalar_type());
      const auto beta = shake.second.select(1, i).view({-1, 1, 1, 1}).to(h.scalar_type());
      const auto rest = ((alpha - beta) * h).detach();
      h = beta * h;
      forward_only = forward_only.defined() ? forward_only + rest : rest;
    }
    sum = sum.defined() ? sum + h : h;
  }
  sum = shaken ? sum + forward_only : sum / static_cast<double>(branches.size());
  const auto shortcut = shortcut_conv ? shortcut_bn->forward(shortcut_conv->forward(r)) : x;
  return shortcut + sum;
}

MultiBranchNet::MultiBranchNet(const SpaceOptions& o) : kernels_(o.kernels) {
  PROBNAS_CHECK(o.channels >= 1, "space.channels = ", o.channels, " must be at least 1");
  PROBNAS_CHECK(o.cells_per_stage >= 1, "space.cells_per_stage = ", o.cells_per_stage, " must be at least 1");
  if (kernels_.empty()) kernels_ = {1, 3, 5, 7};
  const int64_t C = o.channels, N = o.cells_per_stage;
  stem_conv_ = register_module("stem_conv", nn::Conv2d(nn::Conv2dOptions(o.input_channels, C, 3).padding(1).bias(false)));
  stem_bn_ = register_module("stem_bn", nn::BatchNorm2d(C));
  ArchGroup group;
  group.name = "gates";
  group.ops = {"keep", "drop"};
  int64_t c_prev = C;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t c = C << stage;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t stride = stage > 0 && i == 0 ? 2 : 1;
      const std::string name = "s" + std::to_string(stage + 1) + "b" + std::to_string(i + 1);
      blocks_.push_back(register_module(name, std::make_shared<MultiBranchBlock>(c_prev, c, stride, kernels_)));
      for (const int64_t k : kernels_) {
        for (int conv = 1; conv <= 2; ++conv) {
          GateGroup g;
          g.name = "s" + std::to_string(stage + 1) + ".b" + std::to_string(i + 1) + ".k" + std::to_string(k) + ".conv" +
                   std::to_string(conv);
          g.channels = conv == 1 ? c_prev : c;
          g.kernel = k;
          groups_.push_back(g);
          group.edge_names.push_back(g.name);
        }
      }
      c_prev = c;
    }
  }
  fc_ = register_module("fc", nn::Linear(c_prev, o.classes));
  shape_ = {group};
}

int64_t MultiBranchNet::gated_channels() const {
  int64_t n = 0;
  for (const auto& g : groups_) n += g.channels;
  return n;
}

std::vector<torch::Tensor> MultiBranchNet::gated_weights() const {
  std::vector<torch::Tensor> w;
  for (const auto& block : blocks_)
    for (const auto& branch : block->branches) {
      w.push_back(branch->conv1->weight);
      w.push_back(branch->conv2->weight);
    }
  return w;
}

torch::Tensor MultiBranchNet::forward(const torch::Tensor& x, const ArchSample& arch) {
  PROBNAS_CHECK(!arch.has_choices() && !arch.has_weights() && arch.edge_weights.empty(),
                "the multi-branch space takes channel gates (PGNAS), not operation choices or mixing weights");
  PROBNAS_CHECK(arch.gates.empty() || arch.gates.size() == groups_.size(), "the multi-branch network has ",
                groups_.size(), " gated convolutions; got ", arch.gates.size(), " gate tensors");
  for (size_t g = 0; g < arch.gates.size(); ++g)
    PROBNAS_CHECK(arch.gates[g].size(-1) == groups_[g].channels && arch.gates[g].dim() <= 2 &&
                      (arch.gates[g].dim() == 1 || arch.gates[g].size(0) == x.size(0)),
                  "gates of ", groups_[g].name, " must be [", groups_[g].channels, "] or [batch, ",
                  groups_[g].channels, "], got ", arch.gates[g].sizes());
  PROBNAS_CHECK(arch.shake.empty() || arch.shake.size() == blocks_.size(), "the multi-branch network has ",
                blocks_.size(), " blocks; got ", arch.shake.size(), " shake-shake weight pairs");
  for (const auto& [forward, backward] : arch.shake)
    PROBNAS_CHECK(forward.dim() == 2 && forward.size(0) == x.size(0) && forward.size(1) == static_cast<int64_t>(kernels_.size()) &&
                      backward.sizes() == forward.sizes(),
                  "shake-shake weights must be [batch, branches] = [", x.size(0), ", ", kernels_.size(), "], got ",
                  forward.sizes(), " and ", backward.sizes());
  auto h = torch::relu(stem_bn_->forward(stem_conv_->forward(in_memory_format(x))));
  size_t next = 0;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const auto& block = blocks_[i];
    const size_t n = 2 * block->branches.size();
    std::vector<torch::Tensor> gates;
    if (!arch.gates.empty()) gates.assign(arch.gates.begin() + static_cast<std::ptrdiff_t>(next),
                                          arch.gates.begin() + static_cast<std::ptrdiff_t>(next + n));
    h = block->forward(h, gates, arch.shake.empty() ? std::pair<torch::Tensor, torch::Tensor>() : arch.shake[i]);
    next += n;
  }
  h = torch::adaptive_avg_pool2d(torch::relu(h), {1, 1}).flatten(1);
  return fc_->forward(h);
}

Genotype MultiBranchNet::derive(const std::vector<torch::Tensor>& probs) const {
  PROBNAS_CHECK(probs.size() == 1 && probs[0].size(0) == static_cast<int64_t>(groups_.size()),
                "the multi-branch space needs one [", groups_.size(), ", 2] keep/drop tensor");
  const auto p = probs[0].detach().to(torch::kCPU, torch::kFloat64).contiguous();
  Genotype g;
  g.space = space_name();
  std::ostringstream text;
  text << "multibranch(keep:";
  for (size_t i = 0; i < groups_.size(); ++i) {
    const double keep = p[static_cast<int64_t>(i)][0].item<double>();
    GenotypeEdge e;
    e.group = "gates";
    e.edge = groups_[i].name;
    e.op = keep >= 0.5 ? "keep" : "drop";
    e.probs = {{"keep", keep}, {"drop", 1 - keep}};
    g.edges.push_back(e);
    text << (i ? " " : "") << groups_[i].name << "=" << std::fixed << std::setprecision(2) << keep;
  }
  text << ")";
  g.text = text.str();
  return g;
}

namespace {
PrunedConvBn cut(const nn::Conv2d& conv, const nn::BatchNorm2d& bn, const torch::Tensor& in_keep,
                 const torch::Tensor& in_scale, const torch::Tensor& out_keep) {
  PrunedConvBn c;
  auto w = conv->weight.detach();
  if (out_keep.defined()) w = w.index_select(0, out_keep);
  if (in_keep.defined()) w = w.index_select(1, in_keep);
  if (in_scale.defined()) w = w * in_scale.to(w.scalar_type()).view({1, -1, 1, 1});
  c.weight = w.contiguous().clone();
  c.stride = (*conv->options.stride())[0];
  c.padding = c.weight.size(-1) / 2;  // every convolution here pads k / 2
  auto take = [&](const torch::Tensor& t) { return (out_keep.defined() ? t.detach().index_select(0, out_keep) : t.detach()).clone(); };
  c.bn_weight = take(bn->weight);
  c.bn_bias = take(bn->bias);
  c.bn_mean = take(bn->running_mean);
  c.bn_var = take(bn->running_var);
  return c;
}
}  // namespace

PrunedNet MultiBranchNet::prune(const std::vector<torch::Tensor>& gates) const {
  torch::NoGradGuard no_grad;
  PROBNAS_CHECK(gates.size() == groups_.size(), "a candidate needs gates for ", groups_.size(),
                " convolutions, got ", gates.size());
  PrunedNet net;
  net.stem = cut(stem_conv_, stem_bn_, {}, {}, {});
  net.bn_eps = stem_bn_->options.eps();
  size_t next = 0;
  for (const auto& block : blocks_) {
    PrunedBlock pb;
    pb.total_branches = static_cast<int64_t>(block->branches.size());
    for (const auto& branch : block->branches) {
      const auto g1 = gates[next].detach().to(torch::kCPU, torch::kFloat64);
      const auto g2 = gates[next + 1].detach().to(torch::kCPU, torch::kFloat64);
      PROBNAS_CHECK(g1.dim() == 1 && g1.numel() == groups_[next].channels && g2.dim() == 1 &&
                        g2.numel() == groups_[next + 1].channels,
                    "candidate gates of ", groups_[next].name, " must be one vector per convolution");
      next += 2;
      const auto keep1 = g1.nonzero().flatten(), keep2 = g2.nonzero().flatten();
      if (keep1.numel() == 0 || keep2.numel() == 0) continue;  // removed branch
      const auto device = branch->conv1->weight.device();
      const auto k1 = keep1.to(device), k2 = keep2.to(device);
      PrunedBranch b;
      b.kernel = branch->kernel;
      b.input_channels = k1;
      b.conv1 = cut(branch->conv1, branch->bn1, k1, g1.index_select(0, keep1).to(device), k2);
      b.conv2 = cut(branch->conv2, branch->bn2, k2, g2.index_select(0, keep2).to(device), {});
      pb.branches.push_back(std::move(b));
    }
    if (block->shortcut_conv) {
      pb.projection = true;
      pb.shortcut = cut(block->shortcut_conv, block->shortcut_bn, {}, {}, {});
    }
    net.blocks.push_back(std::move(pb));
  }
  net.fc_weight = fc_->weight.detach().clone();
  net.fc_bias = fc_->bias.detach().clone();
  return net;
}

namespace {
// Conv + BN in evaluation mode, or (`calib` given) normalised by the batch's own statistics, which
// are added to the running sums.
struct Calibration {
  std::map<const PrunedConvBn*, std::pair<torch::Tensor, torch::Tensor>> sums;  // mean, var sums
  int64_t batches = 0;
};

torch::Tensor conv_bn(const PrunedConvBn& c, const torch::Tensor& x, Calibration* calib) {
  auto y = torch::conv2d(x, c.weight, {}, c.stride, c.padding);
  if (!calib) return torch::batch_norm(y, c.bn_weight, c.bn_bias, c.bn_mean, c.bn_var, false, 0.0, 1e-5, true);
  const auto mean = y.mean({0, 2, 3});
  const auto var = y.var({0, 2, 3}, /*unbiased=*/false);
  const int64_t n = y.numel() / y.size(1);
  const auto unbiased = n > 1 ? var * (static_cast<double>(n) / static_cast<double>(n - 1)) : var;
  auto& s = calib->sums[&c];
  s.first = s.first.defined() ? s.first + mean : mean;
  s.second = s.second.defined() ? s.second + unbiased : unbiased;
  return torch::batch_norm(y, c.bn_weight, c.bn_bias, mean, var, false, 0.0, 1e-5, true);
}

torch::Tensor run(const PrunedNet& net, const torch::Tensor& x, Calibration* calib) {
  torch::NoGradGuard no_grad;
  auto h = torch::relu(conv_bn(net.stem, x, calib));
  for (const auto& block : net.blocks) {
    const auto r = torch::relu(h);
    torch::Tensor sum;
    for (const auto& b : block.branches) {
      auto a = torch::relu(conv_bn(b.conv1, r.index_select(1, b.input_channels), calib));
      a = conv_bn(b.conv2, a, calib);
      sum = sum.defined() ? sum + a : a;
    }
    const auto shortcut = block.projection ? conv_bn(block.shortcut, r, calib) : h;
    h = sum.defined() ? shortcut + sum / static_cast<double>(block.total_branches) : shortcut;
  }
  h = torch::adaptive_avg_pool2d(torch::relu(h), {1, 1}).flatten(1);
  return torch::linear(h, net.fc_weight, net.fc_bias);
}

template <typename F>
void each_conv(PrunedNet& net, F f) {
  f(net.stem);
  for (auto& block : net.blocks) {
    for (auto& b : block.branches) {
      f(b.conv1);
      f(b.conv2);
    }
    if (block.projection) f(block.shortcut);
  }
}
}  // namespace

torch::Tensor PrunedNet::forward(const torch::Tensor& x) const { return run(*this, x, nullptr); }

void PrunedNet::recalibrate(const std::vector<torch::Tensor>& batches) {
  if (batches.empty()) return;
  Calibration calib;
  for (const auto& x : batches) run(*this, x, &calib);
  const double n = static_cast<double>(batches.size());
  each_conv(*this, [&](PrunedConvBn& c) {
    const auto& s = calib.sums.at(&c);
    c.bn_mean = s.first / n;
    c.bn_var = s.second / n;
  });
}

int64_t PrunedNet::parameters() const {
  int64_t n = fc_weight.numel() + fc_bias.numel();
  auto add = [&](const PrunedConvBn& c) { n += c.weight.numel() + c.bn_weight.numel() + c.bn_bias.numel(); };
  add(stem);
  for (const auto& block : blocks) {
    for (const auto& b : block.branches) {
      add(b.conv1);
      add(b.conv2);
    }
    if (block.projection) add(block.shortcut);
  }
  return n;
}

PrunedNet PrunedNet::to(const c10::Device& device) const {
  PrunedNet copy = *this;
  each_conv(copy, [&](PrunedConvBn& c) {
    for (auto* t : {&c.weight, &c.bn_weight, &c.bn_bias, &c.bn_mean, &c.bn_var}) *t = t->to(device);
  });
  for (auto& block : copy.blocks)
    for (auto& b : block.branches) b.input_channels = b.input_channels.to(device);
  copy.fc_weight = fc_weight.to(device);
  copy.fc_bias = fc_bias.to(device);
  return copy;
}

namespace {
void save_conv(ckpt::State& s, const PrunedConvBn& c) {
  s.put("weight", c.weight);
  s.put("bn_weight", c.bn_weight);
  s.put("bn_bias", c.bn_bias);
  s.put("bn_running_mean", c.bn_mean);
  s.put("bn_running_var", c.bn_var);
  s.set_attr("stride", c.stride);
  s.set_attr("padding", c.padding);
}
PrunedConvBn load_conv(const ckpt::State& s) {
  PrunedConvBn c;
  c.weight = s.get("weight");
  c.bn_weight = s.get("bn_weight");
  c.bn_bias = s.get("bn_bias");
  c.bn_mean = s.get("bn_running_mean");
  c.bn_var = s.get("bn_running_var");
  c.stride = s.attr_int("stride");
  c.padding = s.attr_int("padding");
  return c;
}
}  // namespace

void PrunedNet::save(ckpt::State& state) const {
  state.set_attr("format", std::string("probnas pruned multi-branch network: y = relu(bn(conv(x))) stem; per block "
                                       "y = shortcut + sum(branches) / total_branches, branch = bn2(conv2(relu(bn1("
                                       "conv1(relu(x)[input_channels]))))); head relu, average pool, fc"));
  state.set_attr("blocks", static_cast<int64_t>(blocks.size()));
  state.set_attr("bn_eps", bn_eps);
  save_conv(state.group("stem"), stem);
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto& g = state.group("block" + std::to_string(i));
    g.set_attr("total_branches", blocks[i].total_branches);
    std::vector<std::string> kernels;
    for (const auto& b : blocks[i].branches) {
      auto& bg = g.group("branch_k" + std::to_string(b.kernel));
      bg.put("input_channels", b.input_channels);
      bg.set_attr("kernel", b.kernel);
      save_conv(bg.group("conv1"), b.conv1);
      save_conv(bg.group("conv2"), b.conv2);
      kernels.push_back(std::to_string(b.kernel));
    }
    g.put_lines("branches", kernels);
    if (blocks[i].projection) save_conv(g.group("shortcut"), blocks[i].shortcut);
  }
  state.group("fc").put("weight", fc_weight);
  state.group("fc").put("bias", fc_bias);
}

PrunedNet PrunedNet::load(const ckpt::State& state) {
  PrunedNet net;
  net.bn_eps = state.attr_real("bn_eps");
  net.stem = load_conv(state.group("stem"));
  const int64_t n = state.attr_int("blocks");
  for (int64_t i = 0; i < n; ++i) {
    const auto& g = state.group("block" + std::to_string(i));
    PrunedBlock pb;
    pb.total_branches = g.attr_int("total_branches");
    for (const auto& k : g.lines("branches")) {
      if (k.empty()) continue;
      const auto& bg = g.group("branch_k" + k);
      PrunedBranch b;
      b.kernel = bg.attr_int("kernel");
      b.input_channels = bg.get("input_channels");
      b.conv1 = load_conv(bg.group("conv1"));
      b.conv2 = load_conv(bg.group("conv2"));
      pb.branches.push_back(std::move(b));
    }
    pb.projection = g.has_group("shortcut");
    if (pb.projection) pb.shortcut = load_conv(g.group("shortcut"));
    net.blocks.push_back(std::move(pb));
  }
  net.fc_weight = state.group("fc").get("weight");
  net.fc_bias = state.group("fc").get("bias");
  return net;
}

}  // namespace probnas
