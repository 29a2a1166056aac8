// Every kernel template with every tile the tuner may give it compiles through NVRTC for
// Ampere, Ada and Hopper, without a GPU.
#include <catch2/catch.hpp>

#include "jit.hpp"
#include "tuner.hpp"

namespace {

// What the tuner screens wgmma tiles against: an H100's limits.
rnnjit::DeviceInfo hopper() {
  rnnjit::DeviceInfo d;
  d.cc_major = 9;
  d.sm_count = 132;
  d.smem_per_block_optin = 232448;
  d.arch = "sm_90a";
  return d;
}

void compile_all_for(const std::string& arch) {
  // An aligned shape (16-byte rows: the vector path) and an odd one (the scalar path, tails).
  const rnnjit::Shape shapes[] = {{8, 1024, 256, 128}, {3, 999, 257, 5}};
  for (const auto& base : shapes)
    for (auto math : {rnnjit::Math::Tf32, rnnjit::Math::Fp32})
      for (const rnnjit::Tile& t : rnnjit::tile_pool()) {
        const bool fused = t.whole_step();
        // gemv and the FFMA one-launch steps compute in fp32 whatever the precision: compile them once.
        const bool one_math = t.family == rnnjit::Family::Gemv || (fused && t.family != rnnjit::Family::GridMma);
        if (one_math && math != rnnjit::Math::Tf32) continue;
        // wgmma: the tiles an H100 would run for this shape (other targets compile it to a trap).
        auto screened = base;
        screened.math = math;
        if (t.family == rnnjit::Family::Wgmma && !rnnjit::can_implement({t, t}, screened, hopper(), nullptr)) continue;
        for (auto stage : fused ? std::vector{rnnjit::Stage::Step} : std::vector{rnnjit::Stage::I2h, rnnjit::Stage::H2o}) {
          auto s = base;
          s.math = math;
          INFO(arch << " " << t.name() << " stage " << int(stage) << " math " << int(math) << " B=" << s.b);
          const rnnjit::Binary bin = rnnjit::compile(rnnjit::specialize(t, stage, s, arch));
          CHECK(bin.image.size() > 1000);
          // fp32 wgmma also holds split_cross, which writes A's cross copies before the product.
          const bool cross = t.family == rnnjit::Family::Wgmma && math == rnnjit::Math::Fp32;
          REQUIRE(bin.lowered_names.size() == (cross ? 2u : 1u));
          if (cross) CHECK(bin.lowered_names[1].find("split_cross") != std::string::npos);
          const char* kernel = t.family == rnnjit::Family::Mma     ? "gemm_mma"
                               : t.family == rnnjit::Family::Wgmma ? "gemm_wgmma"
                               : t.family == rnnjit::Family::Grid  ? "fused_grid"
                               : t.family == rnnjit::Family::GridStream ? "grid_stream"
                               : t.family == rnnjit::Family::GridMma ? "grid_mma"
                               : fused                             ? "fused_cluster"
                                                                   : "gemv";
          CHECK(bin.lowered_names[0].find(kernel) != std::string::npos);
        }
      }
  const rnnjit::Binary fill = rnnjit::compile(rnnjit::fill_source(arch));
  CHECK(fill.lowered_names.size() == 1);
}

}  // namespace

TEST_CASE("kernel templates compile for sm_80", "[nvrtc]") { compile_all_for("sm_80"); }
TEST_CASE("kernel templates compile for sm_89", "[nvrtc]") { compile_all_for("sm_89"); }
TEST_CASE("kernel templates compile for sm_90a", "[nvrtc]") { compile_all_for("sm_90a"); }

TEST_CASE("a compile error carries NVRTC's log and the options", "[nvrtc]") {
  rnnjit::KernelSource bad = rnnjit::fill_source("sm_80");
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

TEST_CASE("target_arch picks sm_90a on Hopper and PTX beyond what NVRTC knows", "[nvrtc]") {
  CHECK(rnnjit::target_arch(9, 0) == "sm_90a");
  CHECK(rnnjit::target_arch(8, 0) == "sm_80");
  CHECK(rnnjit::target_arch(8, 9) == "sm_89");
  CHECK(rnnjit::target_arch(99, 9).rfind("compute_", 0) == 0);
}

TEST_CASE("a source's key changes with its shape, tile, stage, precision and arch", "[nvrtc]") {
  using rnnjit::Stage;
  const auto t = rnnjit::Tile::mma(64, 64, 32, 2, 2, 4);
  const rnnjit::Shape s{8, 1024, 256, 128};
  const auto k = rnnjit::specialize(t, Stage::I2h, s, "sm_90a").key();
  CHECK(k == rnnjit::specialize(t, Stage::I2h, s, "sm_90a").key());
  CHECK(k != rnnjit::specialize(t, Stage::H2o, s, "sm_90a").key());
  CHECK(k != rnnjit::specialize(t, Stage::I2h, s, "sm_89").key());
  CHECK(k != rnnjit::specialize(t, Stage::I2h, {9, 1024, 256, 128}, "sm_90a").key());
  CHECK(k != rnnjit::specialize(rnnjit::Tile::mma(64, 64, 32, 2, 2, 3), Stage::I2h, s, "sm_90a").key());
  auto fp32 = s;
  fp32.math = rnnjit::Math::Fp32;
  CHECK(k != rnnjit::specialize(t, Stage::I2h, fp32, "sm_90a").key());
  // gemv computes in fp32 for both precisions, so both share one binary.
  const auto g = rnnjit::Tile::gemv(2, 4, 4);
  CHECK(rnnjit::specialize(g, Stage::I2h, s, "sm_90a").key() == rnnjit::specialize(g, Stage::I2h, fp32, "sm_90a").key());
}
