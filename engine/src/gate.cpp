#include "rnnjit/gate.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "driver.hpp"

namespace rnnjit {

struct StreamGate::State {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;

  static void CUDA_CB wait(void* arg) {
    // The callback may run after the gate is gone: it owns a reference to the state.
    std::unique_ptr<std::shared_ptr<State>> ref(static_cast<std::shared_ptr<State>*>(arg));
    State& s = **ref;
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, std::chrono::seconds(2), [&] { return s.open; });  // bounded, whatever the host does
  }
};

StreamGate::StreamGate(Stream stream) : state_(std::make_shared<State>()) {
  auto* ref = new std::shared_ptr<State>(state_);
  const CUresult r = driver::api().cuLaunchHostFunc(stream, &State::wait, ref);
  if (r != CUDA_SUCCESS) {
    delete ref;
    driver::fail(r, "cuLaunchHostFunc", __FILE__, __LINE__);
  }
}

StreamGate::~StreamGate() { release(); }

void StreamGate::release() {
  std::lock_guard lock(state_->mu);
  state_->open = true;
  state_->cv.notify_all();
}

}  // namespace rnnjit
