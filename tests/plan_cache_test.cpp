// The background tuner's parts that need no GPU: the job queue's life cycle (order, stop, errors,
// process exit), the tuning mode's resolution, and measure()'s stop and failure paths.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "device_table.hpp"
#include "plan_cache.hpp"
#include "scoped_env.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using rnnjit::BackgroundQueue;


// Waits up to 10 s for `done`; a hung queue fails the test instead of hanging it.
template <class F>
bool eventually(F&& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A job that waits until `release` is set or a stop is requested, and says which.
struct Gate {
  std::atomic<bool> started{false}, release{false}, saw_stop{false};
  BackgroundQueue::Job job() {
    return [this](std::stop_token stop) {
      started = true;
      while (!release && !stop.stop_requested()) std::this_thread::sleep_for(1ms);
      saw_stop = stop.stop_requested();
    };
  }
};

}  // namespace

TEST_CASE("the background queue runs jobs in order on one thread of its own", "[plan_cache]") {
  BackgroundQueue q;
  std::mutex mu;
  std::vector<int> order;
  std::set<std::thread::id> threads;
  for (int i = 0; i < 20; ++i)
    REQUIRE(q.submit([&, i](std::stop_token) {
      std::lock_guard lock(mu);
      order.push_back(i);
      threads.insert(std::this_thread::get_id());
    }));
  REQUIRE(eventually([&] { return q.pending() == 0; }));
  std::lock_guard lock(mu);
  std::vector<int> expected(20);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(order == expected);
  CHECK(threads.size() == 1);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("pending counts the queued jobs and the running one", "[plan_cache]") {
  BackgroundQueue q;
  CHECK(q.pending() == 0);
  Gate gate;
  q.submit(gate.job());
  q.submit([](std::stop_token) {});
  REQUIRE(eventually([&] { return gate.started.load(); }));
  CHECK(q.pending() == 2);
  gate.release = true;
  CHECK(eventually([&] { return q.pending() == 0; }));
  CHECK_FALSE(gate.saw_stop);
}

TEST_CASE("stop drops the queued jobs, stops the running one and waits for it", "[plan_cache]") {
  BackgroundQueue q;
  Gate gate;
  std::atomic<int> later{0};
  q.submit(gate.job());
  for (int i = 0; i < 5; ++i) q.submit([&](std::stop_token) { ++later; });
  REQUIRE(eventually([&] { return gate.started.load(); }));
  q.stop();  // returns once the running job has returned
  CHECK(gate.saw_stop);
  CHECK(later == 0);
  CHECK(q.pending() == 0);
  CHECK_FALSE(q.submit([&](std::stop_token) { ++later; }));
  q.stop();  // again: nothing left to do
  CHECK(later == 0);
}

TEST_CASE("destroying the queue stops it as stop() does", "[plan_cache]") {
  Gate gate;
  std::atomic<int> later{0};
  {
    BackgroundQueue q;
    q.submit(gate.job());
    q.submit([&](std::stop_token) { ++later; });
    REQUIRE(eventually([&] { return gate.started.load(); }));
  }
  CHECK(gate.saw_stop);
  CHECK(later == 0);
}

TEST_CASE("a job that throws does not end the queue: the next one runs", "[plan_cache]") {
  BackgroundQueue q;
  std::atomic<bool> next{false};
  q.submit([](std::stop_token) { throw rnnjit::Error(rnnjit::ErrorCode::LaunchFailed, "a job's own failure"); });
  q.submit([](std::stop_token) { throw 42; });  // not a std::exception: must not reach std::terminate
  q.submit([&](std::stop_token) { next = true; });
  CHECK(eventually([&] { return next.load(); }));
}

TEST_CASE("a process that exits with a queue never destroyed stops its job before the statics go", "[plan_cache]") {
  test::TempDir dir;
  const std::string mark = dir.file("mark");
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // As an engine a program never destroys: the queue outlives main.
    auto* q = new BackgroundQueue;
    std::atomic<bool> started{false};
    q->submit([&](std::stop_token stop) {
      started = true;
      while (!stop.stop_requested()) std::this_thread::sleep_for(1ms);
      // Reached only when the exit handler asks: without it the process ends under the job.
      const int fd = open(mark.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0 && write(fd, "stopped", 7) == 7) close(fd);
    });
    while (!started) std::this_thread::sleep_for(1ms);
    std::exit(3);
  }
  int status = 0;
  const bool exited = eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; });
  if (!exited) kill(pid, SIGKILL);
  REQUIRE(exited);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  std::ifstream in(mark);
  std::string text;
  in >> text;
  CHECK(text == "stopped");
}

TEST_CASE("the tuning mode is the option's, else $RNNJIT_TUNING's, else blocking", "[plan_cache]") {
  using rnnjit::TuningMode;
  const auto resolve = rnnjit::resolve_tuning_mode;
  {
    const test::ScopedEnv none("RNNJIT_TUNING", nullptr);
    CHECK(resolve(std::nullopt) == TuningMode::Blocking);
    CHECK(resolve(TuningMode::Background) == TuningMode::Background);
  }
  {
    const test::ScopedEnv env("RNNJIT_TUNING", "background");
    CHECK(resolve(std::nullopt) == TuningMode::Background);
    CHECK(resolve(TuningMode::Blocking) == TuningMode::Blocking);
  }
  {
    const test::ScopedEnv env("RNNJIT_TUNING", "blocking");
    CHECK(resolve(std::nullopt) == TuningMode::Blocking);
  }
  for (const char* bad : {"Background", "later", " background"}) {
    const test::ScopedEnv env("RNNJIT_TUNING", bad);
    CHECK(resolve(std::nullopt) == TuningMode::Blocking);
  }
  CHECK(std::string(rnnjit::tuning_mode_name(TuningMode::Background)) == "background");
  CHECK(std::string(rnnjit::tuning_mode_name(TuningMode::Blocking)) == "blocking");
}

namespace {

// A tuner over a memory-only cache for an H100 this machine need not have: measure() compiles
// before it touches a GPU.
struct Fixture {
  rnnjit::DeviceInfo device = rnnjit::device_table::h100_sxm();
  rnnjit::cache::Store store{"off"};
  rnnjit::Jit jit{store};
  rnnjit::Tuner tuner{device, jit, store};
};

// A tc pair with a one-stage ring, which gemm_tc.cu's static_assert refuses: a candidate NVRTC fails.
rnnjit::Config uncompilable() {
  const rnnjit::TcTile t{64, 64, 32, 2, 2, 1};
  return rnnjit::Config::pair(t, t);
}

}  // namespace

TEST_CASE("a stopped measure returns nothing and compiles nothing", "[plan_cache]") {
  Fixture f;
  const rnnjit::Shape s{8, 1024, 256, 128};
  std::stop_source stop;
  stop.request_stop();
  CHECK_FALSE(f.tuner.measure(s, f.tuner.propose(s), {}, nullptr, rnnjit::kBackgroundRounds, stop.get_token()));
  CHECK(f.jit.compiles() == 0);
  CHECK(f.tuner.tunings() == 0);
}

TEST_CASE("candidates that fail to compile are data, and when every one fails the error names each", "[plan_cache]") {
  Fixture f;
  const rnnjit::Shape s{8, 1024, 256, 128};
  try {
    f.tuner.measure(s, {uncompilable()}, {}, nullptr, rnnjit::kBackgroundRounds);
    FAIL("measured an uncompilable candidate");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::CompileFailed);
    CHECK_THAT(e.what(), Catch::Contains("every candidate failed") && Catch::Contains(uncompilable().name()) &&
                             Catch::Contains("the cp.async ring needs two stages at least"));
  }
  CHECK(f.tuner.tunings() == 0);
  CHECK(f.store.list_tuning().empty());  // nothing to persist
}

// The exit handler runs in a forked child too, where the worker is not: it must not wait for it.
TEST_CASE("a process forked while the worker runs exits without waiting for the parent's thread", "[plan_cache]") {
  BackgroundQueue q;
  Gate gate;
  q.submit(gate.job());
  REQUIRE(eventually([&] { return gate.started.load(); }));
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) std::exit(4);  // the exit handler stops every queue, this one included
  int status = 0;
  const bool exited = eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; });
  if (!exited) kill(pid, SIGKILL);
  CHECK(exited);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 4));
  gate.release = true;
  CHECK(eventually([&] { return q.pending() == 0; }));
  CHECK_FALSE(gate.saw_stop);  // the child's exit did not touch the parent's job
}

// In a forked child the parent's worker does not exist and the queue's mutex may be held for
// good: submit, pending and stop answer without it, and no job is queued to never run.
TEST_CASE("in a forked process the queue refuses jobs and stops without locking", "[plan_cache]") {
  BackgroundQueue q;
  Gate gate;
  q.submit(gate.job());
  REQUIRE(eventually([&] { return gate.started.load(); }));
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 0;
    if (q.submit([](std::stop_token) {})) code |= 1;
    if (q.pending() != 0) code |= 2;
    q.stop();
    _exit(code);
  }
  int status = 0;
  const bool exited = eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; });
  if (!exited) kill(pid, SIGKILL);
  CHECK(exited);
  INFO("1: submit queued a job, 2: pending counted the parent's job");
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  gate.release = true;
  CHECK(eventually([&] { return q.pending() == 0; }));
}
