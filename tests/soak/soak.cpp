// rnnjit-soak: many threads in several processes step and tune new random shapes against one
// cache file for a while; every result is checked against the float64 reference, and at the end
// the device memory and the open files are what they were and the cache file verifies.
//
//   rnnjit-soak [--seconds 60] [--threads 4] [--processes 2] [--cache PATH] [--seed N]
//               [--leak-tolerance-mib 256]
//
// The processes are this program run again (--child ID): a CUDA context does not survive a
// fork. Each process runs --threads threads on one Engine; the parent is one of the processes.
// A shape is drawn with sizes 1..600 and a precision (fp32 or tf32); three in ten come from a
// small pool every process shares, so that processes meet each other's cache rows. Each shape
// runs 1 to 8 steps: outputs poisoned with NaN first, sampled rows checked against
// rnnjit::reference_step (fp32 1e-5, tf32 2e-3), every rerun the same bits as the first run.
//
// Device memory and open files are counted in the parent after a warm-up (the driver's own
// lazily made files and reservations are then in place) and again after every child has exited
// and the parent's engine is gone; a child counts its own files the same way. Exit 0 when no
// step failed, nothing leaked and Store::verify finds nothing; 1 otherwise; 2 bad usage; 77
// (skipped) where there is no GPU. The last line is the summary:
//
//   soak: steps=… tunings=… processes=… threads=… errors=0 leaked_bytes=… fds_before=… fds_after=… verify=ok
#include <cuda_runtime.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/rnnjit.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSkipped = 77;
constexpr std::int64_t kMaxSize = 600;
constexpr int kPoolShapes = 8;
constexpr int kCheckedRows = 16;

const char* const kUsage =
    "usage: %s [--seconds S] [--threads N] [--processes P] [--cache PATH] [--seed N] [--leak-tolerance-mib M]\n"
    "  N threads in each of 1 + P processes step and tune random shapes (sizes 1..600, fp32 and tf32)\n"
    "  against one cache file for S seconds (default 60 s, 4 threads, 2 more processes, a fresh file)\n";

struct Options {
  double seconds = 60;
  int threads = 4;
  int processes = 2;
  std::string cache;  // empty: a fresh file in a temporary directory, removed at the end
  std::uint64_t seed = 20261206;
  // The context's local-memory reservation grows to the largest kernel it has run, and stays:
  // not a leak. A leak of a buffer a shape, over hundreds of shapes, is far more.
  std::int64_t leak_tolerance = std::int64_t(256) << 20;
  int child = -1;  // >= 0 in a child process
};

template <typename T>
bool number(const char* text, T& out) {
  const char* end = text + std::strlen(text);
  const auto [stop, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && stop == end;
}

// nullopt: bad usage (already said); the program exits 2.
std::optional<Options> parse(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    const char* value = a + 1 < argc ? argv[a + 1] : nullptr;
    bool ok = value != nullptr;
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, argv[0]);
      std::exit(0);
    } else if (arg == "--seconds") {
      ok = ok && number(value, o.seconds) && o.seconds > 0;
    } else if (arg == "--threads") {
      ok = ok && number(value, o.threads) && o.threads >= 1 && o.threads <= 256;
    } else if (arg == "--processes") {
      ok = ok && number(value, o.processes) && o.processes >= 0 && o.processes <= 64;
    } else if (arg == "--cache") {
      ok = ok && *value;
      if (ok) o.cache = value;
    } else if (arg == "--seed") {
      ok = ok && number(value, o.seed);
    } else if (arg == "--leak-tolerance-mib") {
      ok = ok && number(value, o.leak_tolerance) && o.leak_tolerance >= 0;
      o.leak_tolerance <<= 20;
    } else if (arg == "--child") {
      ok = ok && number(value, o.child) && o.child >= 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "rnnjit-soak: bad argument '%s%s%s'\n", arg.c_str(), value ? " " : "", value ? value : "");
      std::fprintf(stderr, kUsage, argv[0]);
      return std::nullopt;
    }
    ++a;
  }
  return o;
}

// Open file descriptors of this process (the directory's own included, every time alike).
int open_fds() {
  int n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/self/fd", ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

struct Counters {
  std::atomic<long long> steps{0}, shapes{0}, errors{0};
};

std::mutex print_mu;

void report(Counters& c, const std::string& what) {
  ++c.errors;
  std::lock_guard lock(print_mu);
  std::fprintf(stderr, "rnnjit-soak[%d]: %s\n", static_cast<int>(getpid()), what.c_str());
}

std::string describe(const rnnjit::Problem& p) {
  return std::to_string(p.batch) + "," + std::to_string(p.input) + "," + std::to_string(p.hidden) + "," +
         std::to_string(p.output) + " " + rnnjit::precision_name(p.precision);
}

/// cudaMalloc'd floats, freed when destroyed.
class DeviceFloats {
 public:
  explicit DeviceFloats(std::size_t n) : n_(n) {
    if (const cudaError_t e = cudaMalloc(&p_, n * sizeof(float)); e != cudaSuccess)
      throw std::runtime_error(std::string("cudaMalloc: ") + cudaGetErrorString(e));
  }
  ~DeviceFloats() { cudaFree(p_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* get() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  float* p_ = nullptr;
  std::size_t n_;
};

void cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

std::vector<float> uniform(std::size_t n, float lo, float hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

rnnjit::Problem random_problem(std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> size(1, kMaxSize);
  const auto precision = rng() % 2 ? rnnjit::Precision::TF32 : rnnjit::Precision::FP32;
  return {size(rng), size(rng), size(rng), size(rng), precision};
}

// One shape: random data, 1 to 8 steps, each poisoned first and checked.
void run_shape(rnnjit::Engine& engine, const rnnjit::Problem& p, std::mt19937_64& rng, cudaStream_t stream,
               Counters& c) {
  const std::size_t B = p.batch, I = p.input, H = p.hidden, O = p.output;
  const float k1 = 1 / std::sqrt(float(I + H)), k2 = 1 / std::sqrt(float(H));
  const auto w1 = uniform(H * (I + H), -k1, k1, rng), b1 = uniform(H, -k1, k1, rng);
  const auto w2 = uniform(O * H, -k2, k2, rng), b2 = uniform(O, -k2, k2, rng);
  const auto x = uniform(B * I, 0, 1, rng), h = uniform(B * H, 0, 1, rng);
  DeviceFloats dw1(w1.size()), db1(b1.size()), dw2(w2.size()), db2(b2.size()), dx(x.size()), dh(h.size());
  DeviceFloats dh_out(B * H), dy(B * O);
  for (auto [host, dev] : {std::pair{&w1, &dw1}, std::pair{&b1, &db1}, std::pair{&w2, &dw2}, std::pair{&b2, &db2},
                           std::pair{&x, &dx}, std::pair{&h, &dh}})
    cuda(cudaMemcpy(dev->get(), host->data(), host->size() * sizeof(float), cudaMemcpyHostToDevice), "upload");

  // The reference for a sample of rows (the first, the last and random ones), row by row.
  std::vector<std::size_t> rows = {0, B - 1};
  while (rows.size() < std::min<std::size_t>(B, kCheckedRows)) rows.push_back(rng() % B);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  std::vector<double> ref_h, ref_y;
  for (const std::size_t r : rows) {
    std::vector<double> rh, ry;
    rnnjit::reference_step(1, p.input, p.hidden, p.output, w1.data(), b1.data(), w2.data(), b2.data(), x.data() + r * I,
                           h.data() + r * H, rh, ry);
    ref_h.insert(ref_h.end(), rh.begin(), rh.end());
    ref_y.insert(ref_y.end(), ry.begin(), ry.end());
  }

  if (rng() % 5 == 0) engine.tune(p);  // the prewarm path (rnnjit-tune's), now and then
  const double bound = rnnjit::error_bound(engine.resolve(p).precision);
  std::vector<float> first_h, first_y;
  const int reps = 1 + static_cast<int>(rng() % 8);
  for (int rep = 0; rep < reps; ++rep) {
    // All bits set: a NaN, so an element no kernel wrote fails the check.
    cuda(cudaMemsetAsync(dh_out.get(), 0xff, dh_out.size() * sizeof(float), stream), "poison h_out");
    cuda(cudaMemsetAsync(dy.get(), 0xff, dy.size() * sizeof(float), stream), "poison y");
    engine.rnn_step(p, {dw1.get(), db1.get(), dw2.get(), db2.get()}, dx.get(), dh.get(), dh_out.get(), dy.get(), stream);
    cuda(cudaStreamSynchronize(stream), "the step");
    std::vector<float> out_h(B * H), out_y(B * O);
    cuda(cudaMemcpy(out_h.data(), dh_out.get(), out_h.size() * sizeof(float), cudaMemcpyDeviceToHost), "download h'");
    cuda(cudaMemcpy(out_y.data(), dy.get(), out_y.size() * sizeof(float), cudaMemcpyDeviceToHost), "download y");
    ++c.steps;
    // Every element written (the poison is a NaN), whatever rows the reference samples.
    const auto finite = [](const std::vector<float>& v) {
      return std::all_of(v.begin(), v.end(), [](float e) { return std::isfinite(e); });
    };
    if (!finite(out_h) || !finite(out_y)) {
      report(c, describe(p) + " step " + std::to_string(rep) + ": an output element is NaN or infinite (unwritten?)");
      return;
    }
    std::vector<float> sampled_h, sampled_y;
    for (const std::size_t r : rows) {
      sampled_h.insert(sampled_h.end(), out_h.begin() + r * H, out_h.begin() + (r + 1) * H);
      sampled_y.insert(sampled_y.end(), out_y.begin() + r * O, out_y.begin() + (r + 1) * O);
    }
    const double err = std::max(rnnjit::relative_error(sampled_h, ref_h), rnnjit::relative_error(sampled_y, ref_y));
    if (!(err <= bound)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3g", err);
      report(c, describe(p) + " step " + std::to_string(rep) + ": error " + buf + " past the bound");
      return;
    }
    if (rep == 0) {
      first_h = std::move(out_h);
      first_y = std::move(out_y);
    } else if (std::memcmp(out_h.data(), first_h.data(), out_h.size() * sizeof(float)) != 0 ||
               std::memcmp(out_y.data(), first_y.data(), out_y.size() * sizeof(float)) != 0) {
      report(c, describe(p) + " step " + std::to_string(rep) + ": not the bits of the first run");
      return;
    }
  }
}

void run_thread(rnnjit::Engine& engine, const Options& o, int thread, Clock::time_point deadline, Counters& c) {
  std::mt19937_64 rng(o.seed ^ (std::uint64_t(o.child + 1) << 32) ^ std::uint64_t(thread) * 0x9e3779b97f4a7c15ULL);
  // Every process draws the same pool: their rows meet in the cache.
  std::mt19937_64 pool_rng(o.seed);
  std::vector<rnnjit::Problem> pool;
  for (int i = 0; i < kPoolShapes; ++i) pool.push_back(random_problem(pool_rng));
  cudaStream_t stream = nullptr;
  try {
    cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  } catch (const std::exception& e) {
    report(c, e.what());
    return;
  }
  while (Clock::now() < deadline) {
    const rnnjit::Problem p = rng() % 10 < 3 ? pool[rng() % pool.size()] : random_problem(rng);
    ++c.shapes;
    try {
      run_shape(engine, p, rng, stream, c);
    } catch (const std::exception& e) {
      report(c, describe(p) + ": " + e.what());
    }
  }
  cudaStreamDestroy(stream);
}

// Makes the driver do its lazy first-time work (files, reservations, the primary context), so
// that what is counted afterwards is the soak's.
void warm_up() {
  rnnjit::EngineOptions o;
  o.cache_path = "off";
  rnnjit::Engine engine(o);
  Counters c;
  std::mt19937_64 rng(1);
  for (const auto precision : {rnnjit::Precision::TF32, rnnjit::Precision::FP32})
    run_shape(engine, {4, 64, 64, 32, precision}, rng, nullptr, c);
  if (c.errors) throw std::runtime_error("the warm-up step failed");
}

struct Totals {
  long long steps = 0, tunings = 0, errors = 0;
  int fds_before = 0, fds_after = 0;
};

// This process's share: the threads on one engine; its files counted around the engine.
Totals run_process(const Options& o, Clock::time_point deadline) {
  Totals t;
  t.fds_before = open_fds();
  Counters c;
  {
    rnnjit::EngineOptions eo;
    eo.cache_path = o.cache;
    rnnjit::Engine engine(eo);
    std::vector<std::thread> threads;
    for (int i = 0; i < o.threads; ++i) threads.emplace_back(run_thread, std::ref(engine), std::cref(o), i, deadline, std::ref(c));
    for (auto& th : threads) th.join();
    t.tunings = engine.stats().tunings;
    if (engine.cache_path() != o.cache) report(c, "the engine left the cache file for " + engine.cache_path());
  }
  cudaDeviceSynchronize();
  t.fds_after = open_fds();
  t.steps = c.steps;
  t.errors = c.errors;
  return t;
}

int child_main(const Options& o) {
  try {
    warm_up();
    const Totals t = run_process(o, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(o.seconds)));
    std::printf("child: steps=%lld tunings=%lld errors=%lld fds_before=%d fds_after=%d\n", t.steps, t.tunings, t.errors,
                t.fds_before, t.fds_after);
    return t.errors == 0 && t.fds_after <= t.fds_before ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnnjit-soak[%d]: %s\n", static_cast<int>(getpid()), e.what());
    std::printf("child: steps=0 tunings=0 errors=1 fds_before=0 fds_after=0\n");
    return 1;
  }
}

struct Child {
  pid_t pid = -1;
  int out = -1;  // its stdout
};

Child spawn_child(const Options& o, int id) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f", o.seconds);
  std::vector<std::string> args = {"rnnjit-soak", "--child", std::to_string(id), "--seconds", seconds, "--threads",
                                   std::to_string(o.threads), "--cache", o.cache, "--seed", std::to_string(o.seed)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child c;
  const int rc = posix_spawn(&c.pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error(std::string("cannot start a child process: ") + std::strerror(rc));
  }
  c.out = fds[0];
  return c;
}

// Waits for `c` and reads its summary line into `t`; false when it failed or said nothing.
bool finish_child(const Child& c, Totals& t) {
  std::string text;
  char buf[512];
  for (ssize_t n; (n = read(c.out, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(c.out);
  int status = 0;
  waitpid(c.pid, &status, 0);
  long long steps = 0, tunings = 0, errors = 0;
  int before = 0, after = 0;
  const auto at = text.rfind("child: ");
  const bool said = at != std::string::npos &&
                    std::sscanf(text.c_str() + at, "child: steps=%lld tunings=%lld errors=%lld fds_before=%d fds_after=%d",
                                &steps, &tunings, &errors, &before, &after) == 5;
  t.steps += steps;
  t.tunings += tunings;
  t.errors += errors;
  const bool ok = said && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    std::lock_guard lock(print_mu);
    std::fprintf(stderr, "rnnjit-soak: child %d %s (status %d, fds %d -> %d)\n", static_cast<int>(c.pid),
                 said ? "failed" : "said nothing", status, before, after);
  }
  return ok;
}

std::size_t free_device_bytes() {
  std::size_t free = 0, total = 0;
  cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cuda(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return free;
}

int parent_main(Options o) {
  // No GPU, no soak: skipped, as the GPU tests are.
  try {
    rnnjit::EngineOptions probe;
    probe.cache_path = "off";
    rnnjit::Engine engine(probe);
  } catch (const rnnjit::Error& e) {
    if (e.code() != rnnjit::ErrorCode::NoDriver && e.code() != rnnjit::ErrorCode::NoDevice) throw;
    std::printf("SKIPPED: the soak needs a CUDA GPU: %s\n", e.what());
    return kSkipped;
  }
  std::string temp_dir;
  if (o.cache.empty()) {
    char tmpl[] = "/tmp/rnnjit-soak-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    temp_dir = tmpl;
    o.cache = temp_dir + "/cache.sqlite";
  }
  warm_up();
  const std::size_t free_before = free_device_bytes();
  const int fds_before = open_fds();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));

  std::vector<Child> children;
  bool children_ok = true;
  for (int i = 0; i < o.processes; ++i) {
    try {
      children.push_back(spawn_child(o, i));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rnnjit-soak: %s\n", e.what());
      children_ok = false;
    }
  }
  Totals total = run_process(o, deadline);
  for (const Child& c : children) children_ok &= finish_child(c, total);

  // Every other context is gone with its process; the driver may free their memory a moment later.
  std::size_t free_after = free_device_bytes();
  for (int i = 0; i < 50 && free_after + o.leak_tolerance < free_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    free_after = free_device_bytes();
  }
  const long long leaked = static_cast<long long>(free_before) - static_cast<long long>(free_after);
  const int fds_after = open_fds();

  std::string verify = "ok";
  try {
    rnnjit::cache::Store store(o.cache, rnnjit::cache::Mode::ReadOnlyStrict);
    const auto problems = store.verify();
    for (const auto& p : problems) std::fprintf(stderr, "rnnjit-soak: verify: %s\n", p.c_str());
    if (!problems.empty()) verify = std::to_string(problems.size()) + "_problems";
    if (store.stats().entries == 0 && total.tunings > 0) verify = "no_entries";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnnjit-soak: verify: %s\n", e.what());
    verify = "failed";
  }
  if (!temp_dir.empty()) {
    std::error_code ec;
    fs::remove_all(temp_dir, ec);
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("soak: %.0f s, %d threads in each of %d processes, cache %s\n", elapsed, o.threads, 1 + o.processes,
              temp_dir.empty() ? o.cache.c_str() : "(a fresh file, removed)");
  std::printf("soak: steps=%lld tunings=%lld processes=%d threads=%d errors=%lld leaked_bytes=%lld fds_before=%d "
              "fds_after=%d verify=%s\n",
              total.steps, total.tunings, 1 + o.processes, o.threads * (1 + o.processes), total.errors, leaked,
              fds_before, fds_after, verify.c_str());
  const bool ok = total.errors == 0 && children_ok && leaked <= o.leak_tolerance && fds_after <= fds_before &&
                  verify == "ok" && total.steps > 0;
  if (!ok) std::printf("soak: FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto o = parse(argc, argv);
  if (!o) return 2;
  try {
    return o->child >= 0 ? child_main(*o) : parent_main(*o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnnjit-soak: %s\n", e.what());
    return 1;
  }
}
