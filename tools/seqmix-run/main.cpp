// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/main.cpp: `seqmix-run [--threads T] [--time N] CASE.json` and `seqmix-run --list`
// (SPEC §5). Every failure prints exactly one line on stderr and exits non-zero.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <seqmix/runtime/executor.hpp>

#include "registry.hpp"

namespace {

using seqmix::parity::case_context;
using seqmix::parity::registry;

constexpr const char* usage = "usage: seqmix-run [--threads T] [--time N] CASE.json | seqmix-run --list";

/// One line: newlines and carriage returns become spaces.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

/// Thrown by die(); main prints it and returns the code (no std::exit, so every destructor runs).
struct exit_request {
  int code;
  std::string line;
};

[[noreturn]] void die(const std::string& who, const std::string& msg, int code = 1) {
  throw exit_request{code, one_line(who + ": " + msg)};
}

int parse_positive(const std::string& flag, const char* text) {
  if (!text) die("seqmix-run", flag + " needs a value; " + usage, 2);
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < 1 || v > 1000000) {
    die("seqmix-run", flag + " " + text + ": expected a positive integer", 2);
  }
  return static_cast<int>(v);
}

/// JSON has no NaN or infinity, but Python's json.dump writes NaN, Infinity and -Infinity. Outside strings
/// those tokens become the string "\u0001nonfinite:<token>", so the option getters can name the option.
std::string mark_nonfinite(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      out += ch;
      if (ch == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (ch == '"')
        in_string = false;
      continue;
    }
    if (ch == '"') {
      in_string = true;
      out += ch;
      continue;
    }
    bool replaced = false;
    for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
      const std::string t = tok;
      if (text.compare(i, t.size(), t) == 0) {
        out += "\"\\u0001nonfinite:" + t + "\"";  // JSON escape of seqmix::parity::nonfinite_marker
        i += t.size() - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += ch;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int run(int argc, char** argv) {
  int threads = 0, time_runs = 0;
  bool list = false;
  std::string case_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list")
      list = true;
    else if (a == "--threads")
      threads = parse_positive(a, i + 1 < argc ? argv[++i] : nullptr);
    else if (a == "--time")
      time_runs = parse_positive(a, i + 1 < argc ? argv[++i] : nullptr);
    else if (a == "--help" || a == "-h") {
      std::printf("%s\n", usage);
      return 0;
    } else if (!a.empty() && a[0] == '-')
      die("seqmix-run", "unknown flag " + a + "; " + std::string(usage), 2);
    else if (!case_path.empty())
      die("seqmix-run", std::string("more than one case file; ") + usage, 2);
    else
      case_path = a;
  }
  const auto& dups = seqmix::parity::registrar::duplicates();
  if (!dups.empty()) die("seqmix-run", "op '" + dups.front() + "' is registered twice");
  if (list) {
    if (!case_path.empty() || time_runs) die("seqmix-run", std::string("--list takes no case; ") + usage, 2);
    for (auto& [name, info] : registry()) std::printf("%-26s %s\n", name.c_str(), info.signature.c_str());
    return 0;
  }
  if (case_path.empty()) die("seqmix-run", std::string("no case file; ") + usage, 2);
  if (threads > 0) seqmix::set_num_threads(threads);

  // Case file.
  std::ifstream in(case_path, std::ios::binary);
  if (!in) die("seqmix-run", case_path + ": cannot open case file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(mark_nonfinite(text));
  } catch (const nlohmann::json::exception& e) {
    die("seqmix-run", case_path + ": invalid JSON: " + e.what());
  }
  if (!c.is_object()) die("seqmix-run", case_path + ": the case must be a JSON object");
  if (!c.contains("op") || !c["op"].is_string()) die("seqmix-run", case_path + ": missing \"op\" (a string)");
  const std::string op = c["op"].get<std::string>();
  const std::string who = "seqmix-run " + op;
  for (auto item = c.begin(); item != c.end(); ++item) {
    const std::string k = item.key();
    static const char* known[] = {"op",    "mode",    "options", "inputs",     "outputs",
                                  "dtype", "comment", "name",    "description"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char* s) { return k == s; }) == std::end(known) &&
        (k.empty() || k[0] != '_')) {
      die(who, "unknown case key \"" + k + "\" (expected op, mode, options, inputs, outputs, dtype)");
    }
  }
  auto it = registry().find(op);
  if (it == registry().end()) die(who, "unknown op (seqmix-run --list prints the known ops)");

  std::filesystem::path base = std::filesystem::path(case_path).parent_path();
  try {
    case_context ctx(op, c, base, time_runs);
    it->second.fn(ctx);
    ctx.check_all_used();
    std::vector<double> samples = ctx.samples_ms();
    if (time_runs > 0 && !ctx.timed_called()) {  // the op did not mark its body: time the whole function
      for (int r = 0; r < time_runs; ++r) {
        ctx.reset_for_rerun();
        const auto t0 = std::chrono::steady_clock::now();
        it->second.fn(ctx);
        const auto t1 = std::chrono::steady_clock::now();
        samples.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    }
    ctx.write_outputs();
    if (time_runs > 0) {
      nlohmann::ordered_json j;
      j["op"] = op;
      j["threads"] = threads > 0 ? threads : seqmix::num_threads();
      j["median_ms"] = median(samples);
      j["min_ms"] = *std::min_element(samples.begin(), samples.end());
      j["runs"] = time_runs;
      std::printf("%s\n", j.dump().c_str());
    }
  } catch (const std::bad_alloc&) {
    die(who, "out of memory");
  } catch (const std::exception& e) {
    die(who, e.what());
  } catch (...) {
    die(who, "unknown error");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string line;
  int code = 1;
  try {
    return run(argc, argv);
  } catch (const exit_request& e) {
    line = e.line;
    code = e.code;
  } catch (const std::exception& e) {
    line = "seqmix-run: " + one_line(e.what());
  } catch (...) {
    line = "seqmix-run: unknown error";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  return code;
}
