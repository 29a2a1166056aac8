// The public enums' names: one spelling each, used by the tools, the cache and the C API.
#include "rnnjit/rnnjit.hpp"

namespace rnnjit {
namespace {

// The enumerator of `values` whose name is `name`; InvalidArgument naming `what` and the choices.
template <class E, class NameOf>
E parse_name(const std::string& name, std::initializer_list<E> values, NameOf name_of, const char* what) {
  std::string choices;
  for (E v : values) {
    if (name == name_of(v)) return v;
    choices += (choices.empty() ? "" : ", ") + std::string(name_of(v));
  }
  throw Error(ErrorCode::InvalidArgument, std::string(what) + " '" + name + "' is not one of " + choices);
}

}  // namespace

const char* precision_name(Precision p) noexcept {
  switch (p) {
    case Precision::Default: return "default";
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  return parse_name(name, {Precision::FP32, Precision::TF32, Precision::BF16, Precision::Default}, precision_name,
                    "precision");
}

const char* dtype_name(DType t) noexcept {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
  }
  return "?";
}

DType parse_dtype(const std::string& name) { return parse_name(name, {DType::F32, DType::BF16}, dtype_name, "dtype"); }

std::size_t dtype_size(DType t) noexcept { return t == DType::BF16 ? 2 : 4; }

const char* disposition_name(Disposition d) noexcept {
  switch (d) {
    case Disposition::Ok: return "ok";
    case Disposition::CompileFailed: return "compile_failed";
    case Disposition::LaunchFailed: return "launch_failed";
    case Disposition::NotSupported: return "not_supported";
  }
  return "?";
}

Disposition parse_disposition(const std::string& name) {
  return parse_name(name, {Disposition::Ok, Disposition::CompileFailed, Disposition::LaunchFailed, Disposition::NotSupported},
                    disposition_name, "disposition");
}

}  // namespace rnnjit
