#pragma once
// Counts the ATen operations our code and autograd dispatch (the outermost ones only: an op that
// calls others counts once). On a GPU nearly each is a kernel launch, so this CPU-side figure is
// the launch count of a step, the cost that makes small-kernel NAS steps launch-bound: fewer ops
// per step is what fused (foreach) updates and flat gradient buffers buy.
#include <ATen/record_function.h>

#include <atomic>
#include <memory>

namespace probnas::bench {

class OpCounter {
 public:
  OpCounter() {
    count() = 0;
    handle_ = at::addGlobalCallback(
        at::RecordFunctionCallback(&OpCounter::enter, &OpCounter::leave).scopes({at::RecordScope::FUNCTION}));
  }
  ~OpCounter() { at::removeCallback(handle_); }
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;
  int64_t ops() const { return count().load(); }

 private:
  static std::atomic<int64_t>& count() {
    static std::atomic<int64_t> c{0};
    return c;
  }
  static int& depth() {
    thread_local int d = 0;
    return d;
  }
  static std::unique_ptr<at::ObserverContext> enter(const at::RecordFunction&) {
    if (depth()++ == 0) ++count();
    return nullptr;
  }
  static void leave(const at::RecordFunction&, at::ObserverContext*) { --depth(); }

  at::CallbackHandle handle_;
};

}  // namespace probnas::bench
