#include "probnas/engine/run_report.h"

#include <system_error>

#include "probnas/core/log.h"
#include "probnas/method/registry.h"
#include "probnas/report/report.h"

namespace probnas {

namespace {
MethodSections sections_of(const std::string& method) {
  const MethodEntry* entry = method_entry_or_null(method);
  return entry ? entry->report : MethodSections{};
}

void render_logging(const std::string& dir) {
  if (std::string why; !write_report(dir, &why)) {
    PROBNAS_LOG(warn) << "report.html not written: " << why;
  }
}
}  // namespace

std::string render_report(const std::string& run_dir) { return report::render_page(run_dir, sections_of); }

bool write_report(const std::string& run_dir, std::string* problem) {
  return report::write_page(run_dir, sections_of, problem);
}

BackgroundReport::BackgroundReport(std::string dir) : dir_(std::move(dir)) {
  try {
    thread_ = std::thread([this] { work(); });
  } catch (const std::system_error& e) {
    PROBNAS_LOG(warn) << "report.html: no thread to render it on (" << e.what() << "); it is rendered in the step "
                      << "loop instead";
    synchronous_ = true;
  }
}

BackgroundReport::~BackgroundReport() { finish(); }

void BackgroundReport::request() {
  if (synchronous_) {
    if (!finished_) render_logging(dir_);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    pending_ = true;
  }
  wake_.notify_one();
}

void BackgroundReport::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return pending_ || stopping_; });
    if (stopping_) return;
    pending_ = false;
    lock.unlock();
    render_logging(dir_);
    lock.lock();
  }
}

void BackgroundReport::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  render_logging(dir_);
}

}  // namespace probnas
