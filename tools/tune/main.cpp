// rnnjit-tune: prewarms the tuning cache for the shapes a deployment will run, or writes the
// system cache an image ships (--system).
//
//   rnnjit-tune --shape 8,1024,256,128 --shape 64,2048,2048,1024 --precision all --check
//   rnnjit-tune --shape 64,2048,2048,1024 --dtype bf16 --check
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <cstdio>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/rnnjit.hpp"
#include "shapes.hpp"

namespace {

using Json = nlohmann::json;
using rnnjit::tools::Shape;

// Removes a copy that was not published, with what SQLite left beside it.
void discard(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix, ec);
}

std::string fmt_us(double us) {
  if (!std::isfinite(us)) return "failed";
  char buf[32];
  std::snprintf(buf, sizeof buf, us < 100 ? "%.2f" : "%.1f", us);
  return buf;
}

std::string fmt_err(double e) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", e);
  return buf;
}

// The winner on random data, against the float64 reference (a few rows of big batches). bf16
// problems take the inputs rounded to bf16, the reference computed from those values.
double check(rnnjit::Engine& engine, const rnnjit::Problem& p) {
  const auto B = p.batch, I = p.input, H = p.hidden, O = p.output;
  const bool bf16 = p.dtype == rnnjit::DType::BF16;
  const std::size_t e = rnnjit::dtype_size(p.dtype);
  std::mt19937 rng(99);
  auto rand = [&](std::size_t n, float k) {
    std::uniform_real_distribution<float> d(-k, k);
    std::vector<float> v(n);
    for (auto& x : v) x = bf16 ? __bfloat162float(__float2bfloat16(d(rng))) : d(rng);
    return v;
  };
  // n values at device address d as floats; false where the copy failed.
  auto down = [&](const void* d, std::size_t n, std::vector<float>& v) {
    v.resize(n);
    if (!bf16) return cudaMemcpy(v.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
    std::vector<__nv_bfloat16> b(n);
    if (cudaMemcpy(b.data(), d, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost) != cudaSuccess) return false;
    std::transform(b.begin(), b.end(), v.begin(), [](__nv_bfloat16 x) { return __bfloat162float(x); });
    return true;
  };
  const float k1 = 1 / std::sqrt(float(I + H)), k2 = 1 / std::sqrt(float(H));
  const auto w1 = rand(H * (I + H), k1), b1 = rand(H, k1), w2 = rand(O * H, k2), b2 = rand(O, k2), x = rand(B * I, 1),
             h = rand(B * H, 1);
  struct Buffers {  // freed on every way out; a failed free has nothing left to undo
    std::vector<void*> ptrs;
    ~Buffers() {
      for (void* d : ptrs) cudaFree(d);
    }
  } bufs;
  // v on the device in the problem's storage (bf16 problems draw values that bf16 holds exactly).
  auto up = [&](const std::vector<float>& v) {
    std::vector<__nv_bfloat16> rounded;
    const void* src = v.data();
    if (bf16) {
      rounded.resize(v.size());
      std::transform(v.begin(), v.end(), rounded.begin(), [](float f) { return __float2bfloat16(f); });
      src = rounded.data();
    }
    void* d = nullptr;
    if (cudaMalloc(&d, v.size() * e) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
    bufs.ptrs.push_back(d);
    if (cudaMemcpy(d, src, v.size() * e, cudaMemcpyHostToDevice) != cudaSuccess)
      throw std::runtime_error("copying the inputs to the GPU failed");
    return d;
  };
  void *dw1 = up(w1), *db1 = up(b1), *dw2 = up(w2), *db2 = up(b2), *dx = up(x), *dh = up(h);
  void *dho = up(std::vector<float>(B * H, NAN)), *dy = up(std::vector<float>(B * O, NAN));
  engine.rnn_step(p, {dw1, db1, dw2, db2}, dx, dh, dho, dy);
  const std::int64_t rows = double(B) * (I + H) * H > 4e8 ? std::min<std::int64_t>(B, 2) : B;
  std::vector<float> ho, y;
  const bool ok = down(dho, rows * H, ho) && down(dy, rows * O, y);
  if (!ok) throw std::runtime_error("copying the result back failed");
  std::vector<double> rh, ry;
  rnnjit::reference_step(rows, I, H, O, w1.data(), b1.data(), w2.data(), b2.data(), x.data(), h.data(), rh, ry);
  return std::max(rnnjit::relative_error(ho, rh), rnnjit::relative_error(y, ry));
}

void progress(bool tty, std::size_t done, std::size_t total, double elapsed, const std::string& what) {
  if (!tty) {
    std::fprintf(stderr, "[%zu/%zu] %s\n", std::min(done + 1, total), total, what.c_str());
    return;
  }
  const int width = 30;
  const int filled = total ? int(width * done / total) : width;
  const double eta = done ? elapsed / done * (total - done) : 0;
  std::fprintf(stderr, "\r\033[K[%s%s] %zu/%zu ETA %s %s", std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), done, total, done ? (std::to_string(int(eta)) + "s").c_str() : "?",
               what.c_str());
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rnnjit-tune: tunes RNN-step problems on this GPU and stores the winners in the rnnjit cache"};
  std::vector<std::string> shapes_text;
  std::string shapes_file, precision = "tf32", dtype_text = "f32", cache;
  int device = 0;
  bool force = false, do_check = false, json = false, system = false;
  std::int64_t steps = 0;
  app.add_option("--shape", shapes_text, "a problem B,I,H,O (repeatable)");
  app.add_option("--shapes", shapes_file, "a file of problems: CSV lines B,I,H,O or a JSON list")->check(CLI::ExistingFile);
  auto* precision_opt = app.add_option("--precision", precision, "fp32, tf32 or all (f32 tensors); bf16 tensors take bf16")
                            ->check(CLI::IsMember({"fp32", "tf32", "bf16", "all"}));
  app.add_option("--dtype", dtype_text, "the tensors' storage: f32 (default) or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--device", device, "CUDA device ordinal")->check(CLI::NonNegativeNumber);
  auto* cache_opt = app.add_option("--cache", cache, "cache file (default: $RNNJIT_CACHE, else the XDG cache)");
  app.add_flag("--system", system,
               "tune into the system cache ($RNNJIT_SYSTEM_CACHE, else " + std::string(rnnjit::cache::kDefaultSystemPath) +
                   "), creating it")
      ->excludes(cache_opt);
  app.add_flag("--force", force, "retune problems the cache already holds");
  auto* check_flag = app.add_flag("--check", do_check, "compare each winner with the float64 reference");
  app.add_option("--steps", steps,
                 "tune sequences of this many steps (rnn_sequence: the chunk size they run in) instead of single steps")
      ->check(CLI::Range(std::int64_t(1), rnnjit::kMaxSteps))
      ->excludes(check_flag);
  app.add_flag("--json", json, "print the summary as JSON");
  app.set_version_flag("--version", rnnjit::version());
  try {
    app.parse(argc, argv);
    if (shapes_text.empty() && shapes_file.empty()) throw CLI::RequiredError("--shape or --shapes");
    // bf16 tensors have one precision (bf16 products), f32 tensors two: a mismatch is bad usage.
    if (dtype_text == "bf16" && precision_opt->count() > 0 && precision != "bf16" && precision != "all")
      throw CLI::ValidationError("--precision", precision + " needs f32 tensors; --dtype bf16 takes bf16 or all");
    if (dtype_text == "f32" && precision == "bf16")
      throw CLI::ValidationError("--precision", "bf16 products need bf16 tensors: add --dtype bf16");
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  // Validated here, at the edge: a bad size is bad usage (exit 2), not an engine failure.
  std::vector<Shape> shapes;
  try {
    for (const auto& s : shapes_text) shapes.push_back(rnnjit::tools::parse_shape(s));
    if (!shapes_file.empty())
      for (const auto& s : rnnjit::tools::read_shapes(shapes_file)) shapes.push_back(s);
  } catch (const rnnjit::tools::ShapeError& e) {
    std::fprintf(stderr, "rnnjit-tune: %s\n", e.what());
    return 2;
  }
  // The file tuned into, unless the engine resolves it: a system cache is made here, before any
  // tuning, so that a path this process cannot write fails at once.
  std::optional<std::string> target = cache.empty() ? std::nullopt : std::optional<std::string>(cache);
  std::optional<std::string> published;  // --system: the file the tuned copy replaces at the end
  if (system) {
    target = rnnjit::cache::resolve_system_path(std::nullopt);
    if (*target == "off" || *target == ":memory:") {
      std::fprintf(stderr, "rnnjit-tune: --system: the system cache is off ($RNNJIT_SYSTEM_CACHE=%s)\n", target->c_str());
      return 2;
    }
    // Engines may be reading the system cache immutable, which trusts the file never to change
    // under them: this run tunes a copy beside it and renames the copy over it at the end.
    published = *target;
    target = *published + ".tmp-" + std::to_string(getpid());
    try {
      std::error_code ec;
      if (std::filesystem::exists(*published, ec)) std::filesystem::copy_file(*published, *target);
      rnnjit::cache::Store made(*target, rnnjit::cache::Mode::Strict);
    } catch (const rnnjit::Error& e) {
      std::fprintf(stderr, "rnnjit-tune: %s\n", e.message());
      discard(*target);
      return 1;
    } catch (const std::exception& e) {  // copying the system cache
      std::fprintf(stderr, "rnnjit-tune: %s\n", e.what());
      discard(*target);
      return 1;
    }
  }
  const rnnjit::DType dtype = rnnjit::parse_dtype(dtype_text);
  std::vector<rnnjit::Precision> precisions;
  if (dtype == rnnjit::DType::BF16) {
    precisions.push_back(rnnjit::Precision::BF16);
  } else {
    if (precision != "fp32") precisions.push_back(rnnjit::Precision::TF32);
    if (precision != "tf32") precisions.push_back(rnnjit::Precision::FP32);
  }

  try {
    rnnjit::EngineOptions o;
    o.device = device;
    o.cache_path = target;
    if (system) o.system_cache_path = "off";  // the file is the cache itself: nothing under it
    std::optional<rnnjit::Engine> engine_slot(std::in_place, o);
    rnnjit::Engine& engine = *engine_slot;
    const bool tty = isatty(STDERR_FILENO);
    Json rows = Json::array();
    const std::size_t total = shapes.size() * precisions.size();
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t done = 0;
    bool all_ok = true;
    for (const Shape& s : shapes)
      for (rnnjit::Precision prec : precisions) {
        const rnnjit::Problem p{s.b, s.i, s.h, s.o, prec, dtype};
        char label[96];
        std::snprintf(label, sizeof label, "%lld,%lld,%lld,%lld %s", static_cast<long long>(s.b),
                      static_cast<long long>(s.i), static_cast<long long>(s.h), static_cast<long long>(s.o),
                      rnnjit::precision_name(prec));
        progress(tty, done, total, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), label);
        const rnnjit::TuneReport r = steps > 0 ? engine.tune_sequence(p, steps, force) : engine.tune(p, force);
        Json row{{"shape", {s.b, s.i, s.h, s.o}}, {"precision", rnnjit::precision_name(prec)}, {"dtype", dtype_text}, {"steps", steps},
                 {"winner", r.winner}, {"winner_us", r.winner_us}, {"from_cache", r.from_cache}, {"seconds", r.seconds}};
        double slowest = 0, heuristic = std::numeric_limits<double>::quiet_NaN();
        for (const auto& c : r.candidates) {
          if (std::isfinite(c.time_us)) slowest = std::max(slowest, c.time_us);
          row["candidates"].push_back({{"config", c.config}, {"time_us", std::isfinite(c.time_us) ? Json(c.time_us) : Json()},
                                       {"disposition", rnnjit::disposition_name(c.disposition)}});
        }
        if (!r.candidates.empty()) heuristic = r.candidates[0].time_us;
        row["slowest_us"] = slowest;
        row["speedup_vs_heuristic"] = std::isfinite(heuristic) ? Json(heuristic / r.winner_us) : Json();
        if (do_check) {
          const double err = check(engine, p);
          const double bound = rnnjit::error_bound(prec);
          row["error"] = std::isfinite(err) ? Json(err) : Json("nan");
          row["check"] = err <= bound ? "pass" : "FAIL";
          all_ok &= err <= bound;
        }
        rows.push_back(row);
        ++done;
      }
    progress(tty, done, total, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), "done");
    if (tty) std::fprintf(stderr, "\n");

    const std::string device_name = engine.device().name, cache_path = published.value_or(engine.cache_path());
    // --system publishes only a whole, checked copy: a store that could not write it went on in
    // memory (its path says so), and a winner past its bound is not shipped.
    const bool written = engine.cache_path() != ":memory:";
    if (published) engine_slot.reset();  // closes the copy, its WAL checkpointed into it
    if (json) {
      std::cout << Json{{"device", device_name}, {"cache", cache_path}, {"results", rows}}.dump(2)
                << "\n";
    } else {
      std::printf("%-26s %-5s %-50s %10s %10s %8s %7s%s\n", "problem B,I,H,O", "prec", "winner", "winner us",
                  "slowest us", "vs heur.", "cached", do_check ? "  error" : "");
      for (const auto& r : rows) {
        char shape[48];
        const long long t = r["steps"].get<long long>();
        std::snprintf(shape, sizeof shape, t > 0 ? "%lld,%lld,%lld,%lld T=%lld" : "%lld,%lld,%lld,%lld",
                      r["shape"][0].get<long long>(), r["shape"][1].get<long long>(), r["shape"][2].get<long long>(),
                      r["shape"][3].get<long long>(), t);
        char speed[16] = "-";
        if (r["speedup_vs_heuristic"].is_number())
          std::snprintf(speed, sizeof speed, "%.2fx", r["speedup_vs_heuristic"].get<double>());
        char err[40] = "";
        if (r.contains("error"))
          std::snprintf(err, sizeof err, "  %s %s",
                        r["error"].is_number() ? fmt_err(r["error"].get<double>()).c_str() : "nan",
                        r["check"].get<std::string>().c_str());
        std::printf("%-26s %-5s %-50s %10s %10s %8s %7s%s\n", shape, r["precision"].get<std::string>().c_str(),
                    r["winner"].get<std::string>().c_str(), fmt_us(r["winner_us"].get<double>()).c_str(),
                    r["from_cache"].get<bool>() ? "-" : fmt_us(r["slowest_us"].get<double>()).c_str(), speed,
                    r["from_cache"].get<bool>() ? "yes" : "no", err);
      }
      std::printf("device: %s\ncache: %s\n", device_name.c_str(), cache_path.c_str());
    }
    if (published) {
      if (!written || !all_ok) {
        std::fprintf(stderr, "rnnjit-tune: %s; %s is left as it was\n",
                     written ? "a winner failed --check" : "the copy of the system cache could not be written",
                     published->c_str());
        discard(*target);
        return 1;
      }
      std::filesystem::rename(*target, *published);
    }
    return all_ok ? 0 : 1;
  } catch (const rnnjit::Error& e) {
    std::fprintf(stderr, "rnnjit-tune: %s\n", e.what());
    if (published) discard(*target);
    return e.code() == rnnjit::ErrorCode::InvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnnjit-tune: %s\n", e.what());
    if (published) discard(*target);
    return 1;
  }
}
