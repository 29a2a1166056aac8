// rnnjit-tune's usage, run as a user runs it: output and exit codes; and the --help of the
// other GPU programs (rnnjit-example, rnnjit-bench), which need no GPU to answer it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_support.hpp"
#include "shapes.hpp"
#include "temp_dir.hpp"
#include "unprivileged.hpp"

namespace {

// Without a driver, arguments that parse end in "no CUDA driver" (exit 1): a bad one is exit 2.
const std::vector<std::string> kNoDriver = {"RNNJIT_DRIVER_LIBRARY=/nonexistent/libcuda.so.1"};

test::Result tune(const std::vector<std::string>& args) { return test::run(RNNJIT_TUNE_TOOL, args, kNoDriver); }

}  // namespace

TEST_CASE("rnnjit-tune without a GPU fails clearly, and bad usage is exit 2", "[cli]") {
  using test::run;
  CHECK(run(RNNJIT_TUNE_TOOL, {"--help"}).code == 0);
  CHECK(run(RNNJIT_TUNE_TOOL, {}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "1,2,3"}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--precision", "fp64"}).code == 2);
  // bf16 products take bf16 tensors, and bf16 tensors take no other products.
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--dtype", "f16"}).code == 2);
  for (const char* prec : {"tf32", "fp32"}) {
    const auto bad = run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--dtype", "bf16", "--precision", prec});
    CHECK(bad.code == 2);
    CHECK_THAT(bad.err, Catch::Contains("--dtype bf16 takes bf16 or all"));
  }
  const auto bf16_of_f32 = run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--precision", "bf16"});
  CHECK(bf16_of_f32.code == 2);
  CHECK_THAT(bf16_of_f32.err, Catch::Contains("add --dtype bf16"));
  for (const char* prec : {"bf16", "all"})  // usage is fine; no driver here
    CHECK(tune({"--shape", "8,16,16,8", "--dtype", "bf16", "--precision", prec}).code == 1);
  // Sequences: 1..2^24 steps, and no float64 check of a sequence's winner.
  for (const char* bad : {"0", "-3", "16777217", "x"}) CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--steps", bad}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--steps", "64", "--check"}).code == 2);
  CHECK(tune({"--shape", "8,16,16,8", "--steps", "64"}).code == 1);  // usage is fine; no driver here
  const auto r = tune({"--shape", "8,16,16,8"});
  CHECK(r.code == 1);
  CHECK_THAT(r.out + r.err, Catch::Contains("no CUDA driver"));
}

TEST_CASE("rnnjit-tune --shape takes sizes 1..2^20 and names a bad value, exit 2", "[cli]") {
  for (const auto& [shape, why] : std::vector<std::pair<std::string, std::string>>{
           {"8,-1,16,8", "I = -1 is outside 1..1048576"},
           {"0,16,16,8", "B = 0 is outside 1..1048576"},
           {"8,16,1048577,8", "H = 1048577 is outside 1..1048576"},
           {"8,16,16,99999999999999999999", "O = 99999999999999999999 is outside 1..1048576"},
           {"8.5,16,16,8", "B = '8.5' is not an integer"},
           {"8,16,,8", "H = '' is not an integer"},
           {"8,16,16,8,4", "not B,I,H,O (four sizes separated by commas)"}}) {
    const auto r = tune({"--shape", shape});
    INFO(shape << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err == "rnnjit-tune: '" + shape + "': " + why + "\n");
  }
  CHECK(tune({"--shape", "1,1048576,1,1"}).code == 1);  // the limit itself is a size: no driver next
}

TEST_CASE("rnnjit-tune --shapes files: a bad value, a mistyped header and an empty file are exit 2", "[cli]") {
  test::TempDir dir;
  const std::string file = dir.file("shapes.csv");
  int code = 0;
  std::string why;
  SECTION("8.5") {
    std::ofstream(file) << "B,I,H,O\n8.5,16,16,8\n";
    code = 2;
    why = file + ":2: '8.5,16,16,8': B = '8.5' is not an integer";
  }
  SECTION("a mistyped header is a line like any other") {
    std::ofstream(file) << "B,I,H,0\n8,16,16,8\n";
    code = 2;
    why = file + ":1: 'B,I,H,0': B = 'B' is not an integer";
  }
  SECTION("a header after the first line") {
    std::ofstream(file) << "# shapes\n8,16,16,8\nB,I,H,O\n";
    code = 2;
    why = file + ":3: 'B,I,H,O': B = 'B' is not an integer";
  }
  SECTION("an empty file") {
    std::ofstream(file) << "";
    code = 2;
    why = file + " holds no shape";
  }
  SECTION("comments only") {
    std::ofstream(file) << "# nothing yet\n\n";
    code = 2;
    why = file + " holds no shape";
  }
  SECTION("a JSON list with 8.5") {
    std::ofstream(file) << "[[8, 16, 16, 8], {\"B\": 8.5, \"I\": 16, \"H\": 16, \"O\": 8}]";
    code = 2;
    why = file + ": shape 1: B = 8.5 is not an integer";
  }
  SECTION("an empty JSON list") {
    std::ofstream(file) << " [ ] ";
    code = 2;
    why = file + " holds no shape";
  }
  SECTION("a header in any case, blanks and comments: parsed, then no driver") {
    std::ofstream(file) << "# B,I,H,O\n b, I, h, O \n\n8, 16, 16, 8  # kb\n1,1048576,1,1\n";
    code = 1;
    why = "no CUDA driver";
  }
  const auto r = tune({"--shapes", file});
  INFO(r.err);
  CHECK(r.code == code);
  if (code == 2)
    CHECK(r.err == "rnnjit-tune: " + why + "\n");
  else
    CHECK_THAT(r.err, Catch::Contains(why));
}

TEST_CASE("rnnjit-example --help and rnnjit-bench --help exit 0 with their usage on stdout", "[cli]") {
  for (const char* program : {RNNJIT_EXAMPLE, RNNJIT_BENCH}) {
    for (const char* flag : {"--help", "-h"}) {
      const auto r = test::run(program, {flag}, kNoDriver);
      INFO(program << " " << flag << ": " << r.err);
      CHECK(r.code == 0);
      CHECK_THAT(r.out, Catch::StartsWith("usage: ") && Catch::Contains("B,I,H,O"));
      CHECK(r.err.empty());
    }
    const auto r = test::run(program, {"--no-such-flag"}, kNoDriver);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::StartsWith("usage: "));
  }
}

// The sweep's shapes (tools/shapes.hpp): what issue 19 asks of them, the same for a seed in every
// run and machine (side_by_side.py --sweep times the list the bench prints).
TEST_CASE("rnnjit-bench --sweep draws the same spread of shapes for a seed, listed without a GPU", "[cli]") {
  const auto r = test::run(RNNJIT_BENCH, {"--sweep", "90", "--seed", "7", "--list-shapes"}, kNoDriver);
  REQUIRE(r.code == 0);
  CHECK(test::run(RNNJIT_BENCH, {"--sweep", "90", "--seed", "7", "--list-shapes"}, kNoDriver).out == r.out);
  CHECK(test::run(RNNJIT_BENCH, {"--sweep", "90", "--seed", "8", "--list-shapes"}, kNoDriver).out != r.out);
  std::istringstream lines(r.out);
  std::string line;
  int shapes = 0, unaligned = 0, ones = 0, large = 0;
  while (std::getline(lines, line)) {
    const rnnjit::tools::Shape s = rnnjit::tools::parse_shape(line);
    INFO(line);
    CHECK(s.b <= 4096);
    CHECK((s.i <= 8192 && s.h <= 8192 && s.o <= 8192));
    unaligned += s.i % 4 != 0 && s.h % 4 != 0 && s.o % 4 != 0;
    ones += s.b == 1 || s.i == 1 || s.h == 1 || s.o == 1;
    large += s.i >= 2048 || s.h >= 2048 || s.o >= 2048;
    ++shapes;
  }
  CHECK(shapes == 90);
  CHECK(unaligned >= 25);  // a third have every row ≢ 0 mod 4 (a size set to 1 may take one back)
  CHECK(ones >= 3);
  CHECK(large >= 20);
  for (const char* bad : {"0", "-1", "x", "10001"}) CHECK(test::run(RNNJIT_BENCH, {"--sweep", bad}, kNoDriver).code == 2);
}

TEST_CASE("rnnjit-tune --system publishes only a finished cache, and is bad usage with --cache or off", "[cli]") {
  test::TempDir dir;
  const std::string sys = dir.file("share/rnnjit/system.sqlite");
  std::vector<std::string> env = kNoDriver;
  env.push_back("RNNJIT_SYSTEM_CACHE=" + sys);
  auto r = test::run(RNNJIT_TUNE_TOOL, {"--system", "--shape", "8,16,16,8"}, env);
  CHECK(r.code == 1);  // its copy made, then no driver to tune with
  CHECK_THAT(r.err, Catch::Contains("no CUDA driver"));
  // Engines read the system cache immutable: a run that does not finish leaves no file, and no copy.
  REQUIRE(std::filesystem::is_directory(dir.file("share/rnnjit")));
  CHECK(std::filesystem::is_empty(dir.file("share/rnnjit")));
  // One that is there stays as it was, byte for byte, whatever the run does.
  std::ofstream(sys, std::ios::binary | std::ios::trunc) << "not a cache";
  r = test::run(RNNJIT_TUNE_TOOL, {"--system", "--shape", "8,16,16,8"}, env);
  CHECK(r.code == 1);
  CHECK(test::read_file(sys) == "not a cache");
  CHECK(std::distance(std::filesystem::directory_iterator(dir.file("share/rnnjit")), {}) == 1);
  r = test::run(RNNJIT_TUNE_TOOL, {"--system", "--cache", dir.file("c.sqlite"), "--shape", "8,16,16,8"}, env);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--cache excludes --system"));
  env.back() = "RNNJIT_SYSTEM_CACHE=off";
  r = test::run(RNNJIT_TUNE_TOOL, {"--system", "--shape", "8,16,16,8"}, env);
  CHECK(r.code == 2);
  CHECK(r.err == "rnnjit-tune: --system: the system cache is off ($RNNJIT_SYSTEM_CACHE=off)\n");
  CHECK_FALSE(std::filesystem::exists(dir.file("c.sqlite")));
}

TEST_CASE("rnnjit-tune --system where the system cache cannot be written fails before tuning, exit 1", "[cli]") {
  test::TempDir dir;
  test::open_to_all(dir.path);
  test::make_read_only(dir.path);  // as /usr/local/share is to a user
  std::vector<std::string> env = kNoDriver;
  env.push_back("RNNJIT_SYSTEM_CACHE=" + dir.file("rnnjit/system.sqlite"));
  const auto r = test::run(RNNJIT_TUNE_TOOL, {"--system", "--shape", "8,16,16,8"}, env, test::As::Unprivileged);
  CHECK(r.code == 1);
  // The copy it tunes beside the system cache is what it cannot make.
  CHECK_THAT(r.err, Catch::StartsWith("rnnjit-tune: cache " + dir.file("rnnjit/system.sqlite") + ".tmp-") &&
                        !Catch::Contains("no CUDA driver"));
  CHECK(std::filesystem::is_empty(dir.path));
}
