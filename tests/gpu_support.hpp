// Shared by the GPU tests: device buffers through the CUDA runtime (as users hold them),
// random problems, and the check against the float64 reference.
#pragma once

#include <cuda_runtime.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "rnnjit/rnnjit.hpp"

#define CUDA_OK(call) REQUIRE((call) == cudaSuccess)

namespace test {

/// cudaMalloc'd floats, `offset` floats into the allocation (to test unaligned pointers).
class DevBuf {
 public:
  DevBuf(std::size_t n, std::size_t offset = 0) : n_(n) {
    CUDA_OK(cudaMalloc(&base_, (n + offset) * sizeof(float) + 16));
    ptr_ = base_ + offset;
  }
  ~DevBuf() { cudaFree(base_); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  float* get() const { return ptr_; }
  void upload(const std::vector<float>& v) {
    REQUIRE(v.size() == n_);
    CUDA_OK(cudaMemcpy(ptr_, v.data(), n_ * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::vector<float> download(std::size_t count) const {
    std::vector<float> v(count);
    CUDA_OK(cudaMemcpy(v.data(), ptr_, count * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }
  std::vector<float> download() const { return download(n_); }
  /// All bits set: a NaN, so an element the kernel never wrote fails the check.
  void poison() { CUDA_OK(cudaMemset(ptr_, 0xff, n_ * sizeof(float))); }

 private:
  float* base_ = nullptr;
  float* ptr_ = nullptr;
  std::size_t n_;
};

/// Host copies and device buffers of one random problem, drawn fresh each time:
/// inputs like torch.rand, weights like nn.Linear's init.
struct Step {
  rnnjit::Problem p;
  std::vector<float> w1, b1, w2, b2, x, h;
  DevBuf dw1, db1, dw2, db2, dx, dh, dh_out, dy;

  Step(const rnnjit::Problem& problem, std::mt19937& rng, std::size_t offset = 0)
      : p(problem),
        dw1(p.hidden * (p.input + p.hidden), offset), db1(p.hidden, offset), dw2(p.output * p.hidden, offset),
        db2(p.output, offset), dx(p.batch * p.input, offset), dh(p.batch * p.hidden, offset),
        dh_out(p.batch * p.hidden, offset), dy(p.batch * p.output, offset) {
    const float k1 = 1.0f / std::sqrt(float(p.input + p.hidden)), k2 = 1.0f / std::sqrt(float(p.hidden));
    auto fill = [&](std::vector<float>& v, std::size_t n, float lo, float hi) {
      std::uniform_real_distribution<float> d(lo, hi);
      v.resize(n);
      for (auto& e : v) e = d(rng);
    };
    fill(w1, p.hidden * (p.input + p.hidden), -k1, k1);
    fill(b1, p.hidden, -k1, k1);
    fill(w2, p.output * p.hidden, -k2, k2);
    fill(b2, p.output, -k2, k2);
    fill(x, p.batch * p.input, 0, 1);
    fill(h, p.batch * p.hidden, 0, 1);
    dw1.upload(w1), db1.upload(b1), dw2.upload(w2), db2.upload(b2), dx.upload(x), dh.upload(h);
  }

  rnnjit::Weights weights() const { return {dw1.get(), db1.get(), dw2.get(), db2.get()}; }

  void run(rnnjit::Engine& e, cudaStream_t s = nullptr) {
    dh_out.poison();
    dy.poison();
    e.rnn_step(p, weights(), dx.get(), dh.get(), dh_out.get(), dy.get(), s);
    CUDA_OK(cudaStreamSynchronize(s));
  }

  /// Max of the relative errors of h' and y over the first `rows` batch rows (the
  /// reference is O(B·H·(I+H)) in float64: big batches are sampled).
  double error(std::int64_t rows) const {
    std::vector<double> rh, ry;
    rnnjit::reference_step(rows, p.input, p.hidden, p.output, w1.data(), b1.data(), w2.data(), b2.data(), x.data(),
                           h.data(), rh, ry);
    return std::max(rnnjit::relative_error(dh_out.download(rows * p.hidden), rh),
                    rnnjit::relative_error(dy.download(rows * p.output), ry));
  }

  std::int64_t check_rows() const {
    const double work = double(p.batch) * double(p.input + p.hidden) * double(p.hidden);
    return work > 4e8 ? std::min<std::int64_t>(p.batch, 2) : p.batch;
  }
};

inline double bound(rnnjit::Precision p) { return p == rnnjit::Precision::FP32 ? 1e-5 : 2e-3; }

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline rnnjit::EngineOptions memory_only() {
  rnnjit::EngineOptions o;
  o.cache_path = "off";
  return o;
}

}  // namespace test
