// rnnjit-cache: inspects and maintains the rnnjit tuning cache. Needs no GPU.
//
//   rnnjit-cache [--cache PATH] path|list|show|stats|export|import|rm|prune|verify|vacuum
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/rnnjit.hpp"

namespace {

using Json = nlohmann::json;
using namespace rnnjit::cache;

constexpr int kFormatVersion = 1;  // of the export file; bump when its layout changes

// Exit codes: 0 success, 1 failure, 2 bad usage.
struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string shape_text(const ProblemKey& p) {
  return std::to_string(p.b) + "," + std::to_string(p.i) + "," + std::to_string(p.h) + "," + std::to_string(p.o);
}

std::string iso_time(std::int64_t t) {
  char buf[32];
  const std::time_t tt = static_cast<std::time_t>(t);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buf;
}

bool stale(const TuningRecord& r) {
  return r.key.template_hash != rnnjit::template_hash() || r.engine_version != rnnjit::version();
}

// JSON of records: times of failed candidates are null.
Json to_json(const TuningRecord& r) {
  Json c = Json::array();
  for (const auto& x : r.candidates)
    c.push_back({{"config", x.config},
                 {"time_us", std::isfinite(x.time_us) ? Json(x.time_us) : Json()},
                 {"disposition", x.disposition},
                 {"message", x.message},
                 {"binary_key", x.binary_key}});
  return {{"gpu", r.key.gpu},       {"shape", {r.key.problem.b, r.key.problem.i, r.key.problem.h, r.key.problem.o}},
          {"precision", r.key.problem.precision}, {"template_hash", r.key.template_hash},
          {"engine_version", r.engine_version},   {"winner", r.winner},
          {"winner_us", r.winner_us},             {"created_at", r.created_at},
          {"candidates", c}};
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const std::vector<std::uint8_t>& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const unsigned v = in[i] << 16 | (i + 1 < in.size() ? in[i + 1] << 8 : 0) | (i + 2 < in.size() ? in[i + 2] : 0);
    out += kB64[v >> 18 & 63];
    out += kB64[v >> 12 & 63];
    out += i + 1 < in.size() ? kB64[v >> 6 & 63] : '=';
    out += i + 2 < in.size() ? kB64[v & 63] : '=';
  }
  return out;
}

std::vector<std::uint8_t> unbase64(const std::string& in) {
  if (in.size() % 4 != 0) throw std::runtime_error("base64 length is not a multiple of 4");
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    unsigned v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      const char* p = std::strchr(kB64, c);
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        v <<= 6;
      } else if (c != '\0' && p && !pad) {
        v = v << 6 | static_cast<unsigned>(p - kB64);
      } else {
        throw std::runtime_error("invalid base64 character");
      }
    }
    out.push_back(v >> 16 & 255);
    if (pad < 2) out.push_back(v >> 8 & 255);
    if (pad < 1) out.push_back(v & 255);
  }
  return out;
}

TuningRecord tuning_from_json(const Json& j) {
  TuningRecord r;
  r.key.gpu = j.at("gpu").get<std::string>();
  const auto& s = j.at("shape");
  if (!s.is_array() || s.size() != 4) throw std::runtime_error("shape must be [B, I, H, O]");
  r.key.problem = {s[0].get<std::int64_t>(), s[1].get<std::int64_t>(), s[2].get<std::int64_t>(),
                   s[3].get<std::int64_t>(), j.at("precision").get<std::string>()};
  r.key.template_hash = j.at("template_hash").get<std::string>();
  r.engine_version = j.at("engine_version").get<std::string>();
  r.winner = j.at("winner").get<std::string>();
  r.winner_us = j.at("winner_us").get<double>();
  r.created_at = j.at("created_at").get<std::int64_t>();
  for (const auto& c : j.at("candidates")) {
    const auto& t = c.at("time_us");
    r.candidates.push_back({c.at("config").get<std::string>(),
                            t.is_null() ? std::numeric_limits<double>::infinity() : t.get<double>(),
                            c.at("disposition").get<std::string>(), c.at("message").get<std::string>(),
                            c.at("binary_key").get<std::string>()});
  }
  return r;
}

BinaryRecord binary_from_json(const Json& j) {
  return {j.at("key").get<std::string>(),    j.at("kernel").get<std::string>(),
          j.at("arch").get<std::string>(),   j.at("nvrtc_version").get<std::string>(),
          j.at("symbols").get<std::string>(), unbase64(j.at("cubin_base64").get<std::string>()),
          j.at("hash").get<std::string>(),   j.at("created_at").get<std::int64_t>()};
}

Filter make_filter(const std::string& gpu, const std::string& shape, const std::string& precision) {
  Filter f;
  if (!gpu.empty()) f.gpu = gpu;
  if (!precision.empty()) f.precision = precision;
  if (!shape.empty()) {
    ProblemKey p;
    char tail = 0;
    if (std::sscanf(shape.c_str(), "%ld,%ld,%ld,%ld%c", &p.b, &p.i, &p.h, &p.o, &tail) != 4)
      throw Usage("--shape '" + shape + "' is not B,I,H,O");
    f.shape = p;
  }
  return f;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string fmt(double v) {
  if (!std::isfinite(v)) return "failed";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rnnjit-cache: inspect and maintain the rnnjit tuning cache"};
  app.require_subcommand(1);
  std::string cache;
  app.add_option("--cache", cache, "cache file (default: $RNNJIT_CACHE, else the XDG cache)");
  app.set_version_flag("--version", rnnjit::version());

  std::string gpu, shape, precision, key, file;
  bool json = false, with_binaries = false, all = false;
  auto add_filters = [&](CLI::App* c) {
    c->add_option("--gpu", gpu, "GPU key contains this");
    c->add_option("--shape", shape, "problem B,I,H,O");
    c->add_option("--precision", precision, "fp32 or tf32");
  };
  auto* path_cmd = app.add_subcommand("path", "print the cache file in use");
  auto* list_cmd = app.add_subcommand("list", "tuned problems");
  add_filters(list_cmd);
  list_cmd->add_flag("--json", json, "JSON instead of a table");
  auto* show_cmd = app.add_subcommand("show", "every field of one entry");
  show_cmd->add_option("KEY", key, "GPU/B,I,H,O/PRECISION, or a row number of list")->required();
  show_cmd->add_flag("--json", json, "JSON");
  auto* stats_cmd = app.add_subcommand("stats", "entries, binaries, bytes, per GPU");
  stats_cmd->add_flag("--json", json, "JSON");
  auto* export_cmd = app.add_subcommand("export", "write the cache as JSON");
  export_cmd->add_option("FILE", file, "output file")->required();
  export_cmd->add_flag("--with-binaries", with_binaries, "include the compiled binaries");
  auto* import_cmd = app.add_subcommand("import", "merge an export file; all records or none");
  import_cmd->add_option("FILE", file, "input file")->required()->check(CLI::ExistingFile);
  auto* rm_cmd = app.add_subcommand("rm", "remove tuned entries");
  add_filters(rm_cmd);
  rm_cmd->add_flag("--all", all, "remove every entry");
  auto* prune_cmd = app.add_subcommand("prune", "drop stale entries and unused binaries");
  auto* verify_cmd = app.add_subcommand("verify", "integrity check; exit 1 on any problem");
  auto* vacuum_cmd = app.add_subcommand("vacuum", "compact the file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  try {
    const std::string where = resolve_path(cache.empty() ? std::nullopt : std::optional<std::string>(cache));
    if (path_cmd->parsed()) {
      std::printf("%s\n", where.c_str());
      return 0;
    }
    if (where == "off" || where == ":memory:") throw std::runtime_error("the cache is off (RNNJIT_CACHE=off)");
    const bool writes = import_cmd->parsed() || rm_cmd->parsed() || prune_cmd->parsed() || vacuum_cmd->parsed();
    Store store(where, writes ? Mode::Strict : Mode::ReadOnlyStrict);

    if (list_cmd->parsed()) {
      const auto rows = store.list_tuning(make_filter(gpu, shape, precision));
      if (json) {
        Json out = Json::array();
        for (const auto& r : rows) out.push_back(to_json(r));
        std::cout << out.dump(2) << "\n";
        return 0;
      }
      std::vector<std::vector<std::string>> table = {
          {"#", "gpu", "B,I,H,O", "prec", "winner", "winner us", "cands", "engine", "stale", "created"}};
      int n = 0;
      for (const auto& r : rows)
        table.push_back({std::to_string(++n), r.key.gpu.substr(0, r.key.gpu.find(';')), shape_text(r.key.problem),
                         r.key.problem.precision, r.winner, fmt(r.winner_us), std::to_string(r.candidates.size()),
                         r.engine_version, stale(r) ? "yes" : "no", iso_time(r.created_at)});
      print_table(table);
      std::printf("%d entr%s in %s\n", n, n == 1 ? "y" : "ies", where.c_str());
    } else if (show_cmd->parsed()) {
      const auto rows = store.list_tuning();
      const TuningRecord* found = nullptr;
      char* end = nullptr;
      const long index = std::strtol(key.c_str(), &end, 10);
      if (*end == '\0' && index >= 1 && index <= static_cast<long>(rows.size())) found = &rows[index - 1];
      for (const auto& r : rows)
        if (!found && r.key.gpu + "/" + shape_text(r.key.problem) + "/" + r.key.problem.precision == key) found = &r;
      if (!found) throw std::runtime_error("no entry '" + key + "' (see rnnjit-cache list)");
      if (json) {
        std::cout << to_json(*found).dump(2) << "\n";
        return 0;
      }
      std::printf("gpu             %s\nshape B,I,H,O   %s\nprecision       %s\ntemplate hash   %s%s\n"
                  "engine version  %s%s\nwinner          %s\nwinner us       %s\ncreated         %s\ncandidates:\n",
                  found->key.gpu.c_str(), shape_text(found->key.problem).c_str(), found->key.problem.precision.c_str(),
                  found->key.template_hash.c_str(), found->key.template_hash == rnnjit::template_hash() ? "" : " (stale)",
                  found->engine_version.c_str(), found->engine_version == rnnjit::version() ? "" : " (stale)",
                  found->winner.c_str(), fmt(found->winner_us).c_str(), iso_time(found->created_at).c_str());
      std::vector<std::vector<std::string>> table = {{"  config", "us", "disposition", "message"}};
      for (const auto& c : found->candidates)
        table.push_back({"  " + c.config, fmt(c.time_us), c.disposition, c.message.substr(0, c.message.find('\n'))});
      print_table(table);
    } else if (stats_cmd->parsed()) {
      const Stats st = store.stats();
      if (json) {
        Json per = Json::object();
        for (const auto& g : st.per_gpu) per[g.gpu] = g.entries;
        std::cout << Json{{"path", where}, {"entries", st.entries}, {"binaries", st.binaries},
                          {"binary_bytes", st.binary_bytes}, {"file_bytes", st.file_bytes}, {"per_gpu", per}}
                         .dump(2)
                  << "\n";
        return 0;
      }
      std::printf("path          %s\nentries       %lld\nbinaries      %lld (%lld bytes)\nfile          %lld bytes\n",
                  where.c_str(), (long long)st.entries, (long long)st.binaries, (long long)st.binary_bytes,
                  (long long)st.file_bytes);
      for (const auto& g : st.per_gpu) std::printf("  %-50s %lld\n", g.gpu.c_str(), (long long)g.entries);
    } else if (export_cmd->parsed()) {
      Json out{{"format", "rnnjit-cache"}, {"version", kFormatVersion}, {"engine_version", rnnjit::version()}};
      out["tuning"] = Json::array();
      for (const auto& r : store.list_tuning()) out["tuning"].push_back(to_json(r));
      out["binaries"] = Json::array();
      if (with_binaries)
        for (const auto& b : store.list_binaries())
          out["binaries"].push_back({{"key", b.key}, {"kernel", b.kernel}, {"arch", b.arch},
                                     {"nvrtc_version", b.nvrtc_version}, {"symbols", b.symbols},
                                     {"cubin_base64", base64(b.cubin)}, {"hash", b.hash}, {"created_at", b.created_at}});
      const std::string tmp = file + ".tmp";
      {
        std::ofstream f(tmp);
        f << out.dump(1) << "\n";
        if (!f) throw std::runtime_error("cannot write " + tmp);
      }
      std::filesystem::rename(tmp, file);
      std::printf("exported %zu entries and %zu binaries to %s\n", out["tuning"].size(), out["binaries"].size(),
                  file.c_str());
    } else if (import_cmd->parsed()) {
      std::ifstream f(file);
      Json in;
      try {
        in = Json::parse(f);
      } catch (const Json::exception& e) {
        throw std::runtime_error(file + " is not JSON: " + e.what());
      }
      if (!in.is_object() || in.value("format", "") != "rnnjit-cache" || in.value("version", 0) != kFormatVersion)
        throw std::runtime_error(file + " is not an rnnjit-cache export of version " + std::to_string(kFormatVersion));
      std::vector<TuningRecord> tuning;
      std::vector<BinaryRecord> binaries;
      // Every record is decoded before anything is written: one bad record rejects the file.
      const auto decode = [&](const char* section, auto&& one) {
        if (!in.contains(section) || !in[section].is_array())
          throw std::runtime_error(file + ": '" + section + "' must be a list");
        std::size_t i = 0;
        for (const auto& j : in[section]) {
          try {
            one(j);
          } catch (const std::exception& e) {
            throw std::runtime_error(file + ": " + section + " record " + std::to_string(i) + ": " + e.what());
          }
          ++i;
        }
      };
      decode("tuning", [&](const Json& j) { tuning.push_back(tuning_from_json(j)); });
      decode("binaries", [&](const Json& j) { binaries.push_back(binary_from_json(j)); });
      store.import_records(tuning, binaries);
      std::printf("imported %zu entries and %zu binaries into %s\n", tuning.size(), binaries.size(), where.c_str());
    } else if (rm_cmd->parsed()) {
      if (gpu.empty() && shape.empty() && precision.empty() && !all)
        throw Usage("rm needs a filter (--gpu, --shape, --precision) or --all");
      const auto n = store.remove_tuning(make_filter(gpu, shape, precision));
      std::printf("removed %lld entr%s\n", (long long)n, n == 1 ? "y" : "ies");
    } else if (prune_cmd->parsed()) {
      const auto r = store.prune(rnnjit::template_hash(), rnnjit::version());
      std::printf("removed %lld stale entr%s and %lld unused binar%s\n", (long long)r.stale_entries,
                  r.stale_entries == 1 ? "y" : "ies", (long long)r.orphan_binaries, r.orphan_binaries == 1 ? "y" : "ies");
    } else if (verify_cmd->parsed()) {
      const auto problems = store.verify();
      for (const auto& p : problems) std::printf("%s\n", p.c_str());
      if (!problems.empty()) return 1;
      std::printf("ok\n");
    } else if (vacuum_cmd->parsed()) {
      store.vacuum();
      std::printf("vacuumed %s\n", where.c_str());
    }
    return 0;
  } catch (const Usage& e) {
    std::fprintf(stderr, "rnnjit-cache: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnnjit-cache: %s\n", e.what());
    return 1;
  }
}
