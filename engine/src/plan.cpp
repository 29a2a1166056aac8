#include "plan.hpp"

#include "driver.hpp"

namespace rnnjit {
namespace {

// Loads `binary` and says how to launch it for output columns `n` (h' or y columns).
Launch make_launch(CUmodule* module, const Binary& binary, const Tile& t, const Shape& s, int n) {
  if (binary.lowered_names.size() != 1) throw Error(ErrorCode::Internal, "a stage binary must hold one kernel");
  RNNJIT_CU(cuModuleLoadData(module, binary.image.data()));
  Launch l;
  RNNJIT_CU(cuModuleGetFunction(&l.fn, *module, binary.lowered_names[0].c_str()));
  switch (t.family) {
    case Family::Mma:
      l.grid_x = static_cast<unsigned>((n + t.bn - 1) / t.bn);
      l.grid_y = static_cast<unsigned>((s.b + t.bm - 1) / t.bm);
      break;
    case Family::Gemv:
      l.grid_x = static_cast<unsigned>((n + t.rows * t.warps - 1) / (t.rows * t.warps));
      break;
    case Family::Fused:
      l.grid_x = l.cluster = static_cast<unsigned>(t.cluster);
      // Clusters beyond the portable 8 CTAs must be allowed explicitly.
      if (t.cluster > 8) RNNJIT_CU(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1));
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
  if (l.cluster == 0) {
    RNNJIT_CU(cuLaunchKernel(l.fn, l.grid_x, l.grid_y, 1, l.threads, 1, 1, l.smem, stream, params, nullptr));
    return;
  }
  CUlaunchAttribute attr{};
  attr.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  attr.value.clusterDim.x = l.cluster;
  attr.value.clusterDim.y = 1;
  attr.value.clusterDim.z = 1;
  CUlaunchConfig cfg{};
  cfg.gridDimX = l.grid_x;
  cfg.gridDimY = l.grid_y;
  cfg.gridDimZ = 1;
  cfg.blockDimX = l.threads;
  cfg.blockDimY = 1;
  cfg.blockDimZ = 1;
  cfg.sharedMemBytes = l.smem;
  cfg.hStream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  RNNJIT_CU(cuLaunchKernelEx(&cfg, l.fn, params, nullptr));
}

void launch_gemm(const Launch& l, const float* a1, const float* a2, const float* w, const float* bias, float* c,
                 CUstream stream) {
  void* params[] = {&a1, &a2, &w, &bias, &c};
  launch(l, params, stream);
}

}  // namespace

Plan::Plan(const Config& config, const Shape& shape, const std::vector<const Binary*>& binaries) : config_(config) {
  if (binaries.size() != (config.is_fused() ? 1u : 2u))
    throw Error(ErrorCode::Internal, "plan " + config.name() + " got " + std::to_string(binaries.size()) + " binaries");
  try {
    i2h_ = make_launch(&modules_[0], *binaries[0], config.i2h, shape, shape.h);
    if (!config.is_fused()) h2o_ = make_launch(&modules_[1], *binaries[1], config.h2o, shape, shape.o);
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

void Plan::run(const StepArgs& a, CUstream stream) const {
  if (config_.is_fused()) {
    StepArgs copy = a;
    void* params[] = {&copy.x, &copy.h, &copy.w1, &copy.b1, &copy.w2, &copy.b2, &copy.h_out, &copy.y};
    launch(i2h_, params, stream);
    return;
  }
  launch_gemm(i2h_, a.x, a.h, a.w1, a.b1, a.h_out, stream);
  launch_gemm(h2o_, a.h_out, nullptr, a.w2, a.b2, a.y, stream);
}

}  // namespace rnnjit
