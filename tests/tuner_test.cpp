// The tuner's side that needs no GPU: config names, the heuristic's proposals per regime and per
// GPU, and the fallback for pointers TMA cannot take.
#include <catch2/catch.hpp>

#include <algorithm>

#include "device_table.hpp"
#include "tuner.hpp"

namespace {

using rnnjit::Config;
using rnnjit::Shape;
using rnnjit::Stage;

template <class F>
bool first_op_is(const Config& c) {
  return std::holds_alternative<F>(c.ops.front().tile);
}

// A tuner over a memory-only cache, as the engine makes one.
struct Fixture {
  rnnjit::DeviceInfo device;
  rnnjit::cache::Store store{"off"};
  rnnjit::Jit jit{store};
  rnnjit::Tuner tuner{device, jit, store};
  explicit Fixture(rnnjit::DeviceInfo d) : device(std::move(d)) {}
};

}  // namespace

TEST_CASE("a config's name parses back to the same config", "[tuner]") {
  using rnnjit::GemvTile, rnnjit::TcTile, rnnjit::WgmmaTile;
  for (const Config& c : {Config::pair(TcTile{64, 128, 32, 2, 2, 4}, TcTile{32, 32, 64, 2, 2, 4}),
                          Config::pair(GemvTile{2, 4, 4}, TcTile{32, 32, 64, 2, 2, 4}),
                          Config::pair(GemvTile{1, 8, 2}, GemvTile{4, 4, 2}),
                          Config::pair(WgmmaTile{256, 128, 2, 4, 1}, WgmmaTile{64, 64, 1, 8, 8}),
                          Config::pair(WgmmaTile{64, 64, 1, 8, 2, 1}, WgmmaTile{16, 64, 1, 22, 8, 1}),
                          Config::whole(rnnjit::FusedTile{128, 8, 8}), Config::whole(rnnjit::GridTile{128, 8}),
                          Config::whole(rnnjit::StreamTile{128, 16, 2, 4, 8}),
                          Config::whole(rnnjit::GridMmaTile{128, 16, 2, 2, 1}),
                          Config::sequence(WgmmaTile{128, 128, 2, 4, 1}, rnnjit::RecurTile{16, 8, 8, 2, 2, 64, 1, 200},
                                           TcTile{64, 64, 32, 2, 2, 4})}) {
    const auto back = Config::parse(c.name());
    REQUIRE(back);
    CHECK(*back == c);
  }
  CHECK(Config::pair(TcTile{64, 128, 32, 2, 2, 4}, GemvTile{2, 4, 4}).name() == "i2h_tc64x128x32w2x2s4.h2o_gemv_r2w4u4");
  CHECK(Config::whole(rnnjit::FusedTile{128, 8, 8}).name() == "fused_c128k8w8");
  CHECK(Config::whole(rnnjit::StreamTile{128, 16, 2, 4, 8}).name() == "stream_c128w16r2u4p8");
  CHECK(Config::pair(WgmmaTile{256, 128, 2, 4, 1}, WgmmaTile{64, 64, 1, 8, 8}).name() ==
        "i2h_wgmma256x128g2s4k1.h2o_wgmma64x64g1s8k8");
  CHECK(Config::pair(WgmmaTile{64, 64, 1, 8, 2, 1}, WgmmaTile{64, 64, 1, 8, 8}).name() ==
        "i2h_wgmma64x64g1s8k2p.h2o_wgmma64x64g1s8k8");
  CHECK_FALSE(Config::parse("i2h_wgmma64x64g1s8k2q.h2o_wgmma64x64g1s8k8"));
  CHECK_FALSE(Config::parse("i2h_wgmma64x64g1s8k2pp.h2o_wgmma64x64g1s8k8"));
  CHECK(Config::sequence(TcTile{64, 64, 32, 2, 2, 4}, rnnjit::RecurTile{128, 8, 32, 4, 1, 16, 0, 200},
                         TcTile{64, 64, 32, 2, 2, 4})
            .name() == "xproj_tc64x64x32w2x2s4.recur_rec_c128w8k32t4x1b16l0s200.h2o_tc64x64x32w2x2s4");
}

// A sequence shape gets xproj, recur and h2o configs and nothing else, a step shape never those;
// the chunk size is part of the cache key.
TEST_CASE("sequences in chunks get their own proposals, configs and cache keys", "[tuner]") {
  Fixture f(rnnjit::device_table::h100_sxm());
  Shape step{8, 1024, 256, 128};
  Shape seq = step;
  seq.steps = 64;
  for (const Config& c : f.tuner.propose(seq)) {
    CHECK(c.is_sequence());
    CHECK(rnnjit::can_implement(c, seq, f.device, nullptr));
    std::string why;
    CHECK_FALSE(rnnjit::can_implement(c, step, f.device, &why));
    CHECK_THAT(why, Catch::Contains("sequences only"));
  }
  CHECK(f.tuner.propose(seq).size() >= 3);
  // Small H on Hopper: a cluster keeps W_hh and h_t on chip, and the estimate ranks it first.
  const auto first = Config::parse(f.tuner.propose(seq).at(0).name());
  REQUIRE(first);
  CHECK(std::get<rnnjit::RecurTile>(first->ops[1].tile).cluster == 1);
  for (const Config& c : f.tuner.propose(step)) CHECK_FALSE(c.is_sequence());
  // At kb-seq's 256 steps, the 4×2 cluster tile whose rows of W_hh sit in registers is timed.
  Shape kb_seq = seq;
  kb_seq.steps = 256;
  std::vector<std::string> names;
  for (const Config& c : f.tuner.propose(kb_seq)) names.push_back(c.name());
  INFO(Catch::Detail::stringify(names));
  CHECK(std::ranges::any_of(names, [](const std::string& n) { return n.find("recur_rec_c16w8k16t4x2b64l1s200") != std::string::npos; }));
  // Powers of two up to the length; past 64 steps while C·B·H stays within 2^22 elements.
  CHECK(rnnjit::sequence_chunk(1, 8, 256) == 1);
  CHECK(rnnjit::sequence_chunk(3, 8, 256) == 2);
  CHECK(rnnjit::sequence_chunk(64, 8, 256) == 64);
  CHECK(rnnjit::sequence_chunk(256, 8, 256) == 256);  // kb-seq: one chunk
  CHECK(rnnjit::sequence_chunk(1000, 8, 256) == 512);
  CHECK(rnnjit::sequence_chunk(100000, 8, 256) == rnnjit::kMaxChunk);
  CHECK(rnnjit::sequence_chunk(100000, 64, 1024) == 64);  // mid-seq: 2^22 elements at 64 steps
  CHECK(rnnjit::sequence_chunk(100000, 64, 4096) == 64);  // never below 64 for the size
  CHECK(rnnjit::sequence_chunk(100000, 1, 4096) == 1024);
  CHECK(rnnjit::sequence_chunk(100000, 3, 4097) == 256);  // 256·3·4097 ≤ 2^22 < 512·3·4097
  CHECK(rnnjit::gemm_of(Stage::XProj, seq).m == 512);
  CHECK(rnnjit::gemm_of(Stage::XProj, seq).ldw == 1280);
  CHECK(rnnjit::gemm_of(Stage::H2o, seq).m == 512);
  CHECK(rnnjit::gemm_of(Stage::H2o, step).m == 8);
}

TEST_CASE("config parsing rejects other text", "[tuner]") {
  for (const char* bad : {"", "i2h_", "i2h_mma64x128x32w2x4s3", "i2h_mma64x128x32w2x4s3.h2o_mma16x32x32w1x2s4x",
                          "i2h_wgmma64x128x32w2x4s3.h2o_mma16x32x32w1x2s4",
                          "i2h_mma064x128x32w2x4s3.h2o_mma16x32x32w1x2s4", "i2h_gemv_r2w4.h2o_gemv_r2w4u4",
                          "x2h_gemv_r2w4u4.h2o_gemv_r2w4u4", "i2h_fused_c128k8w8.h2o_fused_c128k8w8", "fused_c128k8",
                          "fused_c128k8w8.h2o_gemv_r2w4u4", "fused_c16w8u2", "i2h_grid_c128w8.h2o_gemv_r2w4u4",
                          "grid_c128w8.h2o_grid_c128w8", "grid_c128w8u4", "stream_c128w16r2u4",
                          "i2h_stream_c128w16r2u4p8.h2o_gemv_r2w4u4", "gridmma_c128w16b2u2", "gridmma_c128w16r2u2p1",
                          "i2h_gridmma_c128w16b2u2p1.h2o_gridmma_c128w16b2u2p1", "i2h_wgmma256x128g2s4.h2o_wgmma64x64g1s8k8",
                          "i2h_wgmma256x128g2s4k1x.h2o_wgmma64x64g1s8k8", "h2o_gemv_r2w4u4.i2h_gemv_r2w4u4",
                          "i2h_gemv_r2w4u4.h2o_gemv_r2w4u4.", "i2h_gemv_r2w4u4.h2o_gemv_r2w4u4.h2o_gemv_r2w4u4",
                          "mma64x128x32w2x4s3", "step_fused_c128k8w8",
                          "xproj_tc64x64x32w2x2s4.h2o_tc64x64x32w2x2s4", "recur_rec_c128w8k32t4x1b16l0s0",
                          "xproj_tc64x64x32w2x2s4.recur_tc64x64x32w2x2s4.h2o_tc64x64x32w2x2s4",
                          "recur_rec_c128w8k32t4x1b16l0s0.xproj_tc64x64x32w2x2s4.h2o_tc64x64x32w2x2s4"})
    CHECK_FALSE(Config::parse(bad));
}

TEST_CASE("the heuristic proposes 3-4 implementable configs, deterministically", "[tuner]") {
  Fixture f(rnnjit::device_table::h100_sxm());
  const auto& dev = f.device;
  auto& tuner = f.tuner;
  const Shape shapes[] = {{8, 1024, 256, 128},       {1, 4096, 4096, 4096}, {64, 2048, 2048, 1024},
                                  {256, 16384, 16384, 8192}, {3, 999, 17, 1},       {4097, 5, 7, 3}};
  for (const auto& s : shapes) {
    for (auto precision : {rnnjit::Precision::TF32, rnnjit::Precision::FP32}) {
      auto shape = s;
      shape.precision = precision;
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

TEST_CASE("small batches get weight-streaming first, large problems large tensor-core tiles", "[tuner]") {
  Fixture f(rnnjit::device_table::h100_sxm());
  auto& tuner = f.tuner;
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
  CHECK(first_op_is<rnnjit::GemvTile>(gemv[2]));
  CHECK(first_op_is<rnnjit::WgmmaTile>(gemv[3]));  // TMA streaming, the best at batch 16
  // Few outputs in both stages above batch 16: the gemvt pair first, then the GEMM tiles.
  for (const Shape few : {Shape{211, 3978, 1, 1}, Shape{300, 37, 32, 5}}) {
    const auto c = tuner.propose(few);
    REQUIRE(!c.empty());
    CHECK(first_op_is<rnnjit::GemvtTile>(c[0]));
    CHECK(c.size() >= 3);
  }
  CHECK_FALSE(first_op_is<rnnjit::GemvtTile>(tuner.propose({211, 3978, 33, 1}).at(0)));
  // The first wgmma pair's packed twin follows it, behind the gemvt pair too (rows of x and h
  // are 4-byte units here: the pair copies them 4 bytes at a time, the twin packs them).
  const auto gemvt_twin = tuner.propose({211, 3978, 1, 5});
  REQUIRE(gemvt_twin.size() >= 3);
  CHECK(first_op_is<rnnjit::GemvtTile>(gemvt_twin[0]));
  for (const rnnjit::Op& op : gemvt_twin[1].ops) {
    rnnjit::WgmmaTile packed = std::get<rnnjit::WgmmaTile>(op.tile);
    packed.pack = 1;
    CHECK(std::ranges::any_of(gemvt_twin[2].ops, [&](const rnnjit::Op& o) { return o.stage == op.stage && o.tile == rnnjit::Tile(packed); }));
  }
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
    const auto fp32 = tuner.propose({b, 4096, 4096, 4096, rnnjit::Precision::FP32});
    REQUIRE(fp32.size() == 4);
    CHECK(fp32[3].name() == "i2h_wgmma16x64g1s18k2.h2o_wgmma16x64g1s18k2");
  }
  // Below batch 4 the FFMA stream keeps both one-launch slots.
  const auto b3 = tuner.propose({3, 4096, 4096, 4096});
  REQUIRE(b3.size() == 4);
  CHECK(first_op_is<rnnjit::StreamTile>(b3[0]));
  CHECK(first_op_is<rnnjit::StreamTile>(b3[1]));
  const auto b17 = tuner.propose({17, 4096, 4096, 4096});
  REQUIRE(b17.size() == 4);
  CHECK(first_op_is<rnnjit::WgmmaTile>(b17[0]));
  CHECK(first_op_is<rnnjit::TcTile>(b17[3]));
  // kb-large: the whole batch in one M tile, 128 CTAs a stage (h2o's 64 N tiles split K in two);
  // first the same rows with A multicast to pairs of N tiles, half of A's reads through L2.
  const auto large = tuner.propose({256, 16384, 16384, 8192});
  REQUIRE(large.size() >= 2);
  CHECK(large[0].name() == "i2h_wgmma256x128g2s4k1m2.h2o_wgmma128x128g2s6k1m2");
  CHECK(large[1].name() == "i2h_wgmma256x128g2s4k1.h2o_wgmma256x128g2s4k2");
  // mid: n64 tiles, K split so that ~100 CTAs stream the weights in one wave of clusters.
  CHECK(tuner.propose({64, 2048, 2048, 1024}).front().name() == "i2h_wgmma64x64g1s8k3.h2o_wgmma64x64g1s8k6");
  // fp32 puts W's rows on the wgmma M side (n = BM ≤ 128) and A's cross copy in every ring slot.
  const Shape large32{256, 16384, 16384, 8192, rnnjit::Precision::FP32};
  for (const auto& c : tuner.propose(large32))
    if (const auto* w = std::get_if<rnnjit::WgmmaTile>(&c.ops.front().tile)) {
      CHECK(w->bm <= 128);
      CHECK(rnnjit::geometry(*w, rnnjit::Stage::I2h, large32).smem <= 232448);
    }
  // Rows of x not in multiples of 16 bytes: i2h's wgmma copies x, h and W1 where they lie by 4-byte
  // cp.async; h2o (rows of h' in whole 16-byte units) reads its operands through TMA. fp32 packs A
  // for its cross copy (rows of 2047 + 2048 floats padded to 4096), still copying W1's own rows.
  const Shape odd{64, 2047, 2048, 1024};
  const auto odd_configs = tuner.propose(odd);
  REQUIRE(first_op_is<rnnjit::WgmmaTile>(odd_configs.front()));
  const rnnjit::Geometry i2h = rnnjit::geometry(odd_configs.front().ops[0].tile, rnnjit::Stage::I2h, odd),
                         h2o = rnnjit::geometry(odd_configs.front().ops[1].tile, rnnjit::Stage::H2o, odd);
  CHECK((i2h.pack_k == 0 && i2h.a_copy == 4 && i2h.w_copy == 4));
  CHECK((h2o.pack_k == 0 && h2o.a_copy == 0 && h2o.w_copy == 0));
  Shape odd32 = odd;
  odd32.precision = rnnjit::Precision::FP32;
  const rnnjit::Geometry i2h32 = rnnjit::geometry(odd_configs.front().ops[0].tile, rnnjit::Stage::I2h, odd32);
  CHECK((i2h32.pack_k == 2048 + 2048 && i2h32.a_copy == 0 && i2h32.w_copy == 4));
  // tf32 packs A too where copying it for every N tile would take over 32 MiB: 600·(17+2049)·4 bytes
  // over 17 N tiles is 84 MB; h2o's 600·2049·4 bytes in one N tile is copied.
  const Shape big{600, 17, 2049, 20};
  const rnnjit::Geometry big_i2h = rnnjit::geometry(rnnjit::WgmmaTile{64, 64, 1, 8, 2}, rnnjit::Stage::I2h, big),
                         big_h2o = rnnjit::geometry(rnnjit::WgmmaTile{64, 64, 1, 8, 2}, rnnjit::Stage::H2o, big);
  CHECK((big_i2h.pack_k == 2068 && big_i2h.a_copy == 0 && big_i2h.w_copy == 8));
  CHECK((big_h2o.pack_k == 0 && big_h2o.a_copy == 4 && big_h2o.w_copy == 4));
  const Shape odd_h{64, 2047, 2045, 1024};
  for (const auto& c : tuner.propose(odd_h)) CHECK(!c.needs_aligned_pointers(odd_h));
  // Where the first pair copies rows 4 bytes at a time, its packed twin comes second: A packed
  // (and W where its rows are 4-byte units too), nothing copied by 4 bytes. B=204 I=14 H=1807 O=9:
  // x's rows are 8-byte units, h's, W1's and h''s 4-byte.
  const Shape thin{204, 14, 1807, 9};
  const auto thin_configs = tuner.propose(thin);
  REQUIRE(thin_configs.size() == 4);
  const auto* first = std::get_if<rnnjit::WgmmaTile>(&thin_configs[0].ops[0].tile);
  const auto* twin = std::get_if<rnnjit::WgmmaTile>(&thin_configs[1].ops[0].tile);
  REQUIRE((first && twin));
  CHECK((first->pack == 0 && twin->pack == 1));
  // The twin is the first pair with pack set, on both stages (h''s rows are 4-byte units too).
  REQUIRE(thin_configs[1].ops.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto* plain = std::get_if<rnnjit::WgmmaTile>(&thin_configs[0].ops[i].tile);
    const auto* twin_op = std::get_if<rnnjit::WgmmaTile>(&thin_configs[1].ops[i].tile);
    REQUIRE((plain && twin_op));
    rnnjit::WgmmaTile unpacked = *twin_op;
    CHECK(unpacked.pack == 1);
    unpacked.pack = 0;
    CHECK(unpacked == *plain);
  }
  CHECK(rnnjit::geometry(*first, rnnjit::Stage::I2h, thin).a_copy == 4);
  const rnnjit::Geometry twin_i2h = rnnjit::geometry(*twin, rnnjit::Stage::I2h, thin);
  CHECK((twin_i2h.pack_k == 1824 && twin_i2h.a_copy == 0 && twin_i2h.w_copy == 0));
  CHECK_FALSE(thin_configs[1].needs_aligned_pointers(thin));
  // bf16 keeps three wgmma pairs and a tc pair, no twin.
  Shape thin16 = thin;
  thin16.dtype = rnnjit::DType::BF16;
  thin16.precision = rnnjit::Precision::BF16;
  const auto thin16_configs = tuner.propose(thin16);
  REQUIRE(thin16_configs.size() == 4);
  for (std::size_t i = 0; i < 3; ++i)
    for (const auto& op : thin16_configs[i].ops) {
      const auto* w = std::get_if<rnnjit::WgmmaTile>(&op.tile);
      REQUIRE(w);
      CHECK(w->pack == 0);
    }
  CHECK(first_op_is<rnnjit::TcTile>(thin16_configs[3]));
  // Stages bound by their stores of C (tf32 or bf16, K in two ring slices, ≥ 2^22 outputs): the
  // first wgmma pair with them on kShortK (three 64x64 CTAs a SM) takes the last wgmma pair's slot.
  const std::string short_h2o = ".h2o_" + rnnjit::WgmmaTile::kShortK.name();
  CHECK(short_h2o == ".h2o_wgmma64x64g1s2k1o3");
  // f32: after the packed twin at 2945; at 1952 after a multicast pair (h2o's rows are whole 16-byte
  // units) and the first pair without it.
  for (auto [shape, at] : {std::pair{Shape{2945, 1, 39, 3383}, std::size_t(2)}, std::pair{Shape{1952, 8, 52, 7920}, std::size_t(2)}}) {
    for (const rnnjit::DType dtype : {rnnjit::DType::F32, rnnjit::DType::BF16}) {
      shape.dtype = dtype;
      shape.precision = dtype == rnnjit::DType::BF16 ? rnnjit::Precision::BF16 : rnnjit::Precision::TF32;
      const auto c = tuner.propose(shape);
      std::string names;
      for (const auto& x : c) names += " " + x.name();
      INFO(shape.b << "," << shape.h << " " << rnnjit::dtype_name(dtype) << ":" << names);
      REQUIRE(c.size() == 4);
      // bf16 has no twin: the short-K pair comes second.
      const std::size_t i = dtype == rnnjit::DType::BF16 ? 1 : at;
      CHECK_THAT(c[i].name(), Catch::EndsWith(short_h2o));
      CHECK(c[i].ops[0] == c[0].ops[0]);  // i2h (K 40 and 60 f32: 3 and 2 slices, few outputs) as in the first pair
      CHECK(std::ranges::count_if(c, [](const Config& x) { return first_op_is<rnnjit::TcTile>(x); }) >= 1);
      // fp32 (W's rows on the M side): not proposed.
      Shape fp32 = shape;
      fp32.dtype = rnnjit::DType::F32;
      fp32.precision = rnnjit::Precision::FP32;
      for (const auto& x : tuner.propose(fp32)) CHECK_THAT(x.name(), !Catch::Contains("o3"));
    }
  }
  // Long K or few outputs: never.
  for (const Shape& other : {Shape{256, 16384, 16384, 8192}, Shape{64, 2048, 2048, 1024}, Shape{300, 1, 39, 3383}})
    for (const auto& x : tuner.propose(other)) CHECK_THAT(x.name(), !Catch::Contains("o3"));
  // A stage that copies nothing by 4 bytes has no twin: the same loads under another name.
  const std::string alike = "nothing here takes 4-byte copies: the tile without p reads it alike";
  for (const Shape& same : {Shape{64, 38, 46, 20}, Shape{64, 2048, 2048, 1024}}) {
    CHECK(rnnjit::WgmmaTile{64, 64, 1, 8, 2, 1}.rejects(same, rnnjit::Stage::I2h, rnnjit::device_table::h100_sxm()) == alike);
    CHECK(rnnjit::WgmmaTile{64, 64, 1, 8, 2, 0}.rejects(same, rnnjit::Stage::I2h, rnnjit::device_table::h100_sxm()).empty());
  }
}

TEST_CASE("wgmma tiles are proposed on sm_90a only, and the fallback never needs TMA", "[tuner]") {
  Fixture ampere(rnnjit::device_table::a100_80gb());
  for (const auto& c : ampere.tuner.propose({256, 16384, 16384, 8192})) CHECK(first_op_is<rnnjit::TcTile>(c));
  Fixture hopper(rnnjit::device_table::h100_sxm());
  for (const Shape s : {Shape{256, 16384, 16384, 8192}, Shape{64, 2048, 2048, 1024}})
    CHECK(!hopper.tuner.fallback(s).needs_aligned_pointers(s));
  std::string why;
  const rnnjit::WgmmaTile big{256, 128, 2, 4, 1};
  CHECK(!rnnjit::can_implement(Config::pair(big, big), {256, 16384, 16384, 8192}, ampere.device, &why));
  CHECK(why.find("sm_90a") != std::string::npos);
}

TEST_CASE("every described GPU gets 3-4 implementable proposals for the anchors and odd shapes", "[tuner]") {
  const Shape shapes[] = {{8, 1024, 256, 128}, {1, 4096, 4096, 4096}, {64, 2048, 2048, 1024}, {256, 16384, 16384, 8192},
                          {257, 17, 4097, 33}, {31, 5290, 58, 826},   {3, 999, 17, 5},       {4097, 5, 7, 3},
                          {1, 1, 1, 1},        {16, 8191, 3, 8190},
                          // sequences in chunks: kb-seq, mid-seq, large-seq, odd sizes, a chunk of one step
                          {8, 1024, 256, 128, {}, {}, 64}, {64, 1024, 1024, 512, {}, {}, 64}, {1, 4096, 4096, 4096, {}, {}, 64},
                          {3, 999, 257, 5, {}, {}, 2},     {1, 1, 1, 1, {}, {}, 1}};
  for (const auto& known : rnnjit::device_table::all()) {
    Fixture f(known.info);
    for (Shape s : shapes)
      for (auto precision : {rnnjit::Precision::TF32, rnnjit::Precision::FP32}) {
        s.precision = precision;
        const auto configs = f.tuner.propose(s);
        INFO(known.id << " B=" << s.b << " I=" << s.i << " H=" << s.h << " O=" << s.o << " "
                      << rnnjit::precision_name(precision));
        CHECK(configs.size() >= 3);
        CHECK(configs.size() <= 4);
        for (const auto& c : configs) CHECK(rnnjit::can_implement(c, s, known.info, nullptr));
        CHECK_NOTHROW(f.tuner.fallback(s));
      }
  }
}

// bf16 storage: streaming and wgmma serve it, the rest of the families store f32 only; off Hopper
// above batch 16 only the prebuilt FFMA pair does (until tc stores bf16), so it is proposed there.
TEST_CASE("bf16 steps get implementable proposals of the families that store bf16, on every described GPU", "[tuner]") {
  const Shape shapes[] = {{8, 1024, 256, 128}, {1, 4096, 4096, 4096}, {64, 2048, 2048, 1024}, {256, 16384, 16384, 8192},
                          {257, 17, 4097, 33}, {31, 5290, 58, 826},   {3, 999, 17, 5},       {4097, 5, 7, 3},
                          {1, 1, 1, 1},        {16, 8191, 3, 8190}};
  for (const auto& known : rnnjit::device_table::all()) {
    Fixture f(known.info);
    const bool hopper = known.info.arch == "sm_90a";
    for (Shape s : shapes) {
      s.precision = rnnjit::Precision::BF16;
      s.dtype = rnnjit::DType::BF16;
      const auto configs = f.tuner.propose(s);
      INFO(known.id << " B=" << s.b << " I=" << s.i << " H=" << s.h << " O=" << s.o << " bf16");
      CHECK(configs.size() >= 3);
      CHECK(configs.size() <= 4);
      for (const auto& c : configs) {
        INFO(c.name());
        CHECK(rnnjit::can_implement(c, s, known.info, nullptr));
        for (const auto& op : c.ops)
          CHECK((std::holds_alternative<rnnjit::GemvTile>(op.tile) || std::holds_alternative<rnnjit::GemvtTile>(op.tile) ||
                 std::holds_alternative<rnnjit::StreamTile>(op.tile) || std::holds_alternative<rnnjit::WgmmaTile>(op.tile) ||
                 std::holds_alternative<rnnjit::TcTile>(op.tile)));
      }
      // Above batch 16, tensor cores: wgmma on Hopper, tc (bf16 m16n8k16) on every other arch;
      // after the gemvt pair where H and O are both few.
      if (s.b > 16) {
        const bool few = s.h <= rnnjit_k::kGemvtMaxN && s.o <= rnnjit_k::kGemvtMaxN;
        if (few) CHECK(first_op_is<rnnjit::GemvtTile>(configs.front()));
        const std::span<const Config> tensor(configs.begin() + (few ? 1 : 0), configs.end());
        if (hopper) CHECK(first_op_is<rnnjit::WgmmaTile>(tensor.front()));
        else CHECK(std::ranges::all_of(tensor, [](const Config& c) { return first_op_is<rnnjit::TcTile>(c); }));
      }
      // A first call tunes on the caller's pointers: one candidate takes those TMA cannot.
      CHECK(std::ranges::any_of(configs, [&](const Config& c) { return !c.needs_aligned_pointers(s); }));
      CHECK(!f.tuner.fallback(s).needs_aligned_pointers(s));
    }
  }
  std::string why;
  Shape bf16{256, 16384, 16384, 8192, rnnjit::Precision::BF16, rnnjit::DType::BF16};
  CHECK(!rnnjit::can_implement(Config::whole(rnnjit::GridMmaTile::pool()[0]), bf16, rnnjit::device_table::h100_sxm(), &why));
  CHECK(why.find("f32 only") != std::string::npos);
  // tc's slices are BK words: a 128-thread CTA copies slices of up to 128 bf16 columns (BK 64), not 256.
  const rnnjit::TcTile deep{64, 64, 128, 2, 2, 3};
  CHECK(rnnjit::can_implement(Config::pair(deep, deep), Shape{256, 4096, 4096, 1024}, rnnjit::device_table::h100_sxm(), nullptr));
  CHECK(!rnnjit::can_implement(Config::pair(deep, deep), bf16, rnnjit::device_table::h100_sxm(), &why));
  CHECK(why.find("multiple of a slice's 256 columns") != std::string::npos);
}
