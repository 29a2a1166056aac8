// B,I,H,O as the tools read it, from --shape and from --shapes files: one parser, so that
// rnnjit-tune and rnnjit-cache accept the same text and refuse it with the same words.
// Header-only and engine-free (kMaxDim is a constant of the public header), so that
// rnnjit-cache uses it without linking the engine.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "rnnjit/rnnjit.hpp"

namespace rnnjit::tools {

/// The sizes of one problem, each in 1..kMaxDim.
struct Shape {
  std::int64_t b = 0, i = 0, h = 0, o = 0;
};

/// Text that is not a shape: bad usage. The message names the bad value.
struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {

inline const char* const kDims[] = {"B", "I", "H", "O"};

inline std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

inline std::string range() { return "1.." + std::to_string(kMaxDim); }

inline std::int64_t in_range(const std::string& where, int k, std::int64_t v) {
  if (v < 1 || v > kMaxDim)
    throw ShapeError(where + kDims[k] + " = " + std::to_string(v) + " is outside " + range());
  return v;
}

// One JSON value of a shape: an integer (8.5 is not one, 2^64 is out of range).
inline std::int64_t json_dim(const std::string& where, int k, const nlohmann::json& v) {
  if (!v.is_number_integer()) throw ShapeError(where + kDims[k] + " = " + v.dump() + " is not an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    throw ShapeError(where + kDims[k] + " = " + v.dump() + " is outside " + range());
  return in_range(where, k, v.get<std::int64_t>());
}

}  // namespace detail

/// The comma-separated fields of `text`, blanks around each trimmed ("a, b" → {"a", "b"}).
inline std::vector<std::string> fields(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1)
    out.push_back(detail::trimmed(text.substr(start, comma - start)));
  out.push_back(detail::trimmed(text.substr(start)));
  return out;
}

/// "B,I,H,O": four decimal integers in 1..kMaxDim, blanks around each allowed. Throws
/// ShapeError naming the text and the value: "'8,0,16,8': I = 0 is outside 1..1048576".
inline Shape parse_shape(const std::string& text) {
  const std::string where = "'" + text + "': ";
  const auto parts = fields(text);
  if (parts.size() != 4) throw ShapeError(where + "not B,I,H,O (four sizes separated by commas)");
  std::int64_t v[4];
  for (int k = 0; k < 4; ++k) {
    const std::string& p = parts[static_cast<std::size_t>(k)];
    const char* end = p.data() + p.size();
    const auto [stop, ec] = std::from_chars(p.data(), end, v[k]);
    if (ec == std::errc::result_out_of_range)
      throw ShapeError(where + detail::kDims[k] + " = " + p + " is outside " + detail::range());
    if (ec != std::errc() || stop != end || p.empty())
      throw ShapeError(where + detail::kDims[k] + " = '" + p + "' is not an integer");
    detail::in_range(where, k, v[k]);
  }
  return {v[0], v[1], v[2], v[3]};
}

/// A --shapes file: CSV lines B,I,H,O ('#' starts a comment; the first line may be the header
/// B,I,H,O, in any case, and nothing else), or a JSON list of [B,I,H,O] lists or
/// {"B":..,"I":..,"H":..,"O":..} objects. Throws ShapeError naming the file, the line or entry
/// and the value; a file without a shape is one too.
inline std::vector<Shape> read_shapes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ShapeError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<Shape> out;
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw ShapeError(path + " is not valid JSON: " + e.what());
    }
    for (std::size_t n = 0; n < j.size(); ++n) {
      const auto& e = j[n];
      const std::string where = path + ": shape " + std::to_string(n) + ": ";
      Shape s;
      std::int64_t* dims[] = {&s.b, &s.i, &s.h, &s.o};
      if (e.is_array() && e.size() == 4) {
        for (int k = 0; k < 4; ++k) *dims[k] = detail::json_dim(where, k, e[static_cast<std::size_t>(k)]);
      } else if (e.is_object() && e.size() == 4 && e.contains("B") && e.contains("I") && e.contains("H") &&
                 e.contains("O")) {
        for (int k = 0; k < 4; ++k) *dims[k] = detail::json_dim(where, k, e.at(detail::kDims[k]));
      } else {
        throw ShapeError(where + e.dump() + " is neither [B,I,H,O] nor {\"B\":..,\"I\":..,\"H\":..,\"O\":..}");
      }
      out.push_back(s);
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    bool first_line = true;
    for (int n = 1; std::getline(lines, line); ++n) {
      line = detail::trimmed(line.substr(0, line.find('#')));
      if (line.empty()) continue;
      const bool header = first_line && [&] {
        const auto parts = fields(line);
        if (parts.size() != 4) return false;
        for (int k = 0; k < 4; ++k)
          if (parts[static_cast<std::size_t>(k)] != detail::kDims[k] &&
              parts[static_cast<std::size_t>(k)] != std::string(1, char(detail::kDims[k][0] - 'A' + 'a')))
            return false;
        return true;
      }();
      first_line = false;
      if (header) continue;
      try {
        out.push_back(parse_shape(line));
      } catch (const ShapeError& e) {
        throw ShapeError(path + ":" + std::to_string(n) + ": " + e.what());
      }
    }
  }
  if (out.empty()) throw ShapeError(path + " holds no shape");
  return out;
}

/// `n` random problems for a sweep, the same for a seed on every machine (splitmix64, no library
/// distribution): B log-uniform in 1..4096, I, H and O in 1..8192; of every three, two have I, H
/// and O rounded up to multiples of 4 (16-byte rows) and one has each of them ≢ 0 mod 4; one in
/// ten has one size set to 1.
inline std::vector<Shape> sweep_shapes(int n, std::uint64_t seed) {
  std::uint64_t state = seed;
  auto next = [&] {  // splitmix64
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  auto unit = [&] { return double(next() >> 11) * 0x1.0p-53; };  // [0, 1)
  auto log_uniform = [&](std::int64_t most) {
    const auto v = static_cast<std::int64_t>(std::exp(unit() * std::log(double(most) + 1.0)));
    return std::clamp<std::int64_t>(v, 1, most);
  };
  std::vector<Shape> out;
  for (int k = 0; k < n; ++k) {
    Shape s{log_uniform(4096), log_uniform(8192), log_uniform(8192), log_uniform(8192)};
    for (std::int64_t* d : {&s.i, &s.h, &s.o}) {
      if (k % 3 == 2)
        *d += *d % 4 == 0 ? (*d == 8192 ? -1 : 1) : 0;
      else
        *d = std::min<std::int64_t>((*d + 3) / 4 * 4, 8192);
    }
    if (unit() < 0.1) {
      std::int64_t* dims[] = {&s.b, &s.i, &s.h, &s.o};
      *dims[next() % 4] = 1;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace rnnjit::tools
