// Every kernel family's pool tiles on the GPU against the float64 reference: odd shapes, scalar
// paths, concurrent streams, recurrences back to back, graphs; and the compute-sanitizer workload.
#include "gpu_support.hpp"

#include <array>
#include <span>
#include <thread>

using rnnjit::Precision;
using test::Step;
using namespace test;

// Every wgmma tile of the tuner's pool as both stages, at shapes with tails everywhere: M past
// BM, N past BN, K segments ending inside a 32-float slice, more K splits than slices; rows of x,
// h and W not whole 16-byte units (both stages on packed copies, and i2h alone). tf32
// truncates each operand here (gemm_wgmma.cu), ~1.2e-3 of error on its own; with y only 12
// values long (3×4) cancellation took 2 % of random draws past 2e-3 (docs/tf32_error_model.py,
// 20000 draws; 0 of 20000 with 3×20), so the smallest shape has 20 outputs.
TEST_CASE("wgmma tiles match the reference at odd shapes", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(15);
  const rnnjit::Problem shapes[] = {{100, 36, 44, 20},      {3, 4, 8, 20},   {300, 132, 260, 72},
                                    {64, 2048, 2048, 1024}, {100, 37, 45, 21}, {70, 5, 44, 20}};
  int pinned = 0;
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (auto p : shapes) {
      p.precision = prec;
      for (const std::string& name : wgmma_configs(engine, p)) {
        INFO(name);
        engine.pin(p, name);
        check_step(engine, p, rng);
        ++pinned;
      }
    }
  CHECK(pinned > 60);
}

// Rows TMA cannot take: tf32 stages copy A and W where they lie by cp.async (4-byte units: K
// segments of 255 + 129, 7 + 129, 37 + 45 floats; 8-byte units: 38 + 46, whose 4-byte aligned
// pointers run the fallback), except W rows in whole 16-byte units after A1's (TMA: 255 + 129).
// fp32 packs A for its cross copy, copies W where its rows are whole 16-byte units but its pointer
// is not, and else reads it by cp.async too; so does tf32 where copying A for every N tile would
// take over 32 MiB (600·17·2049: 84 MB, i2h on a packed A, W1 by 8-byte copies). Any 4-byte aligned
// pointer; on streams at once.
TEST_CASE("wgmma stages take rows and pointers TMA cannot", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(17);
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (const rnnjit::Problem p : {rnnjit::Problem{64, 255, 129, 64, prec}, rnnjit::Problem{64, 7, 129, 3, prec},
                                    rnnjit::Problem{64, 37, 45, 20, prec}, rnnjit::Problem{64, 38, 46, 20, prec},
                                    rnnjit::Problem{600, 17, 2049, 20, prec}}) {
      engine.pin(p, "i2h_wgmma64x64g1s8k2.h2o_wgmma64x64g1s8k2");
      check_step(engine, p, rng, 1);
      check_step(engine, p, rng, 0);
      // The packed copies are per call: streams at once, more than the engine's scratch buffers.
      check_streams(engine, p, "i2h_wgmma64x64g1s8k2.h2o_wgmma64x64g1s8k2", rng, 5, 6);
    }
  // The packed twins, with the 16-row batch tile's K split 8 ways: every stage here has rows of
  // 4-byte units, A's and W's, so a twin packs both.
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (const rnnjit::Problem p : {rnnjit::Problem{64, 8, 45, 20, prec}, rnnjit::Problem{300, 20, 1001, 33, prec}})
      for (const char* c : {"i2h_wgmma16x64g1s18k8p.h2o_wgmma64x64g1s8k2p", "i2h_wgmma64x64g1s8k2p.h2o_wgmma16x64g1s18k8"}) {
        INFO(c);
        engine.pin(p, c);
        check_step(engine, p, rng, 1);
        check_step(engine, p, rng, 0);
        check_streams(engine, p, c, rng, 5, 6);
      }
}

// Tiles resident several to a SM (launch bounds, no setmaxnreg) over short K, f32 (tf32 and fp32)
// and bf16: odd sizes whose rows go by TMA, by cp.async copies and by packed copies, batches that
// end mid-tile, unaligned pointers (the fallback), and f32 on streams at once.
TEST_CASE("wgmma tiles resident several to a SM match the reference", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(19);
  const char* const f32_configs[] = {"i2h_wgmma64x128g1s2k1o2.h2o_wgmma64x64g1s2k1o3",
                                     "i2h_wgmma64x64g1s2k1o4.h2o_wgmma64x128g1s3k1o2"};
  const char* const fp32_configs[] = {"i2h_wgmma64x64g1s2k1o2.h2o_wgmma64x64g1s4k1o2"};
  int pinned = 0;
  for (const auto& [b, i, h, o] : {std::array<std::int64_t, 4>{300, 8, 52, 700}, {257, 1, 39, 333},
                                   {100, 4, 28, 1000}, {65, 33, 31, 129}})
    for (Precision prec : {Precision::TF32, Precision::FP32, Precision::BF16}) {
      const rnnjit::DType dtype = prec == Precision::BF16 ? rnnjit::DType::BF16 : rnnjit::DType::F32;
      const rnnjit::Problem p{b, i, h, o, prec, dtype};
      for (const char* c : prec == Precision::FP32 ? std::span<const char* const>(fp32_configs)
                                                   : std::span<const char* const>(f32_configs)) {
        INFO(c << " at " << b << "," << i << "," << h << "," << o << " " << rnnjit::precision_name(prec));
        engine.pin(p, c);
        check_step(engine, p, rng, 0);
        check_step(engine, p, rng, 1);
        if (dtype == rnnjit::DType::F32) check_streams(engine, p, c, rng, 3, 3);
        ++pinned;
      }
    }
  CHECK(pinned == 20);
}

// Multicast pairs (m2): two N tiles a cluster, each CTA landing half of A's rows in both rings.
// Odd N tile counts (the last pair's second CTA, past N, loads its peer's W and stores nothing),
// batches whose last M tile's second half lies wholly past the batch (that share loads rows it
// never stores), K segments ending mid-slice, tf32 and bf16, h2o as a dependent launch of i2h,
// and f32 on streams at once.
TEST_CASE("wgmma multicast pairs share A's slices across N tiles", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(23);
  const char* const configs[] = {"i2h_wgmma256x128g2s4k1m2.h2o_wgmma128x128g2s6k1m2",
                                 "i2h_wgmma128x128g2s6k1m2.h2o_wgmma256x128g2s4k1m2"};
  int pinned = 0;
  for (const auto& [b, i, h, o] : {std::array<std::int64_t, 4>{300, 136, 264, 72}, {100, 40, 296, 400},
                                   {257, 64, 1000, 130}, {755, 40, 640, 388}})
    for (Precision prec : {Precision::TF32, Precision::BF16}) {
      const rnnjit::DType dtype = prec == Precision::BF16 ? rnnjit::DType::BF16 : rnnjit::DType::F32;
      const rnnjit::Problem p{b, i, h, o, prec, dtype};
      for (const char* c : configs) {
        INFO(c << " at " << b << "," << i << "," << h << "," << o << " " << rnnjit::precision_name(prec));
        engine.pin(p, c);
        check_step(engine, p, rng);
        if (dtype == rnnjit::DType::F32) check_streams(engine, p, c, rng, 3, 3);
        ++pinned;
      }
    }
  CHECK(pinned == 16);
}

// The one-launch steps, every pool tile: the grid step (h' handed over through L2 behind a grid
// barrier) and, on Hopper, clusters splitting K whose last cluster computes y (launched as
// dependent launches). Odd sizes, fewer rows than CTAs or clusters, K slices shorter than a
// cluster, unaligned pointers, two streams running it at once (each call has its own launch
// counters), and a recurrence back to back (dependent launches overlapping, each reading what the
// one before it wrote).
TEST_CASE("the one-launch steps match the reference at odd shapes, on concurrent streams and back to back",
          "[gpu][grid]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(17);
  const rnnjit::Problem shapes[] = {{1, 1, 1, 1},  {3, 999, 17, 5},   {16, 1023, 33, 1},
                                    {8, 1024, 256, 128}, {1, 1024, 512, 256}, {5, 7, 300, 3}};
  const bool hopper = engine.device().cc_major >= 9;
  if (!hopper) WARN("compute capability below 9.0: no cluster step");
  auto run_family = [&]<class F>() {
    for (Precision prec : {Precision::TF32, Precision::FP32})
      for (auto p : shapes) {
        p.precision = prec;
        const auto configs = pool_configs<F>(engine, p);
        CHECK(!configs.empty());
        for (const std::string& c : configs) {
          INFO(c);
          engine.pin(p, c);
          check_step(engine, p, rng);
          check_step(engine, p, rng, 1);
        }
      }
    const rnnjit::Problem kb_v0{8, 1024, 256, 128};
    for (const std::string& c : pool_configs<F>(engine, kb_v0)) {
      check_streams(engine, kb_v0, c, rng, 50);
      check_chain(engine, kb_v0, c, rng, 40);
    }
  };
  run_family.template operator()<rnnjit::GridTile>();
  if (hopper) run_family.template operator()<rnnjit::FusedTile>();
  check_chain(engine, {3, 999, 17, 5}, "grid_c64w16", rng, 40);  // the scalar paths
  if (hopper) check_chain(engine, {3, 999, 17, 5}, "fused_c128k8w8", rng, 40);
}

// The one-launch streaming steps (FFMA and tensor cores), every pool tile: rows fewer than CTAs,
// shares not a multiple of ROWS (or of 16-row blocks) or shorter than the prefetch, scalar paths
// (odd sizes, unaligned pointers), b1-4k and batches 8 and 16 at 4096, two streams at once, and a
// recurrence back to back.
TEST_CASE("the streaming steps match the reference at odd shapes and on concurrent streams", "[gpu][stream]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(18);
  const std::vector<rnnjit::Problem> stream_shapes = {{1, 1, 1, 1},     {3, 999, 17, 5},       {16, 1023, 33, 1},
                                                     {2, 4096, 1031, 999}, {5, 7, 300, 3}, {1, 4096, 4096, 4096},
                                                     {4, 512, 1024, 2047}};
  const std::vector<rnnjit::Problem> mma_shapes = {{3, 999, 17, 5},       {16, 1023, 33, 1}, {5, 7, 300, 3},
                                                  {4, 512, 1024, 2047},  {8, 4096, 4096, 4096},
                                                  {13, 2052, 4100, 1001}, {16, 4096, 4096, 4096}};
  auto run_family = [&]<class F>(const std::vector<rnnjit::Problem>& shapes) {
    int pinned = 0;
    for (Precision prec : {Precision::TF32, Precision::FP32})
      for (auto p : shapes) {
        p.precision = prec;
        // The scalar path (offset pointers) at the odd and small shapes; at 4096 its reference
        // would cost the test more than it covers.
        const bool large = double(p.batch) * (p.input + p.hidden) * p.hidden > 1e8;
        pinned += check_pool<F>(engine, p, rng, large ? std::vector<std::size_t>{0} : std::vector<std::size_t>{0, 1});
      }
    CHECK(pinned >= 40);
  };
  run_family.template operator()<rnnjit::StreamTile>(stream_shapes);
  run_family.template operator()<rnnjit::GridMmaTile>(mma_shapes);
  check_streams(engine, {2, 4096, 1031, 999}, "stream_c128w8r2u4p8", rng, 20);
  check_streams(engine, {13, 2052, 4100, 1001}, "gridmma_c128w8b2u2p1", rng, 20);
  check_chain(engine, {8, 1024, 2048, 1000}, "gridmma_c128w8b2u4p1", rng, 40);
  check_chain(engine, {3, 999, 17, 5}, "gridmma_c128w16b2u2p0", rng, 40);  // the scalar path
}

// Every gemv and stream tile where the widest loads rows and pointers allow are 8 bytes: rows of
// 8-byte units but not 16-byte ones (f32 I = 514, H = 1026; bf16 I = 516, H = 1028), h' staged in
// shared memory (4 rows) and read in place (16 rows of over 16384 elements); 16-byte rows at
// pointers 8 bytes past cudaMalloc's alignment; and one element past it, the scalar path.
TEST_CASE("gemv and stream tiles match the reference on 8-byte loads", "[gpu][gemv][stream]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(41);
  using rnnjit::DType;
  int pinned = 0;
  auto run = [&](const rnnjit::Problem& p, const std::vector<std::size_t>& offsets) {
    INFO("B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output << " "
              << rnnjit::dtype_name(p.dtype));
    pinned += check_pool<rnnjit::GemvTile>(engine, p, rng, offsets);
    pinned += check_pool<rnnjit::StreamTile>(engine, p, rng, offsets);
  };
  run({4, 514, 1026, 2046, Precision::FP32}, {0, 1});
  run({4, 516, 1028, 2044, Precision::BF16, DType::BF16}, {0, 1});
  run({16, 514, 1026, 2046, Precision::FP32}, {0});
  run({16, 516, 1028, 2044, Precision::BF16, DType::BF16}, {0});
  run({4, 512, 1024, 2048, Precision::FP32}, {2});
  run({4, 512, 1024, 2048, Precision::BF16, DType::BF16}, {4});
  CHECK(pinned >= 30);
}

// Every gemvt tile that takes the shape as both stages: few outputs (1 to 32; 32 leaves out the
// 2-row tile), a tail warp, odd K (the scalar path), 8-byte rows (I = 514, H = 2), 16-byte ones,
// and pointers one element past cudaMalloc's alignment; f32 and bf16 storage.
TEST_CASE("gemvt tiles match the reference at odd shapes", "[gpu][gemvt]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(42);
  using rnnjit::DType;
  int pinned = 0;
  for (const rnnjit::Problem shape : {rnnjit::Problem{211, 3978, 1, 1}, rnnjit::Problem{17, 5, 31, 3},
                                      rnnjit::Problem{300, 37, 32, 5}, rnnjit::Problem{1000, 514, 2, 32},
                                      rnnjit::Problem{64, 1024, 16, 8}})
    for (const auto& [prec, dtype] : {std::pair{Precision::FP32, DType::F32}, std::pair{Precision::TF32, DType::F32},
                                      std::pair{Precision::BF16, DType::BF16}}) {
      rnnjit::Problem p = shape;
      p.precision = prec, p.dtype = dtype;
      INFO("B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output << " "
                << rnnjit::dtype_name(p.dtype));
      pinned += check_pool<rnnjit::GemvtTile>(engine, p, rng, {0, 1});
    }
  CHECK(pinned == 36);  // 12 tiles over the shapes (ROWS×N ≤ 32), in each storage and precision
}

// Every tc tile of the pool as both stages: tails everywhere, rows of every alignment (odd K1 and
// LDW: 4-byte copies; even: 8-byte; multiples of 4: 16-byte, some cut by K), pointers offset by 1
// and 2 floats (the narrower copies), both precisions; B=257 I=17 H=4097 O=33 with the tiles the
// tuner ranks first.
TEST_CASE("tc tiles match the reference at odd shapes and alignments", "[gpu][tc]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(21);
  int pinned = 0;
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    for (rnnjit::Problem p : {rnnjit::Problem{3, 9, 2, 5}, rnnjit::Problem{70, 36, 44, 20}, rnnjit::Problem{130, 34, 66, 18}}) {
      p.precision = prec;
      for (const std::string& name : pool_configs<rnnjit::TcTile>(engine, p)) {
        INFO(name);
        engine.pin(p, name);
        for (std::size_t offset : {0, 1, 2}) check_step(engine, p, rng, offset);
        ++pinned;
      }
    }
    const rnnjit::Problem odd{257, 17, 4097, 33, prec};
    const auto configs = pool_configs<rnnjit::TcTile>(engine, odd);
    for (std::size_t i = 0; i < 3 && i < configs.size(); ++i) {
      INFO(configs[i]);
      engine.pin(odd, configs[i]);
      check_step(engine, odd, rng);
      check_step(engine, odd, rng, 1);
    }
  }
  CHECK(pinned >= 40);
}

// The prebuilt generic plan (built by nvcc with the library, sizes as arguments): the warp-a-column
// path (batch ≤ 16) and the tiled one (batch 17 and up, tails in M, N and K), odd rows and pointers
// offset by 1 float, both precisions, K long enough that fp32's bound needs short sums.
TEST_CASE("the prebuilt generic plan matches the reference at any shape and alignment", "[gpu][generic][sanitize]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(23);
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (rnnjit::Problem p : {rnnjit::Problem{1, 1, 1, 1}, rnnjit::Problem{3, 999, 17, 5}, rnnjit::Problem{16, 37, 45, 21},
                              rnnjit::Problem{17, 36, 44, 20}, rnnjit::Problem{70, 9, 130, 65}, rnnjit::Problem{65, 4099, 33, 7}}) {
      p.precision = prec;
      engine.pin(p, "i2h_generic.h2o_generic");
      REQUIRE(engine.plan_info(p).config == "i2h_generic.h2o_generic");
      for (std::size_t offset : {0, 1}) check_step(engine, p, rng, offset);
    }
}

TEST_CASE("a wgmma plan given pointers TMA cannot take runs its fallback", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(16);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    const rnnjit::Problem p{64, 256, 128, 64, prec};
    engine.pin(p, wgmma_configs(engine, p).at(0));
    check_step(engine, p, rng, 1);
    check_step(engine, p, rng, 0);
  }
}

// fp32 wgmma stages write A's cross copies to scratch (stream-ordered inside a capture): a captured
// step must allocate and free it inside the graph and give the bits of an uncaptured one, and
// steps on streams at once must not share it.
TEST_CASE("an fp32 wgmma step replays in a CUDA graph with the bits of an uncaptured one", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(16);
  check_replay(engine, {100, 36, 44, 20, Precision::FP32}, "i2h_wgmma128x128g2s3k1.h2o_wgmma64x64g1s4k2", rng);
  // Each call's scratch is its own: streams stepping at once keep their lone runs' bits, two and
  // more than the engine keeps scratch buffers (rnnjit::ScratchArena::kMaxBuffers, 4).
  check_streams(engine, {300, 132, 260, 72, Precision::FP32}, "i2h_wgmma128x128g2s4k1.h2o_wgmma128x128g2s4k1", rng, 4);
  check_streams(engine, {300, 132, 260, 72, Precision::FP32}, "i2h_wgmma128x128g2s4k1.h2o_wgmma128x128g2s4k1", rng, 6, 7);
}

// A tf32 wgmma h2o right after a wgmma i2h is launched as a programmatic dependent: it loads W2
// before i2h ends and h' only after. Back to back (each step's i2h reads the h' the step before
// wrote), captured in a graph (a programmatic edge) and on streams at once, it keeps the bits.
TEST_CASE("a wgmma h2o launched as a dependent of its i2h reads h' only once i2h is done", "[gpu][wgmma]") {
  rnnjit::Engine& engine = test::shared_engine();
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(18);
  // The last: h' rows of 45 floats, which every producer thread copies by cp.async after its wait.
  for (const auto& [p, config] : {std::pair{rnnjit::Problem{64, 2048, 2048, 1024}, "i2h_wgmma64x128g1s6k4.h2o_wgmma64x64g1s8k4"},
                                  std::pair{rnnjit::Problem{300, 132, 260, 72}, "i2h_wgmma128x128g2s4k1.h2o_wgmma64x64g1s8k2"},
                                  std::pair{rnnjit::Problem{300, 37, 45, 72}, "i2h_wgmma128x128g2s4k1.h2o_wgmma64x64g1s8k2"}}) {
    INFO(config);
    check_chain(engine, p, config, rng, 30);
    check_replay(engine, p, config, rng);
    check_streams(engine, p, config, rng, 10, 3);
  }
}

// A capture in global mode (CUDA's default) forbids "unsafe" calls such as the scratch arena's
// cuEventQuery on every thread: the arena makes them in relaxed mode, so a step with scratch on
// another thread's uncaptured stream neither fails nor invalidates that capture.
TEST_CASE("a step with scratch beside another thread's capture neither fails nor breaks it", "[gpu][wgmma]") {
  rnnjit::Engine engine(test::memory_only());
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(19);
  const rnnjit::Problem p{300, 132, 260, 72, Precision::FP32};
  engine.pin(p, "i2h_wgmma128x128g2s4k1.h2o_wgmma128x128g2s4k1");
  cudaStream_t captured, plain;
  CUDA_OK(cudaStreamCreateWithFlags(&captured, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&plain, cudaStreamNonBlocking));
  Step s(p, rng);
  s.run(engine, plain);  // the plan loaded and the arena's buffer made, outside the capture
  CHECK(s.error(s.check_rows()) <= test::bound(Precision::FP32));
  const auto y_ref = s.dy.download();
  s.dy.poison();
  test::DevBuf marker(256);
  CUDA_OK(cudaStreamBeginCapture(captured, cudaStreamCaptureModeGlobal));
  CUDA_OK(cudaMemsetAsync(marker.get(), 0, 256 * sizeof(float), captured));
  std::string error;
  std::thread other([&] {
    try {
      engine.rnn_step(p, s.weights(), s.dx.get(), s.dh.get(), s.dh_out.get(), s.dy.get(), plain);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  other.join();
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(captured, &graph) == cudaSuccess);
  CHECK(error.empty());
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  CUDA_OK(cudaStreamSynchronize(plain));
  CHECK(test::same_bits(s.dy.download(), y_ref));
  if (exec) CUDA_OK(cudaGraphExecDestroy(exec));
  if (graph) CUDA_OK(cudaGraphDestroy(graph));
  for (cudaStream_t st : {captured, plain}) CUDA_OK(cudaStreamDestroy(st));
}

// Small odd shapes for compute-sanitizer (memcheck, racecheck) to run in seconds; both
// paths (16-byte and scalar copies; stream's 8-byte ones too), both precisions, aliasing.
TEST_CASE("sanitizer workload: odd shapes on every kernel path", "[gpu][sanitize]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(14);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    check_step(engine, {3, 999, 17, 5, prec}, rng);
    check_step(engine, {17, 36, 44, 20, prec}, rng);
    check_step(engine, {5, 7, 33, 3, prec}, rng, 1);
    engine.pin({6, 36, 44, 20, prec}, "grid_c64w16");
    check_step(engine, {6, 36, 44, 20, prec}, rng);
    if (engine.device().cc_major >= 9) {
      const rnnjit::Problem p{6, 36, 44, 20, prec};
      for (const std::string& name : pool_configs<rnnjit::FusedTile>(engine, p)) {
        engine.pin(p, name);
        check_step(engine, p, rng);
        check_step(engine, p, rng, 1);
      }
    } else {
      WARN("compute capability below 9.0: no cluster steps");
    }
    // Few outputs, a tail warp, odd rows (gemvt's scalar path) and offset pointers.
    engine.pin({37, 41, 7, 3, prec}, "i2h_gemvt_r2w4u4.h2o_gemvt_r1w4u8");
    check_step(engine, {37, 41, 7, 3, prec}, rng);
    check_step(engine, {37, 41, 7, 3, prec}, rng, 1);
    engine.pin({3, 40, 300, 21, prec}, "stream_c64w16r1u8p4");
    check_step(engine, {3, 40, 300, 21, prec}, rng);
    check_step(engine, {3, 40, 300, 21, prec}, rng, 1);
    // 8-byte rows: the 8-byte loads and W2's 8-byte cp.async prefetch.
    engine.pin({3, 42, 302, 21, prec}, "stream_c64w16r1u8p4");
    check_step(engine, {3, 42, 302, 21, prec}, rng);
    // One n8 tile of batch and two, the scalar path, a tail group, rows fewer than CTAs.
    for (const auto& [name, batch] : {std::pair{"gridmma_c64w16b2u2p0", 7}, std::pair{"gridmma_c128w8b2u2p1", 11}}) {
      const rnnjit::Problem p{batch, 40, 300, 21, prec};
      engine.pin(p, name);
      check_step(engine, p, rng);
      check_step(engine, p, rng, 1);
    }
    if (engine.device().arch == "sm_90a") {
      const rnnjit::Problem p{70, 36, 44, 20, prec};
      for (const std::string& name : wgmma_configs(engine, p)) {
        engine.pin(p, name);
        check_step(engine, p, rng);
      }
      // Rows TMA cannot take, both stages (cp.async copies of 4 and 8 bytes, or packed copies),
      // offset pointers.
      for (const rnnjit::Problem odd : {rnnjit::Problem{70, 37, 45, 21, prec}, rnnjit::Problem{70, 38, 46, 21, prec}}) {
        engine.pin(odd, "i2h_wgmma128x128g2s3k1.h2o_wgmma64x64g1s8k2");
        check_step(engine, odd, rng);
        check_step(engine, odd, rng, 1);
      }
    } else {
      WARN("not an sm_90a device: no wgmma");
    }
    // h' written over the h it reads.
    Step s({9, 13, 21, 6, prec}, rng);
    s.dy.poison();
    engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh.get(), s.dh.get(), s.dy.get());
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<double> rh, ry;
    rnnjit::reference_step(9, 13, 21, 6, s.w1.data(), s.b1.data(), s.w2.data(), s.b2.data(), s.x.data(), s.h.data(), rh, ry);
    CHECK(rnnjit::relative_error(s.dh.download(), rh) <= test::bound(prec));
    CHECK(rnnjit::relative_error(s.dy.download(), ry) <= test::bound(prec));
  }
}

// The tc family alone for compute-sanitizer ("[sanitize][tc]" runs it apart): every copy width
// (odd rows, even rows, 16-byte rows cut by K; offset pointers), tails in M, N and K, fewer slices
// than stages, both precisions.
TEST_CASE("sanitizer workload: the tc family", "[gpu][sanitize][tc]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(22);
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (const auto& [name, shape] : {std::pair{"i2h_tc64x64x32w2x2s4.h2o_tc64x16x64w4x1s4", rnnjit::Problem{3, 9, 2, 5}},
                                      std::pair{"i2h_tc64x64x32w2x2s4.h2o_tc64x16x64w4x1s4", rnnjit::Problem{70, 36, 44, 20}},
                                      std::pair{"i2h_tc128x32x32w4x1s4.h2o_tc32x32x64w2x2s4", rnnjit::Problem{130, 34, 66, 18}}}) {
      rnnjit::Problem p = shape;
      p.precision = prec;
      engine.pin(p, name);
      for (std::size_t offset : {0, 1, 2}) check_step(engine, p, rng, offset);
    }
}
