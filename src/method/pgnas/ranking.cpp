#include "probnas/method/pgnas/ranking.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "probnas/ckpt/atomic_file.h"
#include "probnas/ckpt/checkpoint.h"
#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/format.h"
#include "probnas/core/hdf5.h"
#include "probnas/core/log.h"
#include "probnas/core/signals.h"
#include "probnas/core/timer.h"
#include "probnas/data/loader.h"
#include "probnas/method/pgnas/pgnas.h"
#include "probnas/run/run_folder.h"

namespace probnas {

int64_t EvalSet::examples() const {
  int64_t n = 0;
  for (const auto& t : y) n += t.numel();
  return n;
}

CandidateScore evaluate_pruned(const PrunedNet& net, const EvalSet& data) {
  torch::NoGradGuard no_grad;
  torch::Tensor correct, loss;
  for (size_t i = 0; i < data.x.size(); ++i) {
    const auto logits = net.forward(data.x[i]);
    auto c = (logits.argmax(1) == data.y[i]).sum().to(torch::kFloat64);
    auto l = torch::nn::functional::cross_entropy(logits.to(torch::kFloat64), data.y[i],
                                                  torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    correct = correct.defined() ? correct + c : c;
    loss = loss.defined() ? loss + l : l;
  }
  CandidateScore s;
  s.count = static_cast<double>(data.examples());
  if (correct.defined()) {
    s.correct = correct.item<double>();
    s.loss_sum = loss.item<double>();
  }
  s.params = net.parameters();
  return s;
}

const CandidateScore& PhaseResult::best() const {
  PROBNAS_CHECK(!scores.empty(), "PGNAS: no ", sampling, " candidate was ranked");
  const CandidateScore* best = &scores.front();
  for (const auto& s : scores) {
    if (s.correct > best->correct || (s.correct == best->correct && s.loss_sum < best->loss_sum)) best = &s;
  }
  return *best;
}

std::vector<torch::Tensor> candidate_gates(Pgnas& method, const RngKey& key, const std::string& sampling, int64_t index,
                                           double drop) {
  const auto i = static_cast<uint64_t>(index);
  if (sampling == "guided") return method.sample(key.with("pgnas-candidate").with(i)).gates;
  return method.sample_fixed(key.with("pgnas-random").with(i), drop).gates;
}

double kept_fraction(const std::vector<torch::Tensor>& gates) {
  double kept = 0, total = 0;
  for (const auto& g : gates) {
    kept += (g != 0).sum().item<double>();
    total += static_cast<double>(g.numel());
  }
  return total > 0 ? kept / total : 0;
}

namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string header(const RankingOptions& o, const std::string& sampling, double drop) {
  return "# probnas pgnas ranking; fingerprint " + o.fingerprint + "; sampling " + sampling + "; drop " + number(drop);
}

// Score rows "index,correct,loss_sum,count,params,kept" (comments and the column line skipped); a
// line cut short by a kill ends the list: everything before it counts.
std::map<int64_t, CandidateScore> parse_rows(std::istream& in, int64_t candidates) {
  std::map<int64_t, CandidateScore> done;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("index", 0) == 0) continue;
    CandidateScore s;
    long long index = 0, params = 0;
    if (std::sscanf(line.c_str(), "%lld,%lf,%lf,%lf,%lld,%lf", &index, &s.correct, &s.loss_sum, &s.count, &params,
                    &s.kept) != 6)
      break;
    s.index = index;
    s.params = params;
    if (s.index >= 0 && s.index < candidates) done[s.index] = s;
  }
  return done;
}

// Scores already on disk for this phase (rank 0), or none when the file belongs to other weights.
std::map<int64_t, CandidateScore> read_progress(const std::string& path, const std::string& expected_header,
                                                int64_t candidates) {
  if (!file_exists(path)) return {};
  std::istringstream in(read_file_bytes(path));
  std::string line;
  if (!std::getline(in, line) || line != expected_header) {
    PROBNAS_LOG(warn) << "candidate ranking: " << path << " belongs to other weights or settings; ranking again";
    return {};
  }
  return parse_rows(in, candidates);
}

std::string row(const CandidateScore& s) {
  return std::to_string(s.index) + "," + number(s.correct) + "," + number(s.loss_sum) + "," + number(s.count) + "," +
         std::to_string(s.params) + "," + number(s.kept);
}

}  // namespace

RankingResult rank_candidates(Pgnas& method, const RngKey& key, const EvalSet& val, const EvalSet& calibration,
                              const RankingOptions& o, Communicator& comm) {
  PROBNAS_CHECK(o.candidates >= 1, "pgnas.candidates = ", o.candidates, " must be at least 1");
  PROBNAS_CHECK(val.examples() > 0, "PGNAS ranking: the validation split is empty");
  const bool root = comm.rank() == 0;
  RankingResult result;
  std::vector<std::pair<std::string, double>> phases;
  const double learned = method.mean_drop();
  if (o.guided) phases.emplace_back("guided", learned);
  if (o.random) phases.emplace_back("random", o.random_drop >= 0 ? o.random_drop : learned);
  if (root) make_directories(o.dir + "/ranking");
  method.net().eval();

  for (const auto& [sampling, drop] : phases) {
    PhaseResult phase;
    phase.sampling = sampling;
    phase.drop = drop;
    const std::string path = o.dir + "/ranking/" + sampling + ".csv";
    const std::string head = header(o, sampling, sampling == "random" ? drop : 0.0);
    // Rank 0 reads the progress; every rank gets it.
    std::string bytes;
    std::map<int64_t, CandidateScore> done;
    if (root) {
      done = read_progress(path, head, o.candidates);
      std::string text = head + "\nindex,correct,loss_sum,count,params,kept_fraction\n";
      for (const auto& [i, s] : done) text += row(s) + "\n";
      ckpt::write_file_atomic(path, text);  // drops a torn last line
      for (const auto& [i, s] : done) bytes += row(s) + "\n";
    }
    comm.broadcast_bytes(bytes);
    if (!root) {
      std::istringstream in(bytes);
      done = parse_rows(in, o.candidates);
    }
    std::vector<int64_t> todo;
    for (int64_t i = 0; i < o.candidates; ++i)
      if (!done.count(i)) todo.push_back(i);
    PROBNAS_LOG(info) << "PGNAS ranking, " << sampling << " sampling"
                      << (sampling == "random" ? " (every gate dropped with p = " + number(drop) + ")" : "")
                      << ": " << o.candidates << " candidates on " << val.examples() << " held-out images"
                      << (done.empty() ? "" : ", " + std::to_string(done.size()) + " already ranked (" + path + ")")
                      << ", " << comm.size() << " rank" << (comm.size() > 1 ? "s" : "");

    Stopwatch clock, since_progress;
    const int64_t per_round = o.round * comm.size();
    int64_t finished = 0;
    for (size_t start = 0; start < todo.size(); start += static_cast<size_t>(per_round)) {
      const int64_t n = std::min<int64_t>(per_round, static_cast<int64_t>(todo.size() - start));
      const Range mine = partition(n, comm.rank(), comm.size());
      const int64_t width = (n + comm.size() - 1) / comm.size();
      auto local = torch::full({width, 6}, -1.0, torch::kFloat64);
      for (int64_t j = 0; j < mine.size(); ++j) {
        const int64_t index = todo[start + static_cast<size_t>(mine.begin + j)];
        const auto gates = candidate_gates(method, key, sampling, index, drop);
        PrunedNet net = method.net().prune(gates);
        if (o.recalibrate_bn) net.recalibrate(calibration.x);
        CandidateScore s = evaluate_pruned(net, val);
        s.index = index;
        s.kept = kept_fraction(gates);
        local[j] = torch::tensor({static_cast<double>(s.index), s.correct, s.loss_sum, s.count,
                                  static_cast<double>(s.params), s.kept}, torch::kFloat64);
      }
      const auto all = comm.allgather(local);  // [ranks, width, 6]
      std::string lines;
      for (int r = 0; r < comm.size(); ++r)
        for (int64_t j = 0; j < width; ++j) {
          const auto v = all[r][j];
          if (v[0].item<double>() < 0) continue;
          CandidateScore s;
          s.index = static_cast<int64_t>(v[0].item<double>());
          s.correct = v[1].item<double>();
          s.loss_sum = v[2].item<double>();
          s.count = v[3].item<double>();
          s.params = static_cast<int64_t>(v[4].item<double>());
          s.kept = v[5].item<double>();
          done[s.index] = s;
          lines += row(s) + "\n";
        }
      if (root && !lines.empty()) {
        lines.pop_back();
        append_line(path, lines);
      }
      finished += n;
      const int64_t left = static_cast<int64_t>(todo.size()) - finished;
      if (root && (since_progress.seconds() >= o.progress_interval || left == 0)) {
        since_progress.reset();
        const double rate = static_cast<double>(finished) / clock.seconds();
        double best = 0;
        for (const auto& [i, s] : done) best = std::max(best, s.accuracy());
        PROBNAS_LOG(info) << "ranking " << sampling << ": " << done.size() << "/" << o.candidates << " candidates | best "
                          << 100 * best << "% | " << rate << " candidates/s | ETA "
                          << format_duration(static_cast<double>(left) / std::max(rate, 1e-9));
      }
      // A signal on any rank stops every rank after this round (its scores are on disk).
      std::vector<torch::Tensor> flag{torch::tensor({SignalWatch::received() != 0 ? 1.0 : 0.0}, torch::kFloat64)};
      comm.allreduce(flag, ReduceOp::sum);
      if (flag[0].item<double>() > 0 && left > 0) {
        const int sig = SignalWatch::received();
        result.interrupted = true;
        result.signal = sig ? signal_name(sig) : "a signal on another rank";
        return result;
      }
    }
    for (const auto& [i, s] : done) phase.scores.push_back(s);
    result.phases.push_back(std::move(phase));
  }
  return result;
}


namespace {

EvalSet make_eval_set(const ImageSource& data, torch::Tensor indices, const ChannelStats& stats, bool normalize,
                      int64_t size,
                      int64_t batch, const c10::Device& device) {
  TransformOptions t;
  t.normalize = normalize;
  t.size = size;
  t.crop = false;
  t.flip = false;
  EvalSet set;
  for (int64_t start = 0; start < indices.numel(); start += batch) {
    const auto idx = indices.narrow(0, start, std::min(batch, indices.numel() - start));
    const Examples ex = data.read(idx);
    set.x.push_back(transform_images(ex.images, t, stats, false, nullptr).to(device));
    set.y.push_back(ex.labels.to(device));
  }
  return set;
}

torch::Tensor head(const torch::Tensor& indices, int64_t n) {
  return n > 0 && n < indices.numel() ? indices.narrow(0, 0, n) : indices;
}

struct Summary {
  double best = 0, mean = 0, mean_params = 0, mean_kept = 0;
};

Summary summarise(const PhaseResult& p) {
  Summary s;
  for (const auto& c : p.scores) {
    s.best = std::max(s.best, c.accuracy());
    s.mean += c.accuracy();
    s.mean_params += static_cast<double>(c.params);
    s.mean_kept += c.kept;
  }
  const double n = static_cast<double>(std::max<size_t>(1, p.scores.size()));
  s.mean /= n;
  s.mean_params /= n;
  s.mean_kept /= n;
  return s;
}

}  // namespace

AfterSearchOutcome Pgnas::after_search(const AfterSearchContext& ctx) {
  Pgnas& method = *this;
  Communicator& comm = *ctx.comm;
  const ImageSource& data = *ctx.data;
  const PgnasRankingConfig& rc = options_.ranking;
  const std::string& dir = ctx.dir;
  const ChannelStats& stats = ctx.stats;
  const c10::Device device = ctx.device;
  const RngKey key = ctx.key;
  AfterSearchOutcome outcome;
  outcome.files = "genotype.json, candidates.csv, best_network.h5, metrics.jsonl, config.ini, checkpoints/";
  const bool root = comm.rank() == 0;
  const bool normalize = ctx.normalize;
  const int64_t batch = rc.eval_batch;
  RankingOptions o;
  o.candidates = rc.candidates;
  o.guided = rc.sampling != "random";
  o.random = rc.sampling != "guided";
  o.random_drop = rc.random_drop;
  o.recalibrate_bn = rc.bn == "recalibrate";
  o.progress_interval = ctx.progress_interval;
  o.dir = dir;
  o.fingerprint = ctx.config_hash + "-step" + std::to_string(ctx.trained_steps) + "-eval" +
                  std::to_string(rc.eval_images) + "-bn" + rc.bn + (o.recalibrate_bn ? std::to_string(rc.bn_images) : "");

  const EvalSet val = make_eval_set(data, head(ctx.arch_examples, rc.eval_images), stats, normalize, ctx.image_size,
                                    batch, device);
  EvalSet calibration;
  if (o.recalibrate_bn)
    calibration = make_eval_set(data, head(ctx.weight_examples, rc.bn_images), stats, normalize, ctx.image_size, batch,
                                device);

  const RankingResult ranking = rank_candidates(method, key, val, calibration, o, comm);
  if (ranking.interrupted) {
    outcome.interrupted = true;
    outcome.signal = ranking.signal;
    outcome.stopped_in = "during the candidate ranking; the ranked candidates are in " + dir + "/ranking/";
    return outcome;
  }

  // Rank 0 reports; the others wait for the files.
  if (root) {
    std::optional<EvalSet> test;
    if (rc.test) {
      const auto t = ctx.test_data ? ctx.test_data() : nullptr;
      if (!t) {
        PROBNAS_LOG(info) << "PGNAS: " << data.name() << " data has no test split here; test accuracies are not "
                          << "reported";
      } else {
        test = make_eval_set(*t, torch::arange(t->size()), stats, normalize, ctx.image_size, batch, device);
      }
    }
    auto build = [&](const std::vector<torch::Tensor>& gates) {
      PrunedNet net = method.net().prune(gates);
      if (o.recalibrate_bn) net.recalibrate(calibration.x);
      return net;
    };
    auto on_test = [&](const PrunedNet& net) -> nlohmann::json {
      if (!test) return nullptr;
      return evaluate_pruned(net, *test).accuracy();
    };
    const int64_t supernet_params = [&] {
      int64_t n = 0;
      for (const auto& p : method.net().parameters()) n += p.numel();
      return n;
    }();

    nlohmann::ordered_json extra;
    extra["method"] = "pgnas";
    extra["dataset"] = data.name();
    extra["seed"] = ctx.seed;
    extra["search_steps"] = ctx.trained_steps;
    extra["held_out_images"] = val.examples();
    extra["bn"] = rc.bn;
    std::vector<CandidateRow> rows;
    const PhaseResult* result_phase = nullptr;
    std::ostringstream report;
    std::vector<torch::Tensor> best_gates;
    PrunedNet best_net;
    for (const auto& phase : ranking.phases) {
      std::vector<CandidateScore> sorted = phase.scores;
      std::stable_sort(sorted.begin(), sorted.end(), [](const CandidateScore& a, const CandidateScore& b) {
        return a.correct != b.correct ? a.correct > b.correct : a.loss_sum < b.loss_sum;
      });
      for (size_t r = 0; r < sorted.size(); ++r)
        rows.push_back({phase.sampling, static_cast<int64_t>(r + 1), sorted[r].index, sorted[r].params,
                        sorted[r].accuracy(), sorted[r].loss(), sorted[r].kept});
      const Summary s = summarise(phase);
      const CandidateScore& best = phase.best();
      const auto gates = candidate_gates(method, key, phase.sampling, best.index, phase.drop);
      const PrunedNet net = build(gates);
      const auto test_acc = on_test(net);
      nlohmann::ordered_json j;
      j["candidates"] = phase.scores.size();
      if (phase.sampling == "random") j["drop"] = phase.drop;
      else j["mean_drop"] = phase.drop;
      j["best_index"] = best.index;
      j["best_val_acc"] = best.accuracy();
      j["best_test_acc"] = test_acc;
      j["best_params"] = best.params;
      j["best_kept_fraction"] = best.kept;
      j["mean_val_acc"] = s.mean;
      j["mean_params"] = s.mean_params;
      j["mean_kept_fraction"] = s.mean_kept;
      extra[phase.sampling] = j;
      report << phase.sampling << " candidates (" << phase.scores.size() << "): best #" << best.index << " val acc "
             << percent(best.accuracy()) << (test_acc.is_null() ? "" : ", test acc " + percent(test_acc.get<double>()))
             << ", " << best.params << " weights, kept " << percent(best.kept) << " of the channels; mean val acc "
             << percent(s.mean) << ", mean " << static_cast<int64_t>(s.mean_params) << " weights, mean kept "
             << percent(s.mean_kept) << "\n";
      if (!result_phase) {
        result_phase = &phase;
        best_gates = gates;
        best_net = net;
        extra["best"] = {{"sampling", phase.sampling}, {"index", best.index}, {"val_acc", best.accuracy()},
                         {"val_loss", best.loss()}, {"test_acc", test_acc}, {"params", best.params},
                         {"kept_fraction", best.kept}, {"network", "best_network.h5"}};
      }
    }
    // The mean network: every gate at its expectation 1 - p.
    const PrunedNet mean_net = build(method.expected().gates);
    const CandidateScore mean_val = evaluate_pruned(mean_net, val);
    const auto mean_test = on_test(mean_net);
    extra["supernet"] = {{"gates", "expected, 1 - p"}, {"val_acc", mean_val.accuracy()}, {"test_acc", mean_test},
                         {"params", supernet_params}};
    report << "supernet (expected gates 1 - p): val acc " << percent(mean_val.accuracy())
           << (mean_test.is_null() ? "" : ", test acc " + percent(mean_test.get<double>())) << ", " << supernet_params
           << " weights\n";

    // The best candidate's architecture: kept channels per convolution, removed branches.
    const auto& groups = method.net().gate_groups();
    const auto probs = method.expected_weights()[0].to(torch::kCPU, torch::kFloat64);
    Genotype genotype;
    genotype.space = "multibranch";
    nlohmann::ordered_json kept_channels;
    std::vector<std::string> removed;
    for (size_t g = 0; g < groups.size(); ++g) {
      const int64_t kept = (best_gates[g] != 0).sum().item<int64_t>();
      GenotypeEdge e;
      e.group = "gates";
      e.edge = groups[g].name;
      e.op = std::to_string(kept) + "/" + std::to_string(groups[g].channels);
      const double keep = probs[static_cast<int64_t>(g)][0].item<double>();
      e.probs = {{"keep", keep}, {"drop", 1 - keep}};
      genotype.edges.push_back(e);
      kept_channels[groups[g].name] = kept;
      if (g % 2 == 1) {
        const int64_t kept1 = (best_gates[g - 1] != 0).sum().item<int64_t>();
        if (kept1 == 0 || kept == 0) {
          const std::string name = groups[g].name;
          removed.push_back(name.substr(0, name.rfind(".conv")));
        }
      }
    }
    extra["best"]["kept_channels"] = kept_channels;
    extra["best"]["removed_branches"] = removed;
    const CandidateScore& best = result_phase->best();
    std::ostringstream text;
    text << "multibranch " << result_phase->sampling << " candidate #" << best.index << ": " << best.params
         << " weights, " << percent(best.kept) << " of the channels kept, " << removed.size() << " of "
         << groups.size() / 2 << " branches removed";
    genotype.text = text.str();
    outcome.genotype_text = genotype.text;
    write_candidates(dir, rows);
    write_genotype_json(dir, genotype, extra);
    export_pruned(dir + "/best_network.h5", best_net, stats, normalize, genotype.text);
    report << "best: " << genotype.text << " -> " << dir << "/best_network.h5\n";
    outcome.report = report.str();
  }
  comm.barrier();
  return outcome;
}

}  // namespace probnas
