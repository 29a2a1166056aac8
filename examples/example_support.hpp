// What the examples share: the CUDA runtime check, the anchor shapes by name, random inputs and
// their upload.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "rnnjit/rnnjit.hpp"

#define CHECK_CUDA(call)                                                                          \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(e_));                    \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

namespace example {

struct Named {
  const char* name;
  rnnjit::Problem p;
};
inline const Named kShapes[] = {{"kb-v0", {8, 1024, 256, 128}},
                                {"b1-4k", {1, 4096, 4096, 4096}},
                                {"mid", {64, 2048, 2048, 1024}},
                                {"kb-large", {256, 16384, 16384, 8192}}};

/// `arg` as a shape, an anchor's name or "B,I,H,O", into `problem` (its precision kept); false
/// when it is neither.
inline bool parse_shape(const std::string& arg, rnnjit::Problem& problem) {
  if (auto it = std::find_if(std::begin(kShapes), std::end(kShapes), [&](const Named& n) { return arg == n.name; });
      it != std::end(kShapes)) {
    problem = {it->p.batch, it->p.input, it->p.hidden, it->p.output, problem.precision};
    return true;
  }
  if (long long b, i, h, o; std::sscanf(arg.c_str(), "%lld,%lld,%lld,%lld", &b, &i, &h, &o) == 4) {
    problem = {b, i, h, o, problem.precision};
    return true;
  }
  return false;
}

inline std::vector<float> uniform(std::size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// `n` floats from `data` in a new allocation on the current device.
inline float* upload(const float* data, std::size_t n) {
  float* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, n * sizeof(float)));
  CHECK_CUDA(cudaMemcpy(p, data, n * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}
inline float* upload(const std::vector<float>& v) { return upload(v.data(), v.size()); }

}  // namespace example
