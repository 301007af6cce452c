#include <torch/torch.h>

#include "probnas/core/config.h"
#include "probnas/core/error.h"
#include "probnas/method/darts.h"
#include "probnas/method/drnas.h"
#include "probnas/method/gdas.h"
#include "probnas/method/gibbs.h"
#include "probnas/method/parsec.h"
#include "probnas/method/pgnas.h"
#include "probnas/method/progressive.h"
#include "probnas/method/random_search.h"

namespace probnas {

void check_method_and_space(const Config& c) {
  const std::string& method = c.text("search.method");
  const bool multibranch = c.text("search.space") == "multibranch";
  PROBNAS_CHECK((method == "pgnas") == multibranch, "search.method = ", method, " with search.space = ",
                c.text("search.space"), ": PGNAS searches the multi-branch space (gated channels), and the "
                "multi-branch space is searched by PGNAS only; use search.method = pgnas with search.space = multibranch");
}

namespace {
// The weights' SGD with its cosine schedule and clipping, the same options for every method.
template <typename Options>
void set_weight_training(const Config& c, Options& o) {
  o.weights.lr = c.real("search.lr");
  o.weights.momentum = c.real("search.momentum");
  o.weights.weight_decay = c.real("search.weight_decay");
  o.lr_min = c.real("search.lr_min");
  PROBNAS_CHECK(o.lr_min <= o.weights.lr, "search.lr_min = ", o.lr_min, " exceeds search.lr = ", o.weights.lr);
  o.grad_clip = c.real("search.grad_clip");
}

// Progressive learning prunes and widens a mixed supernet; methods that do not mix operations refuse it.
void refuse_progressive(const Config& c, const std::string& method) {
  PROBNAS_CHECK(c.text("progressive.k").empty(), "progressive.k = ", c.text("progressive.k"),
                ": progressive learning is built for DrNAS and DARTS, not ", method);
}
}  // namespace

std::unique_ptr<SearchMethod> make_method(const Config& c, std::shared_ptr<Supernet> net, const RngKey& key) {
  check_method_and_space(c);
  const std::string& method = c.text("search.method");
  if (method == "pgnas") {
    refuse_progressive(c, "PGNAS");
    PgnasOptions p;
    set_weight_training(c, p);
    p.drop.lr = c.real("pgnas.drop_lr");
    p.temperature = c.real("pgnas.temperature");
    p.length_scale = c.real("pgnas.length_scale");
    p.init_drop = c.real("pgnas.init_drop");
    return std::make_unique<Pgnas>(std::dynamic_pointer_cast<MultiBranchNet>(net), p, key);
  }
  if (method == "random") {
    refuse_progressive(c, "random search (which trains single sampled paths)");
    PROBNAS_CHECK(!c.boolean("search.edge_norm"), "search.edge_norm = true: random search samples whole "
                  "architectures (leave it false)");
    PROBNAS_CHECK(c.integer("space.partial_channels") == 1, "space.partial_channels = ",
                  c.integer("space.partial_channels"), ": random search runs whole sampled paths (leave it at 1)");
    RandomSearchOptions r;
    set_weight_training(c, r);
    r.candidates = c.integer("random.candidates");
    r.eval_epochs = c.integer("random.eval_epochs");
    PROBNAS_CHECK(r.eval_epochs <= c.integer("search.epochs"), "random.eval_epochs = ", r.eval_epochs,
                  " exceeds search.epochs = ", c.integer("search.epochs"));
    return std::make_unique<RandomSearch>(std::move(net), r, key);
  }
  if (method == "parsec") {
    refuse_progressive(c, "PARSEC (which samples single paths)");
    PROBNAS_CHECK(!c.boolean("search.edge_norm"), "search.edge_norm = true: edge normalisation is built for the "
                  "gradient methods, not PARSEC");
    PROBNAS_CHECK(c.integer("space.partial_channels") == 1, "space.partial_channels = ",
                  c.integer("space.partial_channels"), ": PARSEC runs whole sampled paths (leave it at 1)");
    ParsecOptions p;
    set_weight_training(c, p);
    p.arch.lr = c.real("parsec.arch_lr");
    p.samples = c.integer("parsec.samples");
    p.warmup_epochs = c.integer("search.warmup_epochs");
    p.top_k = c.integer("parsec.top_k");
    return std::make_unique<Parsec>(std::move(net), p, key);
  }
  GradientMethodOptions o;
  set_weight_training(c, o);
  o.arch.lr = c.real("search.arch_lr");
  o.arch.beta1 = c.real("search.arch_beta1");
  o.arch.beta2 = c.real("search.arch_beta2");
  o.init_std = c.real("search.arch_init_std");
  o.warmup_epochs = c.integer("search.warmup_epochs");
  o.stages = progressive_stages(c, net->arch_shape().front().num_ops());
  o.edge_norm = c.boolean("search.edge_norm");
  PROBNAS_CHECK(!o.edge_norm || c.text("search.space") == "darts",
                "search.edge_norm = true: edge normalisation is built for the DARTS space (search.space = darts)");
  const int64_t order = c.integer("darts.order");
  PROBNAS_CHECK(order == 1 || method == "darts", "darts.order = ", order, " applies to search.method = darts only; ",
                method, " uses the first-order gradient (leave darts.order at 1)");
  if (method == "darts") {
    o.arch.weight_decay = c.real("darts.arch_weight_decay");
    o.second_order = order == 2;
    return std::make_unique<Darts>(std::move(net), o, key);
  }
  if (method == "drnas") {
    o.arch.weight_decay = c.real("drnas.reg_scale");
    return std::make_unique<Drnas>(std::move(net), o, key);
  }
  if (method == "gdas") {
    PROBNAS_CHECK(o.stages.empty(), "progressive.k = ", c.text("progressive.k"), ": progressive learning is built for "
                  "DrNAS and DARTS (search.method = drnas or darts), not GDAS");
    o.arch.weight_decay = c.real("gdas.arch_weight_decay");
    GdasOptions g;
    g.tau_max = c.real("gdas.tau_max");
    g.tau_min = c.real("gdas.tau_min");
    return std::make_unique<Gdas>(std::move(net), o, g, key);
  }
  if (method == "gibbsnas") {
    refuse_progressive(c, "GibbsNAS (which samples alpha and the weights as they are)");
    PROBNAS_CHECK(!o.edge_norm, "search.edge_norm = true: GibbsNAS samples alpha alone (leave it false)");
    GibbsOptions g;
    g.order = c.integer("gibbs.order");
    g.sample_weights = c.boolean("gibbs.sample_weights");
    g.sample_arch = c.boolean("gibbs.sample_arch");
    g.weight_step = c.real("gibbs.weight_step");
    g.max_step = c.real("gibbs.max_step");
    g.weight_noise = c.real("gibbs.weight_noise");
    g.noise_clip = c.real("gibbs.noise_clip");
    g.history = c.integer("gibbs.history");
    g.pair_every = c.integer("gibbs.pair_every");
    g.arch_step = c.real("gibbs.arch_step");
    g.arch_noise = c.real("gibbs.arch_noise");
    g.arch_max_inverse_curvature = c.real("gibbs.arch_max_inverse_curvature");
    g.arch_prior_decay = c.real("gibbs.arch_prior_decay");
    return std::make_unique<GibbsNas>(std::move(net), o, g, key);
  }
  PROBNAS_FAIL("search.method = '", method, "' is not built in this version (allowed: darts, drnas, gdas, gibbsnas, "
               "parsec, pgnas, random)");
}

}  // namespace probnas
