#include "probnas/report/cell_layout.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "probnas/report/html.h"
#include "probnas/report/svg.h"

namespace probnas::report {
namespace {

struct PNode {
  std::string label, sub;  // label with an optional subscript ("c", "k-2")
  int kind = 1;            // 0 input, 1 intermediate, 2 output
  double x = 0, y = 0, w = 40, h = 34;
};

struct PEdge {
  std::size_t from = 0, to = 0;
  std::string label;
};

struct Pt {
  double x, y;
};

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& b) const { return x0 < b.x1 && b.x0 < x1 && y0 < b.y1 && b.y0 < y1; }
  double area_with(const Box& b) const {
    const double w = std::min(x1, b.x1) - std::max(x0, b.x0), h = std::min(y1, b.y1) - std::max(y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0;
  }
  bool contains(const Pt& p) const { return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1; }
};

Pt bezier(const Pt& a, const Pt& b, const Pt& cc, const Pt& d, double t) {
  const double u = 1 - t;
  return {u * u * u * a.x + 3 * u * u * t * b.x + 3 * u * t * t * cc.x + t * t * t * d.x,
          u * u * u * a.y + 3 * u * u * t * b.y + 3 * u * t * t * cc.y + t * t * t * d.y};
}

double box_distance(const Pt& p, const PNode& n) {
  const double dx = std::max(std::fabs(p.x - n.x) - n.w / 2, 0.0), dy = std::max(std::fabs(p.y - n.y) - n.h / 2, 0.0);
  return std::hypot(dx, dy);
}

constexpr double kLabelFont = 11.5;
constexpr double kCharWidth = kLabelFont * 0.61;  // monospace advance

}  // namespace

std::string cell_svg(const std::string& title, std::vector<PNode> nodes, const std::vector<PEdge>& edges) {
  const int id = next_svg_id();
  struct Route {
    Pt p[4];
    std::vector<Pt> samples;
    std::string colour;
  };
  std::vector<Route> routes;
  // Route each edge as a cubic from the source's right side to the target's left side; bow it
  // up or down (the least bow that clears the other nodes and crowds the earlier edges least).
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const PNode& a = nodes[edges[i].from];
    const PNode& b = nodes[edges[i].to];
    const Pt p0{a.x + a.w / 2, a.y}, p3{b.x - b.w / 2 - 2, b.y};
    const double d = std::max(30.0, (p3.x - p0.x) * 0.45);
    const double sign = i % 2 == 0 ? 1.0 : -1.0;
    Route best;
    double best_score = std::numeric_limits<double>::infinity();
    for (int step = 0; step <= 12; ++step) {
      const double bow = step == 0 ? 0 : (step % 2 == 1 ? sign : -sign) * 22.0 * ((step + 1) / 2);
      Route r;
      r.p[0] = p0;
      r.p[1] = {p0.x + d, p0.y + bow};
      r.p[2] = {p3.x - d, p3.y + bow};
      r.p[3] = p3;
      double clearance = std::numeric_limits<double>::infinity();
      for (int s = 1; s < 40; ++s) {
        const Pt q = bezier(r.p[0], r.p[1], r.p[2], r.p[3], s / 40.0);
        r.samples.push_back(q);
        for (std::size_t n = 0; n < nodes.size(); ++n)
          if (n != edges[i].from && n != edges[i].to) clearance = std::min(clearance, box_distance(q, nodes[n]));
      }
      // Crowding: closeness to earlier edges away from the endpoints (edges share their ports).
      double crowd = 0;
      for (const auto& other : routes)
        for (const Pt& q : r.samples) {
          if (std::hypot(q.x - p0.x, q.y - p0.y) < 40 || std::hypot(q.x - p3.x, q.y - p3.y) < 40) continue;
          for (const Pt& s : other.samples)
            if (std::hypot(q.x - s.x, q.y - s.y) < 7) crowd += 1;
        }
      const double score = (clearance < 12 ? 1e6 - std::min(clearance, 1e5) * 1e3 : 0) + std::fabs(bow) / 11 + crowd * 0.6;
      if (score < best_score) {
        best_score = score;
        best = r;
      }
    }
    best.colour = edges[i].label.empty() ? "#7a8691" : op_colour(edges[i].label);
    routes.push_back(best);
  }
  // Labels: along their edge, where they hide the fewest nodes, labels and other edges.
  std::vector<Box> placed;
  std::vector<Pt> label_at(edges.size(), Pt{0, 0});
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].label.empty()) continue;
    const double lw = kCharWidth * static_cast<double>(edges[i].label.size()) + 8, lh = kLabelFont + 5;
    double best = std::numeric_limits<double>::infinity();
    for (const double t : {0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73, 0.21, 0.79}) {
      const Pt q = bezier(routes[i].p[0], routes[i].p[1], routes[i].p[2], routes[i].p[3], t);
      const Box box{q.x - lw / 2, q.y - lh / 2, q.x + lw / 2, q.y + lh / 2};
      double s = std::fabs(t - 0.5) * 4;
      for (const auto& n : nodes) s += box.area_with({n.x - n.w / 2 - 3, n.y - n.h / 2 - 3, n.x + n.w / 2 + 3, n.y + n.h / 2 + 3}) * 10;
      for (const auto& b : placed) s += box.area_with({b.x0 - 2, b.y0 - 2, b.x1 + 2, b.y1 + 2}) * 10;
      for (std::size_t j = 0; j < routes.size(); ++j)
        if (j != i)
          for (const Pt& p : routes[j].samples)
            if (box.contains(p)) s += 3;
      if (s < best) {
        best = s;
        label_at[i] = q;
      }
    }
    placed.push_back({label_at[i].x - lw / 2, label_at[i].y - lh / 2, label_at[i].x + lw / 2, label_at[i].y + lh / 2});
  }
  // The drawing's extent.
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  auto grow = [&](double x, double y) {
    x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
  };
  for (const auto& n : nodes) grow(n.x - n.w / 2, n.y - n.h / 2), grow(n.x + n.w / 2, n.y + n.h / 2);
  for (const auto& r : routes)
    for (const Pt& p : r.samples) grow(p.x, p.y);
  for (const auto& b : placed) grow(b.x0, b.y0), grow(b.x1, b.y1);
  const double pad = 10, shift_x = pad - x0, shift_y = pad - y0;
  const double w = x1 - x0 + 2 * pad, h = y1 - y0 + 2 * pad;
  auto X = [&](double x) { return svg_num(x + shift_x); };
  auto Y = [&](double y) { return svg_num(y + shift_y); };

  std::ostringstream o;
  o << svg_open(w, h, "cell-picture", title);
  std::set<std::string> colours;
  for (const auto& r : routes) colours.insert(r.colour);
  o << "<defs>";
  std::map<std::string, std::string> marker;
  for (const auto& col : colours) {
    const std::string mid = "arrow" + std::to_string(id) + "-" + col.substr(1);
    marker[col] = mid;
    o << "<marker id=\"" << mid << "\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
      << "orient=\"auto\"><path d=\"M0 0 L10 5 L0 10 z\" fill=\"" << col << "\"/></marker>";
  }
  o << "</defs>\n<g class=\"edges\" fill=\"none\">";
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const auto& r = routes[i];
    o << "<path d=\"M" << X(r.p[0].x) << " " << Y(r.p[0].y) << " C" << X(r.p[1].x) << " " << Y(r.p[1].y) << " "
      << X(r.p[2].x) << " " << Y(r.p[2].y) << " " << X(r.p[3].x) << " " << Y(r.p[3].y) << "\" stroke=\""
      << r.colour << "\" stroke-width=\"1.6\" marker-end=\"url(#" << marker[r.colour] << ")\"><title>"
      << esc(nodes[edges[i].from].label + nodes[edges[i].from].sub + " \u2192 " + nodes[edges[i].to].label +
             nodes[edges[i].to].sub + (edges[i].label.empty() ? "" : ": " + edges[i].label))
      << "</title></path>";
  }
  o << "</g>\n<g class=\"nodes\">";
  static const char* fills[] = {"#b4eeb4", "#add8e6", "#eee8aa"};
  static const char* strokes[] = {"#5a9a5a", "#4f86a6", "#a89b3c"};
  for (const auto& n : nodes) {
    const int k = std::clamp(n.kind, 0, 2);
    o << "<rect class=\"node node-" << (k == 0 ? "input" : k == 1 ? "inner" : "output") << "\" x=\""
      << X(n.x - n.w / 2) << "\" y=\"" << Y(n.y - n.h / 2) << "\" width=\"" << svg_num(n.w) << "\" height=\"" << svg_num(n.h)
      << "\" rx=\"5\" fill=\"" << fills[k] << "\" stroke=\"" << strokes[k] << "\"/>";
    o << "<text class=\"node-label\" x=\"" << X(n.x) << "\" y=\"" << Y(n.y + 5) << "\" text-anchor=\"middle\">"
      << esc(n.label);
    if (!n.sub.empty()) o << "<tspan dy=\"4\" font-size=\"10\">" << esc(n.sub) << "</tspan>";
    o << "</text>";
  }
  o << "</g>\n<g class=\"edge-labels\">";
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].label.empty()) continue;
    const double lw = kCharWidth * static_cast<double>(edges[i].label.size()) + 8, lh = kLabelFont + 5;
    o << "<rect x=\"" << X(label_at[i].x - lw / 2) << "\" y=\"" << Y(label_at[i].y - lh / 2) << "\" width=\"" << svg_num(lw)
      << "\" height=\"" << svg_num(lh) << "\" rx=\"3\" class=\"label-bg\"/>"
      << "<text class=\"edge-label\" x=\"" << X(label_at[i].x) << "\" y=\"" << Y(label_at[i].y + 4)
      << "\" text-anchor=\"middle\" style=\"fill:" << routes[i].colour << "\">" << esc(edges[i].label) << "</text>";
  }
  o << "</g></svg>\n";
  return o.str();
}

bool parse_edge_name(const std::string& name, int* to, int* from) {
  const auto arrow = name.find("<-");
  if (arrow == std::string::npos || arrow == 0) return false;
  try {
    std::size_t a = 0, b = 0;
    *to = std::stoi(name.substr(0, arrow), &a);
    *from = std::stoi(name.substr(arrow + 2), &b);
    return a == arrow && b == name.size() - arrow - 2 && *from >= 0 && *from < *to && *to < 64;
  } catch (const std::exception&) {
    return false;
  }
}

std::string nb201_picture(const std::vector<CellEdge>& cell, std::string* problem) {
  std::vector<std::pair<int, int>> ends;
  int last = 0;
  for (const CellEdge& edge : cell) {
    int to = 0, from = 0;
    if (!parse_edge_name(edge.name, &to, &from)) {
      *problem = "edge '" + edge.name + "' is not of the form j<-i";
      return "";
    }
    ends.emplace_back(to, from);
    last = std::max(last, to);
  }
  std::vector<PNode> nodes(static_cast<std::size_t>(last) + 1);
  for (int n = 0; n <= last; ++n) {
    auto& node = nodes[static_cast<std::size_t>(n)];
    node.label = std::to_string(n);
    node.kind = n == 0 ? 0 : n == last ? 2 : 1;
    node.x = 190.0 * n;
    node.y = 0;
    node.w = 38;
  }
  std::vector<PEdge> edges;
  // Short edges first: they take the straight paths, the long ones bow around.
  std::vector<std::size_t> order(cell.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return ends[a].first - ends[a].second < ends[b].first - ends[b].second;
  });
  for (const std::size_t i : order) {
    const auto& e = cell[i];
    if (e.op == "none" || e.op.empty()) continue;
    edges.push_back({static_cast<std::size_t>(ends[i].second), static_cast<std::size_t>(ends[i].first), e.op});
  }
  return cell_svg("NAS-Bench-201 cell", nodes, edges);
}

// DARTS: inputs c_{k-2}, c_{k-1}; intermediate nodes 2..5 drawn as 0..3, in columns by their depth;
// the output c_{k} concatenates the intermediate nodes.
std::string darts_picture(const std::vector<CellEdge>& cell, const std::string& title, std::string* problem) {
  int last = 1;
  std::vector<std::tuple<int, int, std::string>> live;  // to, from, op
  for (const CellEdge& edge : cell) {
    int to = 0, from = 0;
    if (!parse_edge_name(edge.name, &to, &from) || to < 2) {
      *problem = "edge '" + edge.name + "' is not of the form j<-i with j >= 2";
      return "";
    }
    last = std::max(last, to);
    if (edge.op != "none" && !edge.op.empty()) live.emplace_back(to, from, edge.op);
  }
  const auto count = static_cast<std::size_t>(last) + 2;  // nodes 0..last, then the output
  std::vector<int> depth(count, 0);
  for (int j = 2; j <= last; ++j) {
    int d = 1;
    for (const auto& [to, from, op] : live)
      if (to == j) d = std::max(d, depth[static_cast<std::size_t>(from)] + 1);
    depth[static_cast<std::size_t>(j)] = d;
  }
  int out_depth = 1;
  for (int j = 2; j <= last; ++j) out_depth = std::max(out_depth, depth[static_cast<std::size_t>(j)] + 1);
  depth[count - 1] = out_depth;
  std::vector<PNode> nodes(count);
  std::map<int, std::vector<std::size_t>> columns;
  for (std::size_t n = 0; n < count; ++n) columns[depth[n]].push_back(n);
  for (std::size_t n = 0; n < count; ++n) {
    auto& node = nodes[n];
    if (n < 2) {
      node.label = "c";
      node.sub = n == 0 ? "k-2" : "k-1";
      node.kind = 0;
      node.w = 58;
    } else if (n == count - 1) {
      node.label = "c";
      node.sub = "k";
      node.kind = 2;
      node.w = 44;
    } else {
      node.label = std::to_string(n - 2);
      node.kind = 1;
      node.w = 36;
    }
  }
  for (const auto& [d, members] : columns) {
    const double gap = d == 0 ? 130 : 92;
    for (std::size_t i = 0; i < members.size(); ++i) {
      nodes[members[i]].x = 170.0 * d;
      nodes[members[i]].y = (static_cast<double>(i) - (static_cast<double>(members.size()) - 1) / 2) * gap;
    }
  }
  std::vector<PEdge> edges;
  for (const auto& [to, from, op] : live)
    edges.push_back({static_cast<std::size_t>(from), static_cast<std::size_t>(to), op});
  std::stable_sort(edges.begin(), edges.end(), [&](const PEdge& a, const PEdge& b) {
    return depth[a.to] - depth[a.from] < depth[b.to] - depth[b.from];
  });
  for (int j = 2; j <= last; ++j) edges.push_back({static_cast<std::size_t>(j), count - 1, ""});
  return cell_svg(title, nodes, edges);
}

}  // namespace probnas::report
