#include "probnas/optim/quasi_newton.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "probnas/core/error.h"

namespace probnas {

namespace {
torch::Tensor flat64(const torch::Tensor& t) { return t.detach().reshape({-1}).to(torch::kFloat64); }

void check_pair(const torch::Tensor& s, const torch::Tensor& y, int64_t n, const char* who) {
  PROBNAS_CHECK(s.numel() == n && y.numel() == n, who, ": a pair of ", s.numel(), " and ", y.numel(),
                " values for ", n, " parameters");
}
}  // namespace

bool curvature_ok(const torch::Tensor& s, const torch::Tensor& y, double eps) {
  const auto a = flat64(s), b = flat64(y);
  const double sy = a.dot(b).item<double>();
  const double bound = eps * a.norm().item<double>() * b.norm().item<double>();
  return std::isfinite(sy) && sy > bound && sy > 0;
}

BfgsInverseHessian::BfgsInverseHessian(int64_t n, BfgsOptions options) : n_(n), options_(options) {
  PROBNAS_CHECK(n >= 1, "BFGS: ", n, " parameters");
  PROBNAS_CHECK(options_.initial_scale > 0, "BFGS: initial scale ", options_.initial_scale, " must be positive");
  PROBNAS_CHECK(options_.max_eigenvalue == 0 || options_.max_eigenvalue >= options_.initial_scale, "BFGS: maximum "
                "eigenvalue ", options_.max_eigenvalue, " below the initial scale ", options_.initial_scale);
  h_ = torch::eye(n, torch::kFloat64) * options_.initial_scale;
  chol_ = torch::eye(n, torch::kFloat64) * std::sqrt(options_.initial_scale);
}

bool BfgsInverseHessian::update(const torch::Tensor& s_in, const torch::Tensor& y_in) {
  check_pair(s_in, y_in, n_, "BFGS");
  const auto s = flat64(s_in).cpu(), y = flat64(y_in).cpu();
  if (!curvature_ok(s, y, options_.curvature_eps)) {
    ++skipped_;
    return false;
  }
  const double sy = s.dot(y).item<double>();
  if (accepted_ == 0 && options_.scale_first) h_ = torch::eye(n_, torch::kFloat64) * (sy / y.dot(y).item<double>());
  const double rho = 1.0 / sy;
  // (I - rho s y') H (I - rho y s') + rho s s', expanded: H - rho (s (Hy)' + (Hy) s') + (rho^2 y'Hy + rho) s s'.
  const auto hy = h_.mv(y);
  const double yhy = y.dot(hy).item<double>();
  h_ = h_ - rho * (torch::outer(s, hy) + torch::outer(hy, s)) + (rho * rho * yhy + rho) * torch::outer(s, s);
  h_ = 0.5 * (h_ + h_.t());
  if (options_.max_eigenvalue > 0) {
    // The spectrum cap: along a direction of (near) zero curvature a single pair adds ||s||^2 / s'y,
    // without bound; larger eigenvalues are clamped to the cap (cheap: H is small).
    const auto [w, q] = torch::linalg_eigh(h_);
    if (w.max().item<double>() > options_.max_eigenvalue) {
      h_ = q.mm(torch::diag(w.clamp_max(options_.max_eigenvalue))).mm(q.t());
      h_ = 0.5 * (h_ + h_.t());
      ++clamped_;
    }
  }
  factorise(s, y);
  ++accepted_;
  return true;
}

void BfgsInverseHessian::factorise(const torch::Tensor& s, const torch::Tensor& y) {
  auto [l, info] = torch::linalg_cholesky_ex(h_);
  if (info.item<int64_t>() == 0 && torch::isfinite(l).all().item<bool>()) {
    chol_ = l;
    return;
  }
  // Rounding made H indefinite: start again from the newest pair's scalar curvature.
  double gamma = s.dot(y).item<double>() / y.dot(y).item<double>();
  if (options_.max_eigenvalue > 0) gamma = std::min(gamma, options_.max_eigenvalue);
  h_ = torch::eye(n_, torch::kFloat64) * gamma;
  chol_ = torch::eye(n_, torch::kFloat64) * std::sqrt(gamma);
  ++resets_;
}

torch::Tensor BfgsInverseHessian::apply(const torch::Tensor& g) const {
  PROBNAS_CHECK(g.numel() == n_, "BFGS: a gradient of ", g.numel(), " values for ", n_, " parameters");
  return h_.mv(flat64(g).cpu()).to(g.device(), g.scalar_type()).reshape(g.sizes());
}

torch::Tensor BfgsInverseHessian::correlate(const torch::Tensor& z) const {
  PROBNAS_CHECK(z.numel() == n_, "BFGS: noise of ", z.numel(), " values for ", n_, " parameters");
  return chol_.mv(flat64(z).cpu()).to(z.device(), z.scalar_type()).reshape(z.sizes());
}

void BfgsInverseHessian::save(ckpt::State& state) const {
  state.put("inverse_hessian", h_);
  state.put("cholesky", chol_);
  state.set_attr("accepted", accepted_);
  state.set_attr("skipped", skipped_);
  state.set_attr("resets", resets_);
  state.set_attr("clamped", clamped_);
}

void BfgsInverseHessian::load(const ckpt::State& state) {
  const auto h = state.get("inverse_hessian"), l = state.get("cholesky");
  PROBNAS_CHECK(h.sizes() == h_.sizes() && l.sizes() == chol_.sizes(), "checkpoint: ", state.path(),
                "/inverse_hessian has shape ", h.sizes(), ", this BFGS estimate is ", n_, " x ", n_);
  h_ = h.to(torch::kFloat64).clone();
  chol_ = l.to(torch::kFloat64).clone();
  accepted_ = state.attr_int("accepted");
  skipped_ = state.attr_int("skipped");
  resets_ = state.attr_int("resets");
  clamped_ = state.attr_int("clamped");
}

DiagonalInverseHessian::DiagonalInverseHessian(int64_t n, DiagonalOptions options, c10::Device device)
    : n_(n), options_(options), gamma_(options.initial_scale) {
  PROBNAS_CHECK(n >= 1, "diagonal inverse Hessian: ", n, " parameters");
  PROBNAS_CHECK(options_.history >= 1, "diagonal inverse Hessian: history of ", options_.history, " pairs");
  PROBNAS_CHECK(options_.initial_scale > 0 && options_.max_ratio >= 1, "diagonal inverse Hessian: initial scale ",
                options_.initial_scale, " must be positive and max ratio ", options_.max_ratio, " at least 1");
  d_ = torch::full({n}, options_.initial_scale, torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

bool DiagonalInverseHessian::update(const torch::Tensor& s_in, const torch::Tensor& y_in) {
  check_pair(s_in, y_in, n_, "diagonal inverse Hessian");
  const auto s = flat64(s_in).to(d_.device()), y = flat64(y_in).to(d_.device());
  if (!curvature_ok(s, y, options_.curvature_eps)) {
    ++skipped_;
    return false;
  }
  if (static_cast<int64_t>(sy_.size()) == options_.history) {
    sy_.erase(sy_.begin());
    yy_.erase(yy_.begin());
  }
  // Kept in float32: the history of omega's pairs is 2 m copies of the network (sums run in float64).
  sy_.push_back((s * y).to(torch::kFloat32));
  yy_.push_back((y * y).to(torch::kFloat32));
  recompute(s.dot(y).item<double>() / y.dot(y).item<double>());
  return true;
}

void DiagonalInverseHessian::recompute(double gamma) {
  gamma_ = gamma;
  auto num = torch::zeros_like(d_), den = torch::zeros_like(d_);
  for (size_t k = 0; k < sy_.size(); ++k) {
    num += sy_[k];
    den += yy_[k];
  }
  const auto fit = num / den.clamp_min(std::numeric_limits<double>::min());
  const auto curved = (num > 0) & (den > 0);
  d_ = torch::where(curved, fit, torch::full_like(fit, gamma)).clamp(gamma / options_.max_ratio, gamma * options_.max_ratio);
}

void DiagonalInverseHessian::save(ckpt::State& state) const {
  state.put("diagonal", d_);
  state.set_attr("gamma", gamma_);
  state.set_attr("skipped", skipped_);
  state.set_attr("pairs", pairs());
  for (size_t k = 0; k < sy_.size(); ++k) {
    state.put("sy" + std::to_string(k), sy_[k]);
    state.put("yy" + std::to_string(k), yy_[k]);
  }
}

void DiagonalInverseHessian::load(const ckpt::State& state) {
  const auto d = state.get("diagonal");
  PROBNAS_CHECK(d.numel() == n_, "checkpoint: ", state.path(), "/diagonal has ", d.numel(), " values, this estimate ",
                n_);
  const auto device = d_.device();
  d_ = d.to(device, torch::kFloat64).clone();
  gamma_ = state.attr_real("gamma");
  skipped_ = state.attr_int("skipped");
  sy_.clear();
  yy_.clear();
  for (int64_t k = 0; k < state.attr_int("pairs"); ++k) {
    sy_.push_back(state.get("sy" + std::to_string(k)).to(device, torch::kFloat32));
    yy_.push_back(state.get("yy" + std::to_string(k)).to(device, torch::kFloat32));
  }
}

}  // namespace probnas
