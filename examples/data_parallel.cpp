// rnnjit-data-parallel: one RNN step split by batch rows across every visible GPU (an engine,
// a copy of the weights and a thread a device), checked against the float64 reference, timed
// beside the whole batch on one GPU.
//
//   rnnjit-data-parallel [B,I,H,O | kb-v0 | b1-4k | mid | kb-large] [fp32|tf32] [--devices N]
#include <cuda_runtime.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "example_support.hpp"
#include "rnnjit/rnnjit.hpp"

namespace {

// One device's share: its engine, its copy of the weights, its rows of x, h, h' and y.
struct Shard {
  int device = 0;
  std::int64_t row0 = 0, rows = 0;
  std::unique_ptr<rnnjit::Engine> engine;
  float *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr, *x = nullptr, *h = nullptr, *h_out = nullptr,
        *y = nullptr;
  cudaStream_t stream = nullptr;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

const char* const kUsage =
    "usage: %s [B,I,H,O|kb-v0|b1-4k|mid|kb-large] [fp32|tf32] [--devices N]\n"
    "  splits one RNN step's batch across the visible GPUs (or the first N), checks it against the\n"
    "  float64 reference and times it beside the whole batch on GPU 0\n";

int main(int argc, char** argv) {
  rnnjit::Problem problem = example::kShapes[2].p;
  int want = 0;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "fp32" || arg == "tf32") {
      problem.precision = rnnjit::parse_precision(arg);
    } else if (arg == "--devices" && a + 1 < argc) {
      want = std::atoi(argv[++a]);
    } else if (example::parse_shape(arg, problem)) {
    } else {
      std::fprintf(stderr, kUsage, argv[0]);
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  if (problem.precision == rnnjit::Precision::Default) problem.precision = rnnjit::Precision::TF32;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("rnnjit-data-parallel: no GPU here, so no step was run\n");
    return 0;
  }
  const int devices = static_cast<int>(std::min<std::int64_t>({want > 0 ? want : count, count, problem.batch}));
  const auto B = problem.batch, I = problem.input, H = problem.hidden, O = problem.output;

  std::mt19937 rng(1234);
  const float k1 = 1.0f / std::sqrt(float(I + H)), k2 = 1.0f / std::sqrt(float(H));
  const auto w1 = example::uniform(H * (I + H), -k1, k1, rng), b1 = example::uniform(H, -k1, k1, rng);
  const auto w2 = example::uniform(O * H, -k2, k2, rng), b2 = example::uniform(O, -k2, k2, rng);
  const auto x = example::uniform(B * I, 0, 1, rng), h = example::uniform(B * H, 0, 1, rng);

  // Shards 0..devices-1 split the batch as evenly as rows allow; shard `devices` is the whole
  // batch on device 0, the baseline.
  std::vector<Shard> shards(devices + 1);
  for (int d = 0; d <= devices; ++d) {
    Shard& s = shards[d];
    s.device = d == devices ? 0 : d;
    s.row0 = d == devices ? 0 : B * d / devices;
    s.rows = d == devices ? B : B * (d + 1) / devices - s.row0;
    CHECK_CUDA(cudaSetDevice(s.device));
    rnnjit::EngineOptions o;
    o.device = s.device;
    s.engine = d == devices ? nullptr : std::make_unique<rnnjit::Engine>(o);
    s.w1 = example::upload(w1.data(), w1.size()), s.b1 = example::upload(b1.data(), b1.size());
    s.w2 = example::upload(w2.data(), w2.size()), s.b2 = example::upload(b2.data(), b2.size());
    s.x = example::upload(x.data() + s.row0 * I, s.rows * I), s.h = example::upload(h.data() + s.row0 * H, s.rows * H);
    CHECK_CUDA(cudaMalloc(&s.h_out, s.rows * H * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&s.y, s.rows * O * sizeof(float)));
    CHECK_CUDA(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  }
  // The baseline shares device 0's engine: one engine a device.
  auto engine_of = [&](const Shard& s) -> rnnjit::Engine& { return *shards[s.device].engine; };
  auto step = [&](Shard& s) {
    rnnjit::Problem p = problem;
    p.batch = s.rows;
    engine_of(s).rnn_step(p, {s.w1, s.b1, s.w2, s.b2}, s.x, s.h, s.h_out, s.y, s.stream);
  };
  // Tuned (each shard's batch is its own problem), then checked against the reference.
  double worst = 0;
  for (Shard& s : shards) {
    CHECK_CUDA(cudaSetDevice(s.device));
    step(s);
    CHECK_CUDA(cudaStreamSynchronize(s.stream));
    const std::int64_t rows = std::min<std::int64_t>(s.rows, 4);
    std::vector<float> h_out(rows * H), y(rows * O);
    CHECK_CUDA(cudaMemcpy(h_out.data(), s.h_out, h_out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(y.data(), s.y, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
    std::vector<double> ref_h, ref_y;
    rnnjit::reference_step(rows, I, H, O, w1.data(), b1.data(), w2.data(), b2.data(), x.data() + s.row0 * I,
                           h.data() + s.row0 * H, ref_h, ref_y);
    worst = std::max({worst, rnnjit::relative_error(h_out, ref_h), rnnjit::relative_error(y, ref_y)});
  }
  const double bound = rnnjit::error_bound(shards[0].engine->resolve(problem).precision);

  // Steady steps: the baseline alone, then every shard at once, a thread a device, each round
  // started together and timed until the slowest shard is done.
  constexpr int kRounds = 50;
  std::vector<double> one, all;
  Shard& base = shards[devices];
  CHECK_CUDA(cudaSetDevice(0));
  for (int r = 0; r < kRounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    step(base);
    CHECK_CUDA(cudaStreamSynchronize(base.stream));
    one.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::barrier round(devices + 1);
  std::vector<std::thread> threads;
  for (int d = 0; d < devices; ++d)
    threads.emplace_back([&, d] {
      CHECK_CUDA(cudaSetDevice(shards[d].device));
      for (int r = 0; r < kRounds; ++r) {
        round.arrive_and_wait();  // start together
        step(shards[d]);
        CHECK_CUDA(cudaStreamSynchronize(shards[d].stream));
        round.arrive_and_wait();  // the round ends with the slowest
      }
    });
  for (int r = 0; r < kRounds; ++r) {
    round.arrive_and_wait();
    const auto t0 = std::chrono::steady_clock::now();
    round.arrive_and_wait();
    all.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  for (auto& t : threads) t.join();

  const double t_one = median(one), t_all = median(all);
  std::printf("B=%lld I=%lld H=%lld O=%lld %s on %d GPU%s (%s): error %.1e (%s)\n", static_cast<long long>(B),
              static_cast<long long>(I), static_cast<long long>(H), static_cast<long long>(O),
              rnnjit::precision_name(problem.precision), devices, devices == 1 ? "" : "s",
              shards[0].engine->device().name.c_str(), worst, worst <= bound ? "pass" : "FAIL");
  std::printf("one GPU, whole batch: %.1f us a step; %d GPUs, %lld rows or so each: %.1f us; speed-up %.2fx\n", t_one,
              devices, static_cast<long long>(B / devices), t_all, t_one / t_all);
  for (Shard& s : shards) {
    CHECK_CUDA(cudaSetDevice(s.device));
    for (float* p : {s.w1, s.b1, s.w2, s.b2, s.x, s.h, s.h_out, s.y}) CHECK_CUDA(cudaFree(p));
    CHECK_CUDA(cudaStreamDestroy(s.stream));
  }
  return worst <= bound ? 0 : 1;
}
