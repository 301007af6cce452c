// GibbsNAS in the method registry: its [gibbs] options and its factory.
#include "probnas/core/error.h"
#include "probnas/method/gibbsnas/gibbsnas.h"
#include "probnas/method/registry.h"

namespace probnas {
namespace {

const OptionBinding<GibbsOptions>& gibbs_section() {
  using O = GibbsOptions;
  static const auto b =
      OptionBinding<O>()
          .integer("gibbs.order", &O::order, 2, 1, 2,
                   "GibbsNAS: 2 samples the weights and alpha from their quasi-Newton Gaussians; 1 trains the weights "
                   "by momentum SGD (search.lr ...) and samples alpha")
          .boolean("gibbs.sample_weights", &O::sample_weights, true,
                   "GibbsNAS order 2: sample the weights (false: step to the Gaussian's mean, the mean-only ablation)")
          .boolean("gibbs.sample_arch", &O::sample_arch, true,
                   "GibbsNAS: sample alpha (false: step to the Gaussian's mean)")
          .real("gibbs.weight_step", &O::weight_step, 5, 0, 1e6,
                "GibbsNAS order 2: scale eta_w of the weights' mean step -eta_w D b at the start (1: the Gaussian's "
                "mean); it follows search.lr's cosine schedule")
          .real("gibbs.max_step", &O::max_step, 10, 0, 1e6,
                "GibbsNAS order 2: trust region of the weights' step, eta_w d_i <= this x search.lr's schedule for "
                "every coordinate i (0: none)")
          .real("gibbs.weight_noise", &O::weight_noise, 1e-4, 0, 1e6,
                "GibbsNAS order 2: tau_w, the weights' noise covariance is tau_w D")
          .real("gibbs.noise_clip", &O::noise_clip, 1, 0, 1e6,
                "GibbsNAS order 2: the weights' noise norm is clipped to this times the mean step's norm (0: no "
                "clipping)")
          .integer("gibbs.history", &O::history, 5, 1, 1000,
                   "GibbsNAS order 2: curvature pairs kept by the weights' diagonal inverse-Hessian estimate D")
          .integer("gibbs.pair_every", &O::pair_every, 1, 1, 1000000,
                   "GibbsNAS: a curvature pair for H (and D, order 2) every N steps, on the step's own batches (costs "
                   "one more gradient each)")
          .real("gibbs.arch_step", &O::arch_step, 0.01, 0, 1e6,
                "GibbsNAS: scale eta_a of alpha's mean step -eta_a H b (H: dense BFGS)")
          .real("gibbs.arch_noise", &O::arch_noise, 1e-6, 0, 1e6, "GibbsNAS: tau_a, alpha's noise covariance is tau_a H")
          .real("gibbs.arch_max_inverse_curvature", &O::arch_max_inverse_curvature, 1000, 0, 1e12,
                "GibbsNAS: eigenvalues of H are capped at this (0: no cap)")
          .real("gibbs.arch_prior_decay", &O::arch_prior_decay, 1e-4, 0, 1,
                "GibbsNAS: decay (1 / prior variance) of alpha's Gaussian prior; the weights' is search.weight_decay");
  return b;
}

}  // namespace

MethodEntry gibbsnas_method_entry() {
  MethodEntry e = method_entry("gibbsnas", "GibbsNAS",
                               "GibbsNAS (Xue et al., AAAI 2021): Gibbs sampling of the weights and alpha from "
                               "quasi-Newton Gaussians",
                               {"nb201", "darts"}, gibbs_section());
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    // The Adam options of alpha are unused by the sampler; its decay keeps DARTS's default.
    GradientMethodOptions o = gradient_method_options(b, 1e-3);
    refuse_progressive(b.shared.progressive, "GibbsNAS (which samples alpha and the weights as they are)");
    PROBNAS_CHECK(!o.edge_norm, "search.edge_norm = true: GibbsNAS samples alpha alone (leave it false)");
    return std::make_unique<GibbsNas>(b.net, o, b.options<GibbsOptions>(), b.key);
  };
  return e;
}

}  // namespace probnas
