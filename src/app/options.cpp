#include "probnas/app/options.h"

#include <limits>

namespace probnas {

namespace {

// run.*, ckpt.*, comm.*: where a run goes, its checkpoints and its ranks.
void add_run_options(OptionTable& t, const std::string& run_dir_help) {
  t.text("run.dir", "", run_dir_help)
      .integer("run.seed", 0, 0, std::numeric_limits<int32_t>::max(), "seed of every random draw of the run")
      .choice("run.device", "cpu", {"cpu", "cuda"}, "compute device (cuda: cuda:<local rank mod visible devices>)")
      .integer("run.threads", 0, 0, 4096, "intra-op CPU threads per rank (0: the node's cores / ranks on the node)")
      .real("run.progress_interval", 10, 0, 86400, "seconds between progress lines on stderr (0: every step)")
      .choice("run.log_level", "info", {"debug", "info", "warn", "error"}, "least severe log level printed")
      .text("run.resume", "auto", "auto: carry on from the run folder's newest good checkpoint if there is one; "
                                  "never: refuse a folder that holds checkpoints; or a checkpoint file to start from");
  t.integer("ckpt.interval_steps", 0, 0, 1000000000, "checkpoint every N steps (0: no step trigger)")
      .real("ckpt.interval_minutes", 15, 0, 1e7, "checkpoint when this many minutes passed since the last one "
                                                 "(0: no time trigger)")
      .boolean("ckpt.epoch_end", true, "checkpoint at the end of every epoch")
      .integer("ckpt.keep", 3, 1, 1000000, "newest checkpoint files kept in <run.dir>/checkpoints")
      .boolean("ckpt.file_locking", true, "HDF5 file locking (turn off on file systems that refuse POSIX locks)")
      .integer("ckpt.compress", 0, 0, 9, "gzip level of checkpoint datasets (0: uncompressed, fastest)");
  t.integer("comm.verify_interval", 100, 0, 1000000000,
            "steps between checks that every rank holds identical parameters (0: never)")
      .choice("comm.backend", "auto", {"auto", "mpi", "nccl"},
              "how CUDA tensors are reduced between ranks: auto (NCCL where this build has it and there is more "
              "than one rank), nccl, or mpi (staged through the host); CPU tensors always use MPI");
}

// data.*: the images and their augmentation.
void add_data_options(OptionTable& t) {
  t.choice("data.dataset", "fashion-mnist", {"fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic", "shards"},
           "training data (shards: HDF5 image shards written by probnas convert, read a batch at a time)")
      .text("data.path", "", "folder of the dataset's files (empty: /usr/share/datasets/<dataset> for the "
                             "MNIST family; required for CIFAR and shards: the folder probnas convert wrote)")
      .text("data.test_path", "", "folder of the test split (empty: data.path; for shards: a folder probnas convert "
                                  "wrote from the test or validation images; probnas train and PGNAS's test)")
      .integer("data.limit", 0, 0, 1000000000, "use only the first N training images (0: all)")
      .real("data.train_portion", 0.5, 0.01, 0.99,
            "search: share of the training images for the weights; the rest drive the architecture")
      .boolean("data.normalize", true, "normalise by the per-channel mean/std of the training images")
      .boolean("data.crop", true, "random crop after zero padding (training augmentation)")
      .integer("data.crop_padding", 4, 0, 64, "padding of the random crop, pixels")
      .boolean("data.flip", true, "random horizontal flip (training augmentation)")
      .boolean("data.random_resized_crop", false, "ImageNet augmentation: a random crop of data.crop_scale_min-1 "
               "of the area at aspect ratio 3/4-4/3, resized to data.image_size (replaces the padded crop)")
      .real("data.crop_scale_min", 0.08, 0.01, 1.0, "smallest area fraction of a random resized crop")
      .integer("data.image_size", 0, 0, 4096, "height = width of the images the network sees (0: as stored); "
               "stored images are resized to it, or random-resized-cropped to it")
      .integer("data.workers", -1, -1, 64, "loader threads per rank that read, decode and augment ahead of the "
               "search (0: on the main thread; -1: 2 for shards, 0 for data held in memory); they change speed, "
               "never results")
      .integer("data.prefetch", 2, 1, 64, "global batches the loader threads prepare ahead (memory: this many "
               "batches of images)")
      .integer("data.synthetic_count", 1024, 2, 100000000, "synthetic: number of images")
      .integer("data.synthetic_size", 32, 4, 4096, "synthetic: image height and width")
      .integer("data.synthetic_channels", 3, 1, 64, "synthetic: image channels")
      .integer("data.synthetic_classes", 10, 2, 100000, "synthetic: classes");
}

}  // namespace

const OptionTable& search_option_table() {
  static const OptionTable table = [] {
    constexpr double kBig = 1e9;
    OptionTable t;
    add_run_options(t, "run folder for config.ini, genotype.json, metrics.jsonl (empty: "
                       "outputs/<method>-<space>-<dataset>-seed<seed>)");
    t.choice("search.method", "drnas", {"darts", "drnas", "gdas", "gibbsnas", "parsec", "pgnas", "random"},
             "search method (pgnas needs search.space = multibranch; random: random search with weight sharing)")
        .choice("search.space", "nb201", {"nb201", "darts", "multibranch"},
                "search space: NAS-Bench-201 cells, DARTS's normal and reduction cells, or PGNAS's multi-branch "
                "ResNet with gated channels")
        .integer("search.epochs", 100, 1, 1000000, "search epochs (one epoch = one pass over the weight half)")
        .integer("search.batch_size", 64, 1, 1 << 20, "global batch size (fixed whatever the number of ranks)")
        .integer("search.arch_batch_size", 0, 0, 1 << 24,
                 "global batch of the architecture split (0: search.batch_size; for GibbsNAS 2048, the paper's, "
                 "rounded up to whole micro-batches), cut into micro-batches of the weight batch's micro-batch size")
        .integer("search.micro_batches", 1, 1, 1 << 20,
                 "micro-batches per global batch (the unit ranks share; each has its own BatchNorm statistics)")
        .real("search.lr", 0.025, 0, 10, "weight learning rate (start of the cosine schedule)")
        .real("search.lr_min", 0.001, 0, 10, "weight learning rate at the end of the cosine schedule")
        .real("search.momentum", 0.9, 0, 1, "SGD momentum of the weights")
        .real("search.weight_decay", 3e-4, 0, 1, "L2 weight decay of the weights")
        .real("search.grad_clip", 5, 0, kBig, "clip the weight gradient's L2 norm to this (0: no clipping)")
        .real("search.arch_lr", 3e-4, 0, 10, "Adam learning rate of the architecture parameters")
        .real("search.arch_beta1", 0.5, 0, 0.999999, "Adam beta1 of the architecture parameters")
        .real("search.arch_beta2", 0.999, 0, 0.999999, "Adam beta2 of the architecture parameters")
        .real("search.arch_init_std", 1e-3, 0, 10, "architecture parameters start at N(0, std^2)")
        .integer("search.warmup_epochs", 0, 0, 1000000, "epochs of weight-only training before architecture steps "
                                                        "(progressive learning: at the start of every stage)")
        .boolean("search.edge_norm", false, "PC-DARTS edge normalisation (DARTS space): learned softmax weights over "
                                            "the edges into each node scale the edges; the genotype keeps the edges "
                                            "with the largest weight x operation weight");
    t.real("darts.arch_weight_decay", 1e-3, 0, 1, "L2 decay of DARTS's alpha (Adam weight decay)")
        .integer("darts.order", 1, 1, 2, "DARTS's architecture gradient: 1 first order (weights held fixed); 2 second "
                                         "order (validation loss after one unrolled weight step, Hessian-vector product "
                                         "by finite differences; a search step takes about 3x as long)");
    t.real("drnas.reg_scale", 1e-3, 0, 1, "DrNAS L2 anchor on eta (Adam weight decay lambda)");
    t.real("gdas.tau_max", 10, 1e-4, 1e4, "GDAS Gumbel-softmax temperature in the first epoch")
        .real("gdas.tau_min", 0.1, 1e-4, 1e4, "GDAS temperature in the last epoch (linear in between; "
                                              "at most gdas.tau_max)")
        .real("gdas.arch_weight_decay", 1e-3, 0, 1, "L2 decay of GDAS's alpha (Adam weight decay)");
    t.integer("gibbs.order", 2, 1, 2, "GibbsNAS: 2 samples the weights and alpha from their quasi-Newton Gaussians; 1 "
                                      "trains the weights by momentum SGD (search.lr ...) and samples alpha")
        .boolean("gibbs.sample_weights", true, "GibbsNAS order 2: sample the weights (false: step to the Gaussian's "
                                               "mean, the mean-only ablation)")
        .boolean("gibbs.sample_arch", true, "GibbsNAS: sample alpha (false: step to the Gaussian's mean)")
        .real("gibbs.weight_step", 5, 0, 1e6, "GibbsNAS order 2: scale eta_w of the weights' mean step -eta_w D b at the "
                                             "start (1: the Gaussian's mean); it follows search.lr's cosine schedule")
        .real("gibbs.max_step", 10, 0, 1e6, "GibbsNAS order 2: trust region of the weights' step, eta_w d_i <= this x "
                                            "search.lr's schedule for every coordinate i (0: none)")
        .real("gibbs.weight_noise", 1e-4, 0, 1e6, "GibbsNAS order 2: tau_w, the weights' noise covariance is tau_w D")
        .real("gibbs.noise_clip", 1, 0, 1e6, "GibbsNAS order 2: the weights' noise norm is clipped to this times the "
                                             "mean step's norm (0: no clipping)")
        .integer("gibbs.history", 5, 1, 1000, "GibbsNAS order 2: curvature pairs kept by the weights' diagonal "
                                               "inverse-Hessian estimate D")
        .integer("gibbs.pair_every", 1, 1, 1000000, "GibbsNAS: a curvature pair for H (and D, order 2) every N steps, "
                                                    "on the step's own batches (costs one more gradient each)")
        .real("gibbs.arch_step", 0.01, 0, 1e6, "GibbsNAS: scale eta_a of alpha's mean step -eta_a H b (H: dense BFGS)")
        .real("gibbs.arch_noise", 1e-6, 0, 1e6, "GibbsNAS: tau_a, alpha's noise covariance is tau_a H")
        .real("gibbs.arch_max_inverse_curvature", 1000, 0, 1e12, "GibbsNAS: eigenvalues of H are capped at this "
                                                                  "(0: no cap)")
        .real("gibbs.arch_prior_decay", 1e-4, 0, 1, "GibbsNAS: decay (1 / prior variance) of alpha's Gaussian prior; "
                                                    "the weights' is search.weight_decay");
    t.integer("parsec.samples", 8, 1, 1000000, "PARSEC: architectures K sampled per step for the importance-weighted "
                                               "gradients (ranks split them: a multiple of the number of ranks)")
        .real("parsec.arch_lr", 3e-3, 0, 10, "PARSEC: Adam learning rate of the categorical logits pi")
        .integer("parsec.top_k", 10, 1, 100000, "PARSEC: most probable architectures listed in genotype.json");
    t.integer("random.candidates", 100, 1, 100000000, "random search: architectures drawn and scored with the shared "
                                                        "weights on the validation split; the best is the genotype")
        .integer("random.eval_epochs", 1, 1, 1000000, "random search: the last epochs in which the candidates are "
                                                      "scored, one per step in turn");
    t.real("pgnas.temperature", 0.2, 1e-3, 100, "PGNAS: temperature tau of the concrete (Gumbel-sigmoid) gates "
                                                "(0.2: 1/5 as the PGNAS code)")
        .real("pgnas.length_scale", 0, 0, 1e6, "PGNAS: prior length scale l of the KL term's l^2 (1 - p) / (2N) "
                                               "||m||^2 (0: l^2 = N x search.weight_decay, the gated kernels then "
                                               "decay like the other weights at p = 0)")
        .real("pgnas.init_drop", 0.1, 1e-4, 0.9999, "PGNAS: initial drop probability of every gate group")
        .real("pgnas.drop_lr", 1e-3, 0, 10, "PGNAS: Adam learning rate of the drop logits")
        .integer("pgnas.candidates", 1500, 1, 100000000, "PGNAS: candidates (gates + shared weights) drawn and ranked "
                                                          "on the validation split after training")
        .choice("pgnas.sampling", "both", {"guided", "random", "both"},
                "PGNAS: guided (from the learned posterior), random (every gate dropped with pgnas.random_drop: the "
                "paper's Random baseline), or both (the best guided candidate is the result)")
        .real("pgnas.random_drop", -1, -1, 1, "PGNAS: drop probability of the random baseline (-1: the learned mean, "
                                              "a comparable kept-channel fraction)")
        .choice("pgnas.bn", "running", {"running", "recalibrate"},
                "PGNAS: BatchNorm statistics of a candidate: running (the supernet's, as the PGNAS code) or "
                "recalibrate (recomputed on pgnas.bn_images training images per candidate)")
        .integer("pgnas.bn_images", 512, 1, 100000000, "PGNAS: training images for pgnas.bn = recalibrate")
        .integer("pgnas.eval_images", 0, 0, 1000000000, "PGNAS: held-out images each candidate is scored on (0: the "
                                                       "whole architecture split)")
        .integer("pgnas.eval_batch", 500, 1, 1000000, "PGNAS: batch size of candidate evaluation")
        .boolean("pgnas.test", true, "PGNAS: evaluate the best candidates and the supernet on the test split");
    add_data_options(t);
    t.integer("space.channels", 16, 1, 4096, "initial channels C of the supernet")
        .integer("space.cells_per_stage", 5, 1, 64, "NB201: cells per stage N (3 stages); multibranch: residual "
                                                     "blocks per stage")
        .text("space.kernels", "1,3,5,7", "multibranch: kernel sizes of the branches of every block (1 to 4 odd "
                                          "sizes, one branch each)")
        .integer("space.cells", 8, 3, 1000, "DARTS space: cells (8: the search proxy; 20: evaluation size); "
                                            "reduction cells at 1/3 and 2/3")
        .text("space.ops", "", "DARTS space: candidate operations, comma-separated (empty: all 8 of DARTS: none, "
                               "max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, "
                               "dil_conv_5x5; DrNAS searches the 7 without none)")
        .integer("space.partial_channels", 1, 1, 4096, "DARTS space: PC-DARTS partial channels K: 1/K of each edge's "
                                                       "channels go through the operations, the rest bypass, then "
                                                       "channels are shuffled (1: all channels; K must divide "
                                                       "space.channels)")
        .choice("space.stem", "cifar", {"cifar", "imagenet"},
                "DARTS space: cifar (one 3x3 conv, 3C channels; the cells see full-size images) or imagenet (the "
                "224x224 search stem of DrNAS and PC-DARTS: three stride-2 3x3 convs; the cells start at 1/8)");
    t.text("progressive.k", "", "DrNAS progressive learning (DARTS space): partial-channel K per stage, e.g. 6,3 "
                                "(empty: no stages); operations widen to C/K at each stage's start")
        .text("progressive.epochs", "", "epochs per progressive stage, e.g. 25,25 (must add up to search.epochs)")
        .text("progressive.keep", "", "operations kept per edge in each progressive stage, by learned concentration, "
                                      "e.g. 7,4 (empty: all in the first stage, then the stronger half per stage)");
    t.text("report.nb201_table", "auto", "NAS-Bench-201 200-epoch accuracy table (nats_bench.csv) that scores derived "
                                         "NB201 cells: auto (the copy shipped in inputs/nb201), none, or a path");
    t.skip_in_files({"train"});  // a study's file configures probnas train too
    return t;
  }();
  return table;
}

const OptionTable& train_option_table() {
  static const OptionTable table = [] {
    OptionTable t;
    add_run_options(t, "run folder for config.ini, train-metrics.jsonl, result.json and checkpoints/ (empty: "
                       "<the genotype file's folder>/train)");
    add_data_options(t);
    t.text("train.genotype", "", "what to train (also --genotype): a genotype.json written by probnas search (NB201 or "
                                 "DARTS space; a PGNAS run's genotype.json evaluates its best_network.h5), an NB201 "
                                 "string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|, or a DARTS Genotype(normal=[...], ...) string")
        .integer("train.epochs", -1, -1, 1000000, "training epochs (-1: the protocol's: DARTS 600, NB201 200, PGNAS 0 = "
                                                  "evaluate as sampled; for PGNAS N > 0 fine-tunes N epochs)")
        .integer("train.batch_size", 0, 0, 1 << 20, "global batch size, fixed whatever the ranks (0: DARTS 96, NB201 256, "
                                                   "PGNAS 128)")
        .integer("train.micro_batches", 1, 1, 1 << 20, "micro-batches per global batch (the unit ranks share)")
        .real("train.lr", 0, 0, 10, "initial learning rate of the cosine schedule (0: DARTS 0.025, NB201 0.1, PGNAS 0.01)")
        .real("train.lr_min", 0, 0, 10, "learning rate at the end of the cosine schedule")
        .real("train.momentum", 0.9, 0, 1, "SGD momentum")
        .real("train.weight_decay", -1, -1, 1, "L2 weight decay (-1: DARTS 3e-4, NB201 5e-4, PGNAS 5e-4)")
        .choice("train.nesterov", "auto", {"auto", "true", "false"}, "Nesterov momentum (auto: NB201 yes, else no)")
        .real("train.grad_clip", -1, -1, 1e9, "clip the gradient's L2 norm (-1: DARTS 5, else none; 0: none)")
        .integer("train.channels", 0, 0, 4096, "initial channels C (0: DARTS 36 (48 with the ImageNet stem), NB201 16)")
        .integer("train.cells", 0, 0, 1000, "DARTS: cells L (0: 20; 14 with the ImageNet stem); NB201: cells per "
                                           "stage N (0: 5)")
        .choice("train.stem", "auto", {"auto", "cifar", "imagenet"},
                "DARTS: cifar (3x3 conv, 3C channels) or imagenet (three stride-2 3x3 convs; NetworkImageNet) (auto: "
                "imagenet for images of 128 pixels or more)")
        .real("train.auxiliary_weight", -1, -1, 100, "DARTS: weight of the auxiliary head's loss (-1: 0.4; 0: no head)")
        .real("train.drop_path", -1, -1, 0.99, "DARTS: drop-path probability at the last epoch, rising linearly from 0 "
                                               "(-1: 0.2 (0 with the ImageNet stem))")
        .integer("train.cutout", -1, -1, 4096, "side of the cutout square in pixels (-1: DARTS 16 (0 with the ImageNet "
                                               "stem), else 0; 0: none)")
        .real("train.label_smoothing", -1, -1, 0.999, "label smoothing of the loss (-1: 0.1 with DARTS's ImageNet stem, "
                                                       "else 0)")
        .integer("train.eval_every", 0, 0, 1000000, "test the network every N epochs too (0: only at the end)")
        .integer("train.eval_batch", 500, 1, 1000000, "batch size of evaluation on the test split");
    t.text("report.nb201_table", "auto", "NAS-Bench-201 table for NB201 genotypes' benchmark accuracies in "
                                         "result.json: auto (the shipped copy), none, or a path");
    // The search's sections, when one file configures a whole study.
    t.skip_in_files({"search", "space", "progressive", "darts", "drnas", "gdas", "gibbs", "parsec", "pgnas", "random"});
    return t;
  }();
  return table;
}

}  // namespace probnas
