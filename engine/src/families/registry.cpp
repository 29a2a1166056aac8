#include "registry.hpp"

#include <algorithm>

namespace rnnjit {
namespace {

// Every registered family satisfies the descriptor interface.
template <class... F>
constexpr bool all_families(std::variant<F...>*) {
  return (KernelFamily<F> && ...);
}
static_assert(all_families(static_cast<Tile*>(nullptr)), "a registered family does not satisfy KernelFamily");

template <class F, class... Rest>
std::optional<Tile> parse_as(std::string_view name) {
  if (auto t = F::parse(name)) return Tile(*t);
  if constexpr (sizeof...(Rest) > 0) return parse_as<Rest...>(name);
  return std::nullopt;
}

template <class... F>
std::optional<Tile> parse_any(std::string_view name, std::variant<F...>*) {
  return parse_as<F...>(name);
}

}  // namespace

std::string tile_name(const Tile& t) {
  return std::visit([](const auto& f) { return f.name(); }, t);
}

std::optional<Tile> parse_tile(std::string_view name) { return parse_any(name, static_cast<Tile*>(nullptr)); }

Scope scope_of(const Tile& t) {
  return std::visit([](const auto& f) { return std::decay_t<decltype(f)>::kScope; }, t);
}

Geometry geometry(const Tile& t, Stage stage, const Shape& s) {
  return std::visit([&](const auto& f) { return f.geometry(s, stage); }, t);
}

Operands operands(const Tile& t, const Shape& s) {
  return std::visit([&](const auto& f) { return f.operands(s); }, t);
}

std::string rejects(const Tile& t, Stage stage, const Shape& s, const DeviceInfo& d) {
  const bool bf16 = std::visit([](const auto& f) { return std::decay_t<decltype(f)>::kServesBf16; }, t);
  if (s.dtype == DType::BF16 && !bf16) return "stores f32 only, not bf16";
  std::string why = std::visit([&](const auto& f) { return f.rejects(s, stage, d); }, t);
  if (!why.empty()) return why;
  const Geometry geo = geometry(t, stage, s);
  // A grid barrier needs every CTA resident: at most one a SM.
  if (geo.cooperative && static_cast<int>(geo.grid_x) > d.sm_count)
    return std::to_string(geo.grid_x) + " CTAs, device has " + std::to_string(d.sm_count) + " SMs";
  if (geo.threads > 1024) return "more than 1024 threads";
  if (static_cast<std::int64_t>(geo.smem) > d.smem_per_block_optin)
    return std::to_string(geo.smem) + " B of shared memory, device allows " + std::to_string(d.smem_per_block_optin);
  return "";
}

KernelSource specialize(const Tile& t, Stage stage, const Shape& s, const std::string& arch) {
  KernelSource src;
  std::visit(
      [&](const auto& f) {
        src.file = std::decay_t<decltype(f)>::kFile;
        src.name_expressions = f.kernels(s, stage);
      },
      t);
  src.text = find_template(src.file);
  src.prebuilt = find_prebuilt(src.file);
  src.options = {"--std=c++17", "--gpu-architecture=" + arch, "--extra-device-vectorization"};
  src.arch = arch;
  src.label = std::string(stage_name(stage)) + " " + tile_name(t);
  return src;
}

}  // namespace rnnjit
