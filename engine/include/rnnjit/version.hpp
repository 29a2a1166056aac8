// Version of the library and of the kernel templates it embeds.
#pragma once

#include <string>

namespace rnnjit {

/// "MAJOR.MINOR.PATCH" of this build; part of every tuning-cache row.
std::string version();

/// Hash of every embedded kernel template; a cached tuning made with other templates is stale.
std::string template_hash();

}  // namespace rnnjit
