// rnnjit-cache: inspects and maintains the rnnjit tuning cache. Needs no GPU.
//
//   rnnjit-cache [--cache PATH | --system] path|list|show|stats|export|import|rm|prune|verify|vacuum
//
// Exit codes: 0 success, 1 failure (a missing, damaged or foreign cache, a bad import file, a
// problem found by verify), 2 bad usage. The cache is opened strictly: a damaged file is
// reported, never moved aside or replaced; read commands open it read-only. list and show also
// show the system cache's entries, which the engine uses where the cache has none, each row
// marked with the file it came from; --system makes the system cache the one every command works on.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "rnnjit/cache/exchange.hpp"
#include "rnnjit/cache/store.hpp"
#include "rnnjit/error.hpp"
#include "rnnjit/version.hpp"
#include "shapes.hpp"

static_assert(rnnjit::cache::kMaxDim == rnnjit::kMaxDim, "the cache accepts the sizes the engine does");
static_assert(rnnjit::cache::kMaxSteps == rnnjit::kMaxSteps, "the cache accepts the sequences the engine runs");

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;  // for stats --json; records have the cache's own JSON form
using namespace rnnjit::cache;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

/// Bad usage found after parsing (exit 2).
struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// KEY of show: entry_name(), or GPU/B,I,H,O/PRECISION for an f32 step, the form from before
// dtypes and sequences.
bool named(const TuningRecord& r, const std::string& key) {
  const ProblemKey& p = r.key.problem;
  return key == entry_name(r.key) ||
         (p.dtype == "f32" && p.steps == 0 && key == r.key.gpu + "/" + shape_text(p) + "/" + p.precision);
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

// `text` when it is a decimal integer and nothing else.
std::optional<std::int64_t> integer(const std::string& text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> positive(const std::string& text) {
  const auto v = integer(text);
  return v && *v > 0 ? v : std::nullopt;
}

struct FilterArgs {
  std::string gpu, shape, dtype, precision, steps;
  bool any() const {
    return !gpu.empty() || !shape.empty() || !dtype.empty() || !precision.empty() || !steps.empty();
  }
  Filter filter() const {
    Filter f;
    if (!gpu.empty()) f.gpu = gpu;
    if (!dtype.empty()) f.dtype = dtype;
    if (!precision.empty()) f.precision = precision;
    if (!steps.empty()) {
      f.steps = integer(steps);
      if (!f.steps || *f.steps < 0 || *f.steps > kMaxSteps)
        throw Usage("--steps '" + steps + "': not an integer in 0.." + std::to_string(kMaxSteps) +
                    " (0: the one-step entries)");
    }
    if (!shape.empty()) {
      try {
        const rnnjit::tools::Shape s = rnnjit::tools::parse_shape(shape);
        f.shape = ProblemKey{s.b, s.i, s.h, s.o, ""};
      } catch (const rnnjit::tools::ShapeError& e) {
        throw Usage("--shape " + std::string(e.what()));
      }
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

// Cells are record text: control characters are spelled out (printable), never sent raw.
void print_table(std::vector<std::vector<std::string>> rows) {
  for (auto& r : rows)
    for (auto& cell : r) cell = printable(cell);
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

// What list and show read: the cache (when its file exists) and the system cache under it (when
// one is in view), each a read-only Store.
struct Sources {
  std::optional<Store> user;
  std::optional<Store> system;
  std::string user_path, system_path;
};

// A row of list and show: a record and the file it came from.
struct Listed {
  TuningRecord record;
  // "user"; "system"; "system, overridden" where the cache holds the same entry, which is the
  // one the engine uses (it looks in the system cache only where the cache misses).
  std::string source;
};

// The records `filter` matches, the cache's first: the order of list's row numbers.
std::vector<Listed> collect(Sources& from, const Filter& filter = {}) {
  std::vector<Listed> out;
  if (from.user)
    for (auto& r : from.user->list_tuning(filter)) out.push_back({std::move(r), "user"});
  if (!from.system) return out;
  // The entries the engine finds in the cache (its key, templates and version), filtered out or not.
  std::set<std::string> in_user;
  const auto id = [](const TuningRecord& r) {
    return entry_name(r.key) + "/" + r.key.template_hash + "/" + r.engine_version;
  };
  if (from.user)
    for (const auto& r : from.user->list_tuning()) in_user.insert(id(r));
  for (auto& r : from.system->list_tuning(filter)) {
    const bool overridden = in_user.count(id(r)) > 0;
    out.push_back({std::move(r), overridden ? "system, overridden" : "system"});
  }
  return out;
}

// What tells rows apart from one listing to the next: the file, the entry and its templates.
std::string row_id(const Listed& r) {
  return (r.source == "user" ? "user/" : "system/") + entry_name(r.record.key) + "/" + r.record.key.template_hash;
}

// A record's JSON form (exchange.hpp) and its source: how list and show print a row of both caches.
Json with_source(const Listed& r) {
  Json j = Json::parse(to_json(r.record));
  j["source"] = r.source;
  return j;
}

int list(Sources& from, const Filter& filter, bool filtered, bool json) {
  const bool layered = from.system.has_value();
  const auto rows = collect(from, filter);
  if (json) {
    // Every record has its source, system cache or not: one schema for scripts, whatever the host.
    Json out = Json::array();
    for (const auto& r : rows) out.push_back(with_source(r));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::map<std::string, std::size_t> numbers;  // the row numbers of the unfiltered list, which show takes
  {
    const auto all = filtered ? collect(from) : rows;
    for (std::size_t i = 0; i < all.size(); ++i) numbers[row_id(all[i])] = i + 1;
  }
  // A steps column only where a sequence entry is listed, so that a listing of step entries reads
  // as it did before sequences.
  const bool any_sequence =
      std::any_of(rows.begin(), rows.end(), [](const Listed& r) { return r.record.key.problem.steps > 0; });
  std::vector<std::string> header = {"#", "gpu", "B,I,H,O", "dtype", "precision", "winner", "winner µs",
                                     "candidates", "engine", "stale", "created"};
  if (any_sequence) header.insert(header.begin() + 3, "steps");
  if (layered) header.insert(header.begin() + 1, "source");
  std::vector<std::vector<std::string>> table = {header};
  std::size_t from_user = 0;
  for (const auto& listed : rows) {
    const auto& [r, source] = listed;
    from_user += source == "user";
    std::vector<std::string> row = {std::to_string(numbers.at(row_id(listed))),
                                    r.key.gpu,
                                    shape_text(r.key.problem),
                                    r.key.problem.dtype,
                                    r.key.problem.precision,
                                    r.winner,
                                    micros(r.winner_us),
                                    std::to_string(r.candidates.size()),
                                    r.engine_version,
                                    stale(r) ? "yes" : "no",
                                    iso_time(r.created_at)};
    const std::int64_t steps = r.key.problem.steps;
    if (any_sequence) row.insert(row.begin() + 3, steps > 0 ? std::to_string(steps) : "-");
    if (layered) row.insert(row.begin() + 1, source);
    table.push_back(std::move(row));
  }
  if (!rows.empty()) print_table(table);
  const auto count = [](std::size_t n) {
    return std::to_string(n) + " " + plural(static_cast<std::int64_t>(n), "entry", "entries");
  };
  if (layered)
    std::printf("%s: %zu in %s (user), %zu in %s (system)\n", count(rows.size()).c_str(), from_user,
                from.user_path.c_str(), rows.size() - from_user, from.system_path.c_str());
  else
    std::printf("%s in %s\n", count(rows.size()).c_str(), from.user_path.c_str());
  return 0;
}

int show(Sources& from, const std::string& key, bool json) {
  const bool layered = from.system.has_value();
  const auto rows = collect(from);
  const Listed* found = nullptr;
  if (const auto n = positive(key)) {
    if (*n <= static_cast<std::int64_t>(rows.size())) found = &rows[static_cast<std::size_t>(*n - 1)];
  } else {
    // The user cache's entry first, as the engine looks; among one file's rows, the last.
    for (const auto& r : rows)
      if (named(r.record, key) && (!found || found->source != "user" || r.source == "user")) found = &r;
  }
  if (!found) throw std::runtime_error("no entry '" + key + "' (see rnnjit-cache list)");
  if (json) {
    std::cout << with_source(*found).dump(2) << "\n";  // source always, as list --json: one schema
    return 0;
  }
  const TuningRecord& r = found->record;
  if (layered)
    print_table({{"source", found->source + " (" + (found->source == "user" ? from.user_path : from.system_path) + ")"}});
  std::vector<std::vector<std::string>> fields = {
      {"gpu", r.key.gpu},
      {"shape B,I,H,O", shape_text(r.key.problem)},
      {"dtype", r.key.problem.dtype},
      {"precision", r.key.problem.precision},
      {"template hash", r.key.template_hash + (r.key.template_hash == rnnjit::template_hash() ? "" : " (stale)")},
      {"engine version", r.engine_version + (r.engine_version == rnnjit::version() ? "" : " (stale)")},
      {"winner", r.winner},
      {"winner µs", micros(r.winner_us)},
      {"created", iso_time(r.created_at)}};
  if (const std::int64_t steps = r.key.problem.steps; steps > 0)
    fields.insert(fields.begin() + 2, {"steps", std::to_string(steps) + " (a sequence, tuned for chunks of " +
                                                    std::to_string(steps) + " steps)"});
  print_table(fields);
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
      std::printf("\nmessage of candidate %zu (%s):\n%s\n", i + 1, printable(r.candidates[i].config).c_str(),
                  printable(r.candidates[i].message, "\n\t").c_str());
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
  Exchange out{rnnjit::version(), store.list_tuning(), {}};
  if (with_binaries) out.binaries = store.list_binaries();
  write_exchange(file, out, store.path());
  std::printf("exported %zu %s and %zu %s to %s\n", out.tuning.size(),
              plural(static_cast<std::int64_t>(out.tuning.size()), "entry", "entries"), out.binaries.size(),
              plural(static_cast<std::int64_t>(out.binaries.size()), "binary", "binaries"), file.c_str());
  return 0;
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
  bool system = false;
  auto* cache_opt =
      app.add_option("--cache", cache, "cache file (default: $RNNJIT_CACHE, else $XDG_CACHE_HOME/rnnjit/cache.sqlite)")
          ->type_name("PATH");
  app.add_flag("--system", system,
               "work on the system cache ($RNNJIT_SYSTEM_CACHE, else " + std::string(kDefaultSystemPath) +
                   ") instead of the cache")
      ->excludes(cache_opt);
  app.set_version_flag("--version", rnnjit::version());

  FilterArgs filters;
  std::string key, file;
  bool json = false, with_binaries = false, all = false;
  const auto add_filters = [&](CLI::App* c) {
    c->add_option("--gpu", filters.gpu, "the GPU key contains this")->type_name("SUBSTR");
    c->add_option("--shape", filters.shape, "the problem's sizes")->type_name("B,I,H,O");
    c->add_option("--dtype", filters.dtype, "storage type: f32, bf16")->type_name("D");
    c->add_option("--precision", filters.precision, "fp32, tf32, ...")->type_name("P");
    c->add_option("--steps", filters.steps, "a sequence's chunk of N steps; 0: the one-step entries")->type_name("N");
  };
  auto* path_cmd = app.add_subcommand("path", "print the cache file in use");
  auto* list_cmd = app.add_subcommand("list", "tuned problems, one per line");
  add_filters(list_cmd);
  list_cmd->add_flag("--json", json, "a JSON list of full records");
  auto* show_cmd = app.add_subcommand("show", "every field of one entry and its candidates");
  show_cmd
      ->add_option("KEY", key,
                   "GPU/B,I,H,O/DTYPE/PRECISION (GPU/B,I,H,O/PRECISION: f32), GPU/B,I,H,O/seqN/DTYPE/PRECISION for a "
                   "sequence, or a row number of list")
      ->required();
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
    const std::string where = system ? resolve_system_path(std::nullopt)
                                     : resolve_path(cache.empty() ? std::nullopt : std::optional<std::string>(cache));
    // A SQLite URI is refused by every command alike, path included: a cache is named by its path.
    if (where.rfind("file:", 0) == 0) check_path(where);
    if (path_cmd->parsed()) {
      std::printf("%s\n", where.c_str());
      return 0;
    }
    if (where == "off" || where == ":memory:")
      return fail(kExitFailure, std::string(system ? "the system cache" : "the cache") + " is off (" + where +
                                    "): there is nothing to " + app.get_subcommands()[0]->get_name());
    check_path(where);  // a directory or a FIFO: said before anything opens it, for every command
    if (rm_cmd->parsed() && !filters.any() && !all)
      throw Usage("rm needs a filter (--gpu, --shape, --dtype, --precision, --steps) or --all");
    const Filter filter = filters.filter();  // bad usage before anything is opened

    if (import_cmd->parsed()) {
      const Exchange in = read_exchange(file);
      Store store(where, Mode::Strict);
      store.import_records(in.tuning, in.binaries);
      std::printf("imported %zu %s and %zu %s into %s\n", in.tuning.size(),
                  plural(static_cast<std::int64_t>(in.tuning.size()), "entry", "entries"), in.binaries.size(),
                  plural(static_cast<std::int64_t>(in.binaries.size()), "binary", "binaries"), where.c_str());
      return 0;
    }
    // list and show see the system cache under the cache, as the engine does: when its file
    // exists and is another file. Opened as the engine opens it (Mode::System): only read, and one
    // that is unusable is a warning and no rows.
    Sources from;
    from.user_path = where;
    std::error_code ec;
    if (!system && (list_cmd->parsed() || show_cmd->parsed())) {
      from.system_path = resolve_system_path(std::nullopt);
      if (from.system_path != "off" && from.system_path != ":memory:" && fs::exists(from.system_path, ec) &&
          !fs::equivalent(where, from.system_path, ec))
        from.system.emplace(from.system_path, Mode::System);
    }
    // Only import makes a cache; every other command needs one (list and show a system cache at least).
    const bool exists = fs::exists(where, ec);
    if (!exists && !from.system) {
      // A listing of a cache not made yet is empty, as `pip cache list` answers; the other commands
      // (verify among them) need a cache.
      if (!list_cmd->parsed()) return fail(kExitFailure, "no cache at " + where);
      if (json)
        std::printf("[]\n");
      else
        std::printf("0 entries: no cache at %s yet\n", where.c_str());
      return 0;
    }
    if (list_cmd->parsed() || show_cmd->parsed()) {
      if (exists) from.user.emplace(where, Mode::ReadOnlyStrict);
      return list_cmd->parsed() ? list(from, filter, filters.any(), json) : show(from, key, json);
    }
    const bool writes = rm_cmd->parsed() || prune_cmd->parsed() || vacuum_cmd->parsed();
    Store store(where, writes ? Mode::Strict : Mode::ReadOnlyStrict);
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
  } catch (const rnnjit::Error& e) {
    return fail(kExitFailure, e.message());
  } catch (const std::exception& e) {
    return fail(kExitFailure, e.what());
  }
}
