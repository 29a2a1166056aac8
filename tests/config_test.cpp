#include <catch2/catch.hpp>

#include <algorithm>

#include "config.hpp"
#include "tuner.hpp"

namespace {

rnnjit::DeviceInfo h100() {
  rnnjit::DeviceInfo d;
  d.name = "NVIDIA H100 80GB HBM3";
  d.cc_major = 9;
  d.sm_count = 132;
  d.l2_bytes = 50 << 20;
  d.smem_per_block_optin = 227 * 1024;
  d.arch = "sm_90a";
  d.key = "h100-test";
  return d;
}

}  // namespace

using rnnjit::Tile;

TEST_CASE("a config's name parses back to the same config", "[config]") {
  for (const rnnjit::Config& c : {rnnjit::Config{Tile::mma(64, 128, 32, 2, 4, 3), Tile::mma(16, 32, 32, 1, 2, 4)},
                                 rnnjit::Config{Tile::gemv(2, 4, 4), Tile::mma(16, 32, 32, 1, 2, 4)},
                                 rnnjit::Config{Tile::gemv(1, 8, 2), Tile::gemv(4, 4, 2)},
                                 rnnjit::Config{Tile::wgmma(256, 128, 2, 4, 1), Tile::wgmma(64, 64, 1, 8, 8)},
                                 rnnjit::Config::fused(Tile::fused(128, 8, 8)), rnnjit::Config::fused(Tile::grid(128, 8)),
                                 rnnjit::Config::fused(Tile::stream(128, 16, 2, 4, 8)),
                                 rnnjit::Config::fused(Tile::gridmma(128, 16, 2, 2, 1))}) {
    const auto back = rnnjit::Config::parse(c.name());
    REQUIRE(back);
    CHECK(*back == c);
  }
  CHECK(rnnjit::Config{Tile::mma(64, 128, 32, 2, 4, 3), Tile::gemv(2, 4, 4)}.name() ==
        "i2h_mma64x128x32w2x4s3.h2o_gemv_r2w4u4");
  CHECK(rnnjit::Config::fused(Tile::fused(128, 8, 8)).name() == "fused_c128k8w8");
  CHECK(rnnjit::Config::fused(Tile::grid(128, 8)).name() == "grid_c128w8");
  CHECK(rnnjit::Config::fused(Tile::stream(128, 16, 2, 4, 8)).name() == "stream_c128w16r2u4p8");
  CHECK(rnnjit::Config::fused(Tile::gridmma(128, 16, 2, 2, 1)).name() == "gridmma_c128w16b2u2p1");
  CHECK(rnnjit::Config{Tile::wgmma(256, 128, 2, 4, 1), Tile::wgmma(64, 64, 1, 8, 8)}.name() ==
        "i2h_wgmma256x128g2s4k1.h2o_wgmma64x64g1s8k8");
}

TEST_CASE("config parsing rejects other text", "[config]") {
  for (const char* bad : {"", "i2h_", "i2h_mma64x128x32w2x4s3", "i2h_mma64x128x32w2x4s3.h2o_mma16x32x32w1x2s4x",
                          "i2h_wgmma64x128x32w2x4s3.h2o_mma16x32x32w1x2s4",
                          "i2h_mma064x128x32w2x4s3.h2o_mma16x32x32w1x2s4", "i2h_gemv_r2w4.h2o_gemv_r2w4u4",
                          "x2h_gemv_r2w4u4.h2o_gemv_r2w4u4", "i2h_fused_c128k8w8.h2o_fused_c128k8w8", "fused_c128k8",
                          "fused_c128k8w8.h2o_gemv_r2w4u4", "fused_c16w8u2", "i2h_grid_c128w8.h2o_gemv_r2w4u4", "grid_c128w8.h2o_grid_c128w8", "grid_c128w8u4", "stream_c128w16r2u4", "i2h_stream_c128w16r2u4p8.h2o_gemv_r2w4u4", "gridmma_c128w16b2u2",
                          "gridmma_c128w16r2u2p1", "i2h_gridmma_c128w16b2u2p1.h2o_gridmma_c128w16b2u2p1",
                          "i2h_wgmma256x128g2s4.h2o_wgmma64x64g1s8k8",
                          "i2h_wgmma256x128g2s4k1x.h2o_wgmma64x64g1s8k8"})
    CHECK_FALSE(rnnjit::Config::parse(bad));
}

TEST_CASE("can_implement screens tiles before NVRTC", "[config]") {
  const auto dev = h100();
  const rnnjit::Shape shape{8, 1024, 256, 128};
  std::string why;
  const Tile ok = Tile::mma(64, 64, 32, 2, 2, 4);
  CHECK(rnnjit::can_implement({ok, ok}, shape, dev, &why));
  CHECK(rnnjit::can_implement({Tile::gemv(2, 4, 4), ok}, shape, dev, &why));
  SECTION("warp tile not whole fragments") {
    CHECK_FALSE(rnnjit::can_implement({Tile::mma(24, 64, 32, 1, 2, 4), ok}, shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("i2h tile") && Catch::Contains("BM"));
  }
  SECTION("too much shared memory") {
    CHECK_FALSE(rnnjit::can_implement({ok, Tile::mma(256, 256, 64, 4, 4, 4)}, shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("h2o tile") && Catch::Contains("shared memory"));
  }
  SECTION("pre-Ampere device") {
    auto old = dev;
    old.cc_major = 7;
    CHECK_FALSE(rnnjit::can_implement({ok, ok}, shape, old, &why));
    CHECK_THAT(why, Catch::Contains("8.0"));
  }
  SECTION("batch beyond the grid's y limit") {
    const Tile small = Tile::mma(16, 32, 32, 1, 2, 4);
    CHECK_FALSE(rnnjit::can_implement({small, small}, {1 << 20, 8, 8, 8}, dev, &why));
    CHECK_THAT(why, Catch::Contains("65535"));
  }
  SECTION("wgmma tiles beyond one grid dimension") {
    const Tile t = Tile::wgmma(64, 64, 1, 4, 8);
    CHECK(rnnjit::can_implement({t, t}, {1 << 16, 1 << 16, 1 << 16, 1 << 16}, dev, &why));
    CHECK_FALSE(rnnjit::can_implement({t, t}, {1 << 20, 1 << 20, 1 << 20, 1 << 20}, dev, &why));
    CHECK_THAT(why, Catch::Contains("one grid dimension"));
  }
  SECTION("wgmma fp32: W's rows on the M side, A's cross copies in the ring") {
    rnnjit::Shape s32 = shape;
    s32.math = rnnjit::Math::Fp32;
    const Tile t128 = Tile::wgmma(128, 128, 2, 4, 1);
    CHECK(rnnjit::can_implement({t128, t128}, s32, dev, &why));
    // 4 slots of A's slice, W's and A's cross copy, 128 rows × 128 bytes each, then the mbarriers and slack.
    CHECK(t128.smem_bytes(s32) == 4 * (128 + 128 + 128) * 128 + 4 * 16 + 1024);
    CHECK(t128.smem_bytes(shape) == 4 * (128 + 128) * 128 + 4 * 16 + 1024);
    const Tile n256 = Tile::wgmma(256, 128, 2, 4, 1);
    CHECK(rnnjit::can_implement({n256, n256}, shape, dev, &why));
    CHECK_FALSE(rnnjit::can_implement({n256, n256}, s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("BM must be 16, 64 or 128"));
    const Tile half = Tile::wgmma(128, 64, 2, 4, 1);  // 32 W rows a warpgroup
    CHECK_FALSE(rnnjit::can_implement({half, half}, s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("whole m64 blocks"));
  }
  SECTION("wgmma with a 16-row batch tile: W's rows on the M side, whole m64 blocks of them") {
    const Tile narrow = Tile::wgmma(16, 64, 1, 22, 2);
    CHECK(rnnjit::can_implement({narrow, narrow}, shape, dev, &why));
    CHECK(narrow.smem_bytes(shape) == 22 * (16 + 64) * 128 + 22 * 16 + 1024);
    const Tile split_rows = Tile::wgmma(16, 64, 2, 8, 1);  // 32 W rows a warpgroup
    CHECK_FALSE(rnnjit::can_implement({split_rows, split_rows}, shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("whole m64 blocks"));
    const Tile n32 = Tile::wgmma(32, 64, 1, 8, 1);  // no wgmma n32 in the kernel
    CHECK_FALSE(rnnjit::can_implement({n32, n32}, shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("must be 16"));
    // fp32's slots add A's cross copy (16 rows of 128 bytes): 22 of them no longer fit, 18 do.
    rnnjit::Shape s32 = shape;
    s32.math = rnnjit::Math::Fp32;
    CHECK_FALSE(rnnjit::can_implement({narrow, narrow}, s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("B of shared memory"));
    const Tile narrow18 = Tile::wgmma(16, 64, 1, 18, 2);
    CHECK(rnnjit::can_implement({narrow18, narrow18}, s32, dev, &why));
    CHECK(narrow18.smem_bytes(s32) == 18 * (16 + 64 + 16) * 128 + 18 * 16 + 1024);
    CHECK_FALSE(rnnjit::can_implement({n32, n32}, s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("BM must be 16, 64 or 128"));
  }
  SECTION("clusters need Hopper, at most 16 CTAs, resident clusters and a fused config one tile") {
    const auto fused = rnnjit::Config::fused(Tile::fused(128, 8, 8));
    CHECK(rnnjit::can_implement(fused, shape, dev, &why));
    auto ada = dev;
    ada.cc_major = 8;
    ada.cc_minor = 9;
    CHECK_FALSE(rnnjit::can_implement(fused, shape, ada, &why));
    CHECK_THAT(why, Catch::Contains("9.0"));
    CHECK_FALSE(rnnjit::can_implement({Tile::fused(128, 8, 8), Tile::fused(64, 8, 8)}, shape, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(rnnjit::Config::fused(Tile::fused(128, 32, 8)), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("at most 16 CTAs"));
    // 256 rows over 16 clusters of 16: more CTAs than SMs.
    CHECK_FALSE(rnnjit::can_implement(rnnjit::Config::fused(Tile::fused(256, 16, 8)), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("SMs"));
    // b1-4k: 256 rows of 8 KiB a cluster do not fit registers.
    CHECK_FALSE(rnnjit::can_implement(fused, {1, 4096, 4096, 4096}, dev, &why));
    CHECK_THAT(why, Catch::Contains("registers"));
  }
  SECTION("gridmma: batch ≤ 16, its chunks' registers, its shared memory, Ampere or newer") {
    const Tile two = Tile::gridmma(128, 16, 2, 2, 1), eight = Tile::gridmma(128, 8, 2, 2, 1);
    const auto fused = [](const Tile& t) { return rnnjit::Config::fused(t); };
    CHECK(rnnjit::can_implement(fused(two), {8, 4096, 4096, 4096}, dev, &why));
    // Batch 9 to 16 takes two n8 tiles: A's and the sums' registers double.
    CHECK_FALSE(rnnjit::can_implement(fused(two), {9, 4096, 4096, 4096}, dev, &why));
    CHECK_THAT(why, Catch::Contains("registers"));
    CHECK(rnnjit::can_implement(fused(eight), {16, 4096, 4096, 4096}, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(fused(eight), {17, 4096, 4096, 4096}, dev, &why));
    CHECK_THAT(why, Catch::Contains("batch ≤ 16"));
    // One staged chunk: 16 warps × 16 float4s a lane × 32 lanes, then the partial sums.
    CHECK(two.smem_bytes(shape) == 16 * 16 * 32 * 16 + 16 * 2 * 1 * 128 * 4);
    CHECK_FALSE(rnnjit::can_implement(fused(Tile::gridmma(133, 16, 2, 2, 1)), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("SMs"));
    auto old = dev;
    old.cc_major = 7;
    CHECK_FALSE(rnnjit::can_implement(fused(two), shape, old, &why));
    CHECK_THAT(why, Catch::Contains("8.0"));
  }
  SECTION("gemv beyond batch 16") {
    CHECK_FALSE(rnnjit::can_implement({Tile::gemv(1, 4, 4), ok}, {17, 8, 8, 8}, dev, &why));
    CHECK_THAT(why, Catch::Contains("batch ≤ 16"));
  }
}

TEST_CASE("the heuristic proposes 3-4 implementable configs, deterministically", "[config]") {
  const auto dev = h100();
  rnnjit::cache::Store store("off");
  rnnjit::Jit jit(store);
  rnnjit::Tuner tuner(dev, jit, store);
  const rnnjit::Shape shapes[] = {{8, 1024, 256, 128},       {1, 4096, 4096, 4096}, {64, 2048, 2048, 1024},
                                  {256, 16384, 16384, 8192}, {3, 999, 17, 1},       {4097, 5, 7, 3}};
  for (const auto& s : shapes) {
    for (auto math : {rnnjit::Math::Tf32, rnnjit::Math::Fp32}) {
      auto shape = s;
      shape.math = math;
      const auto a = tuner.propose(shape);
      const auto b = tuner.propose(shape);
      INFO("B=" << s.b << " I=" << s.i << " H=" << s.h << " O=" << s.o);
      CHECK(a.size() >= 3);
      CHECK(a.size() <= 4);
      CHECK(a == b);
      for (const auto& c : a) CHECK(rnnjit::can_implement(c, shape, dev, nullptr));
    }
  }
}

TEST_CASE("small batches get weight-streaming first, large problems large tensor-core tiles", "[config]") {
  const auto dev = h100();
  rnnjit::cache::Store store("off");
  rnnjit::Jit jit(store);
  rnnjit::Tuner tuner(dev, jit, store);
  const auto small = tuner.propose({8, 1024, 256, 128});
  REQUIRE(small.size() == 4);
  // One launch over the chip first: clusters splitting K (Hopper), then the grid step.
  CHECK(small[0].name() == "fused_c128k8w8");
  CHECK(small[1].name() == "fused_c128k16w8");
  CHECK(small[2].name() == "grid_c128w8");
  CHECK(small[3].name() == "grid_c128w16");
  // b1-4k: too large a row for the grid step; the one-launch streaming step, then gemv pairs.
  const auto gemv = tuner.propose({1, 4096, 4096, 4096});
  REQUIRE(gemv.size() == 4);
  CHECK(gemv[0].name() == "stream_c128w16r1u8p8");
  CHECK(gemv[1].name() == "stream_c128w16r1u4p8");
  CHECK(gemv[2].i2h.family == rnnjit::Family::Gemv);
  CHECK(gemv[3].i2h.family == rnnjit::Family::Wgmma);  // TMA streaming, the best at batch 16
  // Batches 8 and 16: the one-launch stream on tensor cores first (two blocks a warp where the
  // registers allow), then on FFMA (A is re-read once per ROWS rows: more rows a warp), then the
  // TMA-fed pair with W's rows on the wgmma M side and a 16-row batch tile.
  const auto b8 = tuner.propose({8, 4096, 4096, 4096});
  REQUIRE(b8.size() == 4);
  CHECK(b8[0].name() == "gridmma_c128w16b2u2p0");
  CHECK(b8[1].name() == "gridmma_c128w8b2u4p1");
  CHECK(b8[2].name() == "stream_c128w8r2u4p8");
  CHECK(b8[3].name() == "i2h_wgmma16x64g1s22k2.h2o_wgmma16x64g1s22k2");
  const auto b16 = tuner.propose({16, 4096, 4096, 4096});
  REQUIRE(b16.size() == 4);
  CHECK(b16[0].name() == "gridmma_c128w16b1u2p2");
  CHECK(b16[1].name() == "gridmma_c128w8b2u2p1");
  CHECK(b16[2].name() == "stream_c128w8r4u2p8");
  CHECK(b16[3].name() == "i2h_wgmma16x64g1s22k2.h2o_wgmma16x64g1s22k2");
  // fp32: the same, with the 18-slot ring that holds A's cross copy too.
  for (int b : {8, 16}) {
    const auto fp32 = tuner.propose({b, 4096, 4096, 4096, rnnjit::Math::Fp32});
    REQUIRE(fp32.size() == 4);
    CHECK(fp32[3].name() == "i2h_wgmma16x64g1s18k2.h2o_wgmma16x64g1s18k2");
  }
  // Below batch 4 the FFMA stream keeps both one-launch slots.
  const auto b3 = tuner.propose({3, 4096, 4096, 4096});
  REQUIRE(b3.size() == 4);
  CHECK(b3[0].i2h.family == rnnjit::Family::GridStream);
  CHECK(b3[1].i2h.family == rnnjit::Family::GridStream);
  const auto b17 = tuner.propose({17, 4096, 4096, 4096});
  REQUIRE(b17.size() == 4);
  CHECK(b17[0].i2h.family == rnnjit::Family::Wgmma);
  CHECK(b17[3].i2h.family == rnnjit::Family::Mma);
  // kb-large: the whole batch in one M tile, 128 CTAs a stage (h2o's 64 N tiles split K in two).
  CHECK(tuner.propose({256, 16384, 16384, 8192}).front().name() == "i2h_wgmma256x128g2s4k1.h2o_wgmma256x128g2s4k2");
  // mid: n64 tiles, K split so that ~100 CTAs stream the weights in one wave of clusters.
  CHECK(tuner.propose({64, 2048, 2048, 1024}).front().name() == "i2h_wgmma64x64g1s8k3.h2o_wgmma64x64g1s8k6");
  // fp32 puts W's rows on the wgmma M side (n = BM ≤ 128) and A's cross copy in every ring slot.
  const rnnjit::Shape large32{256, 16384, 16384, 8192, rnnjit::Math::Fp32};
  for (const auto& c : tuner.propose(large32))
    if (c.i2h.family == rnnjit::Family::Wgmma) {
      CHECK(c.i2h.bm <= 128);
      CHECK(c.i2h.smem_bytes(large32) <= 232448);
    }
  // Rows of x not in multiples of 16 bytes: no TMA.
  for (const auto& c : tuner.propose({64, 2047, 2048, 1024})) CHECK(!c.needs_aligned16());
}

TEST_CASE("wgmma tiles are proposed on sm_90a only, and the fallback never needs TMA", "[config]") {
  auto ampere = h100();
  ampere.cc_major = 8, ampere.cc_minor = 0, ampere.arch = "sm_80";
  rnnjit::cache::Store store("off");
  rnnjit::Jit jit(store);
  rnnjit::Tuner tuner(ampere, jit, store);
  for (const auto& c : tuner.propose({256, 16384, 16384, 8192})) CHECK(c.i2h.family == rnnjit::Family::Mma);
  const auto h100_device = h100();  // the tuner keeps a reference
  rnnjit::Tuner hopper(h100_device, jit, store);
  CHECK(!hopper.fallback({256, 16384, 16384, 8192}).needs_aligned16());
  CHECK(!hopper.fallback({64, 2048, 2048, 1024}).needs_aligned16());
  std::string why;
  CHECK(!rnnjit::can_implement(rnnjit::Config{rnnjit::Tile::wgmma(256, 128, 2, 4, 1), rnnjit::Tile::wgmma(256, 128, 2, 4, 1)},
                               {256, 16384, 16384, 8192}, ampere, &why));
  CHECK(why.find("sm_90a") != std::string::npos);
}
