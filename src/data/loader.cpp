#include "probnas/data/loader.h"

#include <torch/torch.h>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "probnas/comm/communicator.h"
#include "probnas/core/error.h"

namespace probnas {
namespace {

torch::Tensor resize(const torch::Tensor& x, int64_t h, int64_t w) {
  return torch::nn::functional::interpolate(
      x, torch::nn::functional::InterpolateFuncOptions()
             .size(std::vector<int64_t>{h, w})
             .mode(torch::kBilinear)
             .align_corners(false));
}

// torchvision's RandomResizedCrop: area fraction in [scale_min, 1], log-uniform aspect ratio in
// [3/4, 4/3], up to 10 tries, else the largest centred crop within the ratio bounds. A fixed
// number of draws per image keeps the generator's stream independent of the outcome.
torch::Tensor random_resized_crop(const torch::Tensor& x, double scale_min, int64_t out, at::Generator* gen) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const auto draws = torch::rand({b, 10, 4}, *gen, torch::kFloat64).contiguous();
  const auto d = draws.accessor<double, 3>();
  const double area = static_cast<double>(h * w), lo = std::log(3.0 / 4.0), hi = std::log(4.0 / 3.0);
  std::vector<torch::Tensor> crops;
  crops.reserve(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    int64_t ch = 0, cw = 0, top = 0, left = 0;
    for (int t = 0; t < 10 && ch == 0; ++t) {
      const double target = area * (scale_min + (1.0 - scale_min) * d[i][t][0]);
      const double ratio = std::exp(lo + (hi - lo) * d[i][t][1]);
      const auto tw = static_cast<int64_t>(std::llround(std::sqrt(target * ratio)));
      const auto th = static_cast<int64_t>(std::llround(std::sqrt(target / ratio)));
      if (tw > 0 && th > 0 && tw <= w && th <= h) {
        ch = th, cw = tw;
        top = std::min(h - th, static_cast<int64_t>(d[i][t][2] * static_cast<double>(h - th + 1)));
        left = std::min(w - tw, static_cast<int64_t>(d[i][t][3] * static_cast<double>(w - tw + 1)));
      }
    }
    if (ch == 0) {  // fallback: centre crop at the nearest allowed ratio
      const double r = static_cast<double>(w) / static_cast<double>(h);
      if (r < 3.0 / 4.0) cw = w, ch = std::llround(w / (3.0 / 4.0));
      else if (r > 4.0 / 3.0) ch = h, cw = std::llround(h * (4.0 / 3.0));
      else ch = h, cw = w;
      top = (h - ch) / 2, left = (w - cw) / 2;
    }
    crops.push_back(resize(x[i].narrow(1, top, ch).narrow(2, left, cw).unsqueeze(0), out, out));
  }
  return torch::cat(crops);
}

// LibTorch's CPU ops run OpenMP teams of the rank's intra-op thread count. A loader thread keeps
// its ops to itself (it is one of several, beside the search's own threads): it sets its own
// OpenMP thread count to 1. The OpenMP runtime is the one LibTorch loaded; without one, nothing to do.
extern "C" void omp_set_num_threads(int) __attribute__((weak));

}  // namespace

void single_threaded_ops() {
  // LibTorch initialises each thread's OpenMP thread count on its first parallel op, to the
  // process-wide count: let it do that first, or it would undo the 1 set here.
  (void)at::get_num_threads();
  if (omp_set_num_threads != nullptr) omp_set_num_threads(1);
}

torch::Tensor transform_images(const torch::Tensor& images, const TransformOptions& o, const ChannelStats& stats,
                               bool augment, at::Generator* gen) {
  torch::Tensor x = images.to(torch::kFloat32).div_(255.0);
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t out = o.size > 0 ? o.size : 0;
  if (augment && o.resized_crop) {
    x = random_resized_crop(x, o.crop_scale_min, out > 0 ? out : std::min(h, w), gen);
  } else {
    if (augment && o.crop && o.crop_padding > 0) {
      const int64_t p = o.crop_padding;
      auto padded = torch::constant_pad_nd(x, {p, p, p, p}, 0.0);
      auto offsets = torch::randint(0, 2 * p + 1, {b, 2}, *gen, torch::kInt64);
      auto off = offsets.accessor<int64_t, 2>();
      std::vector<torch::Tensor> crops;
      crops.reserve(static_cast<size_t>(b));
      for (int64_t i = 0; i < b; ++i) crops.push_back(padded[i].narrow(1, off[i][0], h).narrow(2, off[i][1], w));
      x = torch::stack(crops);
    }
    if (out > 0 && (h != out || w != out)) x = resize(x, out, out);
  }
  if (augment && o.flip) {
    auto flip = torch::rand({b}, *gen) < 0.5;
    x = torch::where(flip.view({b, 1, 1, 1}), x.flip({3}), x);
  }
  if (o.normalize) x = (x - stats.mean.view({1, -1, 1, 1})) / stats.std.view({1, -1, 1, 1});
  if (augment && o.cutout > 0) {
    const int64_t hh = x.size(2), ww = x.size(3), half = o.cutout / 2;
    const auto centres = torch::stack({torch::randint(0, hh, {b}, *gen, torch::kInt64),
                                       torch::randint(0, ww, {b}, *gen, torch::kInt64)}, 1);
    const auto c = centres.accessor<int64_t, 2>();
    x = x.contiguous();
    for (int64_t i = 0; i < b; ++i) {
      const int64_t y0 = std::max<int64_t>(0, c[i][0] - half), y1 = std::min(hh, c[i][0] + half);
      const int64_t x0 = std::max<int64_t>(0, c[i][1] - half), x1 = std::min(ww, c[i][1] + half);
      if (y1 > y0 && x1 > x0) x[i].narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0).zero_();
    }
  }
  return x.contiguous();
}

// ---------------------------------------------------------------------------------------------
// What a batch is: a pure function of (global step, micro-batch), shared by the calling thread
// and the loader threads.

struct MicroBatch {
  torch::Tensor x, y;  // CPU (pinned when the run's device is a GPU)
  int64_t index = 0;
};

struct SplitLoader::Core {
  std::shared_ptr<const ImageSource> data;
  torch::Tensor indices;
  ChannelStats stats;
  SplitOptions options;
  RngKey key{0};
  int rank = 0, world_size = 1;
  bool pin = false;
  mutable std::mutex mutex;
  mutable std::map<int64_t, torch::Tensor> orders;  // epoch -> permutation (the newest few kept)

  int64_t steps_per_epoch() const { return indices.numel() / options.global_batch; }

  torch::Tensor order(int64_t epoch) const {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = orders.find(epoch);
    if (it != orders.end()) return it->second;
    while (orders.size() >= 3) orders.erase(orders.begin());
    auto gen = make_generator(key.with("order").with(static_cast<uint64_t>(epoch)));
    auto perm = torch::randperm(indices.numel(), gen, torch::kInt64);
    return orders.emplace(epoch, indices.index_select(0, perm)).first->second;
  }

  torch::Tensor global_indices(int64_t g) const {
    const int64_t spe = steps_per_epoch();
    const int64_t gb = options.global_batch;
    return order(g / spe).narrow(0, (g % spe) * gb, gb);
  }

  std::vector<MicroBatch> compute(int64_t g) const {
    const int64_t spe = steps_per_epoch(), epoch = g / spe, step = g % spe;
    const int64_t gb = options.global_batch, mbs = options.micro_batches;
    const torch::Tensor global = global_indices(g);
    const Range mine = partition(mbs, rank, world_size);
    std::vector<MicroBatch> out;
    for (int64_t m = mine.begin; m < mine.end; ++m) {
      const Range rows = partition(gb, static_cast<int>(m), static_cast<int>(mbs));
      const Examples ex = data->read(global.narrow(0, rows.begin, rows.size()));
      auto gen = make_generator(key.with("augment").with(static_cast<uint64_t>(epoch)).with(static_cast<uint64_t>(step))
                                    .with(static_cast<uint64_t>(m)));
      MicroBatch b;
      b.x = transform_images(ex.images, options.transform, stats, options.augment, &gen);
      b.y = ex.labels;
      if (pin) b.x = b.x.pin_memory(), b.y = b.y.pin_memory();
      b.index = m;
      out.push_back(std::move(b));
    }
    return out;
  }
};

// Loader threads: tasks are global steps; a bounded window of `prefetch` steps ahead of the one
// last asked for is queued or done. Asking for a step that is not in the window computes it on
// the calling thread (a jump: the first step, a resume, the architecture split's own counter).
struct SplitLoader::Prefetcher {
  using Result = std::shared_future<std::vector<MicroBatch>>;
  Prefetcher(std::shared_ptr<const Core> core, int64_t workers, int64_t depth) : core_(std::move(core)), depth_(depth) {
    try {
      for (int64_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    } catch (...) {
      stop_and_join();
      throw;
    }
  }
  ~Prefetcher() { stop_and_join(); }

  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::vector<MicroBatch> get(int64_t g) {
    std::optional<Result> mine;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = window_.find(g);
      if (it != window_.end()) mine = it->second;
      // Not started yet: the caller computes it now rather than wait for a thread to pick it up.
      for (auto q = queue_.begin(); q != queue_.end(); ++q)
        if (q->step == g) {
          queue_.erase(q);
          mine.reset();
          break;
        }
      // Forget what lies behind; queue the steps ahead.
      while (!window_.empty() && window_.begin()->first <= g) window_.erase(window_.begin());
      for (int64_t a = g + 1; a <= g + depth_; ++a) {
        if (window_.count(a)) continue;
        auto promise = std::make_shared<std::promise<std::vector<MicroBatch>>>();
        window_.emplace(a, promise->get_future().share());
        queue_.push_back({a, promise});
      }
      // Tasks no longer in the window are dropped before they start.
      std::deque<Task> kept;
      for (auto& t : queue_)
        if (window_.count(t.step)) kept.push_back(std::move(t));
      queue_ = std::move(kept);
    }
    cv_.notify_all();
    if (mine) return mine->get();  // rethrows a loader thread's error
    return core_->compute(g);
  }

 private:
  struct Task {
    int64_t step;
    std::shared_ptr<std::promise<std::vector<MicroBatch>>> promise;
  };
  void work() {
    single_threaded_ops();
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        task.promise->set_value(core_->compute(task.step));
      } catch (...) {
        task.promise->set_exception(std::current_exception());
      }
    }
  }
  std::shared_ptr<const Core> core_;
  int64_t depth_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::map<int64_t, Result> window_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

SplitLoader::SplitLoader(std::shared_ptr<const ImageSource> data, torch::Tensor indices, ChannelStats stats,
                         SplitOptions options, RngKey key, c10::Device device, int rank, int world_size)
    : core_(std::make_shared<Core>()), device_(device) {
  Core& c = *core_;
  c.data = std::move(data);
  c.indices = std::move(indices);
  c.stats = std::move(stats);
  c.options = options;
  c.key = key;
  c.rank = rank;
  c.world_size = world_size;
  c.pin = device.is_cuda();
  const SplitOptions& o = c.options;
  PROBNAS_CHECK(o.global_batch > 0, o.batch_option, " must be positive");
  PROBNAS_CHECK(o.micro_batches >= 1 && o.micro_batches <= o.global_batch, o.micro_option, " = ", o.micro_batches,
                " must be in [1, ", o.batch_option, " = ", o.global_batch, "]");
  PROBNAS_CHECK(o.micro_batches % world_size == 0, o.micro_option, " = ", o.micro_batches,
                " is not a multiple of the ", world_size, " ranks: every rank must take the same number of "
                "micro-batches (set ", o.micro_option, " to ", world_size, " or a multiple of it)");
  PROBNAS_CHECK(c.steps_per_epoch() > 0, "a split of ", examples(), " examples holds no whole batch of ",
                o.global_batch, " (raise data.limit or lower ", o.batch_option, ")");
  if (o.workers > 0) prefetcher_ = std::make_unique<Prefetcher>(core_, o.workers, std::max<int64_t>(1, o.prefetch));
}

SplitLoader::~SplitLoader() = default;
SplitLoader::SplitLoader(SplitLoader&&) noexcept = default;

int64_t SplitLoader::examples() const { return core_->indices.numel(); }
int64_t SplitLoader::steps_per_epoch() const { return core_->steps_per_epoch(); }

torch::Tensor SplitLoader::global_batch_indices(int64_t global_step) const { return core_->global_indices(global_step); }

std::vector<Batch> SplitLoader::batch(int64_t epoch, int64_t step) const {
  PROBNAS_CHECK(step >= 0 && step < steps_per_epoch(), "internal: step ", step, " outside the epoch");
  return batch_at(epoch * steps_per_epoch() + step);
}

std::vector<Batch> SplitLoader::batch_at(int64_t global_step) const {
  std::vector<MicroBatch> micro = prefetcher_ ? prefetcher_->get(global_step) : core_->compute(global_step);
  std::vector<Batch> out;
  out.reserve(micro.size());
  const bool async = device_.is_cuda();
  for (auto& m : micro) {
    Batch b;
    b.x = m.x.to(device_, async);
    b.y = m.y.to(device_, async);
    b.index = m.index;
    b.global = core_->options.global_batch;
    out.push_back(std::move(b));
  }
  return out;
}

SearchSplit make_search_split(int64_t n, double train_portion, const RngKey& key) {
  PROBNAS_CHECK(train_portion > 0 && train_portion < 1, "data.train_portion = ", train_portion,
                " must be strictly between 0 and 1");
  auto gen = make_generator(key.with("search-split"));
  auto perm = torch::randperm(n, gen, torch::kInt64);
  const int64_t k = static_cast<int64_t>(std::llround(train_portion * static_cast<double>(n)));
  PROBNAS_CHECK(k > 0 && k < n, "data.train_portion = ", train_portion, " of ", n,
                " examples leaves one half of the search split empty");
  return {perm.narrow(0, 0, k), perm.narrow(0, k, n - k)};
}

}  // namespace probnas
