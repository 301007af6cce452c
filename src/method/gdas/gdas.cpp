#include "probnas/method/gdas/gdas.h"

#include <torch/torch.h>

#include "probnas/core/error.h"
#include "probnas/core/host_draws.h"

namespace probnas {

double gdas_tau(double tau_max, double tau_min, int64_t epoch, int64_t epochs) {
  if (epochs <= 1) return tau_max;
  // tau_max - (tau_max - tau_min) * t written as a convex combination, so that both ends come out
  // exactly (10 - 9.9 is 0.09999999999999964 in double).
  const double t = static_cast<double>(epoch) / static_cast<double>(epochs - 1);
  return tau_max * (1 - t) + tau_min * t;
}

GumbelSoftmax gumbel_softmax(const torch::Tensor& alpha, const torch::Tensor& gumbel, double tau) {
  GumbelSoftmax s;
  const auto perturbed = torch::log_softmax(alpha, -1) + gumbel;
  s.soft = torch::softmax(perturbed / tau, -1);
  // The argmax of the perturbed logits, not of `soft`: the same for any tau > 0 (the Gumbel-max
  // draw from softmax(alpha)), and free of ties where a small tau saturates the softmax.
  s.index = perturbed.detach().argmax(-1);
  auto one_hot = torch::zeros(s.soft.sizes(), s.soft.options());
  one_hot.scatter_(-1, s.index.unsqueeze(-1), 1.0);
  s.hard = one_hot + (s.soft - s.soft.detach());
  return s;
}

Gdas::Gdas(std::shared_ptr<Supernet> net, GradientMethodOptions options, GdasOptions gdas, const RngKey& key)
    : GradientMethod(std::move(net), options, key), gdas_(gdas) {
  PROBNAS_CHECK(gdas_.tau_min > 0, "gdas.tau_min = ", gdas_.tau_min, " must be positive");
  PROBNAS_CHECK(gdas_.tau_max >= gdas_.tau_min, "gdas.tau_max = ", gdas_.tau_max, " is below gdas.tau_min = ",
                gdas_.tau_min);
}

void Gdas::begin_epoch(int64_t epoch, int64_t epochs) {
  GradientMethod::begin_epoch(epoch, epochs);
  epochs_ = epochs;
}

double Gdas::tau() const { return gdas_tau(gdas_.tau_max, gdas_.tau_min, epoch_, epochs_); }

torch::Tensor Gdas::exponentials(const RngKey& key, int attempt) const {
  // The Exp(1) draws of every group, group after group from one keyed host generator; attempt k
  // continues it past the k earlier attempts' draws.
  auto gen = make_generator(key);
  std::vector<torch::Tensor> e;
  for (int a = 0; a <= attempt; ++a) {
    e.clear();
    for (const auto& alpha : arch_)
      e.push_back(torch::empty(alpha.sizes(), torch::TensorOptions().dtype(alpha.scalar_type())).exponential_(1.0, gen)
                      .reshape({-1}));
  }
  return torch::cat(e);
}

torch::Tensor Gdas::host_draw(const RngKey& key) const { return exponentials(key, 0); }

Gdas::Draw Gdas::draw(const RngKey& key) const {
  const auto device = arch_.front().device();
  const double t = tau();
  // GDAS draws again when the noise or the sample is not finite (an Exp(1) draw of exactly 0 gives
  // infinite noise). The next attempt continues the same keyed generator, so it is reproducible too.
  constexpr int kAttempts = 100;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    Draw d;
    std::vector<torch::Tensor> to_read;
    auto finite = torch::ones({1}, torch::TensorOptions().dtype(torch::kBool).device(device));
    // The first attempt's noise was staged before the step (or is drawn now); later ones are drawn now.
    const auto e = attempt == 0 ? device_draw(key) : host_to_device(exponentials(key, attempt), device);
    int64_t offset = 0;
    for (const auto& alpha : arch_) {
      auto g = -e.narrow(0, offset, alpha.numel()).view(alpha.sizes()).log();
      offset += alpha.numel();
      auto s = gumbel_softmax(alpha, g, t);
      finite = finite & torch::isfinite(g).all() & torch::isfinite(s.soft.detach()).all();
      to_read.push_back(s.index);
      d.gumbel.push_back(std::move(g));
      d.groups.push_back(std::move(s));
    }
    to_read.push_back(finite.to(torch::kInt64));
    // The one host read of a GDAS forward pass (the indices of every group and the finiteness flag
    // in one copy): the chosen operations decide which modules run, so the host must know them.
    const auto host = torch::cat(to_read).to(torch::kCPU);
    const auto* v = host.data_ptr<int64_t>();
    if (v[host.numel() - 1] == 0) continue;
    int64_t row = 0;
    for (const auto& alpha : arch_) {
      d.choices.emplace_back(v + row, v + row + alpha.size(0));
      row += alpha.size(0);
    }
    return d;
  }
  PROBNAS_FAIL("GDAS: no finite Gumbel-softmax sample in ", kAttempts,
               " draws; the architecture parameters alpha are not finite (diverged search?)");
}

ArchSample Gdas::mixing_weights(const RngKey& key, bool differentiable) {
  if (!differentiable) {
    torch::NoGradGuard no_grad;
    return ArchSample::discrete(draw(key).choices);
  }
  auto d = draw(key);
  std::vector<torch::Tensor> hard;
  for (auto& g : d.groups) hard.push_back(std::move(g.hard));
  return ArchSample::chosen(std::move(d.choices), std::move(hard));
}

ArchSample Gdas::sample(const RngKey& key) { return with_edge_weights(mixing_weights(key, false), false); }

std::vector<torch::Tensor> Gdas::expected_weights() const {
  std::vector<torch::Tensor> w;
  for (const auto& a : arch_) w.push_back(torch::softmax(a.detach(), -1));
  return w;
}

std::vector<std::pair<std::string, double>> Gdas::scalars() const {
  return {{"arch_entropy", mean_edge_entropy(expected_weights())}, {"tau", tau()}};
}

}  // namespace probnas
