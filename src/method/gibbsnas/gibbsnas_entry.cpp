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
          .real("gibbs.weight_lr", &O::weight_lr, 0.1, 0, 1.999,
                "GibbsNAS order 2: learning rate eta_w of the weights' mean step -eta_w H_w b (the paper's 0.1; 1 "
                "is the Gaussian's mean); it decays on a cosine like search.lr")
          .real("gibbs.weight_prior_decay", &O::weight_prior_decay, 1e-4, 0, 1,
                "GibbsNAS: decay (1 / prior variance) of the weights' Gaussian prior (the paper's 1e-4; order 1's SGD "
                "uses it as its weight decay, in place of search.weight_decay)")
          .real("gibbs.weight_noise", &O::weight_noise, 1e-4, 0, 1e6,
                "GibbsNAS order 2: tau_w, the weights' noise covariance is tau_w H_w")
          .real("gibbs.noise_clip", &O::noise_clip, 1, 0, 1e6,
                "GibbsNAS order 2: the weights' noise norm is clipped to this times the mean step's norm (the paper's "
                "sampling clipping; 0: none)")
          .integer("gibbs.history", &O::history, 5, 1, 1000,
                   "GibbsNAS order 2: curvature pairs kept by the weights' L-BFGS inverse Hessian H_w")
          .real("gibbs.curvature_average", &O::curvature_average, 0.1, 1e-6, 1,
                "GibbsNAS order 2: weight of each step's Gauss-Newton diagonal estimate in the running average that "
                "seeds H_w (Becker-LeCun's diagonal)")
          .real("gibbs.curvature_damping", &O::curvature_damping, 0.1, 0, 1e6,
                "GibbsNAS order 2: damping mu of H_w's initial matrix (h + weight_prior_decay + mu)^-1, as in LeCun et "
                "al.'s stochastic diagonal Levenberg-Marquardt method")
          .integer("gibbs.pair_every", &O::pair_every, 1, 1, 1000000,
                   "GibbsNAS: a curvature pair for H (and D, order 2) every N steps, on the step's own batches (costs "
                   "one more gradient each)")
          .real("gibbs.arch_lr", &O::arch_lr, 0.1, 0, 1.999,
                "GibbsNAS: learning rate eta_a of alpha's mean step -eta_a H_a b (H_a: dense BFGS; the paper's initial "
                "0.1)")
          .choice("gibbs.arch_lr_schedule", &O::arch_lr_schedule, "cosine", {"cosine", "constant"},
                  "GibbsNAS: eta_a's schedule over the epochs: cosine like gibbs.weight_lr (down to gibbs.arch_lr x "
                  "search.lr_min / search.lr), or constant (probnas before 2026-12-07)")
          .real("gibbs.arch_noise", &O::arch_noise, 1e-6, 0, 1e6, "GibbsNAS: tau_a, alpha's noise covariance is tau_a H")
          .real("gibbs.arch_max_inverse_curvature", &O::arch_max_inverse_curvature, 0, 0, 1e12,
                "GibbsNAS: eigenvalues of H_a are capped at this (0: at alpha's prior variance 1 / "
                "gibbs.arch_prior_decay, the bound the paper's model implies)")
          .real("gibbs.arch_prior_decay", &O::arch_prior_decay, 1e-4, 0, 1,
                "GibbsNAS: decay (1 / prior variance) of alpha's Gaussian prior (the paper's 1e-4)");
  return b;
}

}  // namespace

MethodEntry gibbsnas_method_entry() {
  MethodEntry e = method_entry("gibbsnas", "GibbsNAS",
                               "GibbsNAS (Xue et al., AAAI 2021): Gibbs sampling of the weights and alpha from "
                               "quasi-Newton Gaussians",
                               {"nb201", "darts"}, gibbs_section());
  e.variant_keys = {"gibbs.order", "gibbs.arch_lr_schedule"};
  e.variant_absent = {{"gibbs.arch_lr_schedule", "constant"}};  // what runs before the option did
  e.make = [](const MethodBuild& b) -> std::unique_ptr<SearchMethod> {
    // The Adam options of alpha are unused by the sampler; its decay keeps DARTS's default.
    GradientMethodOptions o = gradient_method_options(b, 1e-3);
    refuse_progressive(b.shared.progressive, "GibbsNAS (which samples alpha and the weights as they are)");
    PROBNAS_CHECK(!o.edge_norm, "search.edge_norm = true: GibbsNAS samples alpha alone (leave it false)");
    const auto& gibbs = b.options<GibbsOptions>();
    o.weights.weight_decay = gibbs.weight_prior_decay;  // order 1's SGD: the prior's decay
    return std::make_unique<GibbsNas>(b.net, o, gibbs, b.key);
  };
  return e;
}

}  // namespace probnas
