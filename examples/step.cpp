// rnnjit-example: runs one RNN step through rnnjit, checks it against the float64
// reference and times it.
//
//   rnnjit-example [B,I,H,O | kb-v0 | b1-4k | mid | kb-large] [fp32|tf32] [--require-gpu]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "example_support.hpp"
#include "rnnjit/rnnjit.hpp"

const char* const kUsage =
    "usage: %s [B,I,H,O|kb-v0|b1-4k|mid|kb-large] [fp32|tf32] [--require-gpu]\n"
    "  runs one RNN step through rnnjit, checks it against the float64 reference and times it\n"
    "  --require-gpu  exit 77 (skipped) instead of 0 where there is no GPU\n";

int main(int argc, char** argv) {
  rnnjit::Problem problem = example::kShapes[0].p;
  std::string label = example::kShapes[0].name;
  bool require_gpu = false;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--require-gpu") {
      require_gpu = true;
    } else if (arg == "fp32" || arg == "tf32") {
      problem.precision = rnnjit::parse_precision(arg);
    } else if (example::parse_shape(arg, problem)) {
      label = arg;
    } else if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, kUsage, argv[0]);
      return 2;
    }
  }
  if (problem.precision == rnnjit::Precision::Default) problem.precision = rnnjit::Precision::TF32;

  std::unique_ptr<rnnjit::Engine> engine;
  try {
    engine = std::make_unique<rnnjit::Engine>();
  } catch (const rnnjit::Error& e) {
    if (e.code() != rnnjit::ErrorCode::NoDriver && e.code() != rnnjit::ErrorCode::NoDevice) throw;
    std::printf("rnnjit-example: no GPU here, so no step was run (%s)\n", e.what());
    return require_gpu ? 77 : 0;
  }
  const auto B = problem.batch, I = problem.input, H = problem.hidden, O = problem.output;
  std::printf("device: %s (%s); cache: %s\n", engine->device().name.c_str(), engine->device().arch.c_str(),
              engine->cache_path().c_str());

  std::mt19937 rng(1234);
  const float k1 = 1.0f / std::sqrt(float(I + H)), k2 = 1.0f / std::sqrt(float(H));
  const auto w1 = example::uniform(H * (I + H), -k1, k1, rng), b1 = example::uniform(H, -k1, k1, rng);
  const auto w2 = example::uniform(O * H, -k2, k2, rng), b2 = example::uniform(O, -k2, k2, rng);
  const auto x = example::uniform(B * I, 0, 1, rng), h = example::uniform(B * H, 0, 1, rng);
  using example::upload;
  float *dw1 = upload(w1), *db1 = upload(b1), *dw2 = upload(w2), *db2 = upload(b2), *dx = upload(x), *dh = upload(h);
  float *dh_out = nullptr, *dy = nullptr;
  CHECK_CUDA(cudaMalloc(&dh_out, B * H * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&dy, B * O * sizeof(float)));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  const rnnjit::Weights weights{dw1, db1, dw2, db2};

  const auto t0 = std::chrono::steady_clock::now();
  engine->rnn_step(problem, weights, dx, dh, dh_out, dy, stream);
  CHECK_CUDA(cudaStreamSynchronize(stream));
  const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  // The reference costs B·(I+H)·H multiply-adds in float64: check a few rows of big batches.
  const std::int64_t rows = B * (I + H) * H > 400'000'000 ? std::min<std::int64_t>(B, 2) : B;
  std::vector<float> h_out(rows * H), y(rows * O);
  CHECK_CUDA(cudaMemcpy(h_out.data(), dh_out, h_out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));
  std::vector<double> ref_h, ref_y;
  rnnjit::reference_step(rows, I, H, O, w1.data(), b1.data(), w2.data(), b2.data(), x.data(), h.data(), ref_h, ref_y);
  const double err = std::max(rnnjit::relative_error(h_out, ref_h), rnnjit::relative_error(y, ref_y));
  const double bound = rnnjit::error_bound(engine->resolve(problem).precision);

  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int r = 0; r < 50; ++r) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    engine->rnn_step(problem, weights, dx, dh, dh_out, dy, stream);
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms * 1000.0f);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());

  std::printf("%s B=%lld I=%lld H=%lld O=%lld %s: error %.2e vs float64 (%lld of %lld rows; bound %.0e) %s\n",
              label.c_str(), (long long)B, (long long)I, (long long)H, (long long)O,
              rnnjit::precision_name(problem.precision), err, (long long)rows, (long long)B, bound,
              err <= bound ? "PASS" : "FAIL");
  std::printf("first call %.1f ms (tuning included), then %.1f us a step (median of 50)\n", first_ms,
              times[times.size() / 2]);
  for (float* p : {dw1, db1, dw2, db2, dx, dh, dh_out, dy}) CHECK_CUDA(cudaFree(p));
  return err <= bound ? 0 : 1;
}
