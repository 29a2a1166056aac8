#include "jit.hpp"

#include <nvrtc.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "support/hash.hpp"
#include "support/log.hpp"

namespace rnnjit {
namespace {

void check(nvrtcResult r, const char* call) {
  if (r != NVRTC_SUCCESS)
    throw Error(ErrorCode::CompileFailed, std::string(call) + " failed: " + nvrtcGetErrorString(r));
}

// RAII for an nvrtcProgram.
class Program {
 public:
  Program(const KernelSource& s, const std::vector<const char*>& header_texts,
          const std::vector<const char*>& header_names) {
    const std::string text(s.text);
    check(nvrtcCreateProgram(&prog_, text.c_str(), s.file.c_str(), static_cast<int>(header_texts.size()),
                             header_texts.data(), header_names.data()),
          "nvrtcCreateProgram");
  }
  ~Program() { nvrtcDestroyProgram(&prog_); }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  nvrtcProgram get() const { return prog_; }

  std::string log() const {
    std::size_t size = 0;
    if (nvrtcGetProgramLogSize(prog_, &size) != NVRTC_SUCCESS || size <= 1) return {};
    std::string out(size, '\0');
    if (nvrtcGetProgramLog(prog_, out.data()) != NVRTC_SUCCESS) return {};
    out.resize(size - 1);
    return out;
  }

 private:
  nvrtcProgram prog_ = nullptr;
};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// The binaries table stores lowered names one per line.
std::string encode_symbols(const std::vector<std::string>& lowered) { return join(lowered, "\n"); }
std::vector<std::string> decode_symbols(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string nvrtc_version() {
  int major = 0, minor = 0;
  check(nvrtcVersion(&major, &minor), "nvrtcVersion");
  return std::to_string(major) + "." + std::to_string(minor);
}

std::string target_arch(int cc_major, int cc_minor) {
  const int cc = cc_major * 10 + cc_minor;
  if (cc == 90) return "sm_90a";
  int count = 0;
  check(nvrtcGetNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs");
  std::vector<int> archs(static_cast<std::size_t>(count));
  check(nvrtcGetSupportedArchs(archs.data()), "nvrtcGetSupportedArchs");
  if (std::find(archs.begin(), archs.end(), cc) != archs.end()) return "sm_" + std::to_string(cc);
  int best = 0;
  for (int a : archs)
    if (a <= cc) best = std::max(best, a);
  if (best == 0)
    throw Error(ErrorCode::Unsupported, "NVRTC " + nvrtc_version() + " cannot target compute capability " +
                                            std::to_string(cc_major) + "." + std::to_string(cc_minor));
  // A newer GPU than this NVRTC knows: PTX, which the driver compiles for it.
  return "compute_" + std::to_string(best);
}

Binary compile(const KernelSource& source) {
  std::vector<const char*> header_texts, header_names;
  std::vector<std::string> header_storage;
  for (const EmbeddedFile& f : embedded_templates()) {
    if (f.name == source.file) continue;
    header_storage.emplace_back(f.text);
    header_names.push_back(f.name.data());
  }
  for (const auto& s : header_storage) header_texts.push_back(s.c_str());

  Program prog(source, header_texts, header_names);
  for (const auto& e : source.name_expressions) check(nvrtcAddNameExpression(prog.get(), e.c_str()), "nvrtcAddNameExpression");
  std::vector<const char*> opts;
  for (const auto& o : source.options) opts.push_back(o.c_str());

  const auto t0 = std::chrono::steady_clock::now();
  const nvrtcResult r = nvrtcCompileProgram(prog.get(), static_cast<int>(opts.size()), opts.data());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const std::string log = prog.log();
  if (r != NVRTC_SUCCESS)
    throw Error(ErrorCode::CompileFailed, "NVRTC could not compile " + source.file + " [" + source.label + "] with options '" +
                                              join(source.options, " ") + "' (" + nvrtcGetErrorString(r) + "):\n" + log);
  support::log().debug("nvrtc: compiled {} [{}] for {} in {:.0f} ms; options: {}", source.file, source.label,
                       source.arch, ms, join(source.options, " "));
  if (!log.empty()) support::log().debug("nvrtc log for [{}]:\n{}", source.label, log);

  Binary bin;
  bin.log = log;
  for (const auto& e : source.name_expressions) {
    const char* lowered = nullptr;
    check(nvrtcGetLoweredName(prog.get(), e.c_str(), &lowered), "nvrtcGetLoweredName");
    bin.lowered_names.emplace_back(lowered);
  }
  const bool ptx = source.arch.rfind("compute_", 0) == 0;
  std::size_t size = 0;
  check(ptx ? nvrtcGetPTXSize(prog.get(), &size) : nvrtcGetCUBINSize(prog.get(), &size), "nvrtcGet*Size");
  bin.image.resize(size);
  check(ptx ? nvrtcGetPTX(prog.get(), reinterpret_cast<char*>(bin.image.data()))
            : nvrtcGetCUBIN(prog.get(), reinterpret_cast<char*>(bin.image.data())),
        "nvrtcGet*");
  return bin;
}

Binary Jit::get(const KernelSource& source) {
  // Built with the library: nothing to compile, nothing to cache.
  if (!source.prebuilt.empty())
    return {"prebuilt " + source.file, std::vector<std::uint8_t>(source.prebuilt.begin(), source.prebuilt.end()),
            source.name_expressions, {}};
  // The NVRTC version is part of the key: another compiler may make other bytes.
  static const std::string nvrtc = nvrtc_version();
  const std::string key = support::Fnv1a().add(source.key()).add(nvrtc).hex();
  if (auto rec = store_.find_binary(key)) {
    cache_hits_.fetch_add(1);
    Binary bin{key, std::move(rec->cubin), decode_symbols(rec->symbols), {}};  // no log: not compiled here
    if (bin.lowered_names.size() == source.name_expressions.size()) return bin;
    support::log().warn("cached binary {} lists {} kernels, expected {}; recompiling", key, bin.lowered_names.size(),
                        source.name_expressions.size());
  }
  compiles_.fetch_add(1);
  Binary bin = compile(source);
  bin.key = key;
  cache::BinaryRecord rec;
  rec.key = key;
  rec.kernel = source.file + " " + source.label;
  rec.arch = source.arch;
  rec.nvrtc_version = nvrtc;
  rec.symbols = encode_symbols(bin.lowered_names);
  rec.cubin = bin.image;
  rec.hash = support::hash_hex(rec.cubin.data(), rec.cubin.size());
  rec.created_at = static_cast<std::int64_t>(std::time(nullptr));
  store_.put_binary(rec);
  return bin;
}

}  // namespace rnnjit
