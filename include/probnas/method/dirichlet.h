#pragma once
// Reparameterised Dirichlet draws for DrNAS: theta ~ Dir(beta) along the last dimension, with
// the pathwise (implicit reparameterisation) gradient d theta / d beta of LibTorch's
// _dirichlet_grad, inside a custom autograd function.
//
// The randomness is drawn on the host, from a keyed CPU generator, before the draw (see
// core/host_draws.h): for each concentration, kGammaCandidates standard normals and as many
// uniforms for Marsaglia and Tsang's gamma rejection sampler, and one uniform for the boost of a
// concentration below 1 (Gamma(a) = Gamma(a + 1) U^(1/a)). The device then takes each element's
// first accepted candidate, with fixed shapes and no loop: the same numbers on any device, and a
// draw a CUDA graph can replay. Each candidate is accepted with probability above 0.95 for every
// shape (a + 1 >= 1 after the boost), so all 8 are rejected with probability below 0.05^8 = 4e-11
// per element; such an element takes the candidate at x = 0 (the gamma's value d = a - 1/3, close
// to its median). That is the sampler's one approximation, far below any test's resolution.
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace probnas {

inline constexpr int64_t kGammaCandidates = 8;

// The host noise of `count` gamma draws: [2 kGammaCandidates + 1, count] of `dtype` on the CPU
// (normals, then uniforms in (0, 1], then the boost uniforms in (0, 1]), from `generator` (a CPU
// generator).
torch::Tensor gamma_noise(int64_t count, at::Generator& generator, torch::ScalarType dtype);

// Gamma(alpha, 1) draws from `noise` (gamma_noise of alpha.numel(), on alpha's device and of its
// dtype), in alpha's shape; not differentiable.
torch::Tensor gamma_from_noise(const torch::Tensor& alpha, const torch::Tensor& noise);

// One independent draw per row of `concentration` [..., K] from `noise` (gamma_noise of
// concentration.numel()); differentiable w.r.t. the concentration.
torch::Tensor dirichlet_rsample(const torch::Tensor& concentration, const torch::Tensor& noise);

// The same with the noise drawn now from `generator` (a CPU generator) and copied to the
// concentration's device.
torch::Tensor dirichlet_rsample(const torch::Tensor& concentration, at::Generator generator);

// The draw without a graph (no gradient), from `noise`.
torch::Tensor dirichlet_sample(const torch::Tensor& concentration, const torch::Tensor& noise);

}  // namespace probnas
