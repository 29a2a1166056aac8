// Property test of the cache and rnnjit-cache: random and mutated import files and random
// command sequences from several processes on one file, each round checked against a model.
//
// Each worker owns its GPU names and binary keys, so that its imports and removals commute
// with the others' and its model is exact at every step: what it lists or exports of its own
// must be its model, then and there. prune touches every worker's rows, so it runs between
// rounds, where the merged model knows what it removes. After each round `verify` passes and
// the cache holds exactly the merged model. The seed is Catch's (--rng-seed N replays a run).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cli_support.hpp"
#include "temp_dir.hpp"
#include "rnnjit/cache/exchange.hpp"
#include "rnnjit/cache/store.hpp"
#include "rnnjit/version.hpp"
#include "support/hash.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace rnnjit::cache;

namespace {

constexpr int kWorkers = 4;
constexpr int kRounds = 40;
constexpr int kOpsPerRound = 20;
// Rounds stop starting past this, so that the test stays under a minute on two slow cores.
constexpr std::chrono::seconds kBudget{45};

const char* const kOldHash = "old-templates";
const char* const kOldVersion = "0.0.1";

// What the cache must hold: one row per entry (a write replaces the entry's other rows), one
// binary per key.
struct Model {
  std::map<std::string, TuningRecord> entries;  // by entry_name
  std::map<std::string, BinaryRecord> binaries;

  void import(const Exchange& in) {
    for (const auto& r : in.tuning) entries[entry_name(r.key)] = r;
    for (const auto& b : in.binaries) binaries[b.key] = b;
  }
  // `list`'s order: gpu, b, i, h, o, dtype, precision, steps, template_hash.
  std::vector<TuningRecord> tuning(const std::string& gpu_prefix = "") const {
    std::vector<TuningRecord> out;
    for (const auto& [name, r] : entries)
      if (r.key.gpu.rfind(gpu_prefix, 0) == 0) out.push_back(r);
    std::sort(out.begin(), out.end(), [](const TuningRecord& x, const TuningRecord& y) {
      const auto key = [](const TuningRecord& r) {
        const auto& p = r.key.problem;
        return std::tie(r.key.gpu, p.b, p.i, p.h, p.o, p.dtype, p.precision, p.steps, r.key.template_hash);
      };
      return key(x) < key(y);
    });
    return out;
  }
  std::vector<BinaryRecord> binary_list(const std::string& key_prefix = "") const {
    std::vector<BinaryRecord> out;
    for (const auto& [key, b] : binaries)
      if (key.rfind(key_prefix, 0) == 0) out.push_back(b);
    return out;
  }
  // What `prune` removes: rows of other templates or engine versions, then unused binaries.
  void prune() {
    for (auto it = entries.begin(); it != entries.end();)
      it = it->second.key.template_hash != rnnjit::template_hash() || it->second.engine_version != rnnjit::version()
               ? entries.erase(it)
               : std::next(it);
    for (auto it = binaries.begin(); it != binaries.end();) {
      bool used = false;
      for (const auto& [name, r] : entries)
        for (const auto& c : r.candidates)
          used |= ("," + c.binary_key + ",").find("," + it->first + ",") != std::string::npos;
      it = used ? std::next(it) : binaries.erase(it);
    }
  }
};

// One worker's names and random choices.
struct Worker {
  int id;
  std::mt19937_64 rng;
  std::string db, dir;

  std::string gpu_prefix() const { return "W" + std::to_string(id) + " "; }
  std::string key_prefix() const { return "w" + std::to_string(id) + "-"; }
  std::string file(const std::string& name) const { return dir + "/w" + std::to_string(id) + "-" + name; }

  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng); }

  ProblemKey problem() {
    static const std::int64_t sizes[][4] = {{1, 16, 16, 8}, {8, 1024, 256, 128}, {64, 32, 32, 32}};
    const auto& s = sizes[pick(3)];
    return {s[0], s[1], s[2], s[3], chance(0.5) ? "tf32" : "fp32", chance(0.8) ? "f32" : "bf16", steps()};
  }
  // A step, or a sequence of one of the chunk sizes an engine tunes.
  std::int64_t steps() {
    static const std::int64_t chunks[] = {16, 64, 256};
    return chance(0.7) ? 0 : chunks[pick(3)];
  }
  std::string gpu() { return gpu_prefix() + (chance(0.5) ? "GPU-A;cc=9.0" : "GPU-B;cc=8.0"); }
  std::string binary_key() { return key_prefix() + "k" + std::to_string(pick(6)); }

  TuningRecord record() {
    TuningRecord r;
    r.key = {gpu(), problem(), chance(0.75) ? rnnjit::template_hash() : kOldHash};
    r.engine_version = chance(0.85) ? rnnjit::version() : kOldVersion;
    const std::size_t n = 1 + pick(3);
    for (std::size_t c = 0; c < n; ++c) {
      CandidateResult cand{"cfg" + std::to_string(c), std::round(std::uniform_real_distribution<double>(1, 500)(rng) * 100) / 100,
                           "ok", "", chance(0.6) ? binary_key() : ""};
      if (c > 0 && chance(0.25)) {
        static const char* const failed[] = {"compile_failed", "launch_failed", "not_supported"};
        cand = {cand.config, std::numeric_limits<double>::infinity(), failed[pick(3)], "line 1\nline 2\twith a tab", ""};
      }
      r.candidates.push_back(cand);
    }
    const auto& winner = r.candidates[0];  // always ok
    r.winner = winner.config;
    r.winner_us = winner.time_us;
    r.created_at = static_cast<std::int64_t>(std::uniform_int_distribution<std::uint64_t>(0, kMaxCreatedAt)(rng));
    return r;
  }

  BinaryRecord binary() {
    BinaryRecord b;
    b.key = binary_key();
    b.kernel = "gemv.cu i2h";
    b.arch = "sm_90a";
    b.nvrtc_version = "13.0";
    b.symbols = "_Z4gemv\n_Z4more";
    b.cubin.resize(1 + pick(300));
    for (auto& c : b.cubin) c = static_cast<std::uint8_t>(rng());
    b.hash = rnnjit::support::hash_hex(b.cubin.data(), b.cubin.size());
    b.created_at = 1700000000;
    return b;
  }

  // A valid export: each entry and each key once.
  Exchange exchange() {
    Exchange out{"0.1.0", {}, {}};
    std::set<std::string> names, keys;
    for (std::size_t n = pick(5); n > 0; --n)
      if (TuningRecord r = record(); names.insert(entry_name(r.key)).second) out.tuning.push_back(r);
    for (std::size_t n = pick(4); n > 0; --n)
      if (BinaryRecord b = binary(); keys.insert(b.key).second) out.binaries.push_back(b);
    return out;
  }

  // `text`, an export file, made invalid in one of the ways an import must refuse.
  std::string mutate(std::string text) {
    Json j = Json::parse(text);
    auto& t = j["tuning"];
    auto& b = j["binaries"];
    std::vector<int> ways = {0, 1};
    if (!t.empty()) ways.insert(ways.end(), {2, 3, 4, 5, 6, 7, 8, 9, 10, 14});
    if (!b.empty()) ways.insert(ways.end(), {11, 12, 13});
    const int way = ways[pick(ways.size())];
    auto& r = t.empty() ? t : t[pick(t.size())];
    switch (way) {
      case 0: return text.substr(0, pick(text.rfind('}')));  // cut short: never whole JSON
      case 1: j["version"] = 99; break;
      case 2: r.erase(chance(0.5) ? "winner" : "candidates"); break;
      case 3: r["precision"] = "fp64"; break;
      case 4: r["shape"][pick(4)] = std::vector<Json>{0, -3, kMaxDim + 1, 8.5}[pick(4)]; break;
      case 5: r["candidates"][0]["time_us"] = -1.5; break;
      case 6: r["created_at"] = kMaxCreatedAt + 1 + static_cast<std::int64_t>(pick(1000)); break;
      case 7: r["gpu"] = r["gpu"].get<std::string>() + "\x1b[2J"; break;
      case 8: t.push_back(r); break;  // an entry twice
      case 9: r["winner"] = "cfg9"; break;
      case 10: r["winner_us"] = nullptr; break;
      case 11: b[pick(b.size())]["hash"] = "0000"; break;
      case 12: b[pick(b.size())]["cubin_base64"] = "@@@@"; break;
      case 13: b.push_back(b[pick(b.size())]); break;
      case 14: r["steps"] = std::vector<Json>{-1, kMaxSteps + 1, 2.5, "64"}[pick(4)]; break;
    }
    return j.dump(1);
  }
};

bool matches(const TuningRecord& r, const Filter& f) {
  const auto& p = r.key.problem;
  return (!f.gpu || r.key.gpu.find(*f.gpu) != std::string::npos) &&
         (!f.shape || (p.b == f.shape->b && p.i == f.shape->i && p.h == f.shape->h && p.o == f.shape->o)) &&
         (!f.precision || p.precision == *f.precision) && (!f.dtype || p.dtype == *f.dtype) &&
         (!f.steps || p.steps == *f.steps);
}

std::string records_json(const std::vector<TuningRecord>& v) { return Json::parse(to_json(v)).dump(); }

// One worker's round, in a child process: `ops` random commands, each checked against `model`,
// which it keeps up to date. Returns what went wrong, one line each.
std::string work(Worker& w, Model& model, int ops, bool first_import) {
  std::string problems;
  const auto fail = [&](int op, const std::string& what, const test::Result& r) {
    problems += "worker " + std::to_string(w.id) + " op " + std::to_string(op) + ": " + what + " (exit " +
                std::to_string(r.code) + "; stdout: " + r.out.substr(0, 300) + "; stderr: " + r.err + ")\n";
  };
  const auto tool = [&](std::vector<std::string> args, test::Result& r) {
    args.insert(args.begin(), {"--cache", w.db});
    return test::spawn(RNNJIT_CACHE_TOOL, args, {}, r);
  };
  for (int op = 0; op < ops && problems.empty(); ++op) {
    const double dice = op == 0 && first_import ? 0 : std::uniform_real_distribution<double>(0, 1)(w.rng);
    test::Result r;
    if (dice < 0.3) {  // import a valid file
      const Exchange in = w.exchange();
      const std::string file = w.file("import.json");
      write_exchange(file, in, w.db);
      if (const auto why = tool({"import", file}, r); !why.empty() || r.code != 0) {
        fail(op, "import of a valid file failed " + why, r);
        continue;
      }
      model.import(in);
    } else if (dice < 0.5) {  // import an invalid file: refused, nothing changes
      const std::string file = w.file("bad.json");
      write_exchange(file, w.exchange(), w.db);
      const std::string text = w.mutate(test::read_file(file));
      std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
      if (const auto why = tool({"import", file}, r); !why.empty() || r.code != 1)
        fail(op, "import of an invalid file was not refused " + why + "; the file: " + text.substr(0, 400), r);
    } else if (dice < 0.65) {  // rm with filters within this worker's names
      Filter f;
      std::vector<std::string> args = {"rm", "--gpu"};
      f.gpu = w.chance(0.5) ? w.gpu_prefix() : w.gpu();
      args.push_back(*f.gpu);
      if (w.chance(0.5)) {
        const ProblemKey p = w.problem();
        f.shape = p;
        args.insert(args.end(), {"--shape", shape_text(p)});
      }
      if (w.chance(0.4)) {
        f.precision = w.chance(0.5) ? "tf32" : "fp32";
        args.insert(args.end(), {"--precision", *f.precision});
      }
      if (w.chance(0.3)) {
        f.dtype = w.chance(0.5) ? "f32" : "bf16";
        args.insert(args.end(), {"--dtype", *f.dtype});
      }
      if (w.chance(0.3)) {
        f.steps = w.steps();
        args.insert(args.end(), {"--steps", std::to_string(*f.steps)});
      }
      std::int64_t n = 0;
      for (auto it = model.entries.begin(); it != model.entries.end();)
        it = matches(it->second, f) ? (++n, model.entries.erase(it)) : std::next(it);
      const std::string expect = "removed " + std::to_string(n) + (n == 1 ? " entry\n" : " entries\n");
      if (const auto why = tool(args, r); !why.empty() || r.code != 0 || r.out != expect)
        fail(op, "rm did not say '" + expect + "' " + why, r);
    } else if (dice < 0.75) {  // list this worker's entries
      if (const auto why = tool({"list", "--json", "--gpu", w.gpu_prefix()}, r); !why.empty() || r.code != 0) {
        fail(op, "list failed " + why, r);
        continue;
      }
      const std::string expect = records_json(model.tuning(w.gpu_prefix()));
      Json listed = Json::parse(r.out);
      for (Json& e : listed) e.erase("source");  // list's, not the record's: the model has none
      if (listed.dump() != expect) fail(op, "list differs from the model: " + expect.substr(0, 400), r);
    } else if (dice < 0.85) {  // export everything, compare this worker's part
      const std::string file = w.file("export.json");
      if (const auto why = tool({"export", file, "--with-binaries"}, r); !why.empty() || r.code != 0) {
        fail(op, "export failed " + why, r);
        continue;
      }
      const Exchange out = read_exchange(file);
      std::vector<TuningRecord> own;
      for (const auto& t : out.tuning)
        if (t.key.gpu.rfind(w.gpu_prefix(), 0) == 0) own.push_back(t);
      std::vector<BinaryRecord> own_binaries;
      for (const auto& b : out.binaries)
        if (b.key.rfind(w.key_prefix(), 0) == 0) own_binaries.push_back(b);
      if (own != model.tuning(w.gpu_prefix())) fail(op, "the export's entries differ from the model", r);
      if (own_binaries != model.binary_list(w.key_prefix())) fail(op, "the export's binaries differ from the model", r);
    } else if (dice < 0.9) {
      if (const auto why = tool({"vacuum"}, r); !why.empty() || r.code != 0) fail(op, "vacuum failed " + why, r);
    } else if (dice < 0.95) {
      if (const auto why = tool({"stats", "--json"}, r); !why.empty() || r.code != 0) fail(op, "stats failed " + why, r);
    } else {
      if (const auto why = tool({"verify"}, r); !why.empty() || r.code != 0 || r.out != "ok\n")
        fail(op, "verify failed " + why, r);
    }
  }
  return problems;
}

}  // namespace

TEST_CASE("random imports, mutated imports and commands from several processes keep the cache equal to a model",
          "[cache]") {
  test::TempDir dir;
  const std::string db = dir.file("cache.sqlite");
  const std::uint64_t seed = 0x726e6e6aULL * 1000003 + Catch::rngSeed();
  INFO("seed " << seed << " (Catch --rng-seed " << Catch::rngSeed() << ")");
  std::vector<Model> models(kWorkers);
  std::mt19937_64 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  int rounds = 0;
  for (int round = 0; round < kRounds && std::chrono::steady_clock::now() - start < kBudget; ++round, ++rounds) {
    INFO("round " << round);
    std::vector<pid_t> kids;
    for (int w = 0; w < kWorkers; ++w) {
      const std::uint64_t worker_seed = rng();
      const pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        Worker worker{w, std::mt19937_64(worker_seed), db, dir.path.string()};
        std::string problems;
        try {
          // Round 0 starts with an import from every worker: the file is made by all at once.
          problems = work(worker, models[static_cast<std::size_t>(w)], kOpsPerRound, round == 0);
          const Model& m = models[static_cast<std::size_t>(w)];
          write_exchange(worker.file("model.json"), {"", m.tuning(), m.binary_list()}, db);
        } catch (const std::exception& e) {
          problems += "worker " + std::to_string(w) + ": " + e.what() + "\n";
        }
        std::ofstream(worker.file("problems.txt"), std::ios::trunc) << problems;
        _exit(problems.empty() ? 0 : 1);
      }
      kids.push_back(pid);
    }
    for (int w = 0; w < kWorkers; ++w) {
      int status = 0;
      REQUIRE(waitpid(kids[static_cast<std::size_t>(w)], &status, 0) == kids[static_cast<std::size_t>(w)]);
      const std::string prefix = dir.file(("w" + std::to_string(w) + "-").c_str());
      INFO(test::read_file(prefix + "problems.txt"));
      REQUIRE(WIFEXITED(status));
      REQUIRE(WEXITSTATUS(status) == 0);
      models[static_cast<std::size_t>(w)] = Model{};
      models[static_cast<std::size_t>(w)].import(read_exchange(prefix + "model.json"));
    }
    // Between rounds, alone: prune, which reaches every worker's rows.
    if (std::bernoulli_distribution(0.5)(rng)) {
      const auto r = test::run(RNNJIT_CACHE_TOOL, {"--cache", db, "prune"});
      INFO(r.err);
      REQUIRE(r.code == 0);
      Model all;
      for (const auto& m : models) all.import({"", m.tuning(), m.binary_list()});
      const std::size_t entries = all.entries.size(), binaries = all.binaries.size();
      all.prune();
      const std::size_t gone_e = entries - all.entries.size(), gone_b = binaries - all.binaries.size();
      CHECK(r.out == "removed " + std::to_string(gone_e) + (gone_e == 1 ? " stale entry" : " stale entries") +
                         " and " + std::to_string(gone_b) + (gone_b == 1 ? " unused binary\n" : " unused binaries\n"));
      for (int w = 0; w < kWorkers; ++w) {
        Model& m = models[static_cast<std::size_t>(w)];
        m = Model{};
        const std::string gpu = "W" + std::to_string(w) + " ", key = "w" + std::to_string(w) + "-";
        m.import({"", all.tuning(gpu), all.binary_list(key)});
      }
    }
    const auto verify = test::run(RNNJIT_CACHE_TOOL, {"--cache", db, "verify"});
    CHECK(verify.code == 0);
    CHECK(verify.out == "ok\n");
    Model all;
    for (const auto& m : models) all.import({"", m.tuning(), m.binary_list()});
    Store s(db, Mode::ReadOnlyStrict);
    CHECK(s.list_tuning() == all.tuning());
    CHECK(s.list_binaries() == all.binary_list());
  }
  CHECK(rounds >= 2);
}
