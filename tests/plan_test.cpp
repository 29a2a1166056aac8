// A plan's side that needs no GPU: which sequences of launches a plan runs, the programs it loads
// for them (one an op, in launch order), and which launches need 16-byte aligned operands.
#include <catch2/catch.hpp>

#include "device_table.hpp"
#include "plan.hpp"

namespace {

using rnnjit::Config;
using rnnjit::Op;
using rnnjit::Stage;

const rnnjit::TcTile kTc{64, 64, 32, 2, 2, 4};
const rnnjit::WgmmaTile kWgmma{64, 64, 1, 8, 2};
const rnnjit::FusedTile kFused{128, 8, 8};

}  // namespace

TEST_CASE("a plan runs a whole-step launch alone, or an i2h then an h2o stage", "[plan]") {
  CHECK(rnnjit::valid_sequence(Config::whole(kFused).ops));
  CHECK(rnnjit::valid_sequence(Config::pair(kTc, kWgmma).ops));
  CHECK_FALSE(rnnjit::valid_sequence({}));
  CHECK_FALSE(rnnjit::valid_sequence({Op{Stage::H2o, kTc}, Op{Stage::I2h, kTc}}));
  CHECK_FALSE(rnnjit::valid_sequence({Op{Stage::I2h, kTc}}));
  CHECK_FALSE(rnnjit::valid_sequence({Op{Stage::Step, kTc}}));
  CHECK_FALSE(rnnjit::valid_sequence({Op{Stage::I2h, kFused}, Op{Stage::H2o, kFused}}));
  CHECK_FALSE(rnnjit::valid_sequence({Op{Stage::Step, kFused}, Op{Stage::Step, kFused}}));
}

TEST_CASE("a plan's programs are its ops', in launch order, each instantiating its stage", "[plan]") {
  const rnnjit::Shape s{64, 2048, 2048, 1024, rnnjit::Precision::FP32};
  const auto pair = rnnjit::sources_of(Config::pair(kTc, kWgmma), s, "sm_90a");
  REQUIRE(pair.size() == 2);
  CHECK(pair[0].file == "gemm_tc.cu");
  CHECK(pair[0].label == "i2h tc64x64x32w2x2s4");
  // i2h: C[B, H] over [x | h], W1's rows I + H long, tanh; fp32's MATH.
  CHECK(pair[0].name_expressions == std::vector<std::string>{"rnnjit_k::gemm_tc<0,64,2048,2048,2048,4096,64,64,32,2,2,4,1,1>"});
  CHECK(pair[1].file == "gemm_wgmma.cu");
  // h2o: C[B, O] over h', one segment, bias only, f32 storage (ST 0), A and W by TMA (A_COPY and
  // W_COPY 0), one CTA a SM (OCC 1); fp32 wgmma also writes A's cross copy first.
  CHECK(pair[1].name_expressions == std::vector<std::string>{"rnnjit_k::gemm_wgmma<0,64,1024,2048,0,2048,0,0,64,64,1,8,2,1,0,1,1>",
                                                             "rnnjit_k::split_cross<64,2048,0>"});
  // bf16 storage: ST 1 and bf16 products (MATH 0), no cross copy; K = 2047 is no whole number of
  // 16-byte units (8 bf16), nor of cp.async's 4 bytes, so the stage packs [h'] and W2 into rows of
  // 2048 first.
  const rnnjit::Shape b{64, 2048, 2047, 1024, rnnjit::Precision::BF16, rnnjit::DType::BF16};
  CHECK(rnnjit::sources_of(Config::pair(kWgmma, kWgmma), b, "sm_90a")[1].name_expressions ==
        std::vector<std::string>{"rnnjit_k::gemm_wgmma<1,64,1024,2048,0,2048,0,0,64,64,1,8,2,0,0,1,1>",
                                 "rnnjit_k::pack_rows<1,64,2047,0,2048>", "rnnjit_k::pack_rows<1,1024,2047,0,2048>"});
  // Rows of 2046 bf16 (4092 bytes) or 2047 floats (8188) go by 4-byte cp.async, 2046 floats (8184)
  // by 8-byte, where they lie: nothing packed.
  const rnnjit::Shape b2{64, 2048, 2046, 1024, rnnjit::Precision::BF16, rnnjit::DType::BF16};
  CHECK(rnnjit::sources_of(Config::pair(kWgmma, kWgmma), b2, "sm_90a")[1].name_expressions ==
        std::vector<std::string>{"rnnjit_k::gemm_wgmma<1,64,1024,2046,0,2046,4,4,64,64,1,8,2,0,0,1,1>"});
  const rnnjit::Shape f1{64, 2048, 2047, 1024}, f2{64, 2048, 2046, 1024};
  CHECK(rnnjit::sources_of(Config::pair(kWgmma, kWgmma), f1, "sm_90a")[1].name_expressions ==
        std::vector<std::string>{"rnnjit_k::gemm_wgmma<0,64,1024,2047,0,2047,4,4,64,64,1,8,2,0,0,1,1>"});
  CHECK(rnnjit::sources_of(Config::pair(kWgmma, kWgmma), f2, "sm_90a")[1].name_expressions ==
        std::vector<std::string>{"rnnjit_k::gemm_wgmma<0,64,1024,2046,0,2046,8,8,64,64,1,8,2,0,0,1,1>"});
  // fp32 makes its cross copy from a packed A; W2's own rows then go by cp.async.
  rnnjit::Shape f3 = f2;
  f3.precision = rnnjit::Precision::FP32;
  CHECK(rnnjit::sources_of(Config::pair(kWgmma, kWgmma), f3, "sm_90a")[1].name_expressions ==
        std::vector<std::string>{"rnnjit_k::gemm_wgmma<0,64,1024,2048,0,2046,0,8,64,64,1,8,2,1,0,1,1>",
                                 "rnnjit_k::split_cross<64,2048,0>", "rnnjit_k::pack_rows<0,64,2046,0,2048>"});
  const auto whole = rnnjit::sources_of(Config::whole(kFused), s, "sm_90a");
  REQUIRE(whole.size() == 1);
  CHECK(whole[0].label == "step fused_c128k8w8");
  CHECK(whole[0].name_expressions == std::vector<std::string>{"rnnjit_k::fused_cluster<64,2048,2048,1024,128,8,8>"});
}

TEST_CASE("only launches that take TMA maps need 16-byte aligned operands", "[plan]") {
  const rnnjit::Shape s{64, 2048, 2048, 1024};
  CHECK(Config::pair(kTc, kWgmma).needs_aligned_pointers(s));
  CHECK(Config::pair(kWgmma, kTc).needs_aligned_pointers(s));
  CHECK_FALSE(Config::pair(kTc, kTc).needs_aligned_pointers(s));
  CHECK_FALSE(Config::whole(kFused).needs_aligned_pointers(s));
  // Stages read by cp.async need pointers aligned to their copies (8 bytes at K = 2046, 4 at 2047),
  // packed ones only W's, where it is copied (4 bytes of bf16 at K = 2045 + 1; i2h: W1's rows are
  // I + H long).
  const rnnjit::Shape f32_odd{64, 2048, 2046, 1022}, f32_odder{64, 2048, 2047, 1022},
      bf16_odd{64, 2045, 1, 1022, rnnjit::Precision::BF16, rnnjit::DType::BF16};
  CHECK(rnnjit::geometry(kWgmma, rnnjit::Stage::H2o, f32_odd).w_copy == 8);
  CHECK(Config::pair(kTc, kWgmma).needs_aligned_pointers(f32_odd));
  CHECK(rnnjit::geometry(kWgmma, rnnjit::Stage::H2o, f32_odder).w_copy == 4);
  CHECK_FALSE(Config::pair(kTc, kWgmma).needs_aligned_pointers(f32_odder));
  CHECK(rnnjit::geometry(kWgmma, rnnjit::Stage::I2h, bf16_odd).w_copy == 4);
  CHECK(Config::pair(kWgmma, kTc).needs_aligned_pointers(bf16_odd));
  CHECK(rnnjit::operands(kWgmma, s) == rnnjit::Operands::TensorMaps);
  rnnjit::Shape fp32 = s;
  fp32.precision = rnnjit::Precision::FP32;
  CHECK(rnnjit::operands(kWgmma, fp32) == rnnjit::Operands::TensorMapsCross);
}
