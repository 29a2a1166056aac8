// Validation at the API's edge, on the CPU: with PointerChecks::Cheap nothing asks the driver, so
// fake device addresses stand in for buffers.
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <string>

#include "validate.hpp"

namespace {

using rnnjit::Error;
using rnnjit::ErrorCode;

// A fake, 16-byte aligned device address `offset` floats past a base of its own.
const void* at(std::uintptr_t base, std::size_t offset = 0) {
  return reinterpret_cast<const void*>(base + offset * sizeof(float));
}

std::string rejected(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
    return e.message();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("sequence buffers: steps in range, sizes that fit the address space, outputs apart", "[validate]") {
  const rnnjit::PointerChecker cheap(0, rnnjit::PointerChecks::Cheap);
  const rnnjit::Shape s{3, 9, 7, 5};
  // Buffers 1 MiB apart: x, h0, y, h_n, h_all, w1, b1, w2, b2.
  const std::uintptr_t mb = 1 << 20;
  const rnnjit::Weights w{at(6 * mb), at(7 * mb), at(8 * mb), at(9 * mb)};
  auto check = [&](std::int64_t steps, const void* x, const void* h0, const void* y, const void* h_n, const void* h_all) {
    return rejected([&] { rnnjit::check_sequence_buffers(s, steps, w, x, h0, y, h_n, h_all, cheap); });
  };
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), at(4 * mb), at(5 * mb)) == "accepted");
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), at(4 * mb), nullptr) == "accepted");  // h_all optional
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), at(2 * mb), nullptr) == "accepted");  // h_n replaces h0
  CHECK_THAT(check(0, at(mb), at(2 * mb), at(3 * mb), at(4 * mb), nullptr), Catch::Contains("steps = 0 is out of range"));
  CHECK_THAT(check(rnnjit::kMaxSteps + 1, at(mb), at(2 * mb), at(3 * mb), at(4 * mb), nullptr),
             Catch::Contains("is out of range 1..16777216"));
  CHECK(check(4, nullptr, at(2 * mb), at(3 * mb), at(4 * mb), nullptr) == "x is null");
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), nullptr, nullptr) == "h_n is null");
  // x spans 4 steps of 3×9 floats: y at its last row overlaps it, one row further does not.
  CHECK(check(4, at(mb), at(2 * mb), at(mb, 4 * 27 - 1), at(4 * mb), nullptr) == "y overlaps x");
  CHECK(check(4, at(mb), at(2 * mb), at(mb, 4 * 27), at(4 * mb), nullptr) == "accepted");
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), at(4 * mb), at(4 * mb, 1)) == "h_all overlaps h_n");
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), at(mb, 5), nullptr) == "h_n overlaps x");
  CHECK(check(4, at(mb), at(2 * mb), at(3 * mb), at(4 * mb), at(6 * mb, 3)) == "h_all overlaps weights.w1");
  // Each size within its limit, the product past 2⁶⁴ bytes: rejected, not wrapped around.
  const rnnjit::Shape huge{1 << 20, 1 << 20, 1, 1};
  CHECK_THAT(rejected([&] {
               rnnjit::check_sequence_buffers(huge, rnnjit::kMaxSteps, w, at(mb), at(2 * mb), at(3 * mb), at(4 * mb),
                                              nullptr, cheap);
             }),
             Catch::Contains("makes buffers larger than the address space"));
}

TEST_CASE("bf16 storage takes bf16 products: default or bf16, nothing else; bf16 products need bf16 storage",
          "[validate]") {
  using rnnjit::DType;
  using rnnjit::Precision;
  // What shape_of says of `p`: "accepted" or its error code's name.
  auto verdict = [](const rnnjit::Problem& p) -> std::string {
    try {
      rnnjit::shape_of(p, Precision::TF32);
    } catch (const Error& e) {
      return rnnjit::error_code_name(e.code());
    }
    return "accepted";
  };
  // Default resolves to bf16 with bf16 storage whatever the engine's default precision is.
  for (Precision engine_default : {Precision::TF32, Precision::FP32})
    for (Precision asked : {Precision::Default, Precision::BF16}) {
      const rnnjit::Shape s = rnnjit::shape_of({3, 5, 17, 129, asked, DType::BF16}, engine_default);
      CHECK(s.precision == Precision::BF16);
      CHECK(s.dtype == DType::BF16);
      CHECK((s.b == 3 && s.i == 5 && s.h == 17 && s.o == 129));
    }
  CHECK(verdict({3, 5, 17, 129, Precision::TF32, DType::BF16}) == "unsupported");
  CHECK(verdict({3, 5, 17, 129, Precision::FP32, DType::BF16}) == "unsupported");
  CHECK(verdict({3, 5, 17, 129, Precision::BF16, DType::F32}) == "unsupported");
  // f32 storage as before: default is the engine's default, tf32 and fp32 as asked.
  CHECK(rnnjit::shape_of({3, 5, 17, 129}, Precision::FP32).precision == Precision::FP32);
  CHECK(rnnjit::shape_of({3, 5, 17, 129, Precision::TF32}, Precision::FP32).precision == Precision::TF32);
  // Sizes are checked first, whatever the storage.
  CHECK(verdict({0, 5, 17, 129, Precision::BF16, DType::BF16}) == "invalid_argument");
}

TEST_CASE("bf16 buffers are checked in 2-byte elements: alignment and extents", "[validate]") {
  const rnnjit::PointerChecker cheap(0, rnnjit::PointerChecks::Cheap);
  rnnjit::Shape s{3, 9, 7, 5};
  s.precision = rnnjit::Precision::BF16;
  s.dtype = rnnjit::DType::BF16;
  const std::uintptr_t mb = 1 << 20;
  const rnnjit::Weights w{at(5 * mb), at(6 * mb), at(7 * mb), at(8 * mb)};
  auto check = [&](std::uintptr_t x, std::uintptr_t y) {
    return rejected([&] {
      rnnjit::check_step_buffers(s, w, reinterpret_cast<const void*>(x), at(2 * mb), at(3 * mb),
                                 reinterpret_cast<const void*>(y), cheap);
    });
  };
  CHECK(check(mb, 4 * mb) == "accepted");
  CHECK(check(mb + 2, 4 * mb + 6) == "accepted");  // 2-byte aligned is enough
  CHECK(check(mb + 1, 4 * mb) == "x is not 2-byte aligned");
  CHECK(check(mb, 4 * mb + 3) == "y is not 2-byte aligned");
  // x holds 3×9 bf16 values, 54 bytes: y at its last one overlaps it, one element further does not.
  CHECK(check(mb, mb + 52) == "y overlaps x");
  CHECK(check(mb, mb + 54) == "accepted");
}
