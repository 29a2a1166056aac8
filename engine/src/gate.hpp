// Gate: holds a stream at a host function until released, so that work enqueued behind it
// runs back to back. Timing without it, a run shorter than its launch cost measures the
// host's launch rate instead of the GPU.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "driver.hpp"

namespace rnnjit {

class Gate {
 public:
  explicit Gate(CUstream stream) : state_(std::make_shared<State>()) {
    // The callback may run after this object is gone: it owns a reference to the state.
    auto* ref = new std::shared_ptr<State>(state_);
    const CUresult r = driver::api().cuLaunchHostFunc(stream, &Gate::wait, ref);
    if (r != CUDA_SUCCESS) {
      delete ref;
      driver::fail(r, "cuLaunchHostFunc", __FILE__, __LINE__);
    }
  }
  /// Opens the gate if release() was not called: an exception never leaves a stream held.
  ~Gate() { release(); }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  void release() {
    std::lock_guard lock(state_->mu);
    state_->open = true;
    state_->cv.notify_all();
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
  };
  static void CUDA_CB wait(void* arg) {
    std::unique_ptr<std::shared_ptr<State>> ref(static_cast<std::shared_ptr<State>*>(arg));
    State& s = **ref;
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, std::chrono::seconds(2), [&] { return s.open; });  // bounded, whatever the host does
  }
  std::shared_ptr<State> state_;
};

}  // namespace rnnjit
