// 64-bit FNV-1a: content hashes for cache keys and blob checks. Not cryptographic: it
// detects changed sources and damaged blobs, which is all the cache asks of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace rnnjit::support {

class Fnv1a {
 public:
  /// Adds bytes to the hash.
  Fnv1a& add(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) state_ = (state_ ^ p[i]) * 0x100000001b3ULL;
    return *this;
  }
  /// Adds a string and a separator, so that ("ab","c") and ("a","bc") differ.
  Fnv1a& add(std::string_view s) {
    add(s.data(), s.size());
    const unsigned char sep = 0xff;
    return add(&sep, 1);
  }
  std::uint64_t value() const { return state_; }
  /// 16 lower-case hex digits.
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(state_));
    return buf;
  }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

inline std::string hash_hex(const void* data, std::size_t size) { return Fnv1a().add(data, size).hex(); }

}  // namespace rnnjit::support
