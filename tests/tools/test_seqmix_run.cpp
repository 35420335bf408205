// SPDX-License-Identifier: Apache-2.0
// tests/tools/test_seqmix_run.cpp: seqmix-run end to end. The test writes its own .npy files (all five dtypes,
// C and Fortran order, formats 1.0/2.0/3.0) and cases, runs the tool as a child process, and checks outputs
// against an independent computation, and every malformed input against one stderr line and a clean exit.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/support.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using seqmix::index_t;
using seqmix::testing::rng;

// ----- child process ------------------------------------------------------------------------------------
struct run_result {
  bool exited = false;  ///< WIFEXITED (false: killed by a signal)
  int code = -1;        ///< WEXITSTATUS
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

run_result run_tool(const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path out = dir / "tool_stdout.txt", err = dir / "tool_stderr.txt";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> all{SEQMIX_RUN_EXE};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, SEQMIX_RUN_EXE, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  run_result r;
  r.exited = WIFEXITED(status);
  r.code = r.exited ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

struct scratch_dir {
  fs::path path;
  scratch_dir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() / ("seqmix_run_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

// ----- .npy writing (independent of the tool's code) ----------------------------------------------------
enum class file_dtype { f2, f4, f8, i4, i8 };
const char* descr_of(file_dtype d) {
  switch (d) {
    case file_dtype::f2:
      return "<f2";
    case file_dtype::f4:
      return "<f4";
    case file_dtype::f8:
      return "<f8";
    case file_dtype::i4:
      return "<i4";
    case file_dtype::i8:
      return "<i8";
  }
  return "";
}
bool is_int(file_dtype d) {
  return d == file_dtype::i4 || d == file_dtype::i8;
}

template <class U>
void append_le(std::string& s, U v) {
  char b[sizeof(U)];
  std::memcpy(b, &v, sizeof(U));  // the test host is little-endian, as the tool requires
  s.append(b, sizeof(U));
}

/// binary16 bits of v, which must be exactly representable (zero or normal).
std::uint16_t half_bits(double v) {
  if (v == 0) return 0;
  int e = 0;
  const double m = std::frexp(std::fabs(v), &e);  // |v| = m 2^e, m in [0.5, 1)
  const double frac = (2 * m - 1) * 1024;
  REQUIRE(frac == std::floor(frac));
  REQUIRE(e - 1 + 15 >= 1);
  REQUIRE(e - 1 + 15 <= 30);
  return static_cast<std::uint16_t>((v < 0 ? 0x8000u : 0u) | (static_cast<unsigned>(e - 1 + 15) << 10) |
                                    static_cast<unsigned>(frac));
}

std::string header_dict(const std::string& descr, bool fortran, const std::vector<index_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    s += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
  s += ")";
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + s + ", }";
}

/// A complete .npy file from a raw header dict text and raw data bytes.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t pre = major == 1 ? 10 : 12;
  std::string h = dict;
  h.append((64 - (pre + h.size() + 1) % 64) % 64, ' ');
  h += '\n';
  std::string f = "\x93NUMPY";
  f += static_cast<char>(major);
  f += '\0';
  if (major == 1)
    append_le<std::uint16_t>(f, static_cast<std::uint16_t>(h.size()));
  else
    append_le<std::uint32_t>(f, static_cast<std::uint32_t>(h.size()));
  return f + h + data;
}

/// Values given in C order (logical); stored in Fortran order when asked.
std::string npy_of(const std::vector<index_t>& shape, const std::vector<double>& c_values, file_dtype d,
                   bool fortran = false, int major = 1) {
  std::vector<double> stored = c_values;
  if (fortran) {  // element at multi-index idx goes to F offset sum idx[a] * prod(shape[<a])
    std::vector<index_t> idx(shape.size(), 0);
    for (std::size_t i = 0; i < c_values.size(); ++i) {
      index_t off = 0, acc = 1;
      for (std::size_t a = 0; a < shape.size(); ++a) {
        off += idx[a] * acc;
        acc *= shape[a];
      }
      stored[static_cast<std::size_t>(off)] = c_values[i];
      for (std::size_t a = shape.size(); a-- > 0;) {
        if (++idx[a] < shape[a]) break;
        idx[a] = 0;
      }
    }
  }
  std::string data;
  for (double v : stored) {
    switch (d) {
      case file_dtype::f2:
        append_le<std::uint16_t>(data, half_bits(v));
        break;
      case file_dtype::f4:
        append_le<float>(data, static_cast<float>(v));
        break;
      case file_dtype::f8:
        append_le<double>(data, v);
        break;
      case file_dtype::i4:
        append_le<std::int32_t>(data, static_cast<std::int32_t>(v));
        break;
      case file_dtype::i8:
        append_le<std::int64_t>(data, static_cast<std::int64_t>(v));
        break;
    }
  }
  return npy_file(header_dict(descr_of(d), fortran, shape), data, major);
}

void put(const fs::path& p, const std::string& bytes) {
  std::ofstream o(p, std::ios::binary | std::ios::trunc);
  o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(o.good());
}

/// Reads a float32 C-order .npy file the tool wrote: shape and values.
std::pair<std::vector<index_t>, std::vector<float>> read_f32(const fs::path& p) {
  const std::string f = slurp(p);
  REQUIRE(f.size() >= 10);
  REQUIRE(f.compare(0, 6, "\x93NUMPY") == 0);
  REQUIRE(f[6] == 1);
  const std::size_t hlen =
      static_cast<unsigned char>(f[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(f[9])) << 8);
  REQUIRE((10 + hlen) % 64 == 0);
  const std::string h = f.substr(10, hlen);
  REQUIRE(h.find("'descr': '<f4'") != std::string::npos);
  REQUIRE(h.find("'fortran_order': False") != std::string::npos);
  std::vector<index_t> shape;
  const auto lp = h.find('('), rp = h.find(')');
  REQUIRE(lp != std::string::npos);
  std::stringstream ss(h.substr(lp + 1, rp - lp - 1));
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(' ') == std::string::npos) continue;
    shape.push_back(std::stoll(tok));
  }
  index_t n = 1;
  for (index_t e : shape) n *= e;
  REQUIRE(f.size() == 10 + hlen + static_cast<std::size_t>(n) * 4);
  std::vector<float> v(static_cast<std::size_t>(n));
  if (!v.empty()) std::memcpy(v.data(), f.data() + 10 + hlen, v.size() * 4);
  return {shape, v};
}

void write_case(const fs::path& p, const nlohmann::json& j) {
  put(p, j.dump(2));
}

/// x rounded to nearest even with p significant bits (normal range): bf16 p = 8, f16 p = 11, float p = 24.
double round_bits(double x, int p) {
  if (x == 0) return 0;
  int e = 0;
  std::frexp(x, &e);
  double q = std::ldexp(1.0, e - p);
  if (p == 11) q = std::max(q, std::ldexp(1.0, -24));  // binary16 subnormals share the quantum 2^-24
  return std::nearbyint(x / q) * q;
}

/// The one-line error contract: clean exit (no signal), non-zero status, exactly one line on stderr.
void require_one_line_error(const run_result& r, const std::vector<std::string>& needles) {
  INFO("stderr: " << r.err);
  REQUIRE(r.exited);
  REQUIRE(r.code != 0);
  REQUIRE(!r.err.empty());
  REQUIRE(r.err.back() == '\n');
  REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  for (auto& n : needles) CHECK(r.err.find(n) != std::string::npos);
}

double rel_error(const std::vector<float>& out, const std::vector<double>& ref) {
  REQUIRE(out.size() == ref.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    REQUIRE(std::isfinite(out[i]));
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  REQUIRE(den > 0);
  return std::sqrt(num / den);
}

/// Independent EMA in double: h = a h + (1 - a) x; y = x + h.
void ema_reference(const std::vector<double>& x, const std::vector<double>& a, const std::vector<double>& h0,
                   index_t nb, index_t nt, index_t nd, std::vector<double>& y, std::vector<double>& h) {
  y.assign(x.size(), 0);
  h = h0.empty() ? std::vector<double>(static_cast<std::size_t>(nb * nd), 0.0) : h0;
  for (index_t b = 0; b < nb; ++b)
    for (index_t t = 0; t < nt; ++t)
      for (index_t d = 0; d < nd; ++d) {
        const auto i = static_cast<std::size_t>((b * nt + t) * nd + d);
        double& hh = h[static_cast<std::size_t>(b * nd + d)];
        hh = a[static_cast<std::size_t>(d)] * hh + (1 - a[static_cast<std::size_t>(d)]) * x[i];
        y[i] = x[i] + hh;
      }
}

std::vector<double> uniform_values(rng& r, index_t n, double lo, double hi) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = r.uniform(lo, hi);
  return v;
}

}  // namespace

TEST_CASE("seqmix-run: --list prints every op with its signature", "[tools][seqmix-run]") {
  scratch_dir dir;
  const auto r = run_tool({"--list"}, dir.path);
  REQUIRE(r.exited);
  REQUIRE(r.code == 0);
  REQUIRE(r.err.empty());
  std::stringstream ss(r.out);
  std::string line;
  bool ema = false, ema_update = false, identity = false;
  while (std::getline(ss, line)) {
    if (line.rfind("ema ", 0) == 0)
      ema = line.find("x [B,T,D]") != std::string::npos && line.find("->") != std::string::npos;
    if (line.rfind("ema_update ", 0) == 0) ema_update = line.find("state [B,D]") != std::string::npos;
    if (line.rfind("identity ", 0) == 0) identity = line.find("->") != std::string::npos;
  }
  CHECK(ema);
  CHECK(ema_update);
  CHECK(identity);
}

TEST_CASE("seqmix-run: ema agrees with an independent float64 EMA", "[tools][seqmix-run]") {
  rng r(2024);
  struct shape_case {
    index_t b, t, d;
    file_dtype x_dtype;
    bool fortran;
    int major;
    bool with_state;
    const char* dtype;
  };
  const shape_case cases[] = {
      {1, 1, 1, file_dtype::f4, false, 1, false, "float32"}, {2, 7, 5, file_dtype::f8, true, 2, true, "float32"},
      {3, 40, 9, file_dtype::f4, true, 3, true, "float64"},  {2, 13, 6, file_dtype::f8, false, 1, true, "bfloat16"},
      {1, 9, 3, file_dtype::f2, true, 2, false, "float16"},
  };
  for (const auto& c : cases) {
    INFO("B=" << c.b << " T=" << c.t << " D=" << c.d << " dtype " << c.dtype);
    scratch_dir dir;
    std::vector<double> x(static_cast<std::size_t>(c.b * c.t * c.d));
    for (auto& v : x) {
      v = c.x_dtype == file_dtype::f2 ? static_cast<double>(r.integer(-200, 200)) / 64 : r.uniform(-2, 2);
      if (c.x_dtype == file_dtype::f4) v = static_cast<float>(v);  // what the file holds
    }
    std::vector<double> a(static_cast<std::size_t>(c.d));
    for (auto& v : a) v = static_cast<double>(r.integer(1, 1023)) / 1024;  // exact in f16
    std::vector<double> h0 = c.with_state ? uniform_values(r, c.b * c.d, -1, 1) : std::vector<double>{};
    put(dir.path / "x.npy", npy_of({c.b, c.t, c.d}, x, c.x_dtype, c.fortran, c.major));
    put(dir.path / "decay.npy", npy_of({c.d}, a, file_dtype::f2));
    nlohmann::json j = {{"op", "ema"},
                        {"dtype", c.dtype},
                        {"inputs", {{"x", "x.npy"}, {"decay", "decay.npy"}}},
                        {"outputs", {{"y", "out/y.npy"}, {"final_state", "out/h.npy"}}}};
    if (c.with_state) {
      put(dir.path / "h0.npy", npy_of({c.b, c.d}, h0, file_dtype::f8));
      j["inputs"]["initial_state"] = "h0.npy";
    }
    fs::create_directories(dir.path / "out");
    write_case(dir.path / "case.json", j);
    const auto res = run_tool({(dir.path / "case.json").string()}, dir.path);
    INFO("stderr: " << res.err);
    REQUIRE(res.exited);
    REQUIRE(res.code == 0);
    REQUIRE(res.out.empty());
    REQUIRE(res.err.empty());

    // The tool feeds the layer float32 values of the inputs rounded to the case's storage type.
    const int p = std::string(c.dtype) == "bfloat16" ? 8 : std::string(c.dtype) == "float16" ? 11 : 24;
    std::vector<double> xr(x.size()), h0r(h0.size());
    for (std::size_t i = 0; i < x.size(); ++i) xr[i] = round_bits(round_bits(x[i], 24), p);
    for (std::size_t i = 0; i < h0.size(); ++i) h0r[i] = round_bits(h0[i], 24);  // state stays float32
    std::vector<double> y_ref, h_ref;
    ema_reference(xr, a, h0r, c.b, c.t, c.d, y_ref, h_ref);
    const auto [ys, y] = read_f32(dir.path / "out/y.npy");
    const auto [hs, h] = read_f32(dir.path / "out/h.npy");
    REQUIRE(ys == std::vector<index_t>{c.b, c.t, c.d});
    REQUIRE(hs == std::vector<index_t>{c.b, c.d});
    CHECK(rel_error(y, y_ref) < seqmix::testing::tolerance<float>(c.t));
    CHECK(rel_error(h, h_ref) < seqmix::testing::tolerance<float>(c.t));
  }
}

TEST_CASE("seqmix-run: every file dtype, order and format version reads exactly", "[tools][seqmix-run][npy]") {
  rng r(7);
  const file_dtype dtypes[] = {file_dtype::f2, file_dtype::f4, file_dtype::f8, file_dtype::i4, file_dtype::i8};
  const char* case_dtypes[] = {"float32", "float64", "bfloat16", "float16"};
  const std::vector<std::vector<index_t>> shapes = {{3, 4, 5}, {7}, {2, 3}, {1, 2, 4, 3}, {0, 3}};
  int k = 0;
  scratch_dir dir;
  for (file_dtype fd : dtypes) {
    for (bool fortran : {false, true}) {
      for (int major : {1, 2, 3}) {
        for (const char* cd : case_dtypes) {
          const auto& shape = shapes[static_cast<std::size_t>(k++) % shapes.size()];
          index_t n = 1;
          for (index_t e : shape) n *= e;
          std::vector<double> x(static_cast<std::size_t>(n));
          for (auto& v : x) {
            if (fd == file_dtype::f2)
              v = static_cast<double>(r.integer(-400, 400)) / 64;  // exact in f16
            else if (is_int(fd))
              v = static_cast<double>(r.integer(-100000, 100000));
            else
              v = r.uniform(-1, 1) * std::ldexp(1.0, static_cast<int>(r.integer(-6, 6)));  // within f16 range
            if (fd == file_dtype::f4) v = static_cast<float>(v);                           // what the file holds
          }
          if (fd == file_dtype::i8 && n > 1) x[0] = 1099511627776.0 + 3;  // 2^40 + 3: past int32
          const double scale = (k % 3 == 0) ? 0.5 : 1.0;
          INFO("file " << descr_of(fd) << (fortran ? " F" : " C") << " v" << major << " dtype " << cd << " n " << n);
          put(dir.path / "x.npy", npy_of(shape, x, fd, fortran, major));
          write_case(dir.path / "case.json", {{"op", "identity"},
                                              {"dtype", cd},
                                              {"options", {{"scale", scale}}},
                                              {"inputs", {{"x", "x.npy"}}},
                                              {"outputs", {{"y", "y.npy"}}}});
          const auto res = run_tool({(dir.path / "case.json").string()}, dir.path);
          INFO("stderr: " << res.err);
          REQUIRE(res.exited);
          REQUIRE(res.code == 0);
          const auto [ys, y] = read_f32(dir.path / "y.npy");
          REQUIRE(ys == shape);
          const std::string cds = cd;
          const int p = cds == "bfloat16" ? 8 : cds == "float16" ? 11 : cds == "float32" ? 24 : 53;
          for (std::size_t i = 0; i < x.size(); ++i) {
            double want = x[i];  // integer files stay exact (then float32 output)
            if (!is_int(fd)) want = round_bits(round_bits(x[i], fd == file_dtype::f8 && p < 53 ? 24 : 53), p);
            REQUIRE(y[i] == static_cast<float>(scale * want));
          }
        }
      }
    }
  }
}

TEST_CASE("seqmix-run: --time prints one JSON line and writes the plain-run outputs", "[tools][seqmix-run]") {
  rng r(99);
  scratch_dir dir;
  const index_t nb = 2, nt = 17, nd = 5;
  put(dir.path / "x.npy", npy_of({nb, nt, nd}, uniform_values(r, nb * nt * nd, -1, 1), file_dtype::f4));
  std::vector<double> a(nd);
  for (auto& v : a) v = static_cast<double>(r.integer(1, 1023)) / 1024;
  put(dir.path / "decay.npy", npy_of({nd}, a, file_dtype::f4));
  put(dir.path / "h0.npy", npy_of({nb, nd}, uniform_values(r, nb * nd, -1, 1), file_dtype::f4));
  auto j = nlohmann::json{{"op", "ema"},
                          {"inputs", {{"x", "x.npy"}, {"decay", "decay.npy"}, {"initial_state", "h0.npy"}}},
                          {"outputs", {{"y", "y1.npy"}, {"final_state", "h1.npy"}}}};
  write_case(dir.path / "plain.json", j);
  j["outputs"] = {{"y", "y2.npy"}, {"final_state", "h2.npy"}};
  write_case(dir.path / "timed.json", j);
  const auto plain = run_tool({(dir.path / "plain.json").string()}, dir.path);
  REQUIRE(plain.code == 0);
  const auto res = run_tool({"--time", "3", "--threads", "2", (dir.path / "timed.json").string()}, dir.path);
  INFO("stderr: " << res.err);
  REQUIRE(res.exited);
  REQUIRE(res.code == 0);
  REQUIRE(res.err.empty());
  REQUIRE(!res.out.empty());
  REQUIRE(res.out.back() == '\n');
  REQUIRE(std::count(res.out.begin(), res.out.end(), '\n') == 1);
  const auto t = nlohmann::json::parse(res.out);
  REQUIRE(t.size() == 5);
  CHECK(t.at("op") == "ema");
  CHECK(t.at("threads") == 2);
  CHECK(t.at("runs") == 3);
  CHECK(t.at("min_ms").get<double>() >= 0);
  CHECK(t.at("median_ms").get<double>() >= t.at("min_ms").get<double>());
  // The outputs of a timed run equal a plain run's (state restored between repetitions).
  CHECK(read_f32(dir.path / "y1.npy").second == read_f32(dir.path / "y2.npy").second);
  CHECK(read_f32(dir.path / "h1.npy").second == read_f32(dir.path / "h2.npy").second);
}

TEST_CASE("seqmix-run: in/out state (ema_update) is exact under --time and matches float64", "[tools][seqmix-run]") {
  rng r(31);
  scratch_dir dir;
  const index_t nb = 3, nt = 11, nd = 7;
  const auto x = uniform_values(r, nb * nt * nd, -1, 1);
  const auto h0 = uniform_values(r, nb * nd, -1, 1);
  std::vector<double> a(nd);
  for (auto& v : a) v = static_cast<double>(r.integer(1, 1023)) / 1024;
  put(dir.path / "x.npy", npy_of({nb, nt, nd}, x, file_dtype::f8));
  put(dir.path / "decay.npy", npy_of({nd}, a, file_dtype::f8));
  put(dir.path / "s.npy", npy_of({nb, nd}, h0, file_dtype::f8, true, 2));
  auto j = nlohmann::json{{"op", "ema_update"},
                          {"inputs", {{"x", "x.npy"}, {"decay", "decay.npy"}, {"state", "s.npy"}}},
                          {"outputs", {{"y", "y1.npy"}, {"state", "s1.npy"}}}};
  write_case(dir.path / "plain.json", j);
  j["outputs"] = {{"y", "y2.npy"}, {"state", "s2.npy"}};
  write_case(dir.path / "timed.json", j);
  REQUIRE(run_tool({(dir.path / "plain.json").string()}, dir.path).code == 0);
  const auto res = run_tool({"--time", "4", (dir.path / "timed.json").string()}, dir.path);
  INFO("stderr: " << res.err);
  REQUIRE(res.code == 0);
  CHECK(nlohmann::json::parse(res.out).at("runs") == 4);
  CHECK(read_f32(dir.path / "y1.npy").second == read_f32(dir.path / "y2.npy").second);
  CHECK(read_f32(dir.path / "s1.npy").second == read_f32(dir.path / "s2.npy").second);

  std::vector<double> xr(x.size()), hr(h0.size()), ar(a.size()), y_ref, h_ref;
  for (std::size_t i = 0; i < x.size(); ++i) xr[i] = round_bits(x[i], 24);
  for (std::size_t i = 0; i < h0.size(); ++i) hr[i] = round_bits(h0[i], 24);
  for (std::size_t i = 0; i < a.size(); ++i) ar[i] = round_bits(a[i], 24);
  ema_reference(xr, ar, hr, nb, nt, nd, y_ref, h_ref);
  CHECK(rel_error(read_f32(dir.path / "y2.npy").second, y_ref) < seqmix::testing::tolerance<float>(nt));
  CHECK(rel_error(read_f32(dir.path / "s2.npy").second, h_ref) < seqmix::testing::tolerance<float>(nt));
}

TEST_CASE("seqmix-run: integer inputs and typed options", "[tools][seqmix-run]") {
  rng r(11);
  scratch_dir dir;
  const auto& p = dir.path;
  const auto x = uniform_values(r, 6, -1, 1);
  put(p / "x.npy", npy_of({2, 3}, x, file_dtype::f8));
  std::vector<double> idx(10);
  for (auto& v : idx) v = static_cast<double>(r.integer(-50000, 50000));
  const file_dtype idx_dtypes[] = {file_dtype::i4, file_dtype::i8, file_dtype::f4, file_dtype::f8};
  for (file_dtype fd : idx_dtypes) {
    for (bool fortran : {false, true}) {
      INFO(descr_of(fd) << (fortran ? " F" : " C"));
      put(p / "idx.npy", npy_of({5, 2}, idx, fd, fortran, 2));
      const nlohmann::json::number_integer_t off = r.integer(-9, 9);
      write_case(
          p / "case.json",
          {{"op", "identity"},
           {"options",
            {{"negate", true}, {"offset", fortran ? nlohmann::json(static_cast<double>(off)) : nlohmann::json(off)}}},
           {"inputs", {{"x", "x.npy"}, {"idx", "idx.npy"}}},
           {"outputs", {{"y", "y.npy"}, {"idx_out", "i.npy"}}}});
      const auto res = run_tool({(p / "case.json").string()}, p);
      INFO("stderr: " << res.err);
      REQUIRE(res.code == 0);
      const auto [is, iv] = read_f32(p / "i.npy");
      REQUIRE(is == std::vector<index_t>{5, 2});
      for (std::size_t i = 0; i < idx.size(); ++i)
        REQUIRE(iv[i] == static_cast<float>(idx[i] + static_cast<double>(off)));
      const auto [ys, yv] = read_f32(p / "y.npy");
      for (std::size_t i = 0; i < x.size(); ++i)
        REQUIRE(yv[i] == static_cast<float>(-static_cast<double>(static_cast<float>(x[i]))));
    }
  }
  // A list option.
  write_case(p / "case.json", {{"op", "identity"},
                               {"options", {{"add", {0.5, -1.0, 2.0}}}},
                               {"inputs", {{"x", "x.npy"}}},
                               {"outputs", {{"y", "y.npy"}}}});
  {
    const auto res = run_tool({(p / "case.json").string()}, p);
    INFO("stderr: " << res.err);
    REQUIRE(res.code == 0);
    const double add[] = {0.5, -1.0, 2.0};
    const auto [ys, yv] = read_f32(p / "y.npy");
    for (std::size_t i = 0; i < x.size(); ++i) {
      REQUIRE(yv[i] == static_cast<float>(static_cast<double>(static_cast<float>(x[i])) + add[i % 3]));
    }
  }
  struct bad {
    const char* what;
    std::string idx_file;
    nlohmann::json options;
    std::vector<std::string> needles;
  };
  const std::vector<bad> cases = {
      {"non-integer index",
       npy_of({3}, {1, 2.5, 3}, file_dtype::f8),
       nlohmann::json::object(),
       {"input idx", "non-integer value 2.5"}},
      {"index past int32",
       npy_of({2}, {1, 4294967296.0}, file_dtype::i8),
       nlohmann::json::object(),
       {"input idx", "out of range"}},
      {"fractional int option",
       npy_of({1}, {1}, file_dtype::i4),
       {{"offset", 1.5}},
       {"option offset = 1.5, expected an integer"}},
      {"string int option",
       npy_of({1}, {1}, file_dtype::i4),
       {{"offset", "3"}},
       {"option offset = \"3\", expected an integer"}},
      {"int option out of range",
       npy_of({1}, {1}, file_dtype::i4),
       {{"offset", 1e300}},
       {"option offset", "expected an integer"}},
      {"number as bool",
       npy_of({1}, {1}, file_dtype::i4),
       {{"negate", 1}},
       {"option negate = 1, expected true or false"}},
      {"scalar for a list", npy_of({1}, {1}, file_dtype::i4), {{"add", 3}}, {"option add = 3, expected a list"}},
      {"string in a list",
       npy_of({1}, {1}, file_dtype::i4),
       {{"add", {1, "x"}}},
       {"option add[1] = \"x\", expected a number"}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    put(p / "idx.npy", c.idx_file);
    write_case(p / "case.json", {{"op", "identity"},
                                 {"options", c.options},
                                 {"inputs", {{"x", "x.npy"}, {"idx", "idx.npy"}}},
                                 {"outputs", {{"y", "y.npy"}, {"idx_out", "i.npy"}}}});
    auto cs = c.needles;
    cs.push_back("seqmix-run identity: ");
    require_one_line_error(run_tool({(p / "case.json").string()}, p), cs);
  }
}

TEST_CASE("seqmix-run: malformed .npy files give one line and a clean non-zero exit", "[tools][seqmix-run][npy]") {
  scratch_dir dir;
  std::string four_floats;
  for (int i = 0; i < 4; ++i) append_le<float>(four_floats, 0.25f * static_cast<float>(i + 1));
  const std::string good_dict = header_dict("<f4", false, {4});
  struct bad_file {
    const char* what;
    std::string bytes;
    const char* needle;
  };
  std::string trunc_hdr = npy_file(good_dict, four_floats).substr(0, 40);  // header length says more
  std::string v4 = npy_file(good_dict, four_floats);
  v4[6] = 4;
  const std::vector<bad_file> files = {
      {"bad magic", "\x93NUMPZ" + npy_file(good_dict, four_floats).substr(6), "bad magic"},
      {"empty file", "", "bad magic"},
      {"8-byte file", npy_file(good_dict, four_floats).substr(0, 8), "truncated header"},
      {"truncated header", trunc_hdr, "truncated header"},
      {"truncated v2 prefix", npy_file(good_dict, four_floats, 2).substr(0, 11), "truncated header"},
      {"version 4", v4, "unsupported format version"},
      {"header not a dict", npy_file("[1, 2, 3]", four_floats), "not a valid dict"},
      {"unterminated dict", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)", four_floats),
       "not a valid dict"},
      {"unterminated string", npy_file("{'descr: <f4", four_floats), "not a valid dict"},
      {"missing shape", npy_file("{'descr': '<f4', 'fortran_order': False, }", four_floats), "no 'shape' key"},
      {"missing descr", npy_file("{'fortran_order': False, 'shape': (4,), }", four_floats), "no 'descr' key"},
      {"missing fortran_order", npy_file("{'descr': '<f4', 'shape': (4,), }", four_floats), "no 'fortran_order' key"},
      {"extra key", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1, }", four_floats),
       "unexpected key"},
      {"bad fortran_order", npy_file("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,), }", four_floats),
       "fortran_order"},
      {"complex dtype", npy_file(header_dict("<c8", false, {2}), four_floats), "unsupported npy dtype"},
      {"byte dtype", npy_file(header_dict("|u1", false, {16}), four_floats), "unsupported npy dtype"},
      {"string dtype", npy_file(header_dict("<U4", false, {1}), four_floats), "unsupported npy dtype"},
      {"structured dtype", npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", four_floats),
       "unsupported dtype"},
      {"big-endian", npy_file(header_dict(">f4", false, {4}), four_floats), "big-endian"},
      {"bad shape text", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", four_floats),
       "bad shape"},
      {"shape not a tuple", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': 4, }", four_floats),
       "bad shape"},
      {"negative dim", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", four_floats),
       "negative"},
      {"absurd dim",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", four_floats), "absurd"},
      {"count overflow",
       npy_file(header_dict("<f4", false, {1099511627776, 1099511627776, 1099511627776}), four_floats), "overflows"},
      {"huge shape, tiny data", npy_file(header_dict("<f8", false, {1099511627776}), four_floats), "shorter"},
      {"data too short", npy_file(header_dict("<f4", false, {2, 3}), four_floats), "shorter"},
      {"data too long", npy_file(header_dict("<f4", false, {3}), four_floats), "longer"},
  };
  for (const auto& f : files) {
    INFO(f.what);
    put(dir.path / "x.npy", f.bytes);
    write_case(dir.path / "case.json",
               {{"op", "identity"}, {"inputs", {{"x", "x.npy"}}}, {"outputs", {{"y", "y.npy"}}}});
    require_one_line_error(run_tool({(dir.path / "case.json").string()}, dir.path),
                           {"seqmix-run identity: ", "input x", f.needle});
  }
  write_case(dir.path / "case.json",
             {{"op", "identity"}, {"inputs", {{"x", "missing.npy"}}}, {"outputs", {{"y", "y.npy"}}}});
  require_one_line_error(run_tool({(dir.path / "case.json").string()}, dir.path), {"input x", "no such file"});
}

TEST_CASE("seqmix-run: bad cases name the op, the tensor and the problem", "[tools][seqmix-run]") {
  rng r(5);
  scratch_dir dir;
  const auto& p = dir.path;
  put(p / "x.npy", npy_of({2, 4, 3}, uniform_values(r, 24, -1, 1), file_dtype::f4));
  put(p / "x2d.npy", npy_of({8, 3}, uniform_values(r, 24, -1, 1), file_dtype::f4));
  put(p / "decay.npy", npy_of({3}, {0.5, 0.25, 0.75}, file_dtype::f4));
  put(p / "decay4.npy", npy_of({4}, {0.5, 0.25, 0.75, 0.5}, file_dtype::f4));
  put(p / "decay_bad.npy", npy_of({3}, {0.5, 1.5, 0.75}, file_dtype::f4));
  put(p / "h0_bad.npy", npy_of({3, 3}, uniform_values(r, 9, -1, 1), file_dtype::f4));
  const nlohmann::json good = {
      {"op", "ema"}, {"inputs", {{"x", "x.npy"}, {"decay", "decay.npy"}}}, {"outputs", {{"y", "y.npy"}}}};
  write_case(p / "good.json", good);
  REQUIRE(run_tool({(p / "good.json").string()}, p).code == 0);

  struct bad_case {
    const char* what;
    nlohmann::json j;
    std::vector<std::string> needles;
  };
  auto with = [&](const char* ptr, nlohmann::json v) {
    nlohmann::json j = good;
    j[nlohmann::json::json_pointer(ptr)] = std::move(v);
    return j;
  };
  nlohmann::json no_decay = good;
  no_decay["inputs"].erase("decay");
  nlohmann::json no_op = good;
  no_op.erase("op");
  const std::vector<bad_case> cases = {
      {"unknown op", with("/op", "nope"), {"seqmix-run nope: ", "unknown op"}},
      {"missing op", no_op, {"missing \"op\""}},
      {"missing input", no_decay, {"seqmix-run ema: ", "input decay is required but missing"}},
      {"wrong rank", with("/inputs/x", "x2d.npy"), {"seqmix-run ema: ", "input x has rank 2, expected 3 [B,T,D]"}},
      {"wrong shape", with("/inputs/decay", "decay4.npy"), {"seqmix-run ema: ", "decay.extent(D) = 4, expected 3"}},
      {"wrong state shape", with("/inputs/initial_state", "h0_bad.npy"), {"initial_state.extent(B) = 3, expected 2"}},
      {"decay out of range", with("/inputs/decay", "decay_bad.npy"), {"seqmix-run ema: ", "decay"}},
      {"unknown input", with("/inputs/intial_state", "x.npy"), {"input intial_state is not an input of this op"}},
      {"unknown option", with("/options/scale", 1.0), {"option scale is not an option of this op"}},
      {"unknown dtype", with("/dtype", "float8"), {"seqmix-run ema: ", "unknown dtype 'float8'"}},
      {"dtype not a string", with("/dtype", 32), {"\"dtype\" must be a string"}},
      {"mode on an op without modes", with("/mode", "chunk"), {"this op has no modes"}},
      {"output not produced", with("/outputs/z", "z.npy"), {"output z is not produced by this op"}},
      {"unknown case key", with("/output", nlohmann::json::object()), {"unknown case key \"output\""}},
      {"inputs not an object", with("/inputs", "x.npy"), {"\"inputs\" must be an object"}},
      {"identity: unknown mode",
       nlohmann::json{{"op", "identity"}, {"mode", "fast"}, {"inputs", {{"x", "x.npy"}}}},
       {"seqmix-run identity: ", "unknown mode 'fast'"}},
      {"identity: string option",
       nlohmann::json{{"op", "identity"}, {"options", {{"scale", "big"}}}, {"inputs", {{"x", "x.npy"}}}},
       {"option scale = \"big\", expected a number"}},
      {"identity: bool option",
       nlohmann::json{{"op", "identity"}, {"options", {{"scale", true}}}, {"inputs", {{"x", "x.npy"}}}},
       {"option scale = true, expected a number"}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    write_case(p / "case.json", c.j);
    require_one_line_error(run_tool({(p / "case.json").string()}, p), c.needles);
  }

  // Non-finite options: JSON has no NaN, but Python's json.dump writes NaN / Infinity.
  for (const char* tok : {"NaN", "Infinity", "-Infinity"}) {
    INFO(tok);
    put(p / "case.json", std::string("{\"op\": \"identity\", \"options\": {\"scale\": ") + tok +
                             "}, \"inputs\": {\"x\": \"x.npy\"}, \"outputs\": {\"y\": \"y.npy\"}}");
    require_one_line_error(run_tool({(p / "case.json").string()}, p),
                           {"seqmix-run identity: ", std::string("option scale = ") + tok, "finite"});
  }
  put(p / "case.json", "{\"op\": \"identity\", \"options\": {\"add\": [1, NaN]}, \"inputs\": {\"x\": \"x.npy\"}}");
  require_one_line_error(run_tool({(p / "case.json").string()}, p), {"option add[1] = NaN, expected a finite number"});
  put(p / "case.json", "{\"op\": \"identity\", \"options\": {\"scale\": 1e999}, \"inputs\": {\"x\": \"x.npy\"}}");
  require_one_line_error(run_tool({(p / "case.json").string()}, p), {"1e999"});
  put(p / "case.json", "{\"op\": \"identity\",\n \"inputs\": {\"x\": ");
  require_one_line_error(run_tool({(p / "case.json").string()}, p), {"invalid JSON"});
  require_one_line_error(run_tool({(p / "nonexistent.json").string()}, p), {"cannot open case file"});

  // Command-line errors.
  require_one_line_error(run_tool({}, p), {"no case file"});
  require_one_line_error(run_tool({"--time", "0", (p / "good.json").string()}, p), {"--time"});
  require_one_line_error(run_tool({"--threads", "two", (p / "good.json").string()}, p), {"--threads"});
  require_one_line_error(run_tool({"--bogus", (p / "good.json").string()}, p), {"unknown flag --bogus"});
  require_one_line_error(run_tool({(p / "good.json").string(), (p / "good.json").string()}, p),
                         {"more than one case file"});
}
