// The GPUs rnnjit is built for but cannot always run on: their facts as query_device would read
// them, so that the tuner's proposals and NVRTC's builds for each are checked without the card
// (tests/tuner_test.cpp, tests/families_test.cpp). Sources: NVIDIA's datasheets and CUDA
// programming guide (per-arch shared memory and register limits).
#pragma once

#include <span>
#include <string>

#include "rnnjit/rnnjit.hpp"

namespace rnnjit::device_table {

/// One GPU model.
struct KnownDevice {
  const char* id;            ///< short name: "a100-40gb", "rtx-4090", ...
  DeviceInfo info;           ///< as query_device reads it (ordinal 0), key included
  double dram_gbps;          ///< memory bandwidth by the datasheet, GB/s
  int registers_per_sm;      ///< 32-bit registers
  double tf32_tflops;        ///< dense TF32 tensor rate by the datasheet
  double fp32_tflops;        ///< FFMA rate by the datasheet
};

/// Every described GPU: A100 40/80 GB, A10, L4, RTX 4090, RTX 3090, H100 PCIe/SXM, H200.
std::span<const KnownDevice> all();

/// The device with `id`; throws InvalidArgument naming the known ones.
const KnownDevice& find(const std::string& id);

// The ones tests name most.
inline DeviceInfo a100_80gb() { return find("a100-80gb").info; }
inline DeviceInfo rtx_4090() { return find("rtx-4090").info; }
inline DeviceInfo h100_sxm() { return find("h100-sxm").info; }

}  // namespace rnnjit::device_table
