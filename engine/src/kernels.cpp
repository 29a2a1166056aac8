#include "kernels.hpp"

#include "support/hash.hpp"

namespace rnnjit {
namespace {

std::string args(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    if (!out.empty()) out += ',';
    out += std::to_string(v);
  }
  return out;
}

constexpr int kEpiBias = 0, kEpiBiasTanh = 1;  // kernel_templates/rnnjit_device.cuh

std::string_view find_template(std::string_view name) {
  for (const EmbeddedFile& f : embedded_templates())
    if (f.name == name) return f.text;
  throw Error(ErrorCode::Internal, "kernel template " + std::string(name) + " is not embedded");
}

}  // namespace

std::string KernelSource::key() const {
  support::Fnv1a h;
  // Every embedded file, not just `file`: a changed header changes the binary too.
  for (const EmbeddedFile& f : embedded_templates()) h.add(f.name).add(f.text);
  h.add(file);
  for (const auto& e : name_expressions) h.add(e);
  for (const auto& o : options) h.add(o);
  h.add(arch);
  return h.hex();
}

KernelSource specialize(const Tile& t, Stage stage, const Shape& s, const std::string& arch) {
  // i2h: [x | h]·W1ᵀ, W1 rows I+H long, two K segments; h2o: h'·W2ᵀ, one segment.
  const bool i2h = stage == Stage::I2h;
  const int n = i2h ? s.h : s.o, k1 = i2h ? s.i : s.h, k2 = i2h ? s.h : 0, ldw = i2h ? s.i + s.h : s.h;
  const int epi = i2h ? kEpiBiasTanh : kEpiBias;
  KernelSource src;
  if (t.family == Family::Grid) {
    src.file = "fused_grid.cu";
    src.name_expressions = {"rnnjit_k::fused_grid<" + args({s.b, s.i, s.h, s.o, t.cluster, t.warps}) + ">"};
  } else if (t.family == Family::GridStream) {
    src.file = "grid_stream.cu";
    src.name_expressions = {"rnnjit_k::grid_stream<" +
                            args({s.b, s.i, s.h, s.o, t.warps, t.rows, t.unroll, t.prefetch}) + ">"};
  } else if (t.family == Family::GridMma) {
    src.file = "grid_mma.cu";
    src.name_expressions = {"rnnjit_k::grid_mma<" +
                            args({s.b, s.i, s.h, s.o, static_cast<int>(s.math), t.warps, t.rows, t.unroll, t.prefetch}) +
                            ">"};
  } else if (t.family == Family::Fused) {
    src.file = "fused_cluster.cu";
    src.name_expressions = {"rnnjit_k::fused_cluster<" + args({s.b, s.i, s.h, s.o, t.cluster, t.split, t.warps}) + ">"};
  } else if (t.family == Family::Wgmma) {
    src.file = "gemm_wgmma.cu";
    src.name_expressions = {"rnnjit_k::gemm_wgmma<" +
                            args({s.b, n, k1, k2, ldw, t.bm, t.bn, t.groups, t.stages, t.split,
                                  static_cast<int>(s.math), epi}) + ">"};
    // fp32: the kernel that writes A's cross copies before the product (plan.cpp launches both).
    if (s.math == Math::Fp32) src.name_expressions.push_back("rnnjit_k::split_cross<" + args({s.b, k1, k2}) + ">");
  } else if (t.family == Family::Mma) {
    src.file = "gemm_mma.cu";
    src.name_expressions = {"rnnjit_k::gemm_mma<" +
                            args({s.b, n, k1, k2, ldw, t.bm, t.bn, t.bk, t.warps_m, t.warps_n, t.stages,
                                  static_cast<int>(s.math), epi}) + ">"};
  } else {
    // fp32 FFMA whatever the precision: tf32 and fp32 problems share these binaries.
    src.file = "gemv.cu";
    src.name_expressions = {"rnnjit_k::gemv<" + args({s.b, n, k1, k2, ldw, t.rows, t.warps, t.unroll, epi}) + ">"};
  }
  src.text = find_template(src.file);
  src.options = {"--std=c++17", "--gpu-architecture=" + arch, "--extra-device-vectorization"};
  src.arch = arch;
  src.label = stage == Stage::Step ? "step " : i2h ? "i2h " : "h2o ";
  src.label += t.name();
  return src;
}

std::vector<KernelSource> step_sources(const Config& config, const Shape& shape, const std::string& arch) {
  if (config.is_fused()) return {specialize(config.i2h, Stage::Step, shape, arch)};
  return {specialize(config.i2h, Stage::I2h, shape, arch), specialize(config.h2o, Stage::H2o, shape, arch)};
}

KernelSource fill_source(const std::string& arch) {
  KernelSource src;
  src.file = "fill.cu";
  src.text = find_template(src.file);
  src.name_expressions = {"rnnjit_k::fill_uniform"};
  src.options = {"--std=c++17", "--gpu-architecture=" + arch};
  src.arch = arch;
  src.label = "fill_uniform";
  return src;
}

std::string template_hash() {
  static const std::string hash = [] {
    support::Fnv1a h;
    for (const EmbeddedFile& f : embedded_templates()) h.add(f.name).add(f.text);
    return h.hex();
  }();
  return hash;
}

std::string version() { return RNNJIT_VERSION; }

}  // namespace rnnjit
