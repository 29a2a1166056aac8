// rnnjit-cache: inspects and maintains the rnnjit tuning cache. Needs no GPU.
//
//   rnnjit-cache [--cache PATH] path|list|show|stats|export|import|rm|prune|verify|vacuum
//
// Exit codes: 0 success, 1 failure (a missing or damaged cache, a bad import file, a problem
// found by verify), 2 bad usage. The cache is opened strictly: a damaged file is reported,
// never moved aside or replaced.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/error.hpp"
#include "rnnjit/version.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace rnnjit::cache;

constexpr int kFormatVersion = 1;  // of the export file; bump when its layout changes
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

/// Bad usage found after parsing (exit 2).
struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string shape_text(const ProblemKey& p) {
  return std::to_string(p.b) + "," + std::to_string(p.i) + "," + std::to_string(p.h) + "," + std::to_string(p.o);
}

std::string entry_key(const TuningRecord& r) {
  return r.key.gpu + "/" + shape_text(r.key.problem) + "/" + r.key.problem.precision;
}

std::string iso_time(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  char buf[32];
  if (!gmtime_r(&tt, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return std::to_string(t);
  return buf;
}

std::string micros(double v) {
  if (!std::isfinite(v)) return "failed";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

bool stale(const TuningRecord& r) {
  return r.key.template_hash != rnnjit::template_hash() || r.engine_version != rnnjit::version();
}

// JSON numbers cannot be infinite: a failed time is null.
Json time_json(double us) { return std::isfinite(us) ? Json(us) : Json(); }

Json to_json(const TuningRecord& r) {
  Json candidates = Json::array();
  for (const auto& c : r.candidates)
    candidates.push_back({{"config", c.config},
                          {"time_us", time_json(c.time_us)},
                          {"disposition", c.disposition},
                          {"message", c.message},
                          {"binary_key", c.binary_key}});
  const auto& p = r.key.problem;
  return {{"gpu", r.key.gpu},
          {"shape", {p.b, p.i, p.h, p.o}},
          {"precision", p.precision},
          {"template_hash", r.key.template_hash},
          {"engine_version", r.engine_version},
          {"winner", r.winner},
          {"winner_us", time_json(r.winner_us)},
          {"created_at", r.created_at},
          {"candidates", candidates}};
}

const char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const std::vector<std::uint8_t>& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const unsigned v = unsigned(in[i]) << 16 | (i + 1 < in.size() ? unsigned(in[i + 1]) << 8 : 0u) |
                       (i + 2 < in.size() ? unsigned(in[i + 2]) : 0u);
    out += kBase64[v >> 18 & 63];
    out += kBase64[v >> 12 & 63];
    out += i + 1 < in.size() ? kBase64[v >> 6 & 63] : '=';
    out += i + 2 < in.size() ? kBase64[v & 63] : '=';
  }
  return out;
}

// Strict: length a multiple of 4, padding only at the end.
std::optional<std::vector<std::uint8_t>> unbase64(const std::string& in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    unsigned v = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      const char* p = c ? std::strchr(kBase64, c) : nullptr;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
        v <<= 6;
      } else if (p && pad == 0) {
        v = v << 6 | static_cast<unsigned>(p - kBase64);
      } else {
        return std::nullopt;
      }
    }
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    if (pad < 2) out.push_back(static_cast<std::uint8_t>(v >> 8));
    if (pad < 1) out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

// A malformed field of an import file; the caller adds which record.
struct BadField : std::runtime_error {
  BadField(const std::string& field, const std::string& why) : std::runtime_error("field '" + field + "' " + why) {}
};

const Json& member(const Json& j, const std::string& name, const std::string& path) {
  if (!j.is_object()) throw BadField(path, "must be an object");
  const auto it = j.find(name);
  if (it == j.end()) throw BadField(path.empty() ? name : path + "." + name, "is missing");
  return *it;
}

std::string text_field(const Json& j, const std::string& name, const std::string& path = "") {
  const Json& v = member(j, name, path);
  if (!v.is_string()) throw BadField(path.empty() ? name : path + "." + name, "must be a string");
  return v.get<std::string>();
}

std::int64_t int_field(const Json& j, const std::string& name, const std::string& path = "") {
  const Json& v = member(j, name, path);
  if (!v.is_number_integer()) throw BadField(path.empty() ? name : path + "." + name, "must be an integer");
  return v.get<std::int64_t>();
}

// A time in microseconds; null is a failed candidate (+infinity).
double time_field(const Json& j, const std::string& name, const std::string& path = "") {
  const Json& v = member(j, name, path);
  if (v.is_null()) return std::numeric_limits<double>::infinity();
  if (!v.is_number()) throw BadField(path.empty() ? name : path + "." + name, "must be a number or null");
  return v.get<double>();
}

TuningRecord tuning_from_json(const Json& j) {
  TuningRecord r;
  r.key.gpu = text_field(j, "gpu");
  const Json& shape = member(j, "shape", "");
  if (!shape.is_array() || shape.size() != 4)
    throw BadField("shape", "must be a list of four integers [B, I, H, O]");
  for (const auto& d : shape)
    if (!d.is_number_integer()) throw BadField("shape", "must be a list of four integers [B, I, H, O]");
  r.key.problem = {shape[0].get<std::int64_t>(), shape[1].get<std::int64_t>(), shape[2].get<std::int64_t>(),
                   shape[3].get<std::int64_t>(), text_field(j, "precision")};
  r.key.template_hash = text_field(j, "template_hash");
  r.engine_version = text_field(j, "engine_version");
  r.winner = text_field(j, "winner");
  r.winner_us = time_field(j, "winner_us");
  r.created_at = int_field(j, "created_at");
  const Json& candidates = member(j, "candidates", "");
  if (!candidates.is_array()) throw BadField("candidates", "must be a list");
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Json& c = candidates[i];
    const std::string at = "candidates[" + std::to_string(i) + "]";
    r.candidates.push_back({text_field(c, "config", at), time_field(c, "time_us", at), text_field(c, "disposition", at),
                            text_field(c, "message", at), text_field(c, "binary_key", at)});
  }
  return r;
}

BinaryRecord binary_from_json(const Json& j) {
  BinaryRecord b;
  b.key = text_field(j, "key");
  b.kernel = text_field(j, "kernel");
  b.arch = text_field(j, "arch");
  b.nvrtc_version = text_field(j, "nvrtc_version");
  b.symbols = text_field(j, "symbols");
  auto cubin = unbase64(text_field(j, "cubin_base64"));
  if (!cubin) throw BadField("cubin_base64", "is not valid base64");
  b.cubin = std::move(*cubin);
  b.hash = text_field(j, "hash");
  b.created_at = int_field(j, "created_at");
  return b;
}

Json binary_json(const BinaryRecord& b) {
  return {{"key", b.key},   {"kernel", b.kernel},
          {"arch", b.arch}, {"nvrtc_version", b.nvrtc_version},
          {"symbols", b.symbols}, {"cubin_base64", base64(b.cubin)},
          {"hash", b.hash}, {"created_at", b.created_at}};
}

std::optional<std::int64_t> positive(const std::string& text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

// "B,I,H,O" with four positive integers.
std::optional<ProblemKey> parse_shape(const std::string& text) {
  std::int64_t dims[4];
  std::size_t start = 0;
  for (int k = 0; k < 4; ++k) {
    const std::size_t comma = k < 3 ? text.find(',', start) : text.size();
    if (comma == std::string::npos) return std::nullopt;
    const auto v = positive(text.substr(start, comma - start));
    if (!v) return std::nullopt;
    dims[k] = *v;
    start = comma + 1;
  }
  return ProblemKey{dims[0], dims[1], dims[2], dims[3], ""};
}

struct FilterArgs {
  std::string gpu, shape, precision;
  bool any() const { return !gpu.empty() || !shape.empty() || !precision.empty(); }
  Filter filter() const {
    Filter f;
    if (!gpu.empty()) f.gpu = gpu;
    if (!precision.empty()) f.precision = precision;
    if (!shape.empty()) {
      f.shape = parse_shape(shape);
      if (!f.shape) throw Usage("--shape '" + shape + "' is not B,I,H,O (four positive integers)");
    }
    return f;
  }
};

// Terminal columns of UTF-8 text: one per code point (enough for "µs" and GPU names).
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], width(r[i]));
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - width(r[i]) + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);  // an empty last cell leaves padding
    std::printf("%s\n", line.c_str());
  }
}

const char* plural(std::int64_t n, const char* one, const char* many) { return n == 1 ? one : many; }

// The row numbers of `list` (1-based, over the whole cache) that `show` accepts.
std::map<std::string, std::size_t> row_numbers(const std::vector<TuningRecord>& all) {
  std::map<std::string, std::size_t> out;
  for (std::size_t i = 0; i < all.size(); ++i) out[entry_key(all[i]) + "/" + all[i].key.template_hash] = i + 1;
  return out;
}

int list(Store& store, const Filter& filter, bool filtered, bool json, const std::string& where) {
  const auto rows = store.list_tuning(filter);
  if (json) {
    Json out = Json::array();
    for (const auto& r : rows) out.push_back(to_json(r));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  const auto numbers = row_numbers(filtered ? store.list_tuning() : rows);
  std::vector<std::vector<std::string>> table = {{"#", "gpu", "B,I,H,O", "precision", "winner", "winner µs",
                                                  "candidates", "engine", "stale", "created"}};
  for (const auto& r : rows)
    table.push_back({std::to_string(numbers.at(entry_key(r) + "/" + r.key.template_hash)), r.key.gpu,
                     shape_text(r.key.problem), r.key.problem.precision, r.winner, micros(r.winner_us),
                     std::to_string(r.candidates.size()), r.engine_version, stale(r) ? "yes" : "no",
                     iso_time(r.created_at)});
  if (!rows.empty()) print_table(table);
  std::printf("%zu %s in %s\n", rows.size(), plural(static_cast<std::int64_t>(rows.size()), "entry", "entries"),
              where.c_str());
  return 0;
}

int show(Store& store, const std::string& key, bool json) {
  const auto rows = store.list_tuning();
  const TuningRecord* found = nullptr;
  if (const auto n = positive(key)) {
    if (*n <= static_cast<std::int64_t>(rows.size())) found = &rows[static_cast<std::size_t>(*n - 1)];
  } else {
    for (const auto& r : rows)
      if (entry_key(r) == key) found = &r;
  }
  if (!found) throw std::runtime_error("no entry '" + key + "' (see rnnjit-cache list)");
  if (json) {
    std::cout << to_json(*found).dump(2) << "\n";
    return 0;
  }
  const TuningRecord& r = *found;
  print_table({{"gpu", r.key.gpu},
               {"shape B,I,H,O", shape_text(r.key.problem)},
               {"precision", r.key.problem.precision},
               {"template hash", r.key.template_hash + (r.key.template_hash == rnnjit::template_hash() ? "" : " (stale)")},
               {"engine version", r.engine_version + (r.engine_version == rnnjit::version() ? "" : " (stale)")},
               {"winner", r.winner},
               {"winner µs", micros(r.winner_us)},
               {"created", iso_time(r.created_at)}});
  std::printf("\n");
  std::vector<std::vector<std::string>> table = {{"rank", "config", "µs", "disposition", "binaries", "message"}};
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const auto& c = r.candidates[i];
    const bool multi_line = c.message.find('\n') != std::string::npos;
    table.push_back({std::to_string(i + 1), c.config, micros(c.time_us), c.disposition,
                     c.binary_key.empty() ? "-" : c.binary_key,
                     c.message.substr(0, c.message.find('\n')) + (multi_line ? " [...]" : "")});
  }
  print_table(table);
  // Compiler logs run to many lines: in full below the table, not in it.
  for (std::size_t i = 0; i < r.candidates.size(); ++i)
    if (r.candidates[i].message.find('\n') != std::string::npos)
      std::printf("\nmessage of candidate %zu (%s):\n%s\n", i + 1, r.candidates[i].config.c_str(),
                  r.candidates[i].message.c_str());
  return 0;
}

int stats(Store& store, bool json, const std::string& where) {
  const Stats st = store.stats();
  if (json) {
    Json per = Json::object();
    for (const auto& g : st.per_gpu) per[g.gpu] = g.entries;
    std::cout << Json{{"path", where},
                      {"entries", st.entries},
                      {"binaries", st.binaries},
                      {"binary_bytes", st.binary_bytes},
                      {"file_bytes", st.file_bytes},
                      {"per_gpu", per}}
                     .dump(2)
              << "\n";
    return 0;
  }
  print_table({{"path", where},
               {"entries", std::to_string(st.entries)},
               {"binaries", std::to_string(st.binaries) + " (" + std::to_string(st.binary_bytes) + " bytes)"},
               {"file", std::to_string(st.file_bytes) + " bytes"}});
  if (st.per_gpu.empty()) return 0;
  std::vector<std::vector<std::string>> table = {{"entries", "gpu"}};
  for (const auto& g : st.per_gpu) table.push_back({std::to_string(g.entries), g.gpu});
  std::printf("\n");
  print_table(table);
  return 0;
}

int export_file(Store& store, const std::string& file, bool with_binaries) {
  Json out{{"format", "rnnjit-cache"}, {"version", kFormatVersion}, {"engine_version", rnnjit::version()}};
  out["tuning"] = Json::array();
  for (const auto& r : store.list_tuning()) out["tuning"].push_back(to_json(r));
  out["binaries"] = Json::array();
  if (with_binaries)
    for (const auto& b : store.list_binaries()) out["binaries"].push_back(binary_json(b));
  // Written beside and renamed: a reader never sees half a file.
  const std::string tmp = file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << out.dump(1) << "\n";
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw std::runtime_error("cannot write " + tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw std::runtime_error("cannot rename " + tmp + " to " + file + ": " + ec.message());
  }
  std::printf("exported %zu %s and %zu %s to %s\n", out["tuning"].size(),
              plural(static_cast<std::int64_t>(out["tuning"].size()), "entry", "entries"), out["binaries"].size(),
              plural(static_cast<std::int64_t>(out["binaries"].size()), "binary", "binaries"), file.c_str());
  return 0;
}

// An Error's message without its "cache_error: " prefix, for a user.
std::string message_of(const std::exception& e) {
  const std::string what = e.what();
  if (const auto* err = dynamic_cast<const rnnjit::Error*>(&e)) {
    const std::string prefix = std::string(rnnjit::error_code_name(err->code())) + ": ";
    if (what.rfind(prefix, 0) == 0) return what.substr(prefix.size());
  }
  return what;
}

struct ImportFile {
  std::vector<TuningRecord> tuning;
  std::vector<BinaryRecord> binaries;
};

// Decodes and checks every record; the first bad one rejects the whole file.
ImportFile read_import(const std::string& file) {
  std::ifstream f(file, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + file);
  Json in;
  try {
    in = Json::parse(f);
  } catch (const Json::exception& e) {
    throw std::runtime_error(file + " is not JSON: " + e.what());
  }
  if (!in.is_object() || !in.contains("format") || in["format"] != "rnnjit-cache")
    throw std::runtime_error(file + " is not an rnnjit-cache export (\"format\" is not \"rnnjit-cache\")");
  if (!in.contains("version") || in["version"] != kFormatVersion)
    throw std::runtime_error(file + ": export format version " + (in.contains("version") ? in["version"].dump() : "?") +
                             " is not " + std::to_string(kFormatVersion) + ", the one this build reads");
  ImportFile out;
  // Records are named as the Store names them: "tuning record 2", "binary record 0".
  const auto decode = [&](const char* section, const char* record, auto&& one) {
    if (!in.contains(section) || !in[section].is_array())
      throw std::runtime_error(file + ": \"" + section + "\" must be a list");
    const Json& records = in[section];
    for (std::size_t i = 0; i < records.size(); ++i) {
      try {
        one(records[i]);
      } catch (const std::exception& e) {
        throw std::runtime_error(file + ": " + record + " record " + std::to_string(i) + ": " + e.what());
      }
    }
  };
  decode("tuning", "tuning", [&](const Json& j) { out.tuning.push_back(tuning_from_json(j)); });
  decode("binaries", "binary", [&](const Json& j) { out.binaries.push_back(binary_from_json(j)); });
  // What the Store rejects (a hash that does not match its cubin, a winner that is not a
  // candidate, ...) is found by a dry run into memory, before the real cache is touched.
  try {
    Store dry_run("off", Mode::Strict);
    dry_run.import_records(out.tuning, out.binaries);
  } catch (const rnnjit::Error& e) {
    throw std::runtime_error(file + ": " + message_of(e));
  }
  return out;
}

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "rnnjit-cache: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rnnjit-cache: inspect and maintain the rnnjit tuning cache", "rnnjit-cache"};
  app.require_subcommand(1);
  std::string cache;
  app.add_option("--cache", cache, "cache file (default: $RNNJIT_CACHE, else $XDG_CACHE_HOME/rnnjit/cache.sqlite)")
      ->type_name("PATH");
  app.set_version_flag("--version", rnnjit::version());

  FilterArgs filters;
  std::string key, file;
  bool json = false, with_binaries = false, all = false;
  const auto add_filters = [&](CLI::App* c) {
    c->add_option("--gpu", filters.gpu, "the GPU key contains this")->type_name("SUBSTR");
    c->add_option("--shape", filters.shape, "the problem's sizes")->type_name("B,I,H,O");
    c->add_option("--precision", filters.precision, "fp32, tf32, ...")->type_name("P");
  };
  auto* path_cmd = app.add_subcommand("path", "print the cache file in use");
  auto* list_cmd = app.add_subcommand("list", "tuned problems, one per line");
  add_filters(list_cmd);
  list_cmd->add_flag("--json", json, "a JSON list of full records");
  auto* show_cmd = app.add_subcommand("show", "every field of one entry and its candidates");
  show_cmd->add_option("KEY", key, "GPU/B,I,H,O/PRECISION, or a row number of list")->required();
  show_cmd->add_flag("--json", json, "JSON");
  auto* stats_cmd = app.add_subcommand("stats", "entries, binaries, bytes, entries per GPU");
  stats_cmd->add_flag("--json", json, "JSON");
  auto* export_cmd = app.add_subcommand("export", "write the cache to a JSON file");
  export_cmd->add_option("FILE", file, "output file")->required();
  export_cmd->add_flag("--with-binaries", with_binaries, "include the compiled binaries (base64)");
  auto* import_cmd = app.add_subcommand("import", "merge an export file: every record or none");
  import_cmd->add_option("FILE", file, "an export file")->required();
  auto* rm_cmd = app.add_subcommand("rm", "remove tuned entries (a filter or --all)");
  add_filters(rm_cmd);
  rm_cmd->add_flag("--all", all, "remove every entry");
  auto* prune_cmd = app.add_subcommand("prune", "remove stale entries, then binaries no entry uses");
  auto* verify_cmd = app.add_subcommand("verify", "check the file and every record; exit 1 on a problem");
  auto* vacuum_cmd = app.add_subcommand("vacuum", "compact the file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  try {
    const std::string where = resolve_path(cache.empty() ? std::nullopt : std::optional<std::string>(cache));
    if (path_cmd->parsed()) {
      std::printf("%s\n", where.c_str());
      return 0;
    }
    if (where == "off" || where == ":memory:")
      return fail(kExitFailure, "the cache is off (" + where + "): there is nothing to " + app.get_subcommands()[0]->get_name());
    if (rm_cmd->parsed() && !filters.any() && !all)
      throw Usage("rm needs a filter (--gpu, --shape, --precision) or --all");
    const Filter filter = filters.filter();  // bad usage before anything is opened

    if (import_cmd->parsed()) {
      const ImportFile in = read_import(file);
      Store store(where, Mode::Strict);
      store.import_records(in.tuning, in.binaries);
      std::printf("imported %zu %s and %zu %s into %s\n", in.tuning.size(),
                  plural(static_cast<std::int64_t>(in.tuning.size()), "entry", "entries"), in.binaries.size(),
                  plural(static_cast<std::int64_t>(in.binaries.size()), "binary", "binaries"), where.c_str());
      return 0;
    }
    // Only import makes a cache; every other command needs one.
    std::error_code ec;
    if (!fs::exists(where, ec)) return fail(kExitFailure, "no cache at " + where);
    const bool writes = rm_cmd->parsed() || prune_cmd->parsed() || vacuum_cmd->parsed();
    Store store(where, writes ? Mode::Strict : Mode::ReadOnlyStrict);

    if (list_cmd->parsed()) return list(store, filter, filters.any(), json, where);
    if (show_cmd->parsed()) return show(store, key, json);
    if (stats_cmd->parsed()) return stats(store, json, where);
    if (export_cmd->parsed()) return export_file(store, file, with_binaries);
    if (rm_cmd->parsed()) {
      const auto n = store.remove_tuning(filter);
      std::printf("removed %lld %s\n", static_cast<long long>(n), plural(n, "entry", "entries"));
    } else if (prune_cmd->parsed()) {
      const auto r = store.prune(rnnjit::template_hash(), rnnjit::version());
      std::printf("removed %lld stale %s and %lld unused %s\n", static_cast<long long>(r.stale_entries),
                  plural(r.stale_entries, "entry", "entries"), static_cast<long long>(r.orphan_binaries),
                  plural(r.orphan_binaries, "binary", "binaries"));
    } else if (verify_cmd->parsed()) {
      const auto problems = store.verify();
      for (const auto& p : problems) std::printf("%s\n", p.c_str());
      if (!problems.empty()) return kExitFailure;
      std::printf("ok\n");
    } else if (vacuum_cmd->parsed()) {
      store.vacuum();
      std::printf("vacuumed %s\n", where.c_str());
    }
    return 0;
  } catch (const Usage& e) {
    return fail(kExitUsage, e.what());
  } catch (const std::exception& e) {
    return fail(kExitFailure, message_of(e));
  }
}
