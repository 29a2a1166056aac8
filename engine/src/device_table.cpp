#include "device_table.hpp"

#include <vector>

#include "device.hpp"

namespace rnnjit::device_table {
namespace {

KnownDevice make(const char* id, const char* name, int cc_major, int cc_minor, int sms, std::int64_t l2_bytes,
                 std::int64_t smem_optin, const char* arch, double gbps, double tf32, double fp32) {
  KnownDevice k{id, {}, gbps, 65536, tf32, fp32};
  DeviceInfo& d = k.info;
  d.name = name;
  d.cc_major = cc_major, d.cc_minor = cc_minor;
  d.sm_count = sms;
  d.l2_bytes = l2_bytes;
  d.smem_per_block_optin = smem_optin;
  d.arch = arch;
  d.key = gpu_key(d);
  return k;
}

constexpr std::int64_t kMiB = 1 << 20;
// Opt-in shared memory a block: 163 KiB on sm_80, 99 KiB on sm_86 and sm_89, 227 KiB on sm_90.
constexpr std::int64_t kSmem80 = 166912, kSmem86 = 101376, kSmem90 = 232448;

}  // namespace

std::span<const KnownDevice> all() {
  static const std::vector<KnownDevice> devices = {
      make("a100-40gb", "NVIDIA A100-SXM4-40GB", 8, 0, 108, 40 * kMiB, kSmem80, "sm_80", 1555, 156, 19.5),
      make("a100-80gb", "NVIDIA A100-SXM4-80GB", 8, 0, 108, 40 * kMiB, kSmem80, "sm_80", 2039, 156, 19.5),
      make("a10", "NVIDIA A10", 8, 6, 72, 6 * kMiB, kSmem86, "sm_86", 600, 62.5, 31.2),
      make("l4", "NVIDIA L4", 8, 9, 58, 48 * kMiB, kSmem86, "sm_89", 300, 60, 30),
      make("rtx-4090", "NVIDIA GeForce RTX 4090", 8, 9, 128, 72 * kMiB, kSmem86, "sm_89", 1008, 82.6, 82.6),
      make("rtx-3090", "NVIDIA GeForce RTX 3090", 8, 6, 82, 6 * kMiB, kSmem86, "sm_86", 936, 35.6, 35.6),
      make("h100-pcie", "NVIDIA H100 PCIe", 9, 0, 114, 50 * kMiB, kSmem90, "sm_90a", 2000, 378, 51),
      make("h100-sxm", "NVIDIA H100 80GB HBM3", 9, 0, 132, 50 * kMiB, kSmem90, "sm_90a", 3350, 495, 67),
      make("h200", "NVIDIA H200", 9, 0, 132, 60 * kMiB, kSmem90, "sm_90a", 4800, 495, 67),
  };
  return devices;
}

const KnownDevice& find(const std::string& id) {
  std::string known;
  for (const KnownDevice& k : all()) {
    if (id == k.id) return k;
    known += (known.empty() ? "" : ", ") + std::string(k.id);
  }
  throw Error(ErrorCode::InvalidArgument, "no GPU '" + id + "' in the device table (" + known + ")");
}

}  // namespace rnnjit::device_table
