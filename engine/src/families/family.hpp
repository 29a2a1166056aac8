// What every kernel family provides: one descriptor (a struct of named knobs) and one file of
// kernel_templates/. The tuner, the jit and the plan handle every family through this interface
// alone (registry.hpp lists the families); README.md, "Adding a kernel family", says how to add one.
//
// A family F is a struct with
//   static constexpr std::string_view kFile;   its kernel_templates/ file
//   static constexpr Scope kScope;             a GEMM stage, or the whole step in one launch
//   static constexpr bool kServesBf16;         whether its kernels take bf16 storage (an ST argument)
//   int knobs..., operator==                   its tile: the template arguments the tuner varies
//   std::string name() const;                  the procedural name, a cache key
//   static std::optional<F> parse(std::string_view);  its inverse, canonical spelling only
//   std::string rejects(const Shape&, Stage, const DeviceInfo&) const;
//                                              why it cannot run here ("" if it can): can_implement
//   std::vector<std::string> kernels(const Shape&, Stage) const;
//                                              the name expressions NVRTC instantiates
//   Geometry geometry(const Shape&, Stage) const;  grid, block, shared memory, launch attributes
//   Operands operands(const Shape&) const;     how its launch takes its arguments
//   double estimate(const Shape&, Stage, const DeviceInfo&) const;
//                                              a cost in arbitrary units, to rank its own tiles
//   static std::span<const F> pool();          the tiles the tuner proposes from
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../problem.hpp"

namespace rnnjit {

/// What one launch of a family runs.
enum class Scope {
  Stage,       ///< one GEMM stage (Stage::I2h, Stage::H2o or Stage::XProj)
  Step,        ///< the whole step (Stage::Step)
  Recurrence,  ///< a sequence chunk's recurrence (Stage::Recur)
};

/// How a launch takes its arguments.
enum class Operands {
  Pointers,         ///< device pointers: (a1, a2, w, bias, c) for a stage, the step's eight and its counters for a
                    ///< step, (p, h0, w1, states, steps, counters) for a recurrence
  PointersAndSizes, ///< a stage's pointers, then its Gemm's sizes as ints: (m, n, k1, k2, ldw, epi)
  TensorMaps,       ///< TMA maps of A1, A2, W (and a cross-copy map) by value, then bias and c
  TensorMapsCross,  ///< the same, after a first kernel that writes A's cross copy to scratch
};

/// How to launch a family's kernel for one problem.
struct Geometry {
  unsigned grid_x = 1, grid_y = 1;
  unsigned threads = 0;
  std::size_t smem = 0;      ///< dynamic shared memory, bytes
  unsigned cluster_ctas = 0; ///< CTAs a thread-block cluster along x; 0 for none
  bool cooperative = false;  ///< every CTA resident at once: a grid barrier inside
  bool dependent = false;    ///< programmatic dependent launch: may start while the previous kernel ends
  unsigned tma_box_a = 0, tma_box_w = 0;  ///< TensorMaps: rows of A's and W's boxes
  int cross_words = 0;       ///< TensorMapsCross: 32-bit words a row of A's cross copy
  /// TensorMaps*: > 0 when the stage runs on packed copies (problem.hpp, packed()) in scratch, rows
  /// of pack_k elements: a launch copies A first (the binary's kernel after the product's and any
  /// cross copy's) and W (the next) where W's rows or pointer are not 16-byte aligned and w_copy is 0.
  int pack_k = 0;
  /// TensorMaps: > 0 where the kernel reads A's (W's) own rows by cp.async copies of this many bytes,
  /// so pointers aligned to them, instead of TMA: no packed copy (a packed W's kernel is then absent).
  int a_copy = 0, w_copy = 0;
  /// TensorMaps: the bytes A's (W's) pointer must be aligned to: 16 for TMA in place, a copy's width,
  /// 1 where the kernel reads a packed copy (W's is made when its pointer is misaligned for TMA).
  int a_align() const { return pack_k > 0 ? 1 : a_copy > 0 ? a_copy : 16; }
  int w_align() const { return w_copy > 0 ? w_copy : pack_k > 0 ? 1 : 16; }
};

/// The descriptor interface, checked at compile time for every registered family.
template <class F>
concept KernelFamily = requires(const F f, const Shape& s, Stage st, const DeviceInfo& d, std::string_view n) {
  { F::kFile } -> std::convertible_to<std::string_view>;
  { F::kScope } -> std::convertible_to<Scope>;
  { F::kServesBf16 } -> std::convertible_to<bool>;
  { f.name() } -> std::same_as<std::string>;
  { F::parse(n) } -> std::same_as<std::optional<F>>;
  { f.rejects(s, st, d) } -> std::same_as<std::string>;
  { f.kernels(s, st) } -> std::same_as<std::vector<std::string>>;
  { f.geometry(s, st) } -> std::same_as<Geometry>;
  { f.operands(s) } -> std::same_as<Operands>;
  { f.estimate(s, st, d) } -> std::same_as<double>;
  { F::pool() } -> std::same_as<std::span<const F>>;
  { f == f } -> std::same_as<bool>;
};

/// "rnnjit_k::<kernel><a,b,...>": a name expression from the template arguments.
std::string name_expression(std::string_view kernel, std::initializer_list<int> args);

/// `tile` if `name`, read with the scanf format `format` (which ends in %n) into `fields`, is read
/// whole and is the tile's canonical name (a name is a key: one spelling a tile).
template <class F, class... Ints>
std::optional<F> scan_name(std::string_view name, const char* format, const F& tile, Ints*... fields) {
  const std::string text(name);
  int used = 0;
  if (std::sscanf(text.c_str(), format, fields..., &used) != static_cast<int>(sizeof...(fields))) return std::nullopt;
  if (used != static_cast<int>(text.size()) || tile.name() != text) return std::nullopt;
  return tile;
}

/// The one-launch streaming steps' time model: the weights at HBM rate when enough bytes are in
/// flight (~4 MiB over the chip) and the CTAs' own load units keep up (~40 GB/s a SM); the batch's
/// A, re-read by every CTA, at ~120 GB/s a SM with its misses to L2, which bounds larger batches
/// (docs/kernels.md, "stream").
double streamed_seconds(int ctas, double weight_bytes, double bytes_in_flight, double a_bytes);

/// The bytes of W1 and W2 in the shape's storage type.
double weight_bytes(const Shape& s);

}  // namespace rnnjit
