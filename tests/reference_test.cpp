#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "rnnjit/rnnjit.hpp"

TEST_CASE("reference computes a 1x1x1x1 step by hand", "[reference]") {
  // h' = tanh(x·w_x + h·w_h + b1) = tanh(0.5·0.2 + (-1)·0.3 + 0.1) = tanh(-0.1)
  const float w1[] = {0.2f, 0.3f}, b1[] = {0.1f}, w2[] = {2.0f}, b2[] = {-0.5f};
  const float x[] = {0.5f}, h[] = {-1.0f};
  std::vector<double> h_out, y;
  rnnjit::reference_step(1, 1, 1, 1, w1, b1, w2, b2, x, h, h_out, y);
  const double expect_h = std::tanh(double(0.5f) * double(0.2f) + double(-1.0f) * double(0.3f) + double(0.1f));
  REQUIRE(h_out.size() == 1);
  REQUIRE(y.size() == 1);
  CHECK(h_out[0] == Approx(expect_h).epsilon(1e-15));
  CHECK(y[0] == Approx(2.0 * expect_h - 0.5).epsilon(1e-15));
}

TEST_CASE("reference reads x and h as the two K segments of W1 rows", "[reference]") {
  // B=2, I=2, H=2, O=1. W1 row n = [wx0, wx1, wh0, wh1].
  const float w1[] = {1, 0, 0, 0,   // h'0 = tanh(x0 + b)
                      0, 0, 0, 1};  // h'1 = tanh(h1 + b)
  const float b1[] = {0.25f, -0.25f}, w2[] = {1, -1}, b2[] = {0.5f};
  const float x[] = {0.1f, 0.2f, 0.3f, 0.4f}, h[] = {0.5f, 0.6f, 0.7f, 0.8f};
  std::vector<double> h_out, y;
  rnnjit::reference_step(2, 2, 2, 1, w1, b1, w2, b2, x, h, h_out, y);
  REQUIRE(h_out.size() == 4);
  CHECK(h_out[0] == Approx(std::tanh(double(0.1f) + 0.25)));
  CHECK(h_out[1] == Approx(std::tanh(double(0.6f) - 0.25)));
  CHECK(h_out[2] == Approx(std::tanh(double(0.3f) + 0.25)));
  CHECK(h_out[3] == Approx(std::tanh(double(0.8f) - 0.25)));
  CHECK(y[0] == Approx(h_out[0] - h_out[1] + 0.5));
  CHECK(y[1] == Approx(h_out[2] - h_out[3] + 0.5));
}

TEST_CASE("relative_error is the normalized L2 distance and rejects NaN", "[reference]") {
  const std::vector<double> ref = {3.0, 4.0};  // ‖ref‖ = 5
  CHECK(rnnjit::relative_error({3.0f, 4.0f}, ref) == 0.0);
  CHECK(rnnjit::relative_error({3.0f, 3.0f}, ref) == Approx(0.2));
  CHECK(std::isinf(rnnjit::relative_error({std::numeric_limits<float>::quiet_NaN(), 4.0f}, ref)));
  CHECK(std::isinf(rnnjit::relative_error({3.0f, std::numeric_limits<float>::infinity()}, ref)));
  CHECK(std::isinf(rnnjit::relative_error({3.0f}, ref)));
}
