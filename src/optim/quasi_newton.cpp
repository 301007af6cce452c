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

LbfgsInverseHessian::LbfgsInverseHessian(int64_t n, LbfgsOptions options, c10::Device device)
    : n_(n), options_(options) {
  PROBNAS_CHECK(n >= 1, "L-BFGS: ", n, " parameters");
  PROBNAS_CHECK(options_.history >= 1, "L-BFGS: history of ", options_.history, " pairs");
  h0_ = torch::ones({n}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void LbfgsInverseHessian::set_initial(const torch::Tensor& h0) {
  PROBNAS_CHECK(h0.numel() == n_, "L-BFGS: an initial diagonal of ", h0.numel(), " values for ", n_, " parameters");
  h0_ = flat64(h0).to(h0_.device());
}

bool LbfgsInverseHessian::update(const torch::Tensor& s_in, const torch::Tensor& y_in) {
  check_pair(s_in, y_in, n_, "L-BFGS");
  const auto s = flat64(s_in).to(h0_.device()), y = flat64(y_in).to(h0_.device());
  if (!curvature_ok(s, y, options_.curvature_eps)) {
    ++skipped_;
    return false;
  }
  while (static_cast<int64_t>(s_.size()) >= options_.history) {
    s_.erase(s_.begin());
    y_.erase(y_.begin());
    rho_.erase(rho_.begin());
  }
  s_.push_back(s.clone());
  y_.push_back(y.clone());
  rho_.push_back(1.0 / s.dot(y).item<double>());
  return true;
}

torch::Tensor LbfgsInverseHessian::apply(const torch::Tensor& g) const {
  PROBNAS_CHECK(g.numel() == n_, "L-BFGS: a gradient of ", g.numel(), " values for ", n_, " parameters");
  // The two-loop recursion; the coefficients stay 0-d tensors on the device (no host synchronisation).
  auto q = flat64(g).to(h0_.device());
  const size_t m = s_.size();
  std::vector<torch::Tensor> a(m);
  for (size_t k = m; k-- > 0;) {
    a[k] = rho_[k] * s_[k].dot(q);
    q = q - a[k] * y_[k];
  }
  auto r = h0_ * q;
  for (size_t k = 0; k < m; ++k) r = r + (a[k] - rho_[k] * y_[k].dot(r)) * s_[k];
  return r;
}

torch::Tensor LbfgsInverseHessian::correlate(const torch::Tensor& u, const torch::Tensor& xi) const {
  PROBNAS_CHECK(u.numel() == n_ && xi.numel() == pairs(), "L-BFGS: a draw needs ", n_, " + ", pairs(),
                " standard normals, got ", u.numel(), " + ", xi.numel());
  auto z = h0_.sqrt() * flat64(u).to(h0_.device());
  const auto e = flat64(xi).to(h0_.device());
  for (size_t k = 0; k < s_.size(); ++k) {
    const auto i = static_cast<int64_t>(k);
    z = z + (std::sqrt(rho_[k]) * e[i] - rho_[k] * y_[k].dot(z)) * s_[k];
  }
  return z;
}

torch::Tensor LbfgsInverseHessian::dense() const {
  const auto eye = torch::eye(n_, h0_.options());
  std::vector<torch::Tensor> columns;
  for (int64_t i = 0; i < n_; ++i) columns.push_back(apply(eye[i]));
  return torch::stack(columns, 1);
}

void LbfgsInverseHessian::save(ckpt::State& state) const {
  state.put("initial", h0_);
  state.set_attr("skipped", skipped_);
  state.set_attr("pairs", pairs());
  for (size_t k = 0; k < s_.size(); ++k) {
    state.put("s" + std::to_string(k), s_[k]);
    state.put("y" + std::to_string(k), y_[k]);
  }
}

void LbfgsInverseHessian::load(const ckpt::State& state) {
  const auto h0 = state.get("initial");
  PROBNAS_CHECK(h0.numel() == n_, "checkpoint: ", state.path(), "/initial has ", h0.numel(),
                " values, this L-BFGS estimate ", n_);
  const auto device = h0_.device();
  h0_ = h0.to(device, torch::kFloat64).clone();
  skipped_ = state.attr_int("skipped");
  s_.clear();
  y_.clear();
  rho_.clear();
  const int64_t pairs = state.attr_int("pairs");
  PROBNAS_CHECK(pairs >= 0 && pairs <= options_.history, "checkpoint: ", state.path(), " holds ", pairs,
                " L-BFGS pairs, this estimate keeps at most ", options_.history);
  for (int64_t k = 0; k < pairs; ++k) {
    s_.push_back(state.get("s" + std::to_string(k)).to(device, torch::kFloat64));
    y_.push_back(state.get("y" + std::to_string(k)).to(device, torch::kFloat64));
    // rho is recomputed exactly as update() computed it.
    rho_.push_back(1.0 / s_.back().dot(y_.back()).item<double>());
  }
}

torch::Tensor gaussian_step(const LbfgsInverseHessian& h, const torch::Tensor& x, const torch::Tensor& b, double eta,
                            double tau, const torch::Tensor& normals, double noise_clip) {
  const auto mean_step = eta * h.apply(b);
  auto next = flat64(x).to(mean_step.device()) - mean_step;
  if (tau <= 0 || !normals.defined()) return next;
  const int64_t n = h.size();
  PROBNAS_CHECK(normals.numel() == n + h.pairs(), "Gaussian step: ", normals.numel(), " normals for ", n, " + ",
                h.pairs(), " values");
  auto noise = std::sqrt(tau) * h.correlate(normals.narrow(0, 0, n), normals.narrow(0, n, h.pairs()));
  if (noise_clip > 0) {
    const auto limit = noise_clip * mean_step.norm();
    noise = noise * torch::clamp_max(limit / noise.norm().clamp_min(1e-300), 1.0);
  }
  return next + noise;
}

DiagonalCurvature::DiagonalCurvature(int64_t n, double average, c10::Device device) : n_(n), average_(average) {
  PROBNAS_CHECK(n >= 1, "diagonal curvature: ", n, " parameters");
  PROBNAS_CHECK(average > 0 && average <= 1, "diagonal curvature: running-average weight ", average,
                " outside (0, 1]");
  h_ = torch::zeros({n}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void DiagonalCurvature::add(const torch::Tensor& estimate) {
  PROBNAS_CHECK(estimate.numel() == n_, "diagonal curvature: an estimate of ", estimate.numel(), " values for ", n_,
                " parameters");
  const auto e = flat64(estimate).to(h_.device());
  h_ = count_ == 0 ? e.clone() : (1 - average_) * h_ + average_ * e;
  ++count_;
}

void DiagonalCurvature::save(ckpt::State& state) const {
  state.put("diagonal", h_);
  state.set_attr("estimates", count_);
}

void DiagonalCurvature::load(const ckpt::State& state) {
  const auto h = state.get("diagonal");
  PROBNAS_CHECK(h.numel() == n_, "checkpoint: ", state.path(), "/diagonal has ", h.numel(),
                " values, this curvature estimate ", n_);
  h_ = h.to(h_.device(), torch::kFloat64).clone();
  count_ = state.attr_int("estimates");
}

}  // namespace probnas
