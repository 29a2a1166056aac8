#include "recur_mma.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

using rnnjit_k::recur_mma_batch_tiles;
using rnnjit_k::recur_mma_row_tiles;
using rnnjit_k::recur_rows;

namespace {

// What a thread holds for the launch and a step: W_hh's A fragments (hi and lo words of 8 k steps'
// 4 elements...) and the two accumulators' C fragments, in 32-bit registers.
struct Held {
  int k_steps;  // k steps of 8 columns a warp
  int w_regs, acc_regs;
  int sums;  // sums a thread finishes a step
};

Held held(const RecurMmaTile& t, const Shape& s) {
  Held h;
  h.k_steps = ((s.h + 7) / 8 + t.warps - 1) / t.warps;
  h.w_regs = recur_mma_row_tiles(s.h, t.ctas) * h.k_steps * 8;
  h.acc_regs = recur_mma_row_tiles(s.h, t.ctas) * recur_mma_batch_tiles(s.b) * 8;
  h.sums = (s.b * recur_rows(s.h, t.ctas) + t.warps * 32 - 1) / (t.warps * 32);
  return h;
}

}  // namespace

std::string RecurMmaTile::name() const { return "recmma_c" + std::to_string(ctas) + "w" + std::to_string(warps); }

std::optional<RecurMmaTile> RecurMmaTile::parse(std::string_view name) {
  RecurMmaTile t;
  return scan_name(name, "recmma_c%dw%d%n", t, &t.ctas, &t.warps);
}

std::string RecurMmaTile::rejects(const Shape& s, Stage stage, const DeviceInfo& d) const {
  if (stage != Stage::Recur || s.steps <= 0) return "recur_mma runs a sequence's recurrence only";
  if (ctas <= 0 || warps <= 0) return "non-positive field";
  if (d.cc_major < 9)
    return "thread-block clusters need compute capability 9.0 or newer, device has " + std::to_string(d.cc_major) + "." +
           std::to_string(d.cc_minor);
  if (ctas > 16) return "a cluster holds at most 16 CTAs";
  if (warps > 32) return "more than 1024 threads";
  // Registers a thread at one CTA a SM, less ~48 for addresses, P, B fragments and the loop (the spill
  // test in tests/families_test.cpp compiles every proposal).
  const Held h = held(*this, s);
  const int budget = std::min(255, 65536 / (warps * 32)) - 48;
  if (h.w_regs + h.acc_regs > budget)
    return std::to_string(h.w_regs) + " registers of W_hh and " + std::to_string(h.acc_regs) +
           " of sums a thread, more than " + std::to_string(budget);
  if (h.sums > 8) return std::to_string(h.sums) + " sums a thread a step, at most 8";
  return "";
}

std::vector<std::string> RecurMmaTile::kernels(const Shape& s, Stage) const {
  return {name_expression("recur_mma", {s.b, s.i, s.h, ctas, warps})};
}

Geometry RecurMmaTile::geometry(const Shape& s, Stage) const {
  Geometry geo;
  geo.grid_x = static_cast<unsigned>(ctas);  // CTAs past H hold zero rows and still take h_t's pushes
  geo.threads = static_cast<unsigned>(warps * 32);
  geo.cluster_ctas = static_cast<unsigned>(ctas);
  geo.smem = static_cast<std::size_t>(rnnjit_k::recur_mma_smem_floats(s.b, s.h, ctas, warps)) * sizeof(float);
  return geo;
}

// Seconds a step, in recur's units (RecurTile::estimate) so that the two rank together: a warp's mma,
// 4 clocks each on its scheduler or a chain of 3 a k step at ~18 clocks where that is longer; the
// partial sums (a load a warp) and tanh; the pushes spread over the threads; two barriers; and the
// cluster's hand-off (docs/kernels.md, "recur_mma").
double RecurMmaTile::estimate(const Shape& s, Stage, const DeviceInfo&) const {
  constexpr double kClock = 1.6e9, kHandOff = 0.6e-6;
  const Held h = held(*this, s);
  const int mma = 3 * h.k_steps * recur_mma_row_tiles(s.h, ctas) * recur_mma_batch_tiles(s.b);
  const double products = std::max(4.0 * mma * std::ceil(warps / 4.0), 3.0 * std::ceil(h.k_steps / 2.0) * 18.0) + 30.0;
  const double sums = h.sums * (2.0 * warps + 40.0) + 40.0;
  const int unit = recur_rows(s.h, ctas) % 4 == 0 && s.h % 4 == 0 ? 4 : 1;
  const double pushes = std::ceil(double(s.b) * recur_rows(s.h, ctas) / unit * ctas / (warps * 32)) * 8.0;
  return (products + sums + pushes) / kClock + kHandOff;
}

// Clusters of 16, 8 and 4 CTAs with 8 or 16 warps: fewer CTAs hold more rows a thread and push to
// fewer CTAs; more warps split K finer (fewer registers a thread, more partial sums to add).
std::span<const RecurMmaTile> RecurMmaTile::pool() {
  static const RecurMmaTile tiles[] = {{16, 8}, {16, 16}, {8, 8}, {8, 16}, {4, 16}};
  return tiles;
}

}  // namespace rnnjit
