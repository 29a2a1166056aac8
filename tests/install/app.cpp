// A program of another project, built against an installed rnnjit (tests/install_test.sh).
#include <rnnjit/rnnjit.hpp>

#include <cstdio>

int main() {
  try {
    rnnjit::Engine engine;
    std::printf("engine on %s\n", engine.device().name.c_str());
  } catch (const rnnjit::Error& e) {
    std::printf("%s\n", e.what());
    return e.code() == rnnjit::ErrorCode::NoDriver || e.code() == rnnjit::ErrorCode::NoDevice ? 0 : 1;
  }
}
