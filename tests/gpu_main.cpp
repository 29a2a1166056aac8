// main() of the GPU test binaries: runs Catch2 where a GPU is usable, else reports the
// reason and exits 77, which CTest counts as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "rnnjit/rnnjit.hpp"

int main(int argc, char** argv) {
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
  }
  return Catch::Session().run(argc, argv);
}
