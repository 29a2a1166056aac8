// A program for NVRTC: a kernel template file, the kernels to instantiate by name expression, and
// the options. families/registry.hpp makes one for a tile; jit.hpp compiles it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "templates.hpp"

namespace rnnjit {

/// One NVRTC program. The headers it may include are every embedded file.
struct KernelSource {
  std::string file;                           ///< e.g. "gemm_tc.cu"
  std::string_view text;
  std::vector<std::string> name_expressions;
  std::vector<std::string> options;
  std::string arch;                           ///< "sm_90a"; "compute_XY" means PTX
  std::string label;                          ///< for logs and the cache
  /// A fatbin nvcc built from `file` with the library (every size a launch argument), which the
  /// jit loads instead of compiling; empty for the templates NVRTC specializes.
  std::string_view prebuilt;

  /// Hash of everything that shapes the compiled bytes except the NVRTC version.
  std::string key() const;
};

/// The fatbin built from the template `file` with the library, or empty if it has none.
std::string_view find_prebuilt(std::string_view file);

/// rnnjit_k::fill_uniform's prebuilt entry points (kernel_templates/fill.cu), for `arch`.
KernelSource fill_source(const std::string& arch);

}  // namespace rnnjit
