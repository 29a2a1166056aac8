// Every registered kernel family, walked through the descriptor interface: names round-trip,
// can_implement screens, NVRTC compiles every pool tile for sm_80, sm_89 and sm_90a where the
// family claims it can run, and what the tuner proposes for each described GPU compiles for its
// arch without spills (no GPU needed).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <thread>
#include <regex>
#include <tuple>
#include <variant>

#include "config.hpp"
#include "device_table.hpp"
#include "jit.hpp"
#include "plan.hpp"
#include "tuner.hpp"

namespace {

using rnnjit::Config;
using rnnjit::Shape;
using rnnjit::Stage;
using rnnjit::Tile;

// Calls f(tile) for every pool tile of every registered family.
template <class F>
void for_each_pool_tile(F&& f) {
  [&]<class... Families>(std::variant<Families...>*) {
    (..., [&] {
      for (const auto& t : Families::pool()) f(Tile(t));
    }());
  }(static_cast<Tile*>(nullptr));
}

// The stages a tile runs: the whole step, each GEMM stage, or a sequence's recurrence.
std::vector<Stage> stages_of(const Tile& t) {
  switch (rnnjit::scope_of(t)) {
    case rnnjit::Scope::Step: return {Stage::Step};
    case rnnjit::Scope::Recurrence: return {Stage::Recur};
    case rnnjit::Scope::Stage: break;
  }
  return {Stage::I2h, Stage::H2o, Stage::XProj};
}

Config config_of(const Tile& t) {
  const Tile gemm = rnnjit::TcTile{64, 64, 32, 2, 2, 4};
  switch (rnnjit::scope_of(t)) {
    case rnnjit::Scope::Step: return Config::whole(t);
    case rnnjit::Scope::Recurrence: return Config::sequence(gemm, t, gemm);
    case rnnjit::Scope::Stage: break;
  }
  return Config::pair(t, t);
}

void compile_all_for(const rnnjit::DeviceInfo& device) {
  // An aligned shape (16-byte rows: the vector paths; gemv and stream compile their 8-byte and scalar
  // loops beside the 16-byte ones there) and an odd one (the scalar paths, tails).
  const Shape shapes[] = {{8, 1024, 256, 128}, {3, 999, 257, 5}};
  int compiled = 0;
  using rnnjit::DType;
  using rnnjit::Precision;
  const std::pair<Precision, DType> kinds[] = {
      {Precision::TF32, DType::F32}, {Precision::FP32, DType::F32}, {Precision::BF16, DType::BF16}};
  for (const auto& base : shapes)
    for (auto [precision, dtype] : kinds)
      for_each_pool_tile([&](const Tile& t) {
        Shape s = base;
        s.precision = precision;
        s.dtype = dtype;
        for (Stage stage : stages_of(t)) {
          // Sequence chunks of 4 steps: the projections over 4·B rows, the recurrence.
          s.steps = stage == Stage::XProj || stage == Stage::Recur ? 4 : 0;
          // What the family claims it can run here; other targets are never asked to.
          if (!rnnjit::rejects(t, stage, s, device).empty()) continue;
          const rnnjit::KernelSource src = rnnjit::specialize(t, stage, s, device.arch);
          INFO(device.arch << " " << rnnjit::tile_name(t) << " " << rnnjit::stage_name(stage) << " "
                           << rnnjit::precision_name(precision) << " B=" << s.b);
          const rnnjit::Binary bin = rnnjit::compile(src);
          CHECK(bin.image.size() > 1000);
          REQUIRE(bin.lowered_names.size() == src.name_expressions.size());
          // Each lowered name is its name expression's kernel.
          for (std::size_t k = 0; k < src.name_expressions.size(); ++k) {
            const std::string& e = src.name_expressions[k];
            const std::string kernel = e.starts_with("rnnjit_k::") ? e.substr(10, e.find('<') - 10) : e;
            CHECK(bin.lowered_names[k].find(kernel) != std::string::npos);
          }
          ++compiled;
        }
      });
  CHECK(compiled > 40);
}

}  // namespace

TEST_CASE("every pool tile's name parses back to the same tile, and to no other family", "[families]") {
  int tiles = 0;
  for_each_pool_tile([&](const Tile& t) {
    const std::string name = rnnjit::tile_name(t);
    const auto back = rnnjit::parse_tile(name);
    INFO(name);
    REQUIRE(back);
    CHECK(*back == t);
    CHECK(back->index() == t.index());
    const auto config = Config::parse(config_of(t).name());
    REQUIRE(config);
    CHECK(*config == config_of(t));
    ++tiles;
  });
  CHECK(tiles >= 40);
}

// A sequence's projection of x reads W1's first I columns of rows I + H long: A's rows can be whole
// 16-byte units where W's are not (I = 64, H = 301 in f32; H = 300 in bf16). A then goes by TMA and
// W by copies: the kernel takes copies of 4 or 8 bytes only.
TEST_CASE("wgmma reads whole 16-byte rows of A by TMA beside W's copies", "[families]") {
  const auto dev = rnnjit::device_table::h100_sxm();
  for (auto [h, dtype] : {std::pair{301, rnnjit::DType::F32}, std::pair{300, rnnjit::DType::BF16}}) {
    Shape s{1, 64, h, 7};
    s.steps = 2;
    s.precision = dtype == rnnjit::DType::BF16 ? rnnjit::Precision::BF16 : rnnjit::Precision::TF32;
    s.dtype = dtype;
    for (const rnnjit::WgmmaTile& t : rnnjit::WgmmaTile::pool()) {
      if (!t.rejects(s, Stage::XProj, dev).empty()) continue;
      const rnnjit::Geometry g = t.geometry(s, Stage::XProj);
      INFO(rnnjit::tile_name(t) << " H=" << h);
      CHECK(g.a_copy == 0);
      CHECK((g.w_copy == 4 || g.w_copy == 8));
      CHECK(g.pack_k == 0);
    }
  }
}

TEST_CASE("tile names say the knobs, in one spelling", "[families]") {
  CHECK(rnnjit::tile_name(rnnjit::TcTile{128, 128, 32, 2, 4, 3}) == "tc128x128x32w2x4s3");
  CHECK(rnnjit::tile_name(rnnjit::GemvTile{2, 4, 4}) == "gemv_r2w4u4");
  CHECK(rnnjit::tile_name(rnnjit::FusedTile{128, 8, 8}) == "fused_c128k8w8");
  CHECK(rnnjit::tile_name(rnnjit::GridTile{128, 8}) == "grid_c128w8");
  CHECK(rnnjit::tile_name(rnnjit::StreamTile{128, 16, 2, 4, 8}) == "stream_c128w16r2u4p8");
  CHECK(rnnjit::tile_name(rnnjit::GridMmaTile{128, 16, 2, 2, 1}) == "gridmma_c128w16b2u2p1");
  CHECK(rnnjit::tile_name(rnnjit::WgmmaTile{256, 128, 2, 4, 1}) == "wgmma256x128g2s4k1");
  CHECK(rnnjit::tile_name(rnnjit::WgmmaTile{64, 128, 1, 2, 1, 0, 2}) == "wgmma64x128g1s2k1o2");
  CHECK(rnnjit::tile_name(rnnjit::WgmmaTile{64, 64, 1, 2, 1, 1, 3}) == "wgmma64x64g1s2k1o3p");
  CHECK(rnnjit::tile_name(rnnjit::WgmmaTile{256, 128, 2, 4, 1, 0, 1, 2}) == "wgmma256x128g2s4k1m2");
  for (const char* name : {"wgmma64x128g1s2k1o2", "wgmma64x64g1s2k1o3p", "wgmma64x64g1s8k2p", "wgmma256x128g2s4k1",
                           "wgmma256x128g2s4k1m2"})
    CHECK(rnnjit::tile_name(*rnnjit::parse_tile(name)) == name);
  for (const char* bad : {"", "tc", "tc064x128x32w2x4s3", "tc64x128x32w2x4s3x", "mma64x128x32w2x4s3", "gemv_r2w4", "fused_c128k8",
                          "grid_c128w8u4", "stream_c128w16r2u4", "gridmma_c128w16r2u2p1", "wgmma256x128g2s4",
                          "wgmma256x128x32g2s4k1", " tc64x128x32w2x4s3", "wgmma64x128g1s2k1o1", "wgmma64x128g1s2k1po2",
                          "wgmma256x128g2s4k1m1", "wgmma256x128g2s4k1m2o2"})
    CHECK_FALSE(rnnjit::parse_tile(bad));
}

TEST_CASE("can_implement screens tiles before NVRTC", "[families]") {
  const auto dev = rnnjit::device_table::h100_sxm();
  const Shape shape{8, 1024, 256, 128};
  std::string why;
  const Tile ok = rnnjit::TcTile{64, 64, 32, 2, 2, 4};
  CHECK(rnnjit::can_implement(Config::pair(ok, ok), shape, dev, &why));
  CHECK(rnnjit::can_implement(Config::pair(rnnjit::GemvTile{2, 4, 4}, ok), shape, dev, &why));
  SECTION("warp tile not whole fragments") {
    CHECK_FALSE(rnnjit::can_implement(Config::pair(rnnjit::TcTile{24, 64, 32, 1, 2, 4}, ok), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("i2h tile") && Catch::Contains("BM"));
  }
  SECTION("too much shared memory") {
    CHECK_FALSE(rnnjit::can_implement(Config::pair(ok, rnnjit::TcTile{128, 128, 64, 2, 2, 8}), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("h2o tile") && Catch::Contains("shared memory"));
  }
  SECTION("pre-Ampere device") {
    auto old = dev;
    old.cc_major = 7;
    CHECK_FALSE(rnnjit::can_implement(Config::pair(ok, ok), shape, old, &why));
    CHECK_THAT(why, Catch::Contains("8.0"));
  }
  SECTION("batch beyond the grid's y limit") {
    const Tile small = rnnjit::TcTile{16, 32, 32, 1, 2, 4};
    CHECK_FALSE(rnnjit::can_implement(Config::pair(small, small), {1 << 20, 8, 8, 8}, dev, &why));
    CHECK_THAT(why, Catch::Contains("65535"));
  }
  SECTION("a config is one whole-step tile, or an i2h and an h2o stage tile") {
    const Tile fused = rnnjit::FusedTile{128, 8, 8};
    CHECK_FALSE(rnnjit::can_implement(Config::pair(fused, fused), shape, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(Config::whole(ok), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("whole-step"));
  }
  SECTION("wgmma tiles beyond one grid dimension") {
    const Tile t = rnnjit::WgmmaTile{64, 64, 1, 4, 8};
    CHECK(rnnjit::can_implement(Config::pair(t, t), {1 << 16, 1 << 16, 1 << 16, 1 << 16}, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(Config::pair(t, t), {1 << 20, 1 << 20, 1 << 20, 1 << 20}, dev, &why));
    CHECK_THAT(why, Catch::Contains("one grid dimension"));
  }
  SECTION("wgmma fp32: W's rows on the M side, A's cross copies in the ring") {
    Shape s32 = shape;
    s32.precision = rnnjit::Precision::FP32;
    const Tile t128 = rnnjit::WgmmaTile{128, 128, 2, 4, 1};
    CHECK(rnnjit::can_implement(Config::pair(t128, t128), s32, dev, &why));
    // 4 slots of A's slice, W's and A's cross copy, 128 rows × 128 bytes each, then the mbarriers and slack.
    CHECK(rnnjit::geometry(t128, Stage::I2h, s32).smem == 4 * (128 + 128 + 128) * 128 + 4 * 16 + 1024);
    CHECK(rnnjit::geometry(t128, Stage::I2h, shape).smem == 4 * (128 + 128) * 128 + 4 * 16 + 1024);
    const Tile n256 = rnnjit::WgmmaTile{256, 128, 2, 4, 1};
    CHECK(rnnjit::can_implement(Config::pair(n256, n256), shape, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(Config::pair(n256, n256), s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("BM must be 16, 64 or 128"));
    const Tile half = rnnjit::WgmmaTile{128, 64, 2, 4, 1};  // 32 W rows a warpgroup
    CHECK_FALSE(rnnjit::can_implement(Config::pair(half, half), s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("whole m64 blocks"));
    // Three consumer warpgroups at 232 registers a thread would need more than a SM's 64K.
    const Tile three = rnnjit::WgmmaTile{192, 128, 3, 4, 1};
    CHECK_FALSE(rnnjit::can_implement(Config::pair(three, three), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("at most two consumer warpgroups"));
  }
  SECTION("wgmma with several CTAs a SM: their registers and shared memory must fit one SM") {
    const Tile two = rnnjit::WgmmaTile{64, 128, 1, 2, 1, 0, 2}, four = rnnjit::WgmmaTile{64, 64, 1, 2, 1, 0, 4};
    CHECK(rnnjit::can_implement(Config::pair(two, two), shape, dev, &why));
    CHECK(rnnjit::can_implement(Config::pair(four, four), shape, dev, &why));
    // 128x128 over two warpgroups at 2 a SM leaves 80 registers a thread for 64 accumulators.
    const Tile wide = rnnjit::WgmmaTile{128, 128, 2, 3, 1, 0, 2};
    CHECK_FALSE(rnnjit::can_implement(Config::pair(wide, wide), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("2 CTAs a SM leave 80 registers"));
    // Three 64x64 rings of 8 slots (128 KiB each) do not fit 228 KiB.
    const Tile deep = rnnjit::WgmmaTile{64, 64, 1, 8, 1, 0, 3};
    CHECK_FALSE(rnnjit::can_implement(Config::pair(deep, deep), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("shared memory for 3 CTAs a SM"));
  }
  SECTION("wgmma multicast pairs: A's rows on the M side by TMA, N tiles in whole pairs, half of A a CTA") {
    const Tile pair = rnnjit::WgmmaTile{256, 128, 2, 4, 1, 0, 1, 2};
    const Shape s{755, 1108, 7156, 5420};  // i2h: 3 M tiles x 56 N tiles; h2o: 43 N tiles, the last pair's second past N
    CHECK(rnnjit::can_implement(Config::pair(pair, pair), s, dev, &why));
    const rnnjit::Geometry i2h = rnnjit::geometry(pair, Stage::I2h, s), h2o = rnnjit::geometry(pair, Stage::H2o, s);
    CHECK((i2h.grid_x == 3 * 56 && i2h.cluster_ctas == 2 && i2h.tma_box_a == 128 && i2h.tma_box_w == 128));
    CHECK((h2o.grid_x == 3 * 44 && h2o.cluster_ctas == 2));
    // Half of A's L2 reads: cheaper than the same tile unpaired where both are one wave.
    const rnnjit::WgmmaTile lone{256, 128, 2, 4, 1};
    const Shape large{256, 16384, 16384, 8192};
    CHECK(std::get<rnnjit::WgmmaTile>(pair).estimate(large, Stage::I2h, dev) < lone.estimate(large, Stage::I2h, dev));
    for (const auto& [tile, shape_of_it, reason] :
         {std::tuple{Tile{rnnjit::WgmmaTile{256, 128, 2, 4, 2, 0, 1, 2}}, s, "no K split"},
          std::tuple{Tile{rnnjit::WgmmaTile{128, 128, 2, 4, 1, 1, 1, 2}}, Shape{70, 37, 45, 21}, "no packed twin"},
          std::tuple{Tile{rnnjit::WgmmaTile{128, 128, 2, 4, 1, 0, 1, 2}}, Shape{70, 37, 45, 21}, "in place by TMA"},
          std::tuple{Tile{rnnjit::WgmmaTile{128, 128, 2, 4, 1, 0, 1, 2}}, Shape{755, 1108, 7156, 5420, rnnjit::Precision::FP32},
                     "A's rows on the M side"},
          std::tuple{Tile{rnnjit::WgmmaTile{256, 128, 2, 4, 1, 0, 1, 3}}, s, "mcast is 1 or 2"}}) {
      INFO(rnnjit::tile_name(tile));
      CHECK_FALSE(rnnjit::can_implement(Config::pair(tile, tile), shape_of_it, dev, &why));
      CHECK_THAT(why, Catch::Contains(reason));
    }
  }
  SECTION("wgmma with a 16-row batch tile: W's rows on the M side, whole m64 blocks of them") {
    const Tile narrow = rnnjit::WgmmaTile{16, 64, 1, 22, 2};
    CHECK(rnnjit::can_implement(Config::pair(narrow, narrow), shape, dev, &why));
    CHECK(rnnjit::geometry(narrow, Stage::I2h, shape).smem == 22 * (16 + 64) * 128 + 22 * 16 + 1024);
    const Tile split_rows = rnnjit::WgmmaTile{16, 64, 2, 8, 1};  // 32 W rows a warpgroup
    CHECK_FALSE(rnnjit::can_implement(Config::pair(split_rows, split_rows), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("whole m64 blocks"));
    const Tile n32 = rnnjit::WgmmaTile{32, 64, 1, 8, 1};  // no wgmma n32 in the kernel
    CHECK_FALSE(rnnjit::can_implement(Config::pair(n32, n32), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("must be 16"));
    // fp32's slots add A's cross copy (16 rows of 128 bytes): 22 of them no longer fit, 18 do.
    Shape s32 = shape;
    s32.precision = rnnjit::Precision::FP32;
    CHECK_FALSE(rnnjit::can_implement(Config::pair(narrow, narrow), s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("B of shared memory"));
    const Tile narrow18 = rnnjit::WgmmaTile{16, 64, 1, 18, 2};
    CHECK(rnnjit::can_implement(Config::pair(narrow18, narrow18), s32, dev, &why));
    CHECK(rnnjit::geometry(narrow18, Stage::I2h, s32).smem == 18 * (16 + 64 + 16) * 128 + 18 * 16 + 1024);
    CHECK_FALSE(rnnjit::can_implement(Config::pair(n32, n32), s32, dev, &why));
    CHECK_THAT(why, Catch::Contains("BM must be 16, 64 or 128"));
  }
  SECTION("clusters need Hopper, at most 16 CTAs and resident clusters") {
    const auto fused = Config::whole(rnnjit::FusedTile{128, 8, 8});
    CHECK(rnnjit::can_implement(fused, shape, dev, &why));
    auto ada = dev;
    ada.cc_major = 8;
    ada.cc_minor = 9;
    CHECK_FALSE(rnnjit::can_implement(fused, shape, ada, &why));
    CHECK_THAT(why, Catch::Contains("9.0"));
    CHECK_FALSE(rnnjit::can_implement(Config::whole(rnnjit::FusedTile{128, 32, 8}), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("at most 16 CTAs"));
    // 256 rows over 16 clusters of 16: more CTAs than SMs.
    CHECK_FALSE(rnnjit::can_implement(Config::whole(rnnjit::FusedTile{256, 16, 8}), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("SMs"));
    // b1-4k: 256 rows of 8 KiB a cluster do not fit registers.
    CHECK_FALSE(rnnjit::can_implement(fused, {1, 4096, 4096, 4096}, dev, &why));
    CHECK_THAT(why, Catch::Contains("registers"));
  }
  SECTION("gridmma: batch ≤ 16, its chunks' registers, its shared memory, Ampere or newer") {
    const Tile two = rnnjit::GridMmaTile{128, 16, 2, 2, 1}, eight = rnnjit::GridMmaTile{128, 8, 2, 2, 1};
    CHECK(rnnjit::can_implement(Config::whole(two), {8, 4096, 4096, 4096}, dev, &why));
    // Batch 9 to 16 takes two n8 tiles: A's and the sums' registers double.
    CHECK_FALSE(rnnjit::can_implement(Config::whole(two), {9, 4096, 4096, 4096}, dev, &why));
    CHECK_THAT(why, Catch::Contains("registers"));
    CHECK(rnnjit::can_implement(Config::whole(eight), {16, 4096, 4096, 4096}, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(Config::whole(eight), {17, 4096, 4096, 4096}, dev, &why));
    CHECK_THAT(why, Catch::Contains("batch ≤ 16"));
    // One staged chunk: 16 warps × 16 float4s a lane × 32 lanes, then the partial sums.
    CHECK(rnnjit::geometry(two, Stage::Step, shape).smem == 16 * 16 * 32 * 16 + 16 * 2 * 1 * 128 * 4);
    CHECK_FALSE(rnnjit::can_implement(Config::whole(rnnjit::GridMmaTile{133, 16, 2, 2, 1}), shape, dev, &why));
    CHECK_THAT(why, Catch::Contains("SMs"));
    auto old = dev;
    old.cc_major = 7;
    CHECK_FALSE(rnnjit::can_implement(Config::whole(two), shape, old, &why));
    CHECK_THAT(why, Catch::Contains("8.0"));
  }
  SECTION("gemv beyond batch 16") {
    CHECK_FALSE(rnnjit::can_implement(Config::pair(rnnjit::GemvTile{1, 4, 4}, ok), {17, 8, 8, 8}, dev, &why));
    CHECK_THAT(why, Catch::Contains("at most 16 rows"));
  }
  SECTION("a sequence's recurrence: clusters from sm_90, chunks of sequences only") {
    Shape seq{8, 1024, 256, 128};
    seq.steps = 16;
    const Tile cluster = rnnjit::RecurTile{16, 8, 8, 2, 2, 64, 1, 200}, grid = rnnjit::RecurTile{64, 8, 8, 4, 2, 32, 0, 200};
    CHECK(rnnjit::can_implement(Config::sequence(ok, cluster, ok), seq, dev, &why));
    auto ampere = dev;
    ampere.cc_major = 8;
    CHECK_FALSE(rnnjit::can_implement(Config::sequence(ok, cluster, ok), seq, ampere, &why));
    CHECK_THAT(why, Catch::Contains("recur tile") && Catch::Contains("clusters"));
    CHECK(rnnjit::can_implement(Config::sequence(ok, grid, ok), seq, ampere, &why));
    CHECK_FALSE(rnnjit::can_implement(Config::sequence(ok, grid, ok), shape, dev, &why));
    CHECK_FALSE(rnnjit::can_implement(Config::sequence(ok, rnnjit::RecurTile{16, 8, 8, 4, 4, 64, 1, 200}, ok), seq, dev, &why));
    CHECK_THAT(why, Catch::Contains("rows×batch ≤ lanes"));
    // h_t staged 32 batch rows at a time at H = 4096: 512 KiB.
    Shape wide = seq;
    wide.b = 64;
    wide.h = 4096;
    CHECK_FALSE(rnnjit::can_implement(Config::sequence(ok, grid, ok), wide, dev, &why));
    CHECK_THAT(why, Catch::Contains("shared memory"));
    // TMA cannot read x's rows of 1023 floats: tf32 copies them where they lie (cp.async), fp32
    // packs A, and a packed W copies whole rows, not W1's first I columns.
    Shape odd = seq;
    odd.i = 1023;
    const Tile wgmma = rnnjit::WgmmaTile{128, 128, 2, 4, 1};
    CHECK(rnnjit::rejects(wgmma, Stage::XProj, odd, dev).empty());
    odd.precision = rnnjit::Precision::FP32;
    CHECK_FALSE(rnnjit::can_implement(Config::sequence(wgmma, grid, ok), odd, dev, &why));
    CHECK_THAT(why, Catch::Contains("xproj tile") && Catch::Contains("whole rows"));
  }
}

// Whether a prebuilt binary's bytes hold a kernel's name (its cubins' symbol tables do): the jit
// hands a prebuilt binary's names over as the source lists them, so only its image can tell.
namespace {
bool holds_name(const rnnjit::Binary& bin, const std::string& name) {
  return std::search(bin.image.begin(), bin.image.end(), name.begin(), name.end()) != bin.image.end();
}
}  // namespace

TEST_CASE("the generic family and the fill are prebuilt: the jit hands out nvcc's fatbin, compiling nothing", "[families]") {
  const Shape s{3, 999, 257, 5};
  const Tile t = rnnjit::GenericTile{};
  rnnjit::cache::Store store{"off"};
  rnnjit::Jit jit(store);
  for (const auto& device : {rnnjit::device_table::a100_80gb(), rnnjit::device_table::rtx_4090(), rnnjit::device_table::h100_sxm()})
    for (Stage stage : {Stage::I2h, Stage::H2o}) {
      const rnnjit::KernelSource src = rnnjit::specialize(t, stage, s, device.arch);
      REQUIRE(src.prebuilt.size() > 1000);
      const rnnjit::Binary bin = jit.get(src);
      // A fatbin: its header's magic number, 0xBA55ED50, little-endian.
      REQUIRE(bin.image.size() == src.prebuilt.size());
      CHECK(bin.image[0] == 0x50);
      CHECK(bin.image[1] == 0xED);
      CHECK(bin.image[2] == 0x55);
      CHECK(bin.image[3] == 0xBA);
      CHECK(bin.lowered_names == std::vector<std::string>{"rnnjit_generic_stage"});
      CHECK(holds_name(bin, "rnnjit_generic_stage"));
    }
  // The tuner's scratch fill too: a fill per storage type.
  const rnnjit::Binary fill = jit.get(rnnjit::fill_source("sm_89"));
  CHECK(fill.image.size() > 1000);
  CHECK(fill.lowered_names == std::vector<std::string>{"rnnjit_fill_uniform_f32", "rnnjit_fill_uniform_bf16"});
  CHECK(holds_name(fill, "rnnjit_fill_uniform_f32"));
  CHECK(holds_name(fill, "rnnjit_fill_uniform_bf16"));
  CHECK(jit.compiles() == 0);
  CHECK(jit.cache_hits() == 0);
  // No other template is prebuilt: the families NVRTC specializes stay specialized.
  for_each_pool_tile([&](const Tile& tile) {
    if (!std::holds_alternative<rnnjit::GenericTile>(tile))
      CHECK(rnnjit::specialize(tile, stages_of(tile)[0], s, "sm_90a").prebuilt.empty());
  });
  // The tuner never proposes it: it runs while the candidates are timed, it is not one of them.
  rnnjit::Tuner tuner(rnnjit::device_table::h100_sxm(), jit, store);
  for (const Shape& p : {Shape{8, 1024, 256, 128}, Shape{3, 999, 257, 5}, Shape{256, 4096, 4096, 1024}})
    for (const Config& c : tuner.propose(p))
      for (const auto& op : c.ops) CHECK_FALSE(std::holds_alternative<rnnjit::GenericTile>(op.tile));
}

TEST_CASE("every family compiles for sm_80 where it claims to", "[families][nvrtc]") {
  compile_all_for(rnnjit::device_table::a100_80gb());
}
TEST_CASE("every family compiles for sm_89 where it claims to", "[families][nvrtc]") {
  compile_all_for(rnnjit::device_table::rtx_4090());
}
TEST_CASE("every family compiles for sm_90a where it claims to", "[families][nvrtc]") {
  compile_all_for(rnnjit::device_table::h100_sxm());
}

// The tuner's proposals for every GPU of the device table (A100, A10, L4, RTX 4090 and 3090, H100,
// H200), at the anchors and at odd shapes, compile for that GPU's arch with no register spills that
// ptxas reports: a spill would put local-memory traffic into the inner loops on cards no test runs.
TEST_CASE("every described GPU's proposals compile for its arch without spills", "[families][nvrtc]") {
  // Steps in both precisions of f32 storage and in bf16 storage (2·3044·8156·5180: bf16 rows of
  // 8-byte units, gemv and stream with their 16-byte loads compiled out); then sequences in chunks
  // of 64 and 2 steps, f32 and bf16: kb-seq, mid-seq, large-seq, odd sizes, and x's rows whole
  // 16-byte units where W1's are not (A by TMA, W copied). 2945·1·39·3383: h2o on tiles three to
  // a SM (WgmmaTile::kShortK), its rows copied 4 bytes at a time.
  const Shape shapes[] = {{8, 1024, 256, 128},     {1, 4096, 4096, 4096},   {64, 2048, 2048, 1024},
                          {256, 16384, 16384, 8192}, {257, 17, 4097, 33},     {31, 5290, 58, 826},
                          {2945, 1, 39, 3383},
                          {3, 999, 17, 5},         {4097, 5, 7, 3},         {2, 3044, 8156, 5180},
                          {8, 1024, 256, 128, {}, {}, 64}, {64, 1024, 1024, 512, {}, {}, 64},
                          {1, 4096, 4096, 4096, {}, {}, 64}, {3, 999, 257, 5, {}, {}, 2},
                          {1, 64, 301, 7, {}, {}, 2},      {1, 64, 300, 7, {}, {}, 2}};
  std::map<std::string, rnnjit::KernelSource> sources;  // by key: GPUs of one arch share most programs
  for (const auto& known : rnnjit::device_table::all()) {
    rnnjit::cache::Store store{"off"};
    rnnjit::Jit jit{store};
    rnnjit::Tuner tuner{known.info, jit, store};
    using rnnjit::DType;
    using rnnjit::Precision;
    const std::pair<Precision, DType> kinds[] = {
        {Precision::TF32, DType::F32}, {Precision::FP32, DType::F32}, {Precision::BF16, DType::BF16}};
    for (Shape s : shapes)
      for (auto [precision, dtype] : kinds) {
        s.precision = precision;
        s.dtype = dtype;
        for (const Config& c : tuner.propose(s))
          for (rnnjit::KernelSource src : rnnjit::sources_of(c, s, known.info.arch)) {
            src.options.push_back("--ptxas-options=-v");
            src.label = std::string(known.id) + " " + src.label;
            sources.emplace(src.key(), std::move(src));
          }
      }
  }
  // "N bytes spill stores, M bytes spill loads", one line a kernel.
  const std::regex spill_line(R"((\d+) bytes spill stores, (\d+) bytes spill loads)");
  // Compiled by one thread a core (NVRTC is thread-safe); Catch's assertions stay on this thread.
  std::vector<const rnnjit::KernelSource*> todo;
  for (const auto& entry : sources) todo.push_back(&entry.second);
  std::vector<std::string> logs(todo.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::future<void>> workers;
  for (unsigned w = 0; w < std::max(1u, std::thread::hardware_concurrency()); ++w)
    workers.push_back(std::async(std::launch::async, [&] {
      for (std::size_t i; (i = next++) < todo.size();) logs[i] = todo[i]->label + "\n" + rnnjit::compile(*todo[i]).log;
    }));
  for (auto& w : workers) w.get();
  int reports = 0;
  for (const std::string& log : logs) {
    INFO(log);
    for (auto it = std::sregex_iterator(log.begin(), log.end(), spill_line); it != std::sregex_iterator(); ++it) {
      ++reports;
      CHECK((*it)[1] == "0");
      CHECK((*it)[2] == "0");
    }
  }
  CHECK(sources.size() > 50);
  CHECK(reports >= static_cast<int>(sources.size()));  // ptxas reported on every program
}
