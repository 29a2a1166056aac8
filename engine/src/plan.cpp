#include "plan.hpp"

#include "driver.hpp"

#include <algorithm>
#include <cstdint>

namespace rnnjit {
namespace {

// Loads `binary` and says how to launch it for the stage C[M, n] = A·Wᵀ, A = [A1 (k1) | A2 (k2)],
// W rows ldw floats apart.
Launch make_launch(CUmodule* module, const Binary& binary, const Tile& t, const Shape& s, int n, int k1, int k2,
                   int ldw) {
  const bool cross = t.family == Family::Wgmma && s.math == Math::Fp32;
  if (binary.lowered_names.size() != (cross ? 2u : 1u))
    throw Error(ErrorCode::Internal, "stage binary of " + t.name() + " holds " +
                                         std::to_string(binary.lowered_names.size()) + " kernels");
  RNNJIT_CU(cuModuleLoadData(module, binary.image.data()));
  Launch l;
  RNNJIT_CU(cuModuleGetFunction(&l.fn, *module, binary.lowered_names[0].c_str()));
  if (cross) {
    RNNJIT_CU(cuModuleGetFunction(&l.split_fn, *module, binary.lowered_names[1].c_str()));
    l.cross_cols = ((k1 + 31) / 32 + (k2 + 31) / 32) * 32;  // each K segment in whole 32-float slices
  }
  switch (t.family) {
    case Family::Mma:
      l.grid_x = static_cast<unsigned>((n + t.bn - 1) / t.bn);
      l.grid_y = static_cast<unsigned>((s.b + t.bm - 1) / t.bm);
      break;
    case Family::Gemv:
      l.grid_x = static_cast<unsigned>((n + t.rows * t.warps - 1) / (t.rows * t.warps));
      break;
    case Family::Grid:
    case Family::GridStream:
    case Family::GridMma:
      l.grid_x = static_cast<unsigned>(t.cluster);
      l.cooperative = true;
      break;
    case Family::Fused:
      l.cluster = static_cast<unsigned>(t.split);
      l.grid_x = static_cast<unsigned>(fused_clusters(t, s.h)) * l.cluster;
      l.dependent = true;
      // Clusters beyond the portable 8 CTAs must be allowed explicitly.
      if (t.split > 8) RNNJIT_CU(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1));
      break;
    case Family::Wgmma:
      // One dimension: kernel_templates/gemm_wgmma.cu orders split, M tile, N tile itself.
      l.grid_x = static_cast<unsigned>((n + t.bn - 1) / t.bn * ((s.b + t.bm - 1) / t.bm) * t.split);
      l.cluster = t.split > 1 ? static_cast<unsigned>(t.split) : 0;
      l.tma = true;
      l.m = s.b, l.n = n, l.k1 = k1, l.k2 = k2, l.ldw = ldw, l.bm = t.bm, l.bn = t.bn;
      break;
  }
  l.threads = static_cast<unsigned>(t.threads());
  l.smem = static_cast<unsigned>(t.smem_bytes(s));
  // Above 48 KiB a kernel must opt in to its dynamic shared memory.
  if (l.smem > 48 * 1024)
    RNNJIT_CU(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(l.smem)));
  return l;
}

void launch(const Launch& l, void** params, CUstream stream) {
  if (l.cluster == 0 && !l.cooperative && !l.dependent) {
    RNNJIT_CU(cuLaunchKernel(l.fn, l.grid_x, l.grid_y, 1, l.threads, 1, 1, l.smem, stream, params, nullptr));
    return;
  }
  CUlaunchAttribute attrs[3]{};
  unsigned n = 0;
  if (l.cooperative) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    attrs[n++].value.cooperative = 1;
  }
  if (l.cluster > 0) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attrs[n].value.clusterDim.x = l.cluster;
    attrs[n].value.clusterDim.y = 1;
    attrs[n++].value.clusterDim.z = 1;
  }
  if (l.dependent) {
    attrs[n].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attrs[n++].value.programmaticStreamSerializationAllowed = 1;
  }
  CUlaunchConfig cfg{};
  cfg.gridDimX = l.grid_x;
  cfg.gridDimY = l.grid_y;
  cfg.gridDimZ = 1;
  cfg.blockDimX = l.threads;
  cfg.blockDimY = 1;
  cfg.blockDimZ = 1;
  cfg.sharedMemBytes = l.smem;
  cfg.hStream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = n;
  RNNJIT_CU(cuLaunchKernelEx(&cfg, l.fn, params, nullptr));
}

// C = A·Wᵀ + bias through `l`; a Wgmma fp32 stage first writes A's cross copy to `cross`.
void launch_gemm(const Launch& l, TensorMapCache& maps, const float* a1, const float* a2, const float* w,
                 const float* bias, float* c, float* cross, CUstream stream) {
  if (!l.tma) {
    void* params[] = {&a1, &a2, &w, &bias, &c};
    launch(l, params, stream);
    return;
  }
  CUtensorMap a1_map = maps.get(a1, l.k1, l.m, l.k1, l.bm);
  // h2o has no second segment, tf32 no cross copy: the kernel never reads those maps.
  CUtensorMap a2_map = l.k2 > 0 ? maps.get(a2, l.k2, l.m, l.k2, l.bm) : a1_map;
  CUtensorMap w_map = maps.get(w, l.ldw, l.n, l.ldw, l.bn);
  CUtensorMap cross_map = a1_map;
  if (l.split_fn) {
    const std::int64_t threads = std::int64_t(l.m) * (l.cross_cols / 4);  // one a float4 of A
    Launch split{l.split_fn, static_cast<unsigned>((threads + 255) / 256), 1, 256};
    void* split_params[] = {&a1, &a2, &cross};
    launch(split, split_params, stream);
    // Words stand in for floats: the map only moves 128-byte rows.
    cross_map = maps.get(cross, l.cross_cols, l.m, l.cross_cols, l.bm);
  }
  void* params[] = {&a1_map, &a2_map, &w_map, &cross_map, &bias, &c};
  launch(l, params, stream);
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

CUtensorMap TensorMapCache::get(const float* base, int cols, int rows, int ld, int box_rows) {
  std::lock_guard lock(mu_);
  Entry* slot = &entries_[0];
  for (Entry& e : entries_) {
    if (e.used && e.base == base && e.cols == cols && e.rows == rows && e.ld == ld && e.box_rows == box_rows) {
      e.used = ++clock_;
      return e.map;
    }
    if (e.used < slot->used) slot = &e;
  }
  // Outside the matrix the boxes read zeros.
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld) * sizeof(float)};
  const cuuint32_t box[2] = {32, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  CUtensorMap map;
  RNNJIT_CU(cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, const_cast<float*>(base), dims,
                                   strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  *slot = {base, cols, rows, ld, box_rows, ++clock_, map};
  return map;
}

Plan::Plan(const Config& config, const Shape& shape, const std::vector<const Binary*>& binaries) : config_(config) {
  if (binaries.size() != (config.is_fused() ? 1u : 2u))
    throw Error(ErrorCode::Internal, "plan " + config.name() + " got " + std::to_string(binaries.size()) + " binaries");
  try {
    i2h_ = make_launch(&modules_[0], *binaries[0], config.i2h, shape, shape.h, shape.i, shape.h, shape.i + shape.h);
    if (!config.is_fused())
      h2o_ = make_launch(&modules_[1], *binaries[1], config.h2o, shape, shape.o, shape.h, 0, shape.h);
  } catch (...) {
    unload();
    throw;
  }
}

Plan::~Plan() { unload(); }

void Plan::unload() noexcept {
  // Errors are ignored: this runs in a destructor, and a dead context unloads anyway.
  for (CUmodule m : modules_)
    if (m) driver::api().cuModuleUnload(m);
}

bool Plan::accepts(const StepArgs& a) const {
  if (i2h_.tma && !(aligned16(a.x) && aligned16(a.h) && aligned16(a.w1))) return false;
  return !h2o_.tma || (aligned16(a.h_out) && aligned16(a.w2));
}

void Plan::run(const StepArgs& a, CUstream stream) const {
  if (config_.is_fused()) {
    StepArgs copy = a;
    void* params[] = {&copy.x, &copy.h, &copy.w1, &copy.b1, &copy.w2, &copy.b2, &copy.h_out, &copy.y, &copy.barrier};
    if ((i2h_.cooperative || i2h_.dependent) && !a.barrier) throw Error(ErrorCode::Internal, config_.name() + " needs a barrier counter");
    launch(i2h_, params, stream);
    return;
  }
  // fp32 Wgmma stages: A's cross copies in stream-ordered scratch, one stage's after the other's.
  auto bytes = [](const Launch& l) { return l.split_fn ? std::size_t(l.cross_cols) * l.m * 4 : 0; };
  const std::size_t cross_bytes = std::max(bytes(i2h_), bytes(h2o_));
  CUdeviceptr cross = 0;
  if (cross_bytes > 0) RNNJIT_CU(cuMemAllocAsync(&cross, cross_bytes, stream));
  float* const scratch = reinterpret_cast<float*>(cross);
  try {
    launch_gemm(i2h_, maps_, a.x, a.h, a.w1, a.b1, a.h_out, scratch, stream);
    launch_gemm(h2o_, maps_, a.h_out, nullptr, a.w2, a.b2, a.y, scratch, stream);
  } catch (...) {
    if (cross) driver::api().cuMemFreeAsync(cross, stream);
    throw;
  }
  if (cross) RNNJIT_CU(cuMemFreeAsync(cross, stream));
}

}  // namespace rnnjit
