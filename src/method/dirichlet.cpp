#include "probnas/method/dirichlet.h"

#include <torch/torch.h>

namespace probnas {
namespace {

struct DirichletSample : public torch::autograd::Function<DirichletSample> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& concentration,
                               at::Generator generator) {
    auto x = at::_sample_dirichlet(concentration, generator);
    ctx->save_for_backward({x, concentration});
    return x;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& concentration = saved[1];
    const auto& g = grad_outputs[0];
    // _dirichlet_grad gives d x_i / d alpha_i of the marginal Beta(alpha_i, total - alpha_i);
    // the projection keeps the draw on the simplex (as torch.distributions.Dirichlet.rsample).
    auto total = concentration.sum(-1, true).expand_as(concentration);
    auto grad = at::_dirichlet_grad(x, concentration, total);
    return {grad * (g - (x * g).sum(-1, true)), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor dirichlet_rsample(const torch::Tensor& concentration, at::Generator generator) {
  return DirichletSample::apply(concentration, std::move(generator));
}

}  // namespace probnas
