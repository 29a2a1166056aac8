#include "validate.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace rnnjit {
namespace {

std::string arg_error(const char* name, const std::string& what) { return std::string(name) + " " + what; }

struct Span {
  const char* name;
  std::uintptr_t begin;
  std::size_t bytes;
  bool overlaps(const Span& o) const { return begin < o.begin + o.bytes && o.begin < begin + bytes; }
};

}  // namespace

Precision resolved_precision(const Problem& p, Precision default_precision) {
  if (p.precision != Precision::Default) return p.precision;
  return p.dtype == DType::BF16 ? Precision::BF16 : default_precision;
}

Shape shape_of(const Problem& p, Precision default_precision) {
  auto dim = [](const char* name, std::int64_t v) {
    if (v < 1 || v > kMaxDim)
      throw Error(ErrorCode::InvalidArgument,
                  arg_error(name, "= " + std::to_string(v) + " is out of range 1.." + std::to_string(kMaxDim)));
    return static_cast<int>(v);
  };
  Shape s{dim("batch", p.batch), dim("input", p.input), dim("hidden", p.hidden), dim("output", p.output)};
  s.dtype = p.dtype;
  s.precision = resolved_precision(p, default_precision);
  // bf16 values multiply exactly in fp32: with bf16 storage the products are bf16 products whatever
  // is asked, so only the precision that says so is taken; f32 tensors are not rounded to bf16.
  if (s.dtype == DType::BF16 && s.precision != Precision::BF16)
    throw Error(ErrorCode::Unsupported, std::string("precision ") + precision_name(s.precision) +
                                            " with bf16 tensors: bf16 storage computes bf16 products with fp32 "
                                            "sums; pass precision bf16 or default");
  if (s.dtype != DType::BF16 && s.precision == Precision::BF16)
    throw Error(ErrorCode::Unsupported, "precision bf16 needs bf16 tensors (dtype bf16); f32 tensors take fp32 or tf32");
  return s;
}

void PointerChecker::check(const char* name, const void* p, std::size_t bytes, std::size_t alignment) const {
  if (!p) throw Error(ErrorCode::InvalidArgument, arg_error(name, "is null"));
  if (reinterpret_cast<std::uintptr_t>(p) % alignment != 0)
    throw Error(ErrorCode::InvalidArgument, arg_error(name, "is not " + std::to_string(alignment) + "-byte aligned"));
  if (checks_ == PointerChecks::Cheap) return;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                 CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
                                 CU_POINTER_ATTRIBUTE_IS_MANAGED};
  // Each attribute writes at most 8 bytes, little-endian; zeroed slots read back right whatever
  // the attribute's width.
  unsigned long long v[5] = {};
  void* data[5] = {&v[0], &v[1], &v[2], &v[3], &v[4]};
  RNNJIT_CU(cuPointerGetAttributes(5, attrs, data, reinterpret_cast<CUdeviceptr>(p)));
  const auto type = static_cast<unsigned>(v[0]);
  const int ordinal = static_cast<int>(static_cast<std::int32_t>(v[1]));
  const bool managed = (v[4] & 0xff) != 0;
  if (type != CU_MEMORYTYPE_DEVICE && !managed)
    throw Error(ErrorCode::InvalidArgument, arg_error(name, type == CU_MEMORYTYPE_HOST
                                                                ? "is page-locked host memory, not device memory"
                                                                : "is not device memory (a host pointer?)"));
  if (!managed && ordinal != ordinal_)
    throw Error(ErrorCode::InvalidArgument, arg_error(name, "belongs to device " + std::to_string(ordinal) +
                                                                ", the engine runs on device " + std::to_string(ordinal_)));
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  if (v[3] != 0 && begin + bytes > v[2] + v[3])
    throw Error(ErrorCode::InvalidArgument,
                arg_error(name, "needs " + std::to_string(bytes) + " bytes but its allocation ends " +
                                    std::to_string(v[2] + v[3] - begin) + " bytes after it"));
}

void check_steps(std::int64_t steps) {
  if (steps < 1 || steps > kMaxSteps)
    throw Error(ErrorCode::InvalidArgument,
                arg_error("steps", "= " + std::to_string(steps) + " is out of range 1.." + std::to_string(kMaxSteps)));
}

void check_sequence_buffers(const Shape& s, std::int64_t steps, const Weights& w, const void* x, const void* h0,
                            const void* y, const void* h_n, const void* h_all, const PointerChecker& checker) {
  check_steps(steps);
  const std::size_t e = dtype_size(s.dtype), T = static_cast<std::size_t>(steps), B = s.b, I = s.i, H = s.h, O = s.o;
  // Each size below within limits, T·B·max(I, H, O) elements can still pass 2⁶⁴ bytes.
  if (T > SIZE_MAX / e / B / std::max({I, H, O}))
    throw Error(ErrorCode::InvalidArgument, "steps = " + std::to_string(steps) + " with batch " + std::to_string(B) +
                                                " makes buffers larger than the address space");
  const Span spans[] = {{"x", reinterpret_cast<std::uintptr_t>(x), T * B * I * e},
                        {"h0", reinterpret_cast<std::uintptr_t>(h0), B * H * e},
                        {"y", reinterpret_cast<std::uintptr_t>(y), T * B * O * e},
                        {"h_n", reinterpret_cast<std::uintptr_t>(h_n), B * H * e},
                        {"h_all", reinterpret_cast<std::uintptr_t>(h_all), h_all ? T * B * H * e : 0},
                        {"weights.w1", reinterpret_cast<std::uintptr_t>(w.w1), H * (I + H) * e},
                        {"weights.b1", reinterpret_cast<std::uintptr_t>(w.b1), H * e},
                        {"weights.w2", reinterpret_cast<std::uintptr_t>(w.w2), O * H * e},
                        {"weights.b2", reinterpret_cast<std::uintptr_t>(w.b2), O * e}};
  for (const Span& sp : spans)
    if (sp.bytes > 0 || &sp != &spans[4]) checker.check(sp.name, reinterpret_cast<const void*>(sp.begin), sp.bytes, e);
  // The outputs: y and h_all overlap nothing; h_n nothing but h0, which it may replace.
  for (const Span* out : {&spans[2], &spans[4], &spans[3]})
    for (const Span& o : spans)
      if (&o != out && !(out == &spans[3] && &o == &spans[1]) && out->overlaps(o))
        throw Error(ErrorCode::InvalidArgument, std::string(out->name) + " overlaps " + o.name);
}

HiddenAliasing check_step_buffers(const Shape& s, const Weights& w, const void* x, const void* h, const void* h_out,
                                  const void* y, const PointerChecker& checker) {
  const std::size_t e = dtype_size(s.dtype), B = s.b, I = s.i, H = s.h, O = s.o;
  const Span spans[] = {{"x", reinterpret_cast<std::uintptr_t>(x), B * I * e},
                        {"h", reinterpret_cast<std::uintptr_t>(h), B * H * e},
                        {"h_out", reinterpret_cast<std::uintptr_t>(h_out), B * H * e},
                        {"y", reinterpret_cast<std::uintptr_t>(y), B * O * e},
                        {"weights.w1", reinterpret_cast<std::uintptr_t>(w.w1), H * (I + H) * e},
                        {"weights.b1", reinterpret_cast<std::uintptr_t>(w.b1), H * e},
                        {"weights.w2", reinterpret_cast<std::uintptr_t>(w.w2), O * H * e},
                        {"weights.b2", reinterpret_cast<std::uintptr_t>(w.b2), O * e}};
  for (const Span& sp : spans) checker.check(sp.name, reinterpret_cast<const void*>(sp.begin), sp.bytes, e);
  const Span &sx = spans[0], &sh = spans[1], &sho = spans[2], &sy = spans[3];
  for (const Span& o : spans)
    if (&o != &sy && sy.overlaps(o)) throw Error(ErrorCode::InvalidArgument, std::string("y overlaps ") + o.name);
  for (std::size_t i = 4; i < std::size(spans); ++i)
    if (sho.overlaps(spans[i])) throw Error(ErrorCode::InvalidArgument, std::string("h_out overlaps ") + spans[i].name);
  return sho.overlaps(sh) || sho.overlaps(sx) ? HiddenAliasing::Overlaps : HiddenAliasing::Apart;
}

}  // namespace rnnjit
