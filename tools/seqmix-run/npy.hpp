// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/npy.hpp: .npy reader (format 1.0/2.0/3.0, little-endian, C or Fortran order; f2 f4 f8
// i4 i8) into an owning C-order array, and a float32 C-order format-1.0 writer. See docs/05-parity-tool.md.
//
// Every malformed file is reported by one std::runtime_error with a one-line message; the file size is
// compared with the header's shape BEFORE any allocation, so a hostile header cannot ask for huge buffers.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <seqmix/core/dtype.hpp>
#include <seqmix/core/error.hpp>
#include <seqmix/core/layout.hpp>
#include <seqmix/core/tensor_view.hpp>

namespace seqmix::parity {

/// Element type of a .npy file (little-endian only).
enum class npy_dtype { f2, f4, f8, i4, i8 };

inline std::string_view npy_dtype_name(npy_dtype d) noexcept {
  switch (d) {
    case npy_dtype::f2:
      return "float16";
    case npy_dtype::f4:
      return "float32";
    case npy_dtype::f8:
      return "float64";
    case npy_dtype::i4:
      return "int32";
    case npy_dtype::i8:
      return "int64";
  }
  return "?";
}
inline std::size_t npy_itemsize(npy_dtype d) noexcept {
  switch (d) {
    case npy_dtype::f2:
      return 2;
    case npy_dtype::f4:
      return 4;
    case npy_dtype::f8:
      return 8;
    case npy_dtype::i4:
      return 4;
    case npy_dtype::i8:
      return 8;
  }
  return 0;
}
inline bool npy_is_integer(npy_dtype d) noexcept {
  return d == npy_dtype::i4 || d == npy_dtype::i8;
}

/// A .npy file's contents: shape, dtype and raw little-endian bytes, always in C (row-major) order
/// (Fortran-order files are transposed on load).
struct npy_array {
  std::vector<index_t> shape;
  npy_dtype dtype = npy_dtype::f4;
  std::vector<unsigned char> bytes;

  index_t rank() const noexcept { return static_cast<index_t>(shape.size()); }
  index_t size() const noexcept {
    index_t n = 1;
    for (index_t e : shape) n *= e;
    return n;
  }
  /// Element i (C order) widened to double; integers are exact up to 2^53.
  double get(index_t i) const noexcept {
    const unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * npy_itemsize(dtype);
    switch (dtype) {
      case npy_dtype::f2:
        return static_cast<double>(seqmix::detail::half_bits_to_float(load<std::uint16_t>(p)));
      case npy_dtype::f4:
        return static_cast<double>(load<float>(p));
      case npy_dtype::f8:
        return load<double>(p);
      case npy_dtype::i4:
        return static_cast<double>(load<std::int32_t>(p));
      case npy_dtype::i8:
        return static_cast<double>(load<std::int64_t>(p));
    }
    return 0.0;
  }
  /// Element i (C order) of an integer array, exact.
  std::int64_t get_int(index_t i) const noexcept {
    const unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * npy_itemsize(dtype);
    if (dtype == npy_dtype::i4) return load<std::int32_t>(p);
    return load<std::int64_t>(p);
  }

 private:
  template <class U>
  static U load(const unsigned char* p) noexcept {
    U u;
    std::memcpy(&u, p, sizeof(U));
    return u;
  }
};

/// "[2,3,4]".
inline std::string shape_text(const std::vector<index_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace detail {

static_assert(std::endian::native == std::endian::little, "seqmix-run reads little-endian .npy files natively");

/// Parser of the Python-literal dict in a .npy header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class npy_header_parser {
 public:
  npy_header_parser(std::string_view text, const std::string& file) : s_(text), file_(file) {}

  struct result {
    std::string descr;
    bool fortran = false;
    std::vector<index_t> shape;
  };

  result parse() {
    result r;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = string_literal();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') fail("unsupported dtype (structured or non-string descr)");
        r.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        r.fortran = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        r.shape = tuple();
        have_shape = true;
      } else {
        fail("header has an unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      fail("header is not a valid dict (expected ',' or '}' at offset " + std::to_string(i_) + ")");
    }
    skip_ws();
    if (i_ != s_.size()) fail("header has text after the dict");
    if (!have_descr) fail("header has no 'descr' key");
    if (!have_fortran) fail("header has no 'fortran_order' key");
    if (!have_shape) fail("header has no 'shape' key");
    return r;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw std::runtime_error(file_ + ": malformed npy: " + msg); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c)
      fail(std::string("header is not a valid dict (expected '") + c + "' at offset " + std::to_string(i_) + ")");
    ++i_;
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"')
      fail("header is not a valid dict (expected a quoted key or value at offset " + std::to_string(i_) + ")");
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') fail("header strings with escapes are not supported");
      out += s_[i_++];
    }
    if (i_ >= s_.size()) fail("header is not a valid dict (unterminated string)");
    ++i_;
    return out;
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("fortran_order is not True or False");
  }
  std::vector<index_t> tuple() {
    if (peek() != '(') fail("bad shape text (expected a tuple)");
    ++i_;
    std::vector<index_t> dims;
    for (;;) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        break;
      }
      if (peek() == '-') fail("bad shape: negative dimension");
      if (peek() < '0' || peek() > '9')
        fail("bad shape text (expected a dimension at offset " + std::to_string(i_) + ")");
      index_t d = 0;
      while (peek() >= '0' && peek() <= '9') {
        d = d * 10 + (peek() - '0');
        if (d > (index_t{1} << 40)) fail("bad shape: absurd dimension");
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long suffix
      dims.push_back(d);
      if (dims.size() > 32) fail("bad shape: more than 32 dimensions");
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() == ')') {
        ++i_;
        break;
      }
      fail("bad shape text (expected ',' or ')' at offset " + std::to_string(i_) + ")");
    }
    return dims;
  }

  std::string_view s_;
  std::string file_;
  std::size_t i_ = 0;
};

inline npy_dtype parse_descr(const std::string& d, const std::string& file) {
  auto fail = [&](const std::string& m) -> npy_dtype { throw std::runtime_error(file + ": " + m); };
  if (d.size() < 2) return fail("unsupported npy dtype '" + d + "'");
  const char order = d[0];
  const std::string t = d.substr(1);
  const bool known = t == "f2" || t == "f4" || t == "f8" || t == "i4" || t == "i8";
  if (order == '>' && known) return fail("big-endian npy data ('" + d + "') is not supported");
  if (order != '<' && order != '=') return fail("unsupported npy dtype '" + d + "' (expected <f2 <f4 <f8 <i4 <i8)");
  if (t == "f2") return npy_dtype::f2;
  if (t == "f4") return npy_dtype::f4;
  if (t == "f8") return npy_dtype::f8;
  if (t == "i4") return npy_dtype::i4;
  if (t == "i8") return npy_dtype::i8;
  return fail("unsupported npy dtype '" + d + "' (expected <f2 <f4 <f8 <i4 <i8)");
}

/// Fortran-order bytes -> C-order bytes.
inline std::vector<unsigned char> fortran_to_c(const std::vector<unsigned char>& f, const std::vector<index_t>& shape,
                                               std::size_t item) {
  std::vector<unsigned char> c(f.size());
  const std::size_t r = shape.size();
  index_t n = 1;
  for (index_t e : shape) n *= e;
  if (n == 0) return c;
  std::vector<index_t> fstride(r), idx(r, 0);
  index_t acc = 1;
  for (std::size_t a = 0; a < r; ++a) {
    fstride[a] = acc;
    acc *= shape[a];
  }
  for (index_t i = 0; i < n; ++i) {  // i runs in C order; idx is its multi-index
    index_t off = 0;
    for (std::size_t a = 0; a < r; ++a) off += idx[a] * fstride[a];
    std::memcpy(c.data() + static_cast<std::size_t>(i) * item, f.data() + static_cast<std::size_t>(off) * item, item);
    for (std::size_t a = r; a-- > 0;) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return c;
}

}  // namespace detail

/// Reads a .npy file. Throws std::runtime_error("<path>: <problem>") on anything malformed or unsupported.
inline npy_array read_npy(const std::filesystem::path& path) {
  const std::string file = path.string();
  auto fail = [&](const std::string& m) { throw std::runtime_error(file + ": " + m); };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("no such file");
  const auto fsize = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot stat file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open file");

  unsigned char pre[12] = {};
  const std::size_t n_pre = fsize < 12 ? static_cast<std::size_t>(fsize) : 12;
  in.read(reinterpret_cast<char*>(pre), static_cast<std::streamsize>(n_pre));
  if (n_pre < 6 || std::memcmp(pre, "\x93NUMPY", 6) != 0) fail("malformed npy: bad magic (not a .npy file)");
  if (n_pre < 10) fail("malformed npy: truncated header");
  const int major = pre[6];
  if (major != 1 && major != 2 && major != 3)
    fail("malformed npy: unsupported format version " + std::to_string(major) + "." + std::to_string(pre[7]));
  std::uint64_t hlen = 0, hstart = 0;
  if (major == 1) {
    hlen = static_cast<std::uint64_t>(pre[8]) | (static_cast<std::uint64_t>(pre[9]) << 8);
    hstart = 10;
  } else {
    if (n_pre < 12) fail("malformed npy: truncated header");
    hlen = static_cast<std::uint64_t>(pre[8]) | (static_cast<std::uint64_t>(pre[9]) << 8) |
           (static_cast<std::uint64_t>(pre[10]) << 16) | (static_cast<std::uint64_t>(pre[11]) << 24);
    hstart = 12;
  }
  if (hlen > (1u << 20)) fail("malformed npy: absurd header length " + std::to_string(hlen));
  if (hstart + hlen > fsize)
    fail("malformed npy: truncated header (header length " + std::to_string(hlen) + ", file size " +
         std::to_string(fsize) + ")");
  std::string header(static_cast<std::size_t>(hlen), '\0');
  in.seekg(static_cast<std::streamoff>(hstart));
  in.read(header.data(), static_cast<std::streamsize>(hlen));
  if (!in) fail("malformed npy: truncated header");
  for (char ch : header) {
    if (ch == '\0') fail("malformed npy: header contains a NUL byte");
  }

  auto h = detail::npy_header_parser(header, file).parse();
  npy_array a;
  a.dtype = detail::parse_descr(h.descr, file);
  a.shape = h.shape;
  // Element count and byte count with checked multiplication, before allocating anything.
  std::uint64_t count = 1;
  for (index_t d : a.shape) {
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && count > std::numeric_limits<std::uint64_t>::max() / ud)
      fail("malformed npy: element count overflows (shape " + shape_text(a.shape) + ")");
    count *= ud;
  }
  const std::uint64_t item = npy_itemsize(a.dtype);
  if (count > std::numeric_limits<std::uint64_t>::max() / item ||
      count * item > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max() / 2)) {
    fail("malformed npy: element count overflows (shape " + shape_text(a.shape) + ")");
  }
  const std::uint64_t want = count * item;
  const std::uint64_t have = fsize - hstart - hlen;
  if (have < want) {
    fail("malformed npy: data is shorter than the shape says (" + std::to_string(have) + " bytes, expected " +
         std::to_string(want) + " for shape " + shape_text(a.shape) + " " + std::string(npy_dtype_name(a.dtype)) + ")");
  }
  if (have > want) {
    fail("malformed npy: data is longer than the shape says (" + std::to_string(have) + " bytes, expected " +
         std::to_string(want) + " for shape " + shape_text(a.shape) + " " + std::string(npy_dtype_name(a.dtype)) + ")");
  }
  a.bytes.resize(static_cast<std::size_t>(want));
  if (want) in.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(want));
  if (!in) fail("malformed npy: read error in the data");
  if (h.fortran && a.shape.size() > 1) a.bytes = detail::fortran_to_c(a.bytes, a.shape, static_cast<std::size_t>(item));
  return a;
}

/// Writes float32 data in C order as a format-1.0 .npy file. Throws std::runtime_error on I/O failure.
inline void write_npy_f32(const std::filesystem::path& path, const std::vector<index_t>& shape, const float* data) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  index_t n = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    n *= shape[i];
  }
  dict += "), }";
  std::size_t total = 10 + dict.size() + 1;  // magic+version+len, dict, '\n'
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw std::runtime_error(path.string() + ": npy header too long for format 1.0");
  const auto hlen = static_cast<std::uint16_t>(dict.size());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(path.string() + ": cannot open for writing");
  const char pre[10] = {
      '\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(hlen & 0xff), static_cast<char>(hlen >> 8)};
  out.write(pre, 10);
  out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
  if (n)
    out.write(reinterpret_cast<const char*>(data),
              static_cast<std::streamsize>(static_cast<std::size_t>(n) * sizeof(float)));
  if (!out) throw std::runtime_error(path.string() + ": write failed");
}

/// Converts an array to element type U (float, double, bf16, f16, int32, int64), in C order.
/// Floating targets round to nearest even; integer targets need an integer file or integral values in range.
/// Throws std::runtime_error("<problem>") (without a tensor name; the caller adds it).
template <class U>
std::vector<U> convert_npy(const npy_array& a) {
  const index_t n = a.size();
  std::vector<U> out(static_cast<std::size_t>(n));
  if constexpr (std::is_integral_v<U>) {
    for (index_t i = 0; i < n; ++i) {
      std::int64_t v;
      if (npy_is_integer(a.dtype)) {
        v = a.get_int(i);
      } else {
        const double d = a.get(i);
        if (!(d == std::floor(d)) || std::fabs(d) > 9.0e15) {
          throw std::runtime_error("holds a non-integer value " + std::to_string(d) + " at flat index " +
                                   std::to_string(i) + ", expected integers");
        }
        v = static_cast<std::int64_t>(d);
      }
      if (v < static_cast<std::int64_t>(std::numeric_limits<U>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<U>::max())) {
        throw std::runtime_error("holds " + std::to_string(v) + " at flat index " + std::to_string(i) +
                                 ", out of range");
      }
      out[static_cast<std::size_t>(i)] = static_cast<U>(v);
    }
  } else if constexpr (std::is_same_v<U, double>) {
    for (index_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = a.get(i);
  } else if constexpr (std::is_same_v<U, float>) {
    for (index_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = static_cast<float>(a.get(i));
  } else {  // bf16 / f16: round via float (exact for f2/f4 files; f8 rounds twice, within 1 ulp of the 16-bit type)
    for (index_t i = 0; i < n; ++i)
      out[static_cast<std::size_t>(i)] = seqmix::from_float<U>(static_cast<float>(a.get(i)));
  }
  return out;
}

/// Contiguous view of C-order data with the given shape, after checking the rank against Layout.
/// `what` prefixes the message: "input gk" -> "input gk has rank 3, expected 4 [B,T,H,K]".
template <class U, class Layout>
tensor_view<U, Layout> view_as(U* data, const std::vector<index_t>& shape, const std::string& what) {
  if (shape.size() != Layout::rank) {
    throw shape_error(what + " has rank " + std::to_string(shape.size()) + ", expected " +
                      std::to_string(Layout::rank) + " " + layout_name(Layout{}) + " (got shape " + shape_text(shape) +
                      ")");
  }
  extents<Layout> e;
  for (std::size_t i = 0; i < Layout::rank; ++i) e[i] = shape[i];
  return tensor_view<U, Layout>(data, e);
}

}  // namespace seqmix::parity
