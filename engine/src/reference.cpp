#include <cmath>
#include <limits>
#include <string>

#include "rnnjit/rnnjit.hpp"

namespace rnnjit {

void reference_step(std::int64_t B, std::int64_t I, std::int64_t H, std::int64_t O, const float* w1, const float* b1,
                    const float* w2, const float* b2, const float* x, const float* h, std::vector<double>& h_out,
                    std::vector<double>& y) {
  h_out.assign(static_cast<std::size_t>(B * H), 0.0);
  y.assign(static_cast<std::size_t>(B * O), 0.0);
  const std::int64_t K = I + H;
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t n = 0; n < H; ++n) {
      const float* wr = w1 + n * K;
      double acc = b1[n];
      for (std::int64_t k = 0; k < I; ++k) acc += double(x[b * I + k]) * wr[k];
      for (std::int64_t k = 0; k < H; ++k) acc += double(h[b * H + k]) * wr[I + k];
      h_out[b * H + n] = std::tanh(acc);
    }
    for (std::int64_t n = 0; n < O; ++n) {
      const float* wr = w2 + n * H;
      double acc = b2[n];
      for (std::int64_t k = 0; k < H; ++k) acc += h_out[b * H + k] * wr[k];
      y[b * O + n] = acc;
    }
  }
}

double relative_error(const std::vector<float>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return std::numeric_limits<double>::infinity();
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  if (den == 0) return num == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(num / den);
}

double error_bound(Precision p) {
  switch (p) {
    case Precision::FP32: return 1e-5;
    case Precision::TF32: return 2e-3;
    case Precision::BF16: return 1e-2;
    case Precision::Default: break;
  }
  throw Error(ErrorCode::InvalidArgument,
              std::string("precision ") + precision_name(p) +
                  " has no error bound of its own: it runs the engine's default (tf32 unless set) with f32 tensors, "
                  "bf16 with bf16 tensors; ask for that one");
}

}  // namespace rnnjit
