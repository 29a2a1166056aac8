#include "kernel_source.hpp"

#include "support/hash.hpp"

namespace rnnjit {

std::string KernelSource::key() const {
  support::Fnv1a h;
  // Every embedded file, not just `file`: a changed header changes the binary too.
  for (const EmbeddedFile& f : embedded_templates()) h.add(f.name).add(f.text);
  h.add(file);
  for (const auto& e : name_expressions) h.add(e);
  for (const auto& o : options) h.add(o);
  h.add(arch);
  return h.hex();
}

std::string_view find_prebuilt(std::string_view file) {
  if (!file.ends_with(".cu")) return {};
  const std::string fatbin = std::string(file.substr(0, file.size() - 3)) + ".fatbin";
  for (const EmbeddedFile& f : embedded_prebuilt())
    if (f.name == fatbin) return f.text;
  return {};
}

KernelSource fill_source(const std::string& arch) {
  KernelSource src;
  src.file = "fill.cu";
  src.prebuilt = find_prebuilt(src.file);
  // Index ST (rnnjit_shared.h): the storage type's fill.
  src.name_expressions = {"rnnjit_fill_uniform_f32", "rnnjit_fill_uniform_bf16"};
  src.arch = arch;
  src.label = "fill_uniform";
  return src;
}

}  // namespace rnnjit
