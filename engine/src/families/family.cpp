#include "family.hpp"

#include <algorithm>

namespace rnnjit {

std::string name_expression(std::string_view kernel, std::initializer_list<int> args) {
  std::string out = "rnnjit_k::" + std::string(kernel) + "<";
  bool first = true;
  for (int v : args) {
    if (!first) out += ',';
    out += std::to_string(v);
    first = false;
  }
  return out + ">";
}

double streamed_seconds(int ctas, double weight_bytes, double bytes_in_flight, double a_bytes) {
  const double rate = std::min({3.0e12, ctas * 40e9, 3.0e12 * bytes_in_flight / (4 << 20)});
  return std::max(weight_bytes / rate, a_bytes / 120e9);
}

double weight_bytes(const Shape& s) {
  return double(dtype_size(s.dtype)) * (double(s.h) * (s.i + s.h) + double(s.o) * s.h);
}

}  // namespace rnnjit
