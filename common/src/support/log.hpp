// The library's one spdlog logger, shared by engine/ and cache/ (header-only so that the
// cache library needs nothing from the engine library).
#pragma once

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>

namespace rnnjit::support {

/// The logger named "rnnjit": warnings by default, RNNJIT_LOG_LEVEL overrides
/// (trace, debug, info, warn, error, off).
inline spdlog::logger& log() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    std::shared_ptr<spdlog::logger> l = spdlog::get("rnnjit");
    if (!l) {
      l = spdlog::stderr_color_mt("rnnjit");
      l->set_pattern("[rnnjit %L] %v");
      l->set_level(spdlog::level::warn);
      if (const char* env = std::getenv("RNNJIT_LOG_LEVEL")) l->set_level(spdlog::level::from_str(env));
    }
    return l;
  }();
  return *logger;
}

}  // namespace rnnjit::support
