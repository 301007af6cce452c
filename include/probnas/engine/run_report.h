#pragma once
// report.html with each method's own sections (the method registry's), rendered on a thread of its
// own so that the step loop never waits for it (DESIGN, "The report is rendered off the step loop").
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace probnas {

// The HTML of <run_dir>'s report, with the sections of the run's method.
std::string render_report(const std::string& run_dir);
// Writes <run_dir>/report.html atomically. Never throws: false and *problem (one line) on failure.
bool write_report(const std::string& run_dir, std::string* problem = nullptr);

// Renders <dir>/report.html on a background thread (rank 0 of a run). request() asks for a fresh
// page and returns at once; requests that arrive while a page is being rendered are merged into
// one more render. finish() waits for the thread and renders a final page on the caller's thread;
// the destructor finishes too. A page that cannot be written is logged, never fatal. Where no
// thread can be started (a node's thread limit), request() renders on the caller's thread.
class BackgroundReport {
 public:
  explicit BackgroundReport(std::string dir);
  ~BackgroundReport();
  BackgroundReport(const BackgroundReport&) = delete;
  BackgroundReport& operator=(const BackgroundReport&) = delete;
  void request();
  void finish();

 private:
  void work();
  std::string dir_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false, stopping_ = false, finished_ = false, synchronous_ = false;
  std::thread thread_;
};

}  // namespace probnas
