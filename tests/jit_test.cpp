// The jit without a GPU: NVRTC errors, the target arch, and what a program's key depends on.
#include <catch2/catch.hpp>

#include "families/registry.hpp"
#include "jit.hpp"

TEST_CASE("a compile error carries NVRTC's log and the options", "[jit]") {
  rnnjit::KernelSource bad =
      rnnjit::specialize(rnnjit::TcTile{64, 64, 32, 2, 2, 4}, rnnjit::Stage::I2h, rnnjit::Shape{8, 1024, 256, 128}, "sm_80");
  bad.options.push_back("-DRNNJIT_UNUSED=1");
  bad.name_expressions = {"rnnjit_k::no_such_kernel"};
  try {
    rnnjit::compile(bad);
    FAIL("compile succeeded");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::CompileFailed);
    CHECK_THAT(e.what(), Catch::Contains("no_such_kernel") && Catch::Contains("-DRNNJIT_UNUSED=1"));
  }
}

TEST_CASE("target_arch picks sm_90a on Hopper and PTX beyond what NVRTC knows", "[jit]") {
  CHECK(rnnjit::target_arch(9, 0) == "sm_90a");
  CHECK(rnnjit::target_arch(8, 0) == "sm_80");
  CHECK(rnnjit::target_arch(8, 9) == "sm_89");
  CHECK(rnnjit::target_arch(99, 9).rfind("compute_", 0) == 0);
}

TEST_CASE("a source's key changes with its shape, tile, stage, precision and arch", "[jit]") {
  using rnnjit::Stage;
  const rnnjit::Tile t = rnnjit::TcTile{64, 64, 32, 2, 2, 4};
  const rnnjit::Shape s{8, 1024, 256, 128};
  const auto k = rnnjit::specialize(t, Stage::I2h, s, "sm_90a").key();
  CHECK(k == rnnjit::specialize(t, Stage::I2h, s, "sm_90a").key());
  CHECK(k != rnnjit::specialize(t, Stage::H2o, s, "sm_90a").key());
  CHECK(k != rnnjit::specialize(t, Stage::I2h, s, "sm_89").key());
  CHECK(k != rnnjit::specialize(t, Stage::I2h, {9, 1024, 256, 128}, "sm_90a").key());
  CHECK(k != rnnjit::specialize(rnnjit::TcTile{64, 64, 32, 2, 2, 3}, Stage::I2h, s, "sm_90a").key());
  auto fp32 = s;
  fp32.precision = rnnjit::Precision::FP32;
  CHECK(k != rnnjit::specialize(t, Stage::I2h, fp32, "sm_90a").key());
  // gemv computes in fp32 for both precisions, so both share one binary.
  const rnnjit::Tile g = rnnjit::GemvTile{2, 4, 4};
  CHECK(rnnjit::specialize(g, Stage::I2h, s, "sm_90a").key() == rnnjit::specialize(g, Stage::I2h, fp32, "sm_90a").key());
}
