#include "probnas/app/inspect.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <numeric>
#include <optional>
#include <sstream>
#include <variant>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/core/error.h"
#include "probnas/core/format.h"
#include "probnas/core/timer.h"
#include "probnas/run/nb201_table.h"
#include "probnas/space/cell_picture.h"
#include "probnas/space/supernet.h"

namespace probnas {

namespace {

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  std::ostringstream o;
  o << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return o.str();
}

struct Usage {
  int64_t datasets = 0, bytes = 0;
};

Usage usage_of(const h5::Group& group) {
  Usage u;
  for (const auto& name : group.children()) {
    if (group.is_group(name)) {
      const Usage c = usage_of(group.open_group(name));
      u.datasets += c.datasets;
      u.bytes += c.bytes;
    } else {
      ++u.datasets;
      u.bytes += group.open_dataset(name).storage_bytes();
    }
  }
  return u;
}

std::string attr_text(const h5::Group& g, const std::string& name) {
  std::ostringstream o;
  switch (g.attr_kind(name)) {
    case h5::Object::AttrKind::integer: o << g.attr_int(name); break;
    case h5::Object::AttrKind::real: o << std::setprecision(10) << g.attr_real(name); break;
    case h5::Object::AttrKind::text: o << g.attr_text(name); break;
    default: o << "(other type)"; break;
  }
  return o.str();
}

// NAS-Bench-201's 200-epoch test accuracies of an NB201 cell, from the shipped table; says plainly
// when the cell is not in it or the table cannot be found.
void print_nb201_scores(const std::string& cell, std::ostream& out) {
  if (cell.empty() || cell.front() != '|') return;
  std::string path;
  try {
    path = locate_nb201_table("auto");
  } catch (const std::exception& e) {
    out << "NAS-Bench-201: no scores (" << e.what() << ")\n";
    return;
  }
  const Nb201Table table(path);
  if (const auto s = table.find(cell)) {
    out << "NAS-Bench-201 (200 epochs, test accuracy): CIFAR-10 " << std::fixed << std::setprecision(2) << s->cifar10_test
        << "%, CIFAR-100 " << s->cifar100_test << "%, ImageNet16-120 " << s->imagenet16_test << "% (index " << s->index
        << ")\n";
  } else {
    out << "NAS-Bench-201: the cell is not in the table: " << table.why_missing(cell) << "\n";
  }
}

void print_genotype(const ckpt::State& method, std::ostream& out) {
  if (method.has_attr("genotype")) {
    out << "genotype: " << method.attr_text("genotype") << "\n";
    print_nb201_scores(method.attr_text("genotype"), out);
  }
  if (!method.has_group("probabilities")) return;
  const auto& probs = method.group("probabilities");
  for (const auto& [group, p] : probs.tensors()) {
    const auto& names = method.group("space").group(group);
    const auto edges = names.lines("edges"), ops = names.lines("ops");
    out << "probabilities of group '" << group << "' (" << edges.size() << " edges x " << ops.size()
        << " operations; the chosen operation first):\n";
    const auto pr = p.to(torch::kFloat64).contiguous();
    const auto a = pr.accessor<double, 2>();
    for (int64_t e = 0; e < pr.size(0); ++e) {
      std::vector<int64_t> order(static_cast<size_t>(pr.size(1)));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[e][x] > a[e][y]; });
      out << "  " << std::left << std::setw(8) << (static_cast<size_t>(e) < edges.size() ? edges[e] : "?") << std::right;
      for (size_t k = 0; k < order.size(); ++k) {
        const auto o = static_cast<size_t>(order[k]);
        out << (k ? "  " : "") << (o < ops.size() ? ops[o] : "?") << " " << std::fixed << std::setprecision(4)
            << a[e][order[k]];
      }
      out << "\n";
    }
  }
}

// The genotype of a checkpoint's architecture probabilities. A space's derivation rule does not
// depend on the network's size, so the smallest supernet of the space applies it.
Genotype checkpoint_genotype(const ckpt::State& state, const std::string& path) {
  const std::string space = state.group("meta").attr_text("space");
  const auto& method = state.group("method");
  PROBNAS_CHECK(method.has_group("probabilities"), "checkpoint '", path, "' holds no architecture probabilities");
  SpaceOptions o;
  o.space = space;
  o.channels = 1;
  o.cells_per_stage = 1;
  o.cells = 3;
  const auto net = make_supernet(o);
  std::vector<torch::Tensor> probs;
  for (const auto& group : net->arch_shape()) probs.push_back(method.group("probabilities").get(group.name));
  return net->derive(probs);
}

void write_pictures(const ckpt::State& state, const std::string& path, const std::string& dir, std::ostream& out) {
  const Genotype genotype = checkpoint_genotype(state, path);
  PROBNAS_CHECK(has_cell_pictures(genotype.space), "no cell pictures for the '", genotype.space, "' space");
  const auto files = write_cell_pictures(genotype, dir, /*render=*/true);
  out << "cell pictures:";
  for (const auto& f : files.dot) out << " " << f;
  for (const auto& f : files.svg) out << " " << f;
  out << "\n";
  if (!files.svg_problem.empty())
    out << "  no SVG: " << files.svg_problem << " (render one with: dot -Tsvg " << files.dot.front() << " -o "
        << files.dot.front().substr(0, files.dot.front().size() - 4) << ".svg)\n";
}

}  // namespace

int inspect_checkpoint(const std::string& path, bool show_config, std::ostream& out, const std::string& cells_dir) {
  std::optional<ckpt::State> state;
  std::string problem;
  try {
    state = ckpt::read_file(path);
  } catch (const Error& e) {
    problem = e.what();
  }
  out << "checkpoint " << path << "\n";
  out << "valid: " << (state ? "yes (complete, schema version readable, every dataset's checksum verified)"
                             : "NO: " + problem)
      << "\n";

  // What the file says about itself, read directly (also for files that failed validation).
  std::optional<h5::File> file;
  try {
    if (h5::File::is_hdf5(path)) file.emplace(h5::File::open(path));
  } catch (const Error&) {
  }
  if (file) {
    const h5::Group root = file->root();
    if (root.has("meta")) {
      const h5::Group meta = root.open_group("meta");
      out << "meta:\n";
      for (const auto& name : meta.attr_names()) out << "  " << std::left << std::setw(16) << name << std::right
                                                     << attr_text(meta, name) << "\n";
      if (meta.has_attr("wall_seconds"))
        out << "  (wall time so far " << format_duration(meta.attr_real("wall_seconds")) << ")\n";
    }
    if (state) print_genotype(state->group("method"), out);
    out << "groups:\n";
    Usage total;
    for (const auto& name : root.children()) {
      if (!root.is_group(name)) continue;
      const Usage u = usage_of(root.open_group(name));
      total.datasets += u.datasets;
      total.bytes += u.bytes;
      out << "  /" << std::left << std::setw(9) << name << std::right << std::setw(6) << u.datasets << " datasets "
          << std::setw(12) << human_bytes(u.bytes) << "\n";
    }
    out << "  total     " << std::setw(6) << total.datasets << " datasets " << std::setw(12) << human_bytes(total.bytes)
        << " of data in a " << human_bytes(static_cast<int64_t>(std::filesystem::file_size(path))) << " file\n";
  }
  if (show_config && state) out << "config:\n" << state->group("meta").text("config") << "\n";
  if (!cells_dir.empty() && state) write_pictures(*state, path, cells_dir, out);
  return state ? 0 : 1;
}

}  // namespace probnas
