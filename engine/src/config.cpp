#include "config.hpp"

#include <algorithm>

namespace rnnjit {

bool valid_sequence(const std::vector<Op>& ops) {
  auto is = [&](std::size_t i, Stage stage, Scope scope) {
    return ops[i].stage == stage && scope_of(ops[i].tile) == scope;
  };
  if (ops.size() == 1) return is(0, Stage::Step, Scope::Step);
  if (ops.size() == 3)
    return is(0, Stage::XProj, Scope::Stage) && is(1, Stage::Recur, Scope::Recurrence) && is(2, Stage::H2o, Scope::Stage);
  return ops.size() == 2 && is(0, Stage::I2h, Scope::Stage) && is(1, Stage::H2o, Scope::Stage);
}

std::string Config::name() const {
  if (ops.size() == 1 && ops[0].stage == Stage::Step) return tile_name(ops[0].tile);
  std::string out;
  for (const Op& op : ops) {
    if (!out.empty()) out += '.';
    out += stage_name(op.stage);
    out += '_';
    out += tile_name(op.tile);
  }
  return out;
}

std::optional<Config> Config::parse(std::string_view name) {
  Config c;
  if (const auto whole = parse_tile(name)) {
    c.ops.push_back({Stage::Step, *whole});
  } else {
    while (!name.empty()) {
      const std::size_t dot = name.find('.');
      const std::string_view op = name.substr(0, dot);
      std::optional<Stage> stage;
      for (Stage s : {Stage::I2h, Stage::H2o, Stage::XProj, Stage::Recur})
        if (op.rfind(std::string(stage_name(s)) + "_", 0) == 0) stage = s;
      if (!stage) return std::nullopt;
      const auto t = parse_tile(op.substr(std::string_view(stage_name(*stage)).size() + 1));
      if (!t) return std::nullopt;
      c.ops.push_back({*stage, *t});
      if (dot == std::string_view::npos) break;
      name.remove_prefix(dot + 1);
      if (name.empty()) return std::nullopt;  // a trailing '.'
    }
  }
  if (!valid_sequence(c.ops)) return std::nullopt;
  return c;
}

bool Config::needs_aligned_pointers(const Shape& s) const {
  for (const Op& op : ops) {
    const Operands o = operands(op.tile, s);
    if (o == Operands::Pointers || o == Operands::PointersAndSizes) continue;
    const Geometry g = geometry(op.tile, op.stage, s);
    if (std::max(g.a_align(), g.w_align()) > static_cast<int>(dtype_size(s.dtype))) return true;
  }
  return false;
}

bool can_implement(const Config& config, const Shape& shape, const DeviceInfo& device, std::string* why) {
  if (!valid_sequence(config.ops)) {
    if (why) *why = "a config is one whole-step launch, an i2h then an h2o stage, or xproj, recur and h2o";
    return false;
  }
  if (config.is_sequence() != (shape.steps > 0)) {
    if (why) *why = shape.steps > 0 ? "a sequence runs xproj, recur and h2o" : "xproj, recur and h2o run sequences only";
    return false;
  }
  for (const Op& op : config.ops) {
    const std::string r = rejects(op.tile, op.stage, shape, device);
    if (!r.empty()) {
      if (why) *why = std::string(stage_name(op.stage)) + " tile " + tile_name(op.tile) + ": " + r;
      return false;
    }
  }
  return true;
}

}  // namespace rnnjit
