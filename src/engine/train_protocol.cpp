#include "probnas/engine/train_protocol.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "probnas/core/error.h"
#include "probnas/core/files.h"
#include "probnas/core/log.h"
#include "probnas/optim/optimizers.h"
#include "probnas/space/eval_network.h"

namespace probnas {

const OptionBinding<TrainOptions>& train_options() {
  using O = TrainOptions;
  static const auto b =
      OptionBinding<O>()
          .text("train.genotype", &O::genotype, "",
                "what to train (also --genotype): a genotype.json written by probnas search (NB201 or DARTS space; a "
                "PGNAS run's genotype.json evaluates its best_network.h5), an NB201 string "
                "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|, or a DARTS Genotype(normal=[...], ...) string")
          .resumable()
          .choice("train.protocol", &O::protocol, "auto", {"auto", "darts", "drnas"},
                  "whose evaluation protocol trains a DARTS-space genotype: darts (DARTS's train.py and "
                  "train_imagenet.py: drop-path 0.2 on CIFAR; on ImageNet lr 0.1 x 0.97 per epoch, batch 128) or drnas "
                  "(DrNAS's: drop-path 0.3 on CIFAR; on ImageNet lr 0.5 decayed linearly after 5 warm-up epochs, batch "
                  "768); auto: drnas for a genotype a DrNAS search found, else darts. NB201 and PGNAS genotypes have one "
                  "protocol each")
          .integer("train.epochs", &O::epochs, -1, -1, 1000000,
                   "training epochs (-1: the protocol's: DARTS and DrNAS 600 (250 on ImageNet), NB201 200, PGNAS 0 = "
                   "evaluate as sampled; for PGNAS N > 0 fine-tunes N epochs)")
          .resumable()
          .integer("train.batch_size", &O::batch_size, 0, 0, 1 << 20,
                   "global batch size, fixed whatever the ranks (0: DARTS and DrNAS 96, on ImageNet DARTS 128 and "
                   "DrNAS 768; NB201 256, PGNAS 128)")
          .integer("train.micro_batches", &O::micro_batches, 1, 1, 1 << 20,
                   "micro-batches per global batch (the unit ranks share)")
          .real("train.lr", &O::lr, 0, 0, 10,
                "initial learning rate (0: DARTS and DrNAS 0.025, on ImageNet DARTS 0.1 and DrNAS 0.5; NB201 0.1, "
                "PGNAS 0.01)")
          .choice("train.lr_schedule", &O::lr_schedule, "auto", {"auto", "cosine", "linear", "exponential"},
                  "the learning rate over the epochs: cosine (from train.lr to train.lr_min), linear (PC-DARTS's and "
                  "DrNAS's: down by (train.lr - train.lr_min) / (E - 5) per epoch, over the last 5 epochs a fifth of "
                  "that, the last at lr / (5 (E - 5))), exponential "
                  "(train.lr x train.lr_decay per epoch) (auto: DrNAS on ImageNet linear, DARTS on ImageNet "
                  "exponential, else cosine)")
          .integer("train.warmup_epochs", &O::warmup_epochs, -1, -1, 1000000,
                   "epochs of learning-rate warm-up: epoch e < W runs at train.lr (e + 1) / W (-1: DrNAS on ImageNet 5 "
                   "when the batch is above 256, as its code; else 0)")
          .real("train.lr_min", &O::lr_min, 0, 0, 10,
                "learning rate at the end of the cosine or linear schedule")
          .real("train.lr_decay", &O::lr_decay, -1, -1, 1,
                "the exponential schedule's factor per epoch (-1: 0.97, DARTS's ImageNet protocol)")
          .real("train.momentum", &O::momentum, 0.9, 0, 1, "SGD momentum")
          .real("train.weight_decay", &O::weight_decay, -1, -1, 1,
                "L2 weight decay (-1: DARTS 3e-4, NB201 5e-4, PGNAS 5e-4)")
          .choice("train.nesterov", &O::nesterov, "auto", {"auto", "true", "false"},
                  "Nesterov momentum (auto: NB201 yes, else no)")
          .real("train.grad_clip", &O::grad_clip, -1, -1, 1e9,
                "clip the gradient's L2 norm (-1: DARTS 5, else none; 0: none)")
          .integer("train.channels", &O::channels, 0, 0, 4096,
                   "initial channels C (0: DARTS 36 (48 with the ImageNet stem), NB201 16)")
          .integer("train.cells", &O::cells, 0, 0, 1000,
                   "DARTS: cells L (0: 20; 14 with the ImageNet stem); NB201: cells per stage N (0: 5)")
          .choice("train.stem", &O::stem, "auto", {"auto", "cifar", "imagenet"},
                  "DARTS: cifar (3x3 conv, 3C channels) or imagenet (three stride-2 3x3 convs; NetworkImageNet) (auto: "
                  "imagenet for images of 128 pixels or more)")
          .real("train.auxiliary_weight", &O::auxiliary_weight, -1, -1, 100,
                "DARTS: weight of the auxiliary head's loss (-1: 0.4; 0: no head)")
          .real("train.drop_path", &O::drop_path, -1, -1, 0.99,
                "DARTS space: drop-path probability at the last epoch, rising linearly from 0 (-1: DARTS 0.2, DrNAS "
                "0.3; 0 with the ImageNet stem)")
          .integer("train.cutout", &O::cutout, -1, -1, 4096,
                   "side of the cutout square in pixels (-1: DARTS 16 (0 with the ImageNet stem), else 0; 0: none)")
          .real("train.label_smoothing", &O::label_smoothing, -1, -1, 0.999,
                "label smoothing of the loss (-1: 0.1 with DARTS's ImageNet stem, else 0)")
          .integer("train.eval_every", &O::eval_every, 0, 0, 1000000,
                   "test the network every N epochs too (0: only at the end)")
          .resumable()
          .integer("train.eval_batch", &O::eval_batch, 500, 1, 1000000, "batch size of evaluation on the test split")
          .resumable();
  return b;
}

namespace {

// The method recorded in a search's genotype.json ("" when the file names none).
std::string method_of_genotype_file(const std::string& file) {
  const auto j = nlohmann::json::parse(read_file_bytes(file), nullptr, false);
  if (j.is_object() && j.contains("method") && j["method"].is_string()) return j["method"].get<std::string>();
  return {};
}

}  // namespace

TrainTarget resolve_train_target(const std::string& value) {
  PROBNAS_CHECK(!value.empty(), "probnas train needs a genotype: --genotype <run folder>/genotype.json (or an NB201 "
                "string, or a DARTS Genotype(...) string)");
  TrainTarget t;
  if (value.front() == '|') {
    t.genotype.space = "nb201";
    t.genotype.text = value;
    nb201_cell_ops(t.genotype);  // validates
    return t;
  }
  if (value.rfind("Genotype(", 0) == 0) {
    t.genotype.space = "darts";
    t.genotype.text = value;
    darts_cell_nodes(t.genotype, "normal");
    darts_cell_nodes(t.genotype, "reduce");
    return t;
  }
  std::string file = value;
  if (std::filesystem::is_directory(file)) file += "/genotype.json";
  PROBNAS_CHECK(file_exists(file), "train.genotype = ", value, ": no such file (give a genotype.json written by probnas "
                "search, its run folder, an NB201 string |op~0|+...| or a DARTS Genotype(...) string)");
  t.genotype = read_genotype_file(file);
  t.file = file;
  t.folder = std::filesystem::path(file).parent_path().string();
  if (t.folder.empty()) t.folder = ".";
  t.method = method_of_genotype_file(file);
  if (t.genotype.space == "multibranch") {
    t.pgnas = true;
    PROBNAS_CHECK(file_exists(t.folder + "/best_network.h5"), "train.genotype = ", value, ": a PGNAS result is "
                  "evaluated from its best_network.h5, which is not in ", t.folder,
                  " (the PGNAS search has not finished ranking its candidates: run probnas search or sample again)");
  } else if (t.genotype.space == "nb201") {
    nb201_cell_ops(t.genotype);
  } else if (t.genotype.space == "darts") {
    darts_cell_nodes(t.genotype, "normal");
    darts_cell_nodes(t.genotype, "reduce");
  } else {
    PROBNAS_FAIL("genotype file '", file, "' is of the '", t.genotype.space,
                 "' space; probnas train builds nb201, darts and (PGNAS) multibranch networks");
  }
  return t;
}

std::string TrainProtocol::to_json() const {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["epochs"] = epochs;
  j["batch_size"] = batch_size;
  j["lr"] = lr;
  j["lr_min"] = lr_min;
  j["lr_schedule"] = lr_schedule;
  if (lr_schedule == "exponential") j["lr_decay"] = lr_decay;
  j["warmup_epochs"] = warmup_epochs;
  j["momentum"] = momentum;
  j["nesterov"] = nesterov;
  j["weight_decay"] = weight_decay;
  j["grad_clip"] = grad_clip;
  if (name != "pgnas") {
    j["channels"] = channels;
    j["cells"] = cells;
  }
  if (name.rfind("darts", 0) == 0 || name.rfind("drnas", 0) == 0) {  // the DARTS-space evaluation network
    j["stem"] = stem;
    j["auxiliary_weight"] = auxiliary_weight;
    j["drop_path"] = drop_path;
  }
  j["cutout"] = cutout;
  j["label_smoothing"] = label_smoothing;
  return j.dump();
}

double TrainProtocol::lr_at(int64_t epoch, int64_t epochs) const {
  if (epoch < warmup_epochs) return lr * static_cast<double>(epoch + 1) / static_cast<double>(warmup_epochs);
  if (lr_schedule == "exponential") return lr * std::pow(lr_decay, static_cast<double>(epoch));
  if (lr_schedule == "linear") {
    // PC-DARTS's and DrNAS's adjust_lr: to 0 over the first epochs - 5 epochs, then a fifth of that slope, so
    // that the last epochs do not run at lr / epochs or less.
    const double e = static_cast<double>(epoch), n = static_cast<double>(epochs);
    const double factor = epochs <= 5 ? (n - e) / n : epochs - epoch > 5 ? (n - 5 - e) / (n - 5) : (n - e) / ((n - 5) * 5);
    return lr_min + (lr - lr_min) * factor;
  }
  return cosine_lr(lr, lr_min, epoch, epochs);
}

bool adopt_older_schedule(TrainProtocol& p, const std::string& stored_json, const TrainOptions& o) {
  const auto stored = nlohmann::json::parse(stored_json, nullptr, false);
  if (!stored.is_object() || stored.contains("lr_schedule") || o.lr_schedule != "auto") return false;
  const bool changed = p.lr_schedule != "cosine" || p.warmup_epochs != 0;
  p.lr_schedule = "cosine";
  p.warmup_epochs = 0;
  p.lr_decay = 0;
  return changed;
}

TrainProtocol resolve_train_protocol(const TrainOptions& o, const std::string& space, int64_t image_size,
                                     const std::string& method) {
  TrainProtocol p;
  const bool darts = space == "darts", nb201 = space == "nb201";
  PROBNAS_CHECK(darts || o.protocol == "auto", "train.protocol = ", o.protocol, " chooses the DARTS or DrNAS paper's "
                "protocol for a DARTS-space genotype; this genotype is of the ", space, " space, which has one (",
                nb201 ? "NAS-Bench-201's" : "PGNAS's fine-tuning", "): leave train.protocol = auto");
  std::string stem = o.stem;
  if (stem == "auto") stem = image_size >= 128 ? "imagenet" : "cifar";
  const bool imagenet = darts && stem == "imagenet";
  const bool drnas = darts && (o.protocol == "drnas" || (o.protocol == "auto" && method == "drnas"));
  p.name = darts ? std::string(drnas ? "drnas" : "darts") + (imagenet ? "-imagenet" : "") : nb201 ? "nb201" : "pgnas";
  p.stem = stem;
  auto integer = [](int64_t value, int64_t automatic, int64_t sentinel) { return value == sentinel ? automatic : value; };
  auto real = [](double value, double automatic, double sentinel) { return value == sentinel ? automatic : value; };
  // DARTS's train.py / train_imagenet.py, DrNAS's train.py / train_imagenet.py (the paper's section 4),
  // NAS-Bench-201's 200-epoch schedule, and PGNAS fine-tuning.
  p.epochs = integer(o.epochs, darts ? (imagenet ? 250 : 600) : nb201 ? 200 : 0, -1);
  p.batch_size = integer(o.batch_size, darts ? (imagenet ? (drnas ? 768 : 128) : 96) : nb201 ? 256 : 128, 0);
  p.lr = real(o.lr, darts ? (imagenet ? (drnas ? 0.5 : 0.1) : 0.025) : nb201 ? 0.1 : 0.01, 0);
  p.lr_min = o.lr_min;
  p.lr_schedule = o.lr_schedule != "auto" ? o.lr_schedule : imagenet ? (drnas ? "linear" : "exponential") : "cosine";
  p.lr_decay = p.lr_schedule == "exponential" ? real(o.lr_decay, 0.97, -1) : 0;
  PROBNAS_CHECK(o.lr_decay == -1 || o.lr_decay > 0, "train.lr_decay = ", o.lr_decay,
                " must be above 0 (or -1: the protocol's)");
  PROBNAS_CHECK(o.lr_decay == -1 || p.lr_schedule == "exponential", "train.lr_decay = ", o.lr_decay,
                " is the exponential schedule's factor; this run's train.lr_schedule is ", p.lr_schedule);
  PROBNAS_CHECK(p.lr_schedule != "exponential" || p.lr_decay > 0, "train.lr_decay = ", p.lr_decay,
                ": the exponential schedule needs a factor above 0 (DARTS's is 0.97)");
  // DrNAS's train_imagenet.py warms up for its large batches only (above 256).
  p.warmup_epochs = integer(o.warmup_epochs, imagenet && drnas && p.batch_size > 256 ? 5 : 0, -1);
  p.momentum = o.momentum;
  p.weight_decay = real(o.weight_decay, darts ? (imagenet ? 3e-5 : 3e-4) : 5e-4, -1);
  p.nesterov = o.nesterov == "auto" ? nb201 : o.nesterov == "true";
  p.grad_clip = real(o.grad_clip, darts ? 5 : 0, -1);
  p.channels = integer(o.channels, darts ? (imagenet ? 48 : 36) : 16, 0);
  p.cells = integer(o.cells, darts ? (imagenet ? 14 : 20) : 5, 0);
  p.auxiliary_weight = darts ? real(o.auxiliary_weight, 0.4, -1) : 0;
  p.drop_path = darts ? real(o.drop_path, imagenet ? 0 : drnas ? 0.3 : 0.2, -1) : 0;
  p.cutout = integer(o.cutout, darts && !imagenet ? 16 : 0, -1);
  p.label_smoothing = real(o.label_smoothing, imagenet ? 0.1 : 0, -1);
  if (!darts) {
    PROBNAS_CHECK(o.auxiliary_weight <= 0 && o.drop_path <= 0, "train.auxiliary_weight "
                  "and train.drop_path belong to the DARTS evaluation network; this genotype is of the ", space,
                  " space");
  }
  if (space == "multibranch" && (o.channels != 0 || o.cells != 0)) {
    PROBNAS_LOG(warn) << "train.channels and train.cells are ignored: a PGNAS candidate's network is its best_network.h5";
  }
  return p;
}

}  // namespace probnas
