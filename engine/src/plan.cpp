#include "plan.hpp"

#include <algorithm>
#include <cstdint>

#include "driver.hpp"

namespace rnnjit {
namespace {

void launch(CUfunction fn, const Geometry& g, void** params, CUstream stream) {
  if (g.cluster_ctas == 0 && !g.cooperative && !g.dependent) {
    RNNJIT_CU(cuLaunchKernel(fn, g.grid_x, g.grid_y, 1, g.threads, 1, 1, static_cast<unsigned>(g.smem), stream, params,
                             nullptr));
    return;
  }
  CUlaunchAttribute attrs[3]{};
  unsigned n = 0;
  if (g.cooperative) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    attrs[n++].value.cooperative = 1;
  }
  if (g.cluster_ctas > 0) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attrs[n].value.clusterDim.x = g.cluster_ctas;
    attrs[n].value.clusterDim.y = 1;
    attrs[n++].value.clusterDim.z = 1;
  }
  if (g.dependent) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attrs[n++].value.programmaticStreamSerializationAllowed = 1;
  }
  CUlaunchConfig cfg{};
  cfg.gridDimX = g.grid_x;
  cfg.gridDimY = g.grid_y;
  cfg.gridDimZ = 1;
  cfg.blockDimX = g.threads;
  cfg.blockDimY = 1;
  cfg.blockDimZ = 1;
  cfg.sharedMemBytes = static_cast<unsigned>(g.smem);
  cfg.hStream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  RNNJIT_CU(cuLaunchKernelEx(&cfg, fn, params, nullptr));
}

// The operands of a GEMM stage: C = A·Wᵀ + bias, A = [a1 | a2].
struct StageOperands {
  const void* a1;
  const void* a2;
  const void* w;
  const void* bias;
  void* c;
};

StageOperands stage_operands(Stage s, const Args& a) {
  if (s == Stage::I2h) return {a.x, a.h, a.w1, a.b1, a.h_out};
  if (s == Stage::XProj) return {a.x, nullptr, a.w1, a.b1, a.proj};
  return {a.h_out, nullptr, a.w2, a.b2, a.y};
}

bool aligned(const void* p, int bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// One thread 16 bytes of `out`, ROWS rows of `cols` elements of `elem` bytes (pack_rows in
// rnnjit_device.cuh).
void launch_pack(CUfunction fn, const void* a1, const void* a2, void* out, int rows, int cols, int elem, CUstream stream) {
  Geometry g;
  g.grid_x = static_cast<unsigned>((std::int64_t(rows) * (cols * elem / 16) + 255) / 256);
  g.threads = 256;
  void* params[] = {&a1, &a2, &out};
  launch(fn, g, params, stream);
}

}  // namespace

CUtensorMap TensorMapCache::get(const void* base, int cols, int rows, int ld, int box_rows, int elem) {
  std::lock_guard lock(mu_);
  Entry* slot = &entries_[0];
  for (Entry& e : entries_) {
    if (e.used && e.base == base && e.cols == cols && e.rows == rows && e.ld == ld && e.box_rows == box_rows &&
        e.elem == elem) {
      e.used = ++clock_;
      return e.map;
    }
    if (e.used < slot->used) slot = &e;
  }
  // Outside the matrix the boxes read zeros.
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld) * elem};
  // A box row is one 128-byte swizzle row: 32 f32 or 64 bf16.
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(rnnjit_k::kWgmmaSliceFloats * 4 / elem), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUtensorMapDataType type = elem == 2 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  CUtensorMap map;
  RNNJIT_CU(cuTensorMapEncodeTiled(&map, type, 2, const_cast<void*>(base), dims, strides, box, elem_strides,
                                   CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  *slot = {base, cols, rows, ld, box_rows, elem, ++clock_, map};
  return map;
}

std::vector<KernelSource> sources_of(const Config& config, const Shape& shape, const std::string& arch) {
  std::vector<KernelSource> out;
  for (const Op& op : config.ops) out.push_back(specialize(op.tile, op.stage, shape, arch));
  return out;
}

Plan::Plan(const Config& config, const Shape& shape, const std::vector<const Binary*>& binaries) : config_(config), shape_(shape) {
  if (binaries.size() != config.ops.size())
    throw Error(ErrorCode::Internal, "plan " + config.name() + " got " + std::to_string(binaries.size()) + " binaries");
  for (std::size_t i = 0; i < config.ops.size(); ++i) {
    const Op& op = config.ops[i];
    Launch l;
    l.stage = op.stage;
    l.operands = operands(op.tile, shape);
    l.geo = geometry(op.tile, op.stage, shape);
    if (op.stage != Stage::Step && op.stage != Stage::Recur) l.gemm = gemm_of(op.stage, shape);
    if (l.geo.pack_k > 0) {
      l.w_in_place = l.gemm.ldw == l.geo.pack_k;
      l.gemm = packed(l.gemm, l.geo.w_copy > 0);
    }
    const bool cross = l.operands == Operands::TensorMapsCross;
    const bool pack_w = l.geo.pack_k > 0 && l.geo.w_copy == 0;
    const std::size_t kernels = 1 + (cross ? 1 : 0) + (l.geo.pack_k > 0 ? 1 : 0) + (pack_w ? 1 : 0);
    if (binaries[i]->lowered_names.size() != kernels)
      throw Error(ErrorCode::Internal, "binary of " + tile_name(op.tile) + " holds " +
                                           std::to_string(binaries[i]->lowered_names.size()) + " kernels");
    const Module& m = modules_.emplace_back(*binaries[i]);
    l.fn = m.function(0);
    if (cross) l.cross_fn = m.function(1);
    if (l.geo.pack_k > 0) l.pack_a_fn = m.function(cross ? 2 : 1);
    if (pack_w) l.pack_w_fn = m.function(kernels - 1);
    // h2o on TMA + wgmma right after i2h's kernel (no copy launched between) starts as a
    // programmatic dependent: its first W slices load while i2h finishes (gemm_wgmma.cu). Only
    // where W2 is small beside L2: at kb-large (512 MB) h2o's 200 µs have no launch to hide, and
    // its prefetches would evict i2h's A (docs/kernels.md, "wgmma").
    constexpr std::size_t kDependentMaxWBytes = std::size_t(16) << 20;
    if (op.stage == Stage::H2o && !launches_.empty() && launches_.back().stage == Stage::I2h &&
        l.operands == Operands::TensorMaps && l.geo.pack_k == 0 &&
        std::size_t(l.gemm.n) * l.gemm.ldw * l.gemm.elem <= kDependentMaxWBytes)
      l.geo.dependent = true;
    // Clusters beyond the portable 8 CTAs must be allowed explicitly.
    if (l.geo.cluster_ctas > 8) RNNJIT_CU(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1));
    // Above 48 KiB a kernel must opt in to its dynamic shared memory.
    if (l.geo.smem > 48 * 1024)
      RNNJIT_CU(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(l.geo.smem)));
    launches_.push_back(l);
  }
}

bool Plan::accepts(const Args& a) const {
  for (const Launch& l : launches_) {
    if (l.operands == Operands::Pointers || l.operands == Operands::PointersAndSizes) continue;
    // One kernel a copy width: a second, narrower copy loop for other pointers cost 12 bytes of
    // spills at 128x128.
    const StageOperands o = stage_operands(l.stage, a);
    const int a_align = l.geo.a_align(), w_align = l.geo.w_align();
    if (!aligned(o.a1, a_align) || !aligned(o.w, w_align) || (l.gemm.k2 > 0 && !aligned(o.a2, a_align))) return false;
  }
  return true;
}

Plan::ScratchUse Plan::scratch_use(const Launch& l, const Args& args) {
  ScratchUse u;
  const Gemm& g = l.gemm;
  if (l.operands == Operands::TensorMapsCross) u.cross = std::size_t(l.geo.cross_words) * g.m * 4;
  if (l.geo.pack_k > 0) {
    u.a = std::size_t(g.m) * l.geo.pack_k * g.elem;
    if (l.geo.w_copy == 0 && (!l.w_in_place || !aligned(stage_operands(l.stage, args).w, 16)))
      u.w = std::size_t(g.n) * l.geo.pack_k * g.elem;
  }
  return u;
}

// C = A·Wᵀ + bias through `l`: a packed stage first copies A (and W where needed) into `scratch`
// after the cross copy's place, a TensorMapsCross stage then writes A's cross copy at its start.
void Plan::launch_stage(const Launch& l, const Args& args, char* scratch, CUstream stream) const {
  StageOperands o = stage_operands(l.stage, args);
  const Gemm& g = l.gemm;
  if (l.operands == Operands::Pointers) {
    void* params[] = {&o.a1, &o.a2, &o.w, &o.bias, &o.c};
    launch(l.fn, l.geo, params, stream);
    return;
  }
  if (l.operands == Operands::PointersAndSizes) {
    int m = g.m, n = g.n, k1 = g.k1, k2 = g.k2, ldw = g.ldw, epi = g.epi;
    void* params[] = {&o.a1, &o.a2, &o.w, &o.bias, &o.c, &m, &n, &k1, &k2, &ldw, &epi};
    launch(l.fn, l.geo, params, stream);
    return;
  }
  const ScratchUse use = scratch_use(l, args);
  void* cross = scratch;
  if (l.geo.pack_k > 0) {
    char* a = scratch + use.cross;
    launch_pack(l.pack_a_fn, o.a1, o.a2 ? o.a2 : o.a1, a, g.m, g.k1, g.elem, stream);
    o.a1 = a;
    o.a2 = nullptr;
    if (use.w > 0) {
      char* w = a + use.a;
      launch_pack(l.pack_w_fn, o.w, o.w, w, g.n, g.k1, g.elem, stream);
      o.w = w;
    }
  }
  // The kernel never reads the maps of operands it copies (rows TMA cannot describe), of h2o's
  // absent second segment, or of tf32's absent cross copy.
  const CUtensorMap unused{};
  const bool tma_a = l.geo.a_copy == 0;
  CUtensorMap a1_map = tma_a ? maps_.get(o.a1, g.k1, g.m, g.k1, l.geo.tma_box_a, g.elem) : unused;
  CUtensorMap a2_map = tma_a && g.k2 > 0 ? maps_.get(o.a2, g.k2, g.m, g.k2, l.geo.tma_box_a, g.elem) : unused;
  CUtensorMap w_map = l.geo.w_copy == 0 ? maps_.get(o.w, g.ldw, g.n, g.ldw, l.geo.tma_box_w, g.elem) : unused;
  CUtensorMap cross_map = unused;
  if (l.operands == Operands::TensorMapsCross) {
    const std::int64_t threads = std::int64_t(g.m) * (l.geo.cross_words / 4);  // one a float4 of A
    Geometry split;
    split.grid_x = static_cast<unsigned>((threads + 255) / 256);
    split.threads = 256;
    void* split_params[] = {&o.a1, &o.a2, &cross};
    launch(l.cross_fn, split, split_params, stream);
    // Words stand in for floats: the map only moves 128-byte rows.
    cross_map = maps_.get(cross, l.geo.cross_words, g.m, l.geo.cross_words, l.geo.tma_box_a, 4);
  }
  int dependent = l.geo.dependent ? 1 : 0;
  void* params[] = {&a1_map, &a2_map, &w_map, &cross_map, &o.a1, &o.a2, &o.w, &o.bias, &o.c, &dependent};
  launch(l.fn, l.geo, params, stream);
}

// The chunk's last a.steps steps: their projections and states start that many steps before the end.
void Plan::launch_recurrence(const Launch& l, const Args& a, CUstream stream) const {
  const int chunk = shape_.steps;
  if (a.steps < 1 || a.steps > chunk || !a.proj)
    throw Error(ErrorCode::Internal, config_.name() + " runs 1 to " + std::to_string(chunk) + " steps of a chunk with a projection buffer, not " +
                                         std::to_string(a.steps));
  if (l.geo.cooperative && !a.counters) throw Error(ErrorCode::Internal, config_.name() + " needs launch counters");
  const std::size_t skip = std::size_t(chunk - a.steps) * shape_.b * shape_.h * dtype_size(shape_.dtype);
  const void* proj = static_cast<const char*>(a.proj) + skip;
  void* states = static_cast<char*>(a.h_out) + skip;
  const void* h0 = a.h;
  const void* w1 = a.w1;
  int steps = a.steps;
  unsigned* counters = a.counters;
  void* params[] = {&proj, &h0, &w1, &states, &steps, &counters};
  launch(l.fn, l.geo, params, stream);
}

void Plan::run(const Args& a, CUstream stream, ScratchArena* arena) const {
  // Cross copies and packed operands in one scratch lease, one launch's after the other's.
  std::size_t bytes = 0;
  for (const Launch& l : launches_) bytes = std::max(bytes, scratch_use(l, a).total());
  ScratchArena::Lease scratch(arena, bytes, stream);
  for (const Launch& l : launches_) {
    if (l.stage == Stage::Recur) {
      launch_recurrence(l, a, stream);
      continue;
    }
    if (l.stage != Stage::Step) {
      launch_stage(l, a, scratch.get(), stream);
      continue;
    }
    if ((l.geo.cooperative || l.geo.dependent) && !a.counters)
      throw Error(ErrorCode::Internal, config_.name() + " needs launch counters");
    Args copy = a;
    void* params[] = {&copy.x, &copy.h, &copy.w1, &copy.b1, &copy.w2, &copy.b2, &copy.h_out, &copy.y, &copy.counters};
    launch(l.fn, l.geo, params, stream);
  }
  scratch.release();
}

}  // namespace rnnjit
