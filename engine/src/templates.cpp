#include "templates.hpp"

#include "rnnjit/error.hpp"
#include "support/hash.hpp"

namespace rnnjit {

std::string_view find_template(std::string_view name) {
  for (const EmbeddedFile& f : embedded_templates())
    if (f.name == name) return f.text;
  throw Error(ErrorCode::Internal, "kernel template " + std::string(name) + " is not embedded");
}

std::string template_hash() {
  static const std::string hash = [] {
    support::Fnv1a h;
    for (const EmbeddedFile& f : embedded_templates()) h.add(f.name).add(f.text);
    return h.hex();
  }();
  return hash;
}

std::string version() { return RNNJIT_VERSION; }

}  // namespace rnnjit
