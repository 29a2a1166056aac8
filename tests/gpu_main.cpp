// main() of the GPU test binaries: runs Catch2 where a GPU is usable, else reports the
// reason and exits 77, which CTest counts as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "rnnjit/rnnjit.hpp"

int main(int argc, char** argv) {
  // Line-buffered output: a run cut off by a time limit (a device call's) keeps every failure and
  // test reported so far; a full buffer would lose them with the process.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // A test's result must not depend on the host: an installed system cache or $RNNJIT_TUNING
  // would change what the engine finds and when it tunes. The test process runs with neither;
  // the marker tells the children it starts (whose commands set what they test, e.g.
  // RNNJIT_TUNING=background) not to undo their settings. Set here, not as CTest ENVIRONMENT:
  // catch_discover_tests flattens a list-valued property, so only one variable gets through.
  if (!std::getenv("RNNJIT_TEST_HOST_ISOLATED") &&
      (setenv("RNNJIT_SYSTEM_CACHE", "off", 1) != 0 || setenv("RNNJIT_TUNING", "blocking", 1) != 0 ||
       setenv("RNNJIT_TEST_HOST_ISOLATED", "1", 1) != 0)) {
    std::perror("setenv");
    return 1;
  }
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::string(argv[i]).rfind("--list", 0) == 0;
  if (!listing) {
    try {
      rnnjit::EngineOptions o;
      o.cache_path = "off";
      rnnjit::Engine probe(o);
    } catch (const rnnjit::Error& e) {
      if (e.code() != rnnjit::ErrorCode::NoDriver && e.code() != rnnjit::ErrorCode::NoDevice) throw;
      std::printf("SKIPPED: GPU tests need a CUDA GPU: %s\n", e.what());
      return 77;
    }
#if defined(RNNJIT_TEST_MIN_GPUS)
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < RNNJIT_TEST_MIN_GPUS) {
      std::printf("SKIPPED: these tests need %d GPUs, this machine has %d\n", RNNJIT_TEST_MIN_GPUS, count);
      return 77;
    }
#endif
  }
  return Catch::Session().run(argc, argv);
}
