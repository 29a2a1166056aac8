// rnnjit-tune's usage errors, run as a user runs it: output and exit codes.
#include <catch2/catch.hpp>

#include "cli_support.hpp"

TEST_CASE("rnnjit-tune without a GPU fails clearly, and bad usage is exit 2", "[cli]") {
  using test::run;
  CHECK(run(RNNJIT_TUNE_TOOL, {"--help"}).code == 0);
  CHECK(run(RNNJIT_TUNE_TOOL, {}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "1,2,3"}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--precision", "fp64"}).code == 2);
  const auto r = run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8"}, {"RNNJIT_DRIVER_LIBRARY=/nonexistent/libcuda.so.1"});
  CHECK(r.code == 1);
  CHECK_THAT(r.out + r.err, Catch::Contains("no CUDA driver"));
}
