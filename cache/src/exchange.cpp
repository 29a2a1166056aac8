#include "rnnjit/cache/exchange.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "rnnjit/error.hpp"

namespace rnnjit::cache {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// JSON numbers cannot be infinite: a failed time is null.
Json time_json(double us) { return std::isfinite(us) ? Json(us) : Json(); }

Json tuning_json(const TuningRecord& r) {
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
          {"dtype", p.dtype},
          {"precision", p.precision},
          {"steps", p.steps},
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

Json binary_json(const BinaryRecord& b) {
  return {{"key", b.key},   {"kernel", b.kernel},
          {"arch", b.arch}, {"nvrtc_version", b.nvrtc_version},
          {"symbols", b.symbols}, {"cubin_base64", base64(b.cubin)},
          {"hash", b.hash}, {"created_at", b.created_at}};
}

// A malformed field of an export file; the caller adds which record.
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

// A JSON integer as int64: 8.5 is not one, and neither is 2^63 (which get<> would wrap).
std::int64_t int_value(const Json& v, const std::string& field) {
  if (!v.is_number_integer()) throw BadField(field, "must be an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    throw BadField(field, "holds " + v.dump() + ", out of range");
  return v.get<std::int64_t>();
}

std::int64_t int_field(const Json& j, const std::string& name, const std::string& path = "") {
  return int_value(member(j, name, path), path.empty() ? name : path + "." + name);
}

// A time in microseconds; null is a failed candidate (+infinity).
double time_field(const Json& j, const std::string& name, const std::string& path = "") {
  const Json& v = member(j, name, path);
  if (v.is_null()) return std::numeric_limits<double>::infinity();
  if (!v.is_number()) throw BadField(path.empty() ? name : path + "." + name, "must be a number or null");
  return v.get<double>();
}

// `version`: of the file; version 1 has no "dtype", and its records are f32; versions 1 and 2
// have no "steps", and their records are one step.
TuningRecord tuning_from_json(const Json& j, int version) {
  TuningRecord r;
  r.key.gpu = text_field(j, "gpu");
  const Json& shape = member(j, "shape", "");
  if (!shape.is_array() || shape.size() != 4)
    throw BadField("shape", "must be a list of four integers [B, I, H, O]");
  for (const auto& d : shape)
    if (!d.is_number_integer()) throw BadField("shape", "must be a list of four integers [B, I, H, O]");
  r.key.problem = {int_value(shape[0], "shape[0]"), int_value(shape[1], "shape[1]"), int_value(shape[2], "shape[2]"),
                   int_value(shape[3], "shape[3]"), text_field(j, "precision")};
  if (version >= 2) r.key.problem.dtype = text_field(j, "dtype");
  if (version >= 3) r.key.problem.steps = int_field(j, "steps");
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

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::CacheError, message); }

// An export with its two paths swapped would replace the cache (or its WAL) by JSON. The
// -wal, -shm and -journal come and go with connections: they are refused by name as well.
void refuse_cache(const std::string& file, const std::string& cache_path) {
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(file, ec);
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string part = cache_path + suffix;
    std::error_code same_ec, name_ec;
    const bool same = fs::exists(file, ec) && fs::exists(part, ec) && fs::equivalent(file, part, same_ec);
    const fs::path canonical = fs::weakly_canonical(part, name_ec);
    if (same || (!target.empty() && !name_ec && canonical == target))
      fail("refusing to export onto " + file + ": it is the cache" +
           (*suffix ? std::string("'s ") + (suffix + 1) : "") + " (" + part + "); give another file");
  }
}

// A new file beside `target` that only this writer can hold (O_EXCL on a random name), so
// that two exports to one target never share it; removed unless renamed into place.
// Not mkstemp: its 0600 would make every export private whatever the umask says.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    std::random_device random;
    for (int attempt = 0;; ++attempt) {
      char suffix[16];
      std::snprintf(suffix, sizeof suffix, ".tmp-%08x", static_cast<unsigned>(random()));
      path_ = target + suffix;
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) return;
      const int err = errno;
      if (err != EEXIST || attempt == 100) fail("cannot create a file beside " + target + ": " + std::strerror(err));
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const std::string& bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) failed("write");
      done += static_cast<std::size_t>(n);
    }
  }

  // Flushed before the rename: otherwise a crash could leave the new name on empty blocks.
  void commit() {
    if (::fsync(fd_) != 0) failed("flush");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) failed("close");
    if (::rename(path_.c_str(), target_.c_str()) != 0) failed("rename into place");
    path_.clear();
    // The rename itself lasts once the directory is flushed; some file systems cannot flush a
    // directory, and the file is whole either way, so that failure is not the caller's.
    const std::string dir = fs::path(target_).parent_path().string();
    if (const int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
      ::fsync(d);
      ::close(d);
    }
  }

 private:
  [[noreturn]] void failed(const char* what) {
    const int err = errno;
    fail("cannot " + std::string(what) + " " + path_ + " (for " + target_ + "): " + std::strerror(err));
  }

  std::string target_, path_;
  int fd_ = -1;
};

}  // namespace

std::string to_json(const TuningRecord& record) { return tuning_json(record).dump(2); }

std::string to_json(const std::vector<TuningRecord>& records) {
  Json out = Json::array();
  for (const auto& r : records) out.push_back(tuning_json(r));
  return out.dump(2);
}

Exchange read_exchange(const std::string& file) {
  std::ifstream f(file, std::ios::binary);
  if (!f) fail("cannot read " + file);
  Json in;
  try {
    in = Json::parse(f);
  } catch (const Json::exception& e) {
    fail(file + " is not JSON: " + e.what());
  }
  if (!in.is_object() || !in.contains("format") || in["format"] != kExchangeFormat)
    fail(file + " is not an rnnjit-cache export (\"format\" is not \"" + kExchangeFormat + "\")");
  const auto version_field = in.find("version");
  const bool known = version_field != in.end() && version_field->is_number_integer() &&
                     version_field->get<std::int64_t>() >= 1 && version_field->get<std::int64_t>() <= kExchangeVersion;
  if (!known)
    fail(file + ": export format version " + (version_field != in.end() ? version_field->dump() : "?") +
         " is not one this build reads (1 to " + std::to_string(kExchangeVersion) + ")");
  const int version = version_field->get<int>();
  Exchange out;
  if (const auto it = in.find("engine_version"); it != in.end() && it->is_string()) out.engine_version = *it;
  // Records are named as validate() names them: "tuning record 2", "binary record 0".
  const auto decode = [&](const char* section, const char* record, auto&& one) {
    const auto it = in.find(section);
    if (it == in.end() || !it->is_array()) fail(file + ": \"" + section + "\" must be a list");
    for (std::size_t i = 0; i < it->size(); ++i) {
      try {
        one((*it)[i]);
      } catch (const BadField& e) {
        fail(file + ": " + record + " record " + std::to_string(i) + ": " + e.what());
      }
    }
  };
  decode("tuning", "tuning", [&](const Json& j) { out.tuning.push_back(tuning_from_json(j, version)); });
  decode("binaries", "binary", [&](const Json& j) { out.binaries.push_back(binary_from_json(j)); });
  try {
    validate(out.tuning, out.binaries);
  } catch (const Error& e) {
    fail(file + ": " + e.message());
  }
  return out;
}

void write_exchange(const std::string& file, const Exchange& content, const std::string& cache_path) {
  refuse_cache(file, cache_path);
  Json out{{"format", kExchangeFormat}, {"version", kExchangeVersion}, {"engine_version", content.engine_version}};
  out["tuning"] = Json::array();
  for (const auto& r : content.tuning) out["tuning"].push_back(tuning_json(r));
  out["binaries"] = Json::array();
  for (const auto& b : content.binaries) out["binaries"].push_back(binary_json(b));
  TempFile tmp(file);
  tmp.write(out.dump(1) + "\n");
  tmp.commit();
}

}  // namespace rnnjit::cache
