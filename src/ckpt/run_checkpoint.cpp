#include "probnas/ckpt/run_checkpoint.h"

#include <torch/torch.h>

#include "probnas/ckpt/checkpoint.h"
#include "probnas/ckpt/torch_state.h"
#include "probnas/core/format.h"

namespace probnas::ckpt {

torch::Tensor RunHistory::sums_for(int rank, int ranks) const {
  if (!epoch_sums.defined() || epoch_sums.numel() == 0) return torch::zeros({6}, torch::kFloat64);
  if (epoch_sums.size(0) == ranks) return epoch_sums[rank].clone();
  return rank == 0 ? epoch_sums.sum(0) : torch::zeros({6}, torch::kFloat64);
}

State to_state(const RunCheckpoint& c) {
  State state;
  auto& meta = state.group("meta");
  const int64_t per_epoch = std::max<int64_t>(c.meta.steps_per_epoch, 1);
  meta.set_attr("schema_version", kSchemaVersion);
  meta.set_attr("probnas_version", std::string(PROBNAS_VERSION));
  meta.set_attr("torch_version", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                                     std::to_string(TORCH_VERSION_PATCH));
  meta.set_attr("method", c.meta.method);
  meta.set_attr("space", c.meta.space);
  meta.set_attr("dataset", c.meta.dataset);
  meta.set_attr("world_size", c.meta.world_size);
  meta.set_attr("step", c.meta.step);
  meta.set_attr("epoch", c.meta.step / per_epoch);
  meta.set_attr("step_in_epoch", c.meta.step % per_epoch);
  meta.set_attr("total_steps", c.meta.total_steps);
  meta.set_attr("wall_seconds", c.meta.wall_seconds);
  meta.set_attr("saved_at", utc_now());
  meta.set_attr("config_hash", c.meta.config_hash);
  if (!c.meta.genotype.empty()) meta.set_attr("genotype", c.meta.genotype);
  meta.put_text("config", c.meta.config_ini);

  state.group("model") = c.model;
  state.group("optim") = c.optim;
  state.group("method") = c.method;

  const auto& p = c.position;
  auto& loader = state.group("loader");
  const int64_t steps = std::max<int64_t>(p.steps_per_epoch, 1);
  loader.set_attr("epoch", p.global_step / steps);
  loader.set_attr("step_in_epoch", p.global_step % steps);
  loader.set_attr("global_step", p.global_step);
  loader.set_attr("steps_per_epoch", p.steps_per_epoch);
  if (p.arch_examples) {
    loader.set_attr("weight_examples", p.examples);
    loader.set_attr("arch_examples", *p.arch_examples);
  } else {
    loader.set_attr("examples", p.examples);
  }
  loader.set_attr("global_batch", p.global_batch);
  loader.set_attr("micro_batches", p.micro_batches);
  if (p.arch_global_batch) loader.set_attr("arch_global_batch", *p.arch_global_batch);
  loader.set_attr("data", p.data);
  if (p.next_example) loader.set_attr("next_weight_example", *p.next_example);

  auto& rng = state.group("rng");
  rng.set_attr("seed", c.seed);
  rng.set_attr("scheme", std::string("every draw keyed by (seed, purpose, step, index); generators below hold "
                                     "LibTorch's default generators per rank"));
  put_generator_states(rng, c.generator_states);

  auto& h = state.group("history");
  h.put_lines("metrics", c.history.metrics);
  h.put("epoch_sums", c.history.epoch_sums);
  h.set_attr("images", c.history.images);
  h.set_attr("columns", std::string("epoch_sums: train loss, train correct, train count, val loss, val correct, val "
                                     "count (per rank)"));
  // The state's path names ("/meta/...") come from group creation; copies above keep the source's.
  return state;
}

CheckpointMeta read_meta(const State& state) {
  const State& meta = state.group("meta");
  CheckpointMeta m;
  m.method = meta.attr_text("method");
  m.space = meta.attr_text("space");
  m.dataset = meta.has_attr("dataset") ? meta.attr_text("dataset") : "";
  m.world_size = meta.attr_int("world_size");
  m.step = meta.attr_int("step");
  m.total_steps = meta.has_attr("total_steps") ? meta.attr_int("total_steps") : 0;
  m.wall_seconds = meta.attr_real("wall_seconds");
  m.config_hash = meta.has_attr("config_hash") ? meta.attr_text("config_hash") : "";
  m.config_ini = meta.has_text("config") ? meta.text("config") : "";
  m.genotype = meta.has_attr("genotype") ? meta.attr_text("genotype") : "";
  m.saved_at = meta.has_attr("saved_at") ? meta.attr_text("saved_at") : "";
  m.probnas_version = meta.has_attr("probnas_version") ? meta.attr_text("probnas_version") : "";
  return m;
}

DataPosition read_position(const State& state) {
  const State& l = state.group("loader");
  DataPosition p;
  p.global_step = l.attr_int("global_step");
  p.steps_per_epoch = l.attr_int("steps_per_epoch");
  p.global_batch = l.has_attr("global_batch") ? l.attr_int("global_batch") : 0;
  p.micro_batches = l.has_attr("micro_batches") ? l.attr_int("micro_batches") : 1;
  if (l.has_attr("arch_examples")) {
    p.examples = l.attr_int("weight_examples");
    p.arch_examples = l.attr_int("arch_examples");
  } else {
    p.examples = l.attr_int("examples");
  }
  if (l.has_attr("arch_global_batch")) p.arch_global_batch = l.attr_int("arch_global_batch");
  if (l.has_attr("next_weight_example")) p.next_example = l.attr_int("next_weight_example");
  p.data = l.has_attr("data") ? l.attr_text("data") : "";
  return p;
}

RunHistory read_history(const State& state) {
  const State& h = state.group("history");
  RunHistory r;
  r.metrics = h.lines("metrics");
  r.epoch_sums = h.get("epoch_sums");
  r.images = h.attr_int("images");
  return r;
}

}  // namespace probnas::ckpt
