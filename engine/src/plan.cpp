#include "plan.hpp"

#include "driver.hpp"

namespace rnnjit {
namespace {

Launch make_launch(CUmodule* module, const Binary& binary, const Tile& t, int m, int n) {
  if (binary.lowered_names.size() != 1) throw Error(ErrorCode::Internal, "a stage binary must hold one kernel");
  RNNJIT_CU(cuModuleLoadData(module, binary.image.data()));
  Launch l;
  RNNJIT_CU(cuModuleGetFunction(&l.fn, *module, binary.lowered_names[0].c_str()));
  l.grid_x = static_cast<unsigned>((n + t.cta_n() - 1) / t.cta_n());
  l.grid_y = static_cast<unsigned>((m + t.cta_m(m) - 1) / t.cta_m(m));
  l.threads = static_cast<unsigned>(t.threads());
  l.smem = static_cast<unsigned>(t.smem_bytes());
  // Above 48 KiB a kernel must opt in to its dynamic shared memory.
  if (l.smem > 48 * 1024)
    RNNJIT_CU(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(l.smem)));
  return l;
}

void launch(const Launch& l, const float* a1, const float* a2, const float* w, const float* bias, float* c,
            CUstream stream) {
  void* params[] = {&a1, &a2, &w, &bias, &c};
  RNNJIT_CU(cuLaunchKernel(l.fn, l.grid_x, l.grid_y, 1, l.threads, 1, 1, l.smem, stream, params, nullptr));
}

}  // namespace

Plan::Plan(const Config& config, const Shape& shape, const Binary& i2h, const Binary& h2o) : config_(config) {
  try {
    i2h_ = make_launch(&modules_[0], i2h, config.i2h, shape.b, shape.h);
    h2o_ = make_launch(&modules_[1], h2o, config.h2o, shape.b, shape.o);
  } catch (...) {
    for (CUmodule m : modules_)
      if (m) driver::api().cuModuleUnload(m);
    throw;
  }
}

Plan::~Plan() {
  // Errors are ignored: a destructor must not throw, and a dead context unloads anyway.
  for (CUmodule m : modules_)
    if (m) driver::api().cuModuleUnload(m);
}

void Plan::run(const StepArgs& a, CUstream stream) const {
  launch(i2h_, a.x, a.h, a.w1, a.b1, a.h_out, stream);
  launch(h2o_, a.h_out, nullptr, a.w2, a.b2, a.y, stream);
}

}  // namespace rnnjit
