#include "probnas/method/dirichlet.h"

#include <torch/torch.h>

#include <limits>

#include "probnas/core/error.h"
#include "probnas/core/host_draws.h"

namespace probnas {

torch::Tensor gamma_noise(int64_t count, at::Generator& generator, torch::ScalarType dtype) {
  PROBNAS_CHECK(generator.device().is_cpu(), "internal: gamma noise from a ", generator.device().str(),
                " generator (draws are made on the host)");
  // Drawn in float64 whatever the dtype, so float32 and float64 runs see the same candidates.
  const auto normals = torch::randn({kGammaCandidates, count}, generator, torch::kFloat64);
  const auto uniforms = 1.0 - torch::rand({kGammaCandidates + 1, count}, generator, torch::kFloat64);  // (0, 1]
  return torch::cat({normals, uniforms}).to(dtype);
}

namespace {
// The smallest positive normal number of `t`'s dtype: draws are clamped to it, as LibTorch's.
double tiny(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
}
}  // namespace

torch::Tensor gamma_from_noise(const torch::Tensor& alpha_in, const torch::Tensor& noise) {
  const int64_t n = alpha_in.numel();
  PROBNAS_CHECK(noise.dim() == 2 && noise.size(0) == 2 * kGammaCandidates + 1 && noise.size(1) == n,
                "internal: gamma noise of shape ", noise.sizes(), " for ", n, " draws");
  const auto alpha = alpha_in.reshape({1, n});
  const auto x = noise.narrow(0, 0, kGammaCandidates);
  const auto u = noise.narrow(0, kGammaCandidates, kGammaCandidates);
  const auto boost_u = noise.narrow(0, 2 * kGammaCandidates, 1);
  // Marsaglia & Tsang (2000) for a >= 1: d = a - 1/3, c = 1 / sqrt(9 d), v = (1 + c x)^3; accept
  // when v > 0 and log u < x^2 / 2 + d - d v + d log v; the draw is d v.
  const auto boost = alpha < 1;
  const auto a = torch::where(boost, alpha + 1, alpha);
  const auto d = a - 1.0 / 3.0;
  const auto c = (9 * d).rsqrt();
  const auto v = (1 + c * x).pow(3);
  const auto positive = v > 0;
  const auto log_v = torch::where(positive, v, torch::ones_like(v)).log();
  const auto accept = positive & (u.log() < 0.5 * x * x + d - d * v + d * log_v);
  // The first accepted candidate of each element (none accepted: v = 1, the candidate at x = 0).
  const auto first = accept & (accept.to(torch::kInt32).cumsum(0) == 1);
  const auto chosen_v = torch::where(accept.any(0, true), (first.to(v.scalar_type()) * v).sum(0, true),
                                     torch::ones_like(d));
  auto g = d * chosen_v;
  // Gamma(alpha) = Gamma(alpha + 1) U^(1 / alpha) for alpha < 1.
  g = torch::where(boost, g * boost_u.pow(alpha.reciprocal()), g);
  return g.clamp_min(tiny(g)).reshape(alpha_in.sizes());
}

torch::Tensor dirichlet_sample(const torch::Tensor& concentration, const torch::Tensor& noise) {
  torch::NoGradGuard no_grad;
  const auto g = gamma_from_noise(concentration.detach(), noise);
  return (g / g.sum(-1, true)).clamp_min(tiny(g));
}

namespace {

struct DirichletSample : public torch::autograd::Function<DirichletSample> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& concentration,
                               const torch::Tensor& noise) {
    auto x = dirichlet_sample(concentration, noise);
    ctx->save_for_backward({x, concentration});
    return x;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& concentration = saved[1];
    const auto& g = grad_outputs[0];
    // _dirichlet_grad gives d x_i / d alpha_i of the marginal Beta(alpha_i, total - alpha_i) (the
    // implicit reparameterisation gradient: a function of the draw alone, whatever sampler made
    // it); the projection keeps the draw on the simplex (as torch.distributions.Dirichlet.rsample).
    auto total = concentration.sum(-1, true).expand_as(concentration);
    auto grad = at::_dirichlet_grad(x, concentration, total);
    return {grad * (g - (x * g).sum(-1, true)), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dirichlet_rsample(const torch::Tensor& concentration, const torch::Tensor& noise) {
  return DirichletSample::apply(concentration, noise);
}

torch::Tensor dirichlet_rsample(const torch::Tensor& concentration, at::Generator generator) {
  const auto noise = gamma_noise(concentration.numel(), generator, concentration.scalar_type());
  return dirichlet_rsample(concentration, host_to_device(noise, concentration.device()));
}

}  // namespace probnas
