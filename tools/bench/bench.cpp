// rnnjit-bench: times rnnjit's step per shape and precision with CUDA events.
//
//   rnnjit-bench [--shape NAME|B,I,H,O]... [--dtype f32|bf16] [--precision tf32|fp32|bf16|all]
//                [--config NAME] [--json FILE] [--no-pointer-checks] [--steps T]
//
// --dtype is the storage of every tensor (f32 by default); --precision all (the default) times
// every precision that storage takes: tf32 and fp32 for f32, bf16 for bf16.
// --config runs that config (rnnjit-cache and rnnjit-tune print names) instead of tuning, to
// compare kernels or profile one. --steps times whole sequences of T steps (rnn_sequence) instead:
// the tuned plan, then each of the heuristic's sequence candidates pinned, or with --config the
// sequence configs it lists (comma-separated).
//
// Per problem: the first call (tuning included; RNNJIT_CACHE decides whether it is cold),
// the median GPU time of back-to-back calls (event pairs around each call, all enqueued
// behind a gate first so that host launch cost does not leak in), the same for steps with no
// event between them (a recurrent loop, timed in batches) and for a CUDA graph holding one step,
// and the median host time of one rnn_step call and of one replay of that graph (the driver's
// own submission cost). x, h and the outputs rotate among 4 buffer sets so inputs do not sit in
// L2 from the previous call; the weights stay, as in a recurrent loop. Floor = max(bytes / the
// device-to-device copy rate measured at start, flops / 375 TFLOP/s, cuBLAS tf32 on the H100 of
// ../shared/ANCHORS.md; the H200 has the same tensor cores). bf16 storage moves half the bytes, and
// its products are taken at twice that rate.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rnnjit/gate.hpp"
#include "rnnjit/rnnjit.hpp"
#include "shapes.hpp"

namespace {

#define CK(call)                                                                         \
  do {                                                                                   \
    cudaError_t e_ = (call);                                                             \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

constexpr double kTf32Rate = 375e12;
// The tensor cores' dense bf16 rate is twice their tf32 rate on the H100 and H200 (989 against 495
// TFLOP/s in NVIDIA's data sheets): the same fraction of it.
constexpr double kBf16Rate = 2 * kTf32Rate;
constexpr int kSets = 4;

double tensor_rate(rnnjit::DType t) { return t == rnnjit::DType::BF16 ? kBf16Rate : kTf32Rate; }

struct Named {
  std::string name;
  long long b, i, h, o;
};
const Named kShapes[] = {{"kb-v0", 8, 1024, 256, 128},
                         {"b1-4k", 1, 4096, 4096, 4096},
                         {"mid", 64, 2048, 2048, 1024},
                         {"kb-large", 256, 16384, 16384, 8192}};

// n values uniform in [-scale, scale) (xorshift: the same for a seed everywhere), stored as `dtype`
// in device memory.
void* random_device(std::size_t n, unsigned seed, float scale, rnnjit::DType dtype) {
  std::vector<float> host(n);
  unsigned x = seed * 2654435761u + 1;
  for (auto& v : host) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = (float(x >> 8) * (2.0f / 16777216.0f) - 1.0f) * scale;
  }
  std::vector<__nv_bfloat16> rounded;
  const void* src = host.data();
  if (dtype == rnnjit::DType::BF16) {
    rounded.resize(n);
    std::transform(host.begin(), host.end(), rounded.begin(), [](float v) { return __float2bfloat16(v); });
    src = rounded.data();
  }
  const std::size_t bytes = n * rnnjit::dtype_size(dtype);
  void* d = nullptr;
  CK(cudaMalloc(&d, bytes));
  CK(cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice));
  return d;
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Median host time of `n` calls of `body(i)`, behind a gate so that the GPU never back-pressures
// the queue.
template <typename Body>
double host_median_us(cudaStream_t stream, int n, Body&& body) {
  std::vector<double> t;
  {
    rnnjit::StreamGate gate(stream);
    for (int i = 0; i < n; ++i) {
      const auto a = std::chrono::steady_clock::now();
      body(i);
      t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
    }
  }
  CK(cudaStreamSynchronize(stream));
  return median(t);
}

// What the driver itself costs the host to enqueue one small operation (a 4-byte memset, a kernel
// launch inside the runtime), behind a gate as the steps are: the floor under rnn_step's host time.
double enqueue_floor_us() {
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  void* d = nullptr;
  CK(cudaMalloc(&d, 4));
  CK(cudaMemsetAsync(d, 0, 4, stream));
  const double us = host_median_us(stream, 200, [&](int) { CK(cudaMemsetAsync(d, 0, 4, stream)); });
  CK(cudaFree(d));
  CK(cudaStreamDestroy(stream));
  return us;
}

// The copy ceiling: bytes read plus written per second of a 1 GiB device-to-device copy, median of 10.
double copy_bandwidth() {
  const std::size_t bytes = std::size_t(1) << 30;
  void *src = nullptr, *dst = nullptr;
  CK(cudaMalloc(&src, bytes));
  CK(cudaMalloc(&dst, bytes));
  CK(cudaMemset(src, 1, bytes));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<double> rates;
  for (int i = 0; i < 11; ++i) {
    CK(cudaEventRecord(e0));
    CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (i > 0) rates.push_back(2.0 * bytes / (ms * 1e-3));  // the first one warms up
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaFree(src));
  CK(cudaFree(dst));
  return median(rates);
}

struct Result {
  std::string name, precision, dtype;
  double first_ms, gpu_us, loop_us, graph_us, host_us, graph_host_us, floor_us, gbps, tflops;
  std::string config;  // the plan timed: pinned, or the tuner's winner
};

Result bench(rnnjit::Engine& engine, const Named& s, rnnjit::Precision prec, rnnjit::DType dtype,
             const std::string& config, double bandwidth) {
  const std::size_t B = s.b, I = s.i, H = s.h, O = s.o;
  const rnnjit::Problem p{s.b, s.i, s.h, s.o, prec, dtype};
  if (!config.empty()) engine.pin(p, config);
  const float k1 = 1 / std::sqrt(float(I + H)), k2 = 1 / std::sqrt(float(H));
  void* w1 = random_device(H * (I + H), 1, k1, dtype);
  void* b1 = random_device(H, 2, k1, dtype);
  void* w2 = random_device(O * H, 3, k2, dtype);
  void* b2 = random_device(O, 4, k2, dtype);
  void *x[kSets], *h[kSets], *ho[kSets], *y[kSets];
  for (int i = 0; i < kSets; ++i) {
    x[i] = random_device(B * I, 10 + i, 1, dtype);
    h[i] = random_device(B * H, 20 + i, 1, dtype);
    ho[i] = random_device(B * H, 30 + i, 1, dtype);
    y[i] = random_device(B * O, 40 + i, 1, dtype);
  }
  const rnnjit::Weights w{w1, b1, w2, b2};
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto step = [&](int i) { engine.rnn_step(p, w, x[i % kSets], h[i % kSets], ho[i % kSets], y[i % kSets], stream); };

  Result r{s.name, rnnjit::precision_name(engine.resolve(p).precision), rnnjit::dtype_name(dtype),
           0, 0, 0, 0, 0, 0, 0, 0, 0, config};
  auto t0 = std::chrono::steady_clock::now();
  step(0);
  CK(cudaStreamSynchronize(stream));
  r.first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (config.empty()) {  // the record the first call wrote: which plan runs, and what the tuner saw
    const rnnjit::TuneReport rep = engine.tune(p);
    r.config = rep.winner;
    for (const auto& c : rep.candidates)
      std::printf("%s %s candidate %-50s %10.2f us %s\n", s.name.c_str(), r.precision.c_str(), c.config.c_str(),
                  c.time_us, rnnjit::disposition_name(c.disposition));
  }

  // Enough runs for a stable median, bounded in time.
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaEventRecord(e0, stream));
  step(1);
  CK(cudaEventRecord(e1, stream));
  CK(cudaEventSynchronize(e1));
  float one_ms = 0;
  CK(cudaEventElapsedTime(&one_ms, e0, e1));
  const int runs = std::clamp(int(300.0 / std::max(one_ms, 0.001f)), 20, 500);

  std::vector<cudaEvent_t> ev(2 * runs);
  for (auto& e : ev) CK(cudaEventCreate(&e));
  // GPU time of back-to-back calls, `per` of them between an event pair (1: each call; more: a
  // recurrent loop with no event between its steps), the median pair over `per`; the gate holds
  // the stream until all are enqueued.
  auto time_events = [&](auto&& body, int per) {
    const int pairs = std::max(1, runs / per);
    {
      rnnjit::StreamGate gate(stream);
      for (int j = 0; j < pairs; ++j) {
        CK(cudaEventRecord(ev[2 * j], stream));
        for (int i = 0; i < per; ++i) body(j * per + i);
        CK(cudaEventRecord(ev[2 * j + 1], stream));
      }
    }
    CK(cudaStreamSynchronize(stream));
    std::vector<double> t(pairs);
    for (int j = 0; j < pairs; ++j) {
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, ev[2 * j], ev[2 * j + 1]));
      t[j] = ms * 1000.0 / per;
    }
    return median(t);
  };
  time_events(step, 1);  // warm
  r.gpu_us = time_events(step, 1);
  r.loop_us = time_events(step, 20);

  cudaGraphExec_t execs[kSets];
  for (int i = 0; i < kSets; ++i) {
    cudaGraph_t g;
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    step(i);
    CK(cudaStreamEndCapture(stream, &g));
    CK(cudaGraphInstantiate(&execs[i], g, 0));
    CK(cudaGraphDestroy(g));
  }
  r.graph_us = time_events([&](int i) { CK(cudaGraphLaunch(execs[i % kSets], stream)); }, 1);

  // Host cost of the call itself, and of replaying the same step as a graph (the driver's own
  // submission cost).
  auto host_time = [&](auto&& body) { return host_median_us(stream, std::min(runs, 200), body); };
  r.host_us = host_time(step);
  r.graph_host_us = host_time([&](int i) { CK(cudaGraphLaunch(execs[i % kSets], stream)); });

  const double bytes = double(rnnjit::dtype_size(dtype)) * (H * (I + H) + H + O * H + O + B * I + 2 * B * H + B * O);
  const double flops = 2.0 * B * (H * (I + H) + double(O) * H);
  r.floor_us = std::max(bytes / bandwidth, flops / tensor_rate(dtype)) * 1e6;
  r.gbps = bytes / (r.gpu_us * 1e-6) / 1e9;
  r.tflops = flops / (r.gpu_us * 1e-6) / 1e12;

  for (auto& e : ev) CK(cudaEventDestroy(e));
  for (auto& g : execs) CK(cudaGraphExecDestroy(g));
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaStreamDestroy(stream));
  for (void* d : {w1, b1, w2, b2}) CK(cudaFree(d));
  for (int i = 0; i < kSets; ++i)
    for (void* d : {x[i], h[i], ho[i], y[i]}) CK(cudaFree(d));
  return r;
}

// T steps in one rnn_sequence call: the first call (tuning), the median GPU time of a call (an event
// pair each), then each sequence candidate pinned, timed the same way.
void bench_sequence(rnnjit::Engine& engine, const Named& s, rnnjit::Precision prec, rnnjit::DType dtype, long long T,
                    const std::string& configs) {
  const std::size_t B = s.b, I = s.i, H = s.h, O = s.o;
  const rnnjit::Problem p{s.b, s.i, s.h, s.o, prec, dtype};
  const float k1 = 1 / std::sqrt(float(I + H)), k2 = 1 / std::sqrt(float(H));
  void* w1 = random_device(H * (I + H), 1, k1, dtype);
  void* b1 = random_device(H, 2, k1, dtype);
  void* w2 = random_device(O * H, 3, k2, dtype);
  void* b2 = random_device(O, 4, k2, dtype);
  void* x = random_device(T * B * I, 10, 1, dtype);
  void* h0 = random_device(B * H, 20, 1, dtype);
  void* y = random_device(T * B * O, 30, 1, dtype);
  void* h_n = random_device(B * H, 40, 1, dtype);
  const rnnjit::Weights w{w1, b1, w2, b2};
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto call = [&] { engine.rnn_sequence(p, T, w, x, h0, y, h_n, nullptr, stream); };
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto median_us = [&] {
    call();  // warm (and, pinned, builds the plan)
    CK(cudaStreamSynchronize(stream));
    std::vector<double> t;
    for (int i = 0; i < 21; ++i) {
      CK(cudaEventRecord(e0, stream));
      call();
      CK(cudaEventRecord(e1, stream));
      CK(cudaEventSynchronize(e1));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      t.push_back(ms * 1000.0);
    }
    return median(t);
  };
  const char* prec_name = rnnjit::precision_name(engine.resolve(p).precision);
  const auto t0 = std::chrono::steady_clock::now();
  call();
  CK(cudaStreamSynchronize(stream));
  const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double tuned = median_us();
  std::printf("%s %s T=%lld tuned: first call %.1f ms, %.1f us a call, %.3f us a step\n", s.name.c_str(), prec_name, T,
              first_ms, tuned, tuned / T);
  for (const std::string& c : configs.empty() ? engine.sequence_candidates(p, T) : rnnjit::tools::fields(configs)) {
    try {
      engine.pin(p, c);
    } catch (const rnnjit::Error& e) {  // a listed config this GPU or problem cannot run
      std::printf("%s %s T=%lld candidate %-80s rejected: %s\n", s.name.c_str(), prec_name, T, c.c_str(), e.message());
      continue;
    }
    const double us = median_us();
    std::printf("%s %s T=%lld candidate %-80s %10.1f us %8.3f us a step\n", s.name.c_str(), prec_name, T, c.c_str(), us,
                us / T);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaStreamDestroy(stream));
  for (void* d : {w1, b1, w2, b2, x, h0, y, h_n}) CK(cudaFree(d));
}

}  // namespace

const char* const kUsage =
    "usage: %s [--shape NAME|B,I,H,O]... [--sweep N [--seed S]] [--list-shapes] [--dtype f32|bf16]\n"
    "          [--precision tf32|fp32|bf16|all] [--config NAME] [--json FILE] [--no-pointer-checks] [--steps T]\n"
    "  times rnnjit per shape and precision (NAME: kb-v0, b1-4k, mid, kb-large; all of them by default);\n"
    "  --dtype stores every tensor as f32 (the default) or bf16; --precision all (the default) times each\n"
    "  precision the storage takes (f32: tf32 and fp32; bf16: bf16);\n"
    "  --sweep adds N random shapes (tools/shapes.hpp, the same for a seed everywhere); --list-shapes\n"
    "  prints the shapes as B,I,H,O lines and exits (side_by_side.py --sweep reads them)\n";

int main(int argc, char** argv) {
  std::vector<Named> shapes;
  rnnjit::DType dtype = rnnjit::DType::F32;
  std::string precision = "all", json_path, config;
  rnnjit::EngineOptions options;
  std::uint64_t sweep = 0, sweep_seed = 1, steps = 0;
  bool list_only = false;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    const std::string next = a + 1 < argc ? argv[a + 1] : "";
    if (arg == "--shape" && !next.empty()) {
      ++a;
      auto it = std::find_if(std::begin(kShapes), std::end(kShapes), [&](const Named& n) { return n.name == next; });
      Named n{next, 0, 0, 0, 0};
      if (it != std::end(kShapes)) {
        n = *it;
      } else {
        try {
          const rnnjit::tools::Shape s = rnnjit::tools::parse_shape(next);
          n = {next, s.b, s.i, s.h, s.o};
        } catch (const rnnjit::tools::ShapeError& e) {
          std::fprintf(stderr, "rnnjit-bench: --shape %s\n", e.what());
          return 2;
        }
      }
      shapes.push_back(n);
    } else if (arg == "--precision" && !next.empty()) {
      precision = argv[++a];
    } else if (arg == "--dtype" && !next.empty()) {
      ++a;
      try {
        dtype = rnnjit::parse_dtype(next);
      } catch (const rnnjit::Error& e) {
        std::fprintf(stderr, "rnnjit-bench: --dtype: %s\n", e.message());
        return 2;
      }
    } else if (arg == "--config" && !next.empty()) {
      config = argv[++a];
    } else if (arg == "--json" && !next.empty()) {
      json_path = argv[++a];
    } else if (arg == "--no-pointer-checks") {
      options.check_pointers = false;
    } else if ((arg == "--sweep" || arg == "--seed" || arg == "--steps") && !next.empty()) {
      ++a;
      std::uint64_t v = 0;
      const auto [end, ec] = std::from_chars(next.data(), next.data() + next.size(), v);
      const bool counted = arg != "--seed", in_range = v >= 1 && v <= (arg == "--steps" ? 100000u : 10000u);
      if (ec != std::errc() || end != next.data() + next.size() || (counted && !in_range)) {
        std::fprintf(stderr, "rnnjit-bench: %s %s is not %s\n", arg.c_str(), next.c_str(),
                     arg == "--sweep" ? "a count in 1..10000" : arg == "--steps" ? "a count in 1..100000" : "an unsigned integer");
        return 2;
      }
      (arg == "--sweep" ? sweep : arg == "--steps" ? steps : sweep_seed) = v;
    } else if (arg == "--list-shapes") {
      list_only = true;
    } else if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, kUsage, argv[0]);
      return 2;
    }
  }
  std::vector<rnnjit::Precision> precs;
  if (precision != "all") {
    try {
      precs = {rnnjit::parse_precision(precision)};
    } catch (const rnnjit::Error& e) {
      std::fprintf(stderr, "rnnjit-bench: --precision: %s\n", e.message());
      return 2;
    }
  } else if (dtype == rnnjit::DType::BF16) {
    precs = {rnnjit::Precision::BF16};
  } else {
    precs = {rnnjit::Precision::TF32, rnnjit::Precision::FP32};
  }
  for (const auto& s : rnnjit::tools::sweep_shapes(static_cast<int>(sweep), sweep_seed))
    shapes.push_back({std::to_string(s.b) + "," + std::to_string(s.i) + "," + std::to_string(s.h) + "," + std::to_string(s.o),
                      s.b, s.i, s.h, s.o});
  if (shapes.empty()) shapes.assign(std::begin(kShapes), std::end(kShapes));
  if (list_only) {
    for (const auto& s : shapes) std::printf("%lld,%lld,%lld,%lld\n", s.b, s.i, s.h, s.o);
    return 0;
  }

  try {
    rnnjit::Engine engine(options);
    std::printf("rnnjit-bench on %s (%s), cache %s%s\n", engine.device().name.c_str(), engine.device().arch.c_str(),
                engine.cache_path().c_str(), options.check_pointers ? "" : ", pointer checks off");
    std::printf("host floor: one cudaMemsetAsync enqueue takes %.2f us\n", enqueue_floor_us());
    const double bandwidth = copy_bandwidth();
    std::printf("copy ceiling: %.2f TB/s (1 GiB device-to-device, read + write); %s ceiling %.0f TFLOP/s\n",
                bandwidth / 1e12, dtype == rnnjit::DType::BF16 ? "bf16" : "tf32", tensor_rate(dtype) / 1e12);
    if (steps > 0) {
      for (const auto& s : shapes)
        for (auto prec : precs) bench_sequence(engine, s, prec, dtype, static_cast<long long>(steps), config);
      return 0;
    }
    std::vector<Result> results;
    for (const auto& s : shapes)
      for (auto prec : precs) results.push_back(bench(engine, s, prec, dtype, config, bandwidth));
    std::printf("%-22s %-5s %10s %10s %9s %10s %9s %10s %9s %8s %8s %8s  %s\n", "shape", "prec", "first ms", "step us",
                "loop us", "graph us", "host us", "g.host us", "floor us", "floor %", "GB/s", "TFLOP/s", "config");
    for (const auto& r : results)
      std::printf("%-22s %-5s %10.1f %10.2f %9.2f %10.2f %9.2f %10.2f %9.2f %7.0f%% %8.0f %8.1f  %s\n", r.name.c_str(),
                  r.precision.c_str(), r.first_ms, r.gpu_us, r.loop_us, r.graph_us, r.host_us, r.graph_host_us,
                  r.floor_us, 100.0 * r.floor_us / r.gpu_us, r.gbps, r.tflops, r.config.c_str());
    if (!json_path.empty()) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& r : results)
        rows.push_back({{"shape", r.name}, {"dtype", r.dtype}, {"precision", r.precision}, {"first_ms", r.first_ms},
                        {"step_us", r.gpu_us}, {"loop_us", r.loop_us}, {"graph_us", r.graph_us}, {"host_us", r.host_us},
                        {"graph_host_us", r.graph_host_us}, {"floor_us", r.floor_us}, {"config", r.config}});
      std::ofstream out(json_path);
      out << rows.dump(2) << "\n";
      if (!out.flush()) {
        std::fprintf(stderr, "rnnjit-bench: could not write %s\n", json_path.c_str());
        return 1;
      }
    }
  } catch (const std::exception& e) {  // rnnjit::Error among them
    std::fprintf(stderr, "rnnjit-bench: %s\n", e.what());
    return 1;
  }
}
