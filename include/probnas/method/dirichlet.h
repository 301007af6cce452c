#pragma once
// Reparameterised Dirichlet draws for DrNAS: theta ~ Dir(beta) along the last dimension, with
// the pathwise (implicit reparameterisation) gradient d theta / d beta of LibTorch's
// _dirichlet_grad, inside a custom autograd function.
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace probnas {

// One independent draw per row of `concentration` [..., K]; differentiable w.r.t. it.
torch::Tensor dirichlet_rsample(const torch::Tensor& concentration, at::Generator generator);

}  // namespace probnas
