// StreamGate: holds a stream at a host function until released, so that work enqueued behind it
// runs back to back. Timing without it, a run shorter than its launch cost measures the host's
// launch rate instead of the GPU: the tuner and the bench time behind one.
#pragma once

#include <memory>

#include "rnnjit/rnnjit.hpp"

namespace rnnjit {

class StreamGate {
 public:
  /// Enqueues the gate on `stream` (of the current context). Throws LaunchFailed.
  explicit StreamGate(Stream stream);
  /// Opens the gate if release() was not called: an exception never leaves a stream held.
  ~StreamGate();
  StreamGate(const StreamGate&) = delete;
  StreamGate& operator=(const StreamGate&) = delete;

  /// Lets the stream run what was enqueued behind the gate.
  void release();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace rnnjit
