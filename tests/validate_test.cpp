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
