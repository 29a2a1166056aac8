#include "device.hpp"

namespace rnnjit {

Module::Module(const Binary& binary) : names_(binary.lowered_names) {
  RNNJIT_CU(cuModuleLoadData(&module_, binary.image.data()));
}

Module::~Module() {
  // Errors are ignored: this runs in a destructor, and a dead context unloads anyway.
  if (module_) driver::api().cuModuleUnload(module_);
}

CUfunction Module::function(std::size_t i) const {
  if (i >= names_.size()) throw Error(ErrorCode::Internal, "module has no kernel " + std::to_string(i));
  CUfunction fn = nullptr;
  RNNJIT_CU(cuModuleGetFunction(&fn, module_, names_[i].c_str()));
  return fn;
}

DeviceInfo query_device(int ordinal) {
  int count = 0;
  RNNJIT_CU(cuDeviceGetCount(&count));
  if (count == 0) throw Error(ErrorCode::NoDevice, "no CUDA device: the driver reports none");
  if (ordinal < 0 || ordinal >= count)
    throw Error(ErrorCode::NoDevice, "no CUDA device " + std::to_string(ordinal) + ": the driver reports " +
                                         std::to_string(count) + " device(s)");
  CUdevice dev = 0;
  RNNJIT_CU(cuDeviceGet(&dev, ordinal));
  DeviceInfo d;
  d.ordinal = ordinal;
  char name[256] = {};
  RNNJIT_CU(cuDeviceGetName(name, sizeof name, dev));
  d.name = name;
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    RNNJIT_CU(cuDeviceGetAttribute(&v, a, dev));
    return v;
  };
  d.cc_major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  d.cc_minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  d.sm_count = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  d.l2_bytes = attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
  d.smem_per_block_optin = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  d.arch = target_arch(d.cc_major, d.cc_minor);
  d.key = gpu_key(d);
  return d;
}

std::string gpu_key(const DeviceInfo& d) {
  // What changes the best kernel. Name and compute capability fix the chip; SM count, L2 and
  // shared memory tell apart cut-down parts and MIG slices of one name.
  return d.name + ";cc=" + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) +
         ";sms=" + std::to_string(d.sm_count) + ";l2=" + std::to_string(d.l2_bytes) +
         ";smem=" + std::to_string(d.smem_per_block_optin);
}

}  // namespace rnnjit
