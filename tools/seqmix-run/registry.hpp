// SPDX-License-Identifier: Apache-2.0
// tools/seqmix-run/registry.hpp: the op registry of the parity tool and the case_context an op reads its
// inputs and options from and writes its outputs to. See docs/05-parity-tool.md (SPEC §5).
//
// ---------------------------------------------------------------------------------------------------------
// How to add an op (one file per family: tools/seqmix-run/ops_<family>.cpp, globbed by CMake)
// ---------------------------------------------------------------------------------------------------------
//   #include <seqmix/ops/linear_attention/linear_attention.hpp>
//   #include "registry.hpp"
//   namespace {
//   using namespace seqmix;
//   void run_gla(parity::case_context& ctx) {
//     const std::string mode = ctx.mode({"auto", "chunk", "recurrent"});  // checked; absent -> first entry
//     const double scale = ctx.required_option<double>("scale");            // a finite number, or an error
//     ctx.dispatch([&]<class T, class Backend>() {                          // T: float/double/bf16/f16 inputs
//       auto q = ctx.input<T, bthk>("q");                                   // [B,T,H,K] required, rank checked
//       auto k = ctx.input<T, bthk>("k");                                   // [B,T,H,K]
//       auto v = ctx.input<T, bthv>("v");                                   // [B,T,H,V]
//       auto gk = ctx.input<T, bthk>("gk");                                 // [B,T,H,K]
//       auto h0 = ctx.optional_input<float, nhkv>("initial_state");         // [N,H,K,V] or empty view
//       auto cu = ctx.optional_input<std::int64_t, layout<axis::I>>("cu_seqlens");  // [N+1] or empty
//       const index_t n = cu ? cu.extent<axis::I>() - 1 : q.template extent<axis::B>();
//       auto o = ctx.output<T, bthv>("o", {B, T_, H, V});                   // [B,T,H,V], NaN-filled
//       auto ht = ctx.output<float, nhkv>("final_state", {n, H, K, V});     // [N,H,K,V]
//       ctx.timed([&] {                                                     // the library call alone
//         gla<Backend>(gla_args<T>{q, k, v, gk, {}, h0, cu, o, ht}, {.scale = float(scale), .mode = ...});
//       });
//     });
//   }
//   }  // namespace
//   SEQMIX_RUN_REGISTER("gla", &run_gla, "q k v gk [B,T,H,K] ([initial_state] [cu_seqlens]) -> o, final_state");
//
// Element types: ask for what the op's args struct holds (activations T; states as the family declares them,
// e.g. float; parity::state_t<T> is float, or double for the reference, for families whose states follow T).
//
// Rules the context enforces (each failure is one line on stderr naming the op, the tensor and the problem):
// - input<U, Layout>(name): missing -> "input q is required but missing"; rank mismatch ->
//   "input gk has rank 3, expected 4 [B,T,H,K]"; data converted to U (the compute type T rounds the inputs:
//   bf16/f16 cases get bf16/f16 views; float64 cases get the exact file values). Integer U needs integer data.
// - option<U>(name, default) / required_option<U>(name): U = double, float, bool, int, index_t, std::string,
//   or a std::vector of those (a JSON list); wrong JSON type, a non-integer for an integer, or a non-finite
//   number is an error. Every input and option the case gives must be read
//   by the op (a typo like "intial_state" is an error, not silently ignored); ctx.mode() likewise for "mode".
// - output<U, Layout>(name, extents): a contiguous buffer owned by the context; only the outputs the case names
//   are written (float32, C order); a named output the op never produced is an error.
//   inout<U, Layout>(out_name, in_name): an output initialised from an input (in-place state updates); it is
//   restored from the input before each timed repetition, so --time writes the same outputs as a plain run.
// - timed(body): runs body once (or, under --time N, once to warm up and N times timed). Put only the library
//   call in it. An op that never calls timed() is timed as a whole (conversions are cached, so that is close).
// - Library errors (seqmix::shape_error) propagate: main prints "seqmix-run <op>: <what()>" and exits 1.
// ---------------------------------------------------------------------------------------------------------
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <seqmix/core/axis.hpp>
#include <seqmix/core/backend.hpp>
#include <seqmix/core/dtype.hpp>
#include <seqmix/core/error.hpp>
#include <seqmix/core/layout.hpp>
#include <seqmix/core/tensor_view.hpp>

#include "npy.hpp"

namespace seqmix::parity {

/// The precision a case computes in (case key "dtype").
enum class compute_dtype { float32, float64, bfloat16, float16 };

/// State / accumulator type that goes with input storage type T: double for the reference (T = double),
/// float otherwise (SPEC §2.17).
template <class T>
using state_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

/// Prefix of the string that main puts in place of the non-JSON tokens NaN, Infinity and -Infinity.
inline constexpr std::string_view nonfinite_marker = "\x01nonfinite:";

/// Error in a case (bad input, option, output); main prefixes "seqmix-run <op>: ".
class case_error : public std::runtime_error {
 public:
  explicit case_error(const std::string& what) : std::runtime_error(what) {}
};

/// Everything one op invocation sees: inputs, options, mode, outputs, timing.
class case_context {
 public:
  /// Built by main from the parsed case. `base` is the JSON file's folder.
  case_context(std::string op, const nlohmann::json& c, std::filesystem::path base, int time_runs)
      : op_(std::move(op)), base_(std::move(base)), time_runs_(time_runs) {
    if (c.contains("options")) {
      if (!c["options"].is_object()) throw case_error("\"options\" must be an object");
      options_ = c["options"];
    } else {
      options_ = nlohmann::json::object();
    }
    if (c.contains("inputs")) {
      if (!c["inputs"].is_object()) throw case_error("\"inputs\" must be an object of name -> path");
      for (auto& [k, v] : c["inputs"].items()) {
        if (!v.is_string()) throw case_error("input " + k + ": path must be a string");
        input_paths_[k] = v.get<std::string>();
      }
    }
    if (c.contains("outputs")) {
      if (!c["outputs"].is_object()) throw case_error("\"outputs\" must be an object of name -> path");
      for (auto& [k, v] : c["outputs"].items()) {
        if (!v.is_string()) throw case_error("output " + k + ": path must be a string");
        output_paths_[k] = v.get<std::string>();
      }
    }
    if (c.contains("mode")) {
      if (!c["mode"].is_string()) throw case_error("\"mode\" must be a string");
      mode_ = c["mode"].get<std::string>();
    }
    std::string dt = "float32";
    if (c.contains("dtype")) {
      if (!c["dtype"].is_string()) throw case_error("\"dtype\" must be a string");
      dt = c["dtype"].get<std::string>();
    }
    if (dt == "float32")
      dtype_ = compute_dtype::float32;
    else if (dt == "float64")
      dtype_ = compute_dtype::float64;
    else if (dt == "bfloat16")
      dtype_ = compute_dtype::bfloat16;
    else if (dt == "float16")
      dtype_ = compute_dtype::float16;
    else
      throw case_error("unknown dtype '" + dt + "' (expected float32, float64, bfloat16 or float16)");
  }

  case_context(const case_context&) = delete;
  case_context& operator=(const case_context&) = delete;

  const std::string& op() const noexcept { return op_; }
  compute_dtype dtype() const noexcept { return dtype_; }

  /// Calls f.template operator()<T, Backend>() with T = float / double / bf16 / f16 (the case's dtype) and
  /// Backend = simd<> (reference for float64). Write the lambda as [&]<class T, class Backend>() { ... }.
  template <class F>
  void dispatch(F&& f) {
    switch (dtype_) {
      case compute_dtype::float32:
        f.template operator()<float, seqmix::simd<>>();
        break;
      case compute_dtype::float64:
        f.template operator()<double, seqmix::reference>();
        break;
      case compute_dtype::bfloat16:
        f.template operator()<seqmix::bf16, seqmix::simd<>>();
        break;
      case compute_dtype::float16:
        f.template operator()<seqmix::f16, seqmix::simd<>>();
        break;
    }
  }

  /// The case's "mode", checked against the forms the op has; absent -> allowed[0].
  std::string mode(std::initializer_list<std::string_view> allowed) {
    mode_read_ = true;
    if (allowed.size() == 0) throw case_error("ctx.mode() needs at least one allowed mode");
    if (mode_.empty()) return std::string(*allowed.begin());
    for (auto a : allowed) {
      if (a == mode_) return mode_;
    }
    std::string list;
    for (auto a : allowed) {
      if (!list.empty()) list += ", ";
      list += a;
    }
    throw case_error("unknown mode '" + mode_ + "' (expected " + list + ")");
  }

  // ----- inputs ---------------------------------------------------------------------------------------
  /// True when the case names input `name`.
  bool has_input(const std::string& name) {
    used_inputs_.insert(name);
    return input_paths_.count(name) != 0;
  }
  /// Shape of input `name` as stored in the file (for ops whose inputs come in more than one rank, e.g.
  /// ssd's D [H] or [H,P]). Throws when absent.
  const std::vector<index_t>& input_shape(const std::string& name) { return load(name, true)->shape; }
  /// The file's element type of input `name` (e.g. to tell int32 from int64 index tensors).
  npy_dtype input_file_dtype(const std::string& name) { return load(name, true)->dtype; }

  /// Required input converted to U and viewed as Layout (contiguous, C order). Cached per (name, U).
  template <class U, class Layout>
  tensor_view<const U, Layout> input(const std::string& name) {
    const npy_array* a = load(name, true);
    return view_as<const U, Layout>(converted<U>(name, *a).data(), a->shape, "input " + name);
  }
  /// Optional input: an empty (null) view when the case does not name it.
  template <class U, class Layout>
  tensor_view<const U, Layout> optional_input(const std::string& name) {
    if (!has_input(name)) return {};
    return input<U, Layout>(name);
  }

  // ----- options --------------------------------------------------------------------------------------
  /// True when the case gives option `name`.
  bool has_option(const std::string& name) {
    used_options_.insert(name);
    return options_.contains(name);
  }
  /// Option `name` as U (double, float, bool, integral, std::string, or a std::vector of those), or `def`.
  template <class U>
  U option(const std::string& name, U def) {
    if (!has_option(name)) return def;
    return required_option<U>(name);
  }
  /// Option `name` as U; absent is an error.
  template <class U>
  U required_option(const std::string& name) {
    used_options_.insert(name);
    if (!options_.contains(name)) throw case_error("option " + name + " is required but missing");
    return option_value<U>(options_[name], "option " + name);
  }
  /// Marks an option as known without reading it (e.g. one only some modes use).
  void accept_option(const std::string& name) { used_options_.insert(name); }

  // ----- outputs --------------------------------------------------------------------------------------
  /// True when the case asks for output `name` (ops may skip optional work when it is not wanted).
  bool wants(const std::string& name) const { return output_paths_.count(name) != 0; }

  /// Output buffer `name` of element type U (float, double, bf16, f16, integral), contiguous, Layout shape.
  /// Floating buffers start NaN (so unwritten elements show), integral ones -1. Calling it again with the same
  /// name and type returns the same buffer.
  template <class U, class Layout>
  tensor_view<U, Layout> output(const std::string& name, extents<Layout> ext) {
    return tensor_view<U, Layout>(alloc<U>(name, std::vector<index_t>(ext.v.begin(), ext.v.end())), ext);
  }
  /// Input of any rank as a flat C-order view of all its elements (shape from input_shape(name)).
  template <class U>
  tensor_view<const U, layout<axis::I>> flat_input(const std::string& name) {
    const npy_array* a = load(name, true);
    return tensor_view<const U, layout<axis::I>>(converted<U>(name, *a).data(), {a->size()});
  }
  /// Output of any rank (shape given at run time) as a flat C-order view.
  template <class U>
  tensor_view<U, layout<axis::I>> flat_output(const std::string& name, const std::vector<index_t>& shape) {
    U* p = alloc<U>(name, shape);
    index_t n = 1;
    for (index_t e : shape) n *= e;
    return tensor_view<U, layout<axis::I>>(p, {n});
  }

  /// Output `out_name` initialised with input `in_name` (same shape): in-place state updates. Restored from
  /// the input before every repetition under --time.
  template <class U, class Layout>
  tensor_view<U, Layout> inout(const std::string& out_name, const std::string& in_name) {
    auto in = input<U, Layout>(in_name);
    auto out = output<U, Layout>(out_name, in.shape());
    const U* src = in.data();
    U* dst = out.data();
    const auto n = static_cast<std::size_t>(in.size());
    auto restore = [src, dst, n] { std::copy(src, src + n, dst); };
    restore();
    restores_.push_back(restore);
    return out;
  }

  // ----- timing ---------------------------------------------------------------------------------------
  /// Runs `body` (the library call alone): once, or under --time N once to warm up then N times timed.
  template <class F>
  void timed(F&& body) {
    if (timed_called_) throw case_error("ctx.timed() called twice in one op (put the whole call in one body)");
    timed_called_ = true;
    body();
    if (time_runs_ <= 0) return;
    for (int r = 0; r < time_runs_; ++r) {
      for (auto& f : restores_) f();
      const auto t0 = std::chrono::steady_clock::now();
      body();
      const auto t1 = std::chrono::steady_clock::now();
      samples_ms_.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    // Each repetition started from restored in/out buffers, so the outputs are those of a single run.
  }

  // ----- used by main ---------------------------------------------------------------------------------
  bool timed_called() const noexcept { return timed_called_; }
  const std::vector<double>& samples_ms() const noexcept { return samples_ms_; }
  void reset_for_rerun() {
    timed_called_ = false;
    for (auto& f : restores_) f();
  }
  /// After the op ran: every input, option and mode the case gives must have been used.
  void check_all_used() const {
    for (auto& [k, v] : input_paths_) {
      if (!used_inputs_.count(k)) throw case_error("input " + k + " is not an input of this op");
    }
    for (auto& [k, v] : options_.items()) {
      if (!used_options_.count(k)) throw case_error("option " + k + " is not an option of this op");
    }
    if (!mode_.empty() && !mode_read_) throw case_error("this op has no modes (case gives mode '" + mode_ + "')");
  }
  /// Writes the outputs the case names as float32 C-order .npy files (all names are checked before any write).
  void write_outputs() const {
    for (auto& [name, rel] : output_paths_) {
      if (outputs_.count(name)) continue;
      std::string have;
      for (auto& [k, v] : outputs_) {
        if (!have.empty()) have += ", ";
        have += k;
      }
      throw case_error("output " + name + " is not produced by this op (it produces: " + have + ")");
    }
    for (auto& [name, rel] : output_paths_) {
      const auto& h = *outputs_.at(name);
      const std::vector<float> f = h.to_float();
      try {
        write_npy_f32(base_ / rel, h.shape, f.data());
      } catch (const std::runtime_error& e) {
        throw case_error("output " + name + ": " + e.what());
      }
    }
  }

 private:
  struct holder_base {
    std::vector<index_t> shape;
    virtual ~holder_base() = default;
    virtual std::vector<float> to_float() const = 0;
  };
  template <class U>
  struct holder : holder_base {
    std::vector<U> data;
    std::vector<float> to_float() const override {
      std::vector<float> f(data.size());
      for (std::size_t i = 0; i < data.size(); ++i) f[i] = static_cast<float>(data[i]);
      return f;
    }
  };
  template <class U>
  static U fill_value() {
    if constexpr (std::is_integral_v<U>)
      return static_cast<U>(-1);
    else
      return U(std::numeric_limits<float>::quiet_NaN());
  }

  template <class V>
  struct is_vector : std::false_type {};
  template <class E, class A>
  struct is_vector<std::vector<E, A>> : std::true_type {};

  /// JSON value -> U, with messages "<label> = <json>, expected ...".
  template <class U>
  static U option_value(const nlohmann::json& j, const std::string& label) {
    if (j.is_string() && j.get<std::string>().starts_with(nonfinite_marker)) {
      throw case_error(label + " = " + j.get<std::string>().substr(nonfinite_marker.size()) + ", expected a finite " +
                       (std::is_floating_point_v<U> ? "number" : "value"));
    }
    if constexpr (is_vector<U>::value) {
      if (!j.is_array()) throw case_error(label + " = " + j.dump() + ", expected a list");
      U out;
      for (std::size_t i = 0; i < j.size(); ++i) {
        out.push_back(option_value<typename U::value_type>(j[i], label + "[" + std::to_string(i) + "]"));
      }
      return out;
    } else if constexpr (std::is_same_v<U, bool>) {
      if (!j.is_boolean()) throw case_error(label + " = " + j.dump() + ", expected true or false");
      return j.get<bool>();
    } else if constexpr (std::is_same_v<U, std::string>) {
      if (!j.is_string()) throw case_error(label + " = " + j.dump() + ", expected a string");
      return j.get<std::string>();
    } else if constexpr (std::is_floating_point_v<U>) {
      if (!j.is_number()) throw case_error(label + " = " + j.dump() + ", expected a number");
      const double d = j.get<double>();
      if (!std::isfinite(d)) throw case_error(label + " = " + j.dump() + ", expected a finite number");
      return static_cast<U>(d);
    } else if constexpr (std::is_integral_v<U>) {
      if (j.is_number_integer()) {
        if (j.is_number_unsigned() &&
            j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          throw case_error(label + " = " + j.dump() + ", out of range");
        }
        const auto v = j.get<std::int64_t>();
        if (v < static_cast<std::int64_t>(std::numeric_limits<U>::min()) ||
            (v > 0 && static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<U>::max()))) {
          throw case_error(label + " = " + j.dump() + ", out of range");
        }
        return static_cast<U>(v);
      }
      const double d = j.is_number_float() ? j.get<double>() : 0.0;
      if (!j.is_number_float() || !std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) {
        throw case_error(label + " = " + j.dump() + ", expected an integer");
      }
      if (d < static_cast<double>(std::numeric_limits<U>::min()) ||
          d > static_cast<double>(std::numeric_limits<U>::max())) {
        throw case_error(label + " = " + j.dump() + ", out of range");
      }
      return static_cast<U>(d);
    } else {
      static_assert(std::is_same_v<U, bool>,
                    "option<U>: U must be bool, std::string, a floating or integral type, or a std::vector of those");
    }
  }

  template <class U>
  U* alloc(const std::string& name, const std::vector<index_t>& shape) {
    index_t n = 1;
    for (index_t e : shape) {
      if (e < 0) throw case_error("output " + name + ": negative extent in " + shape_text(shape));
      n *= e;
    }
    auto it = outputs_.find(name);
    if (it != outputs_.end()) {
      auto* h = dynamic_cast<holder<U>*>(it->second.get());
      if (!h || it->second->shape != shape)
        throw case_error("output " + name + " allocated twice with different type or shape");
      return h->data.data();
    }
    auto h = std::make_unique<holder<U>>();
    h->shape = shape;
    h->data.assign(static_cast<std::size_t>(n), fill_value<U>());
    U* p = h->data.data();
    outputs_[name] = std::move(h);
    return p;
  }

  const npy_array* load(const std::string& name, bool required) {
    used_inputs_.insert(name);
    auto it = arrays_.find(name);
    if (it != arrays_.end()) return &it->second;
    auto p = input_paths_.find(name);
    if (p == input_paths_.end()) {
      if (required) throw case_error("input " + name + " is required but missing");
      return nullptr;
    }
    npy_array a;
    try {
      a = read_npy(base_ / p->second);
    } catch (const std::runtime_error& e) {
      throw case_error("input " + name + ": " + e.what());
    }
    return &arrays_.emplace(name, std::move(a)).first->second;
  }

  template <class U>
  const std::vector<U>& converted(const std::string& name, const npy_array& a) {
    const auto key = std::make_pair(name, std::type_index(typeid(U)));
    auto it = converted_.find(key);
    if (it == converted_.end()) {
      auto h = std::make_unique<holder<U>>();
      h->shape = a.shape;
      try {
        h->data = convert_npy<U>(a);
      } catch (const std::runtime_error& e) {
        throw case_error("input " + name + " " + e.what());
      }
      it = converted_.emplace(key, std::move(h)).first;
    }
    return static_cast<holder<U>*>(it->second.get())->data;
  }

  std::string op_;
  std::filesystem::path base_;
  int time_runs_ = 0;
  compute_dtype dtype_ = compute_dtype::float32;
  std::string mode_;
  bool mode_read_ = false;
  nlohmann::json options_;
  std::map<std::string, std::string> input_paths_, output_paths_;
  std::set<std::string> used_inputs_, used_options_;
  std::map<std::string, npy_array> arrays_;
  std::map<std::pair<std::string, std::type_index>, std::unique_ptr<holder_base>> converted_;
  std::map<std::string, std::unique_ptr<holder_base>> outputs_;
  std::vector<std::function<void()>> restores_;
  bool timed_called_ = false;
  std::vector<double> samples_ms_;
};

/// A registered op: name, function, and the signature line `--list` prints.
using op_fn = void (*)(case_context&);
struct op_info {
  op_fn fn = nullptr;
  std::string signature;
};

/// All registered ops, by name (filled by SEQMIX_RUN_REGISTER at static-initialisation time).
inline std::map<std::string, op_info>& registry() {
  static std::map<std::string, op_info> r;
  return r;
}

/// Registers one op; use through SEQMIX_RUN_REGISTER. A duplicate name is reported by main (--list and runs).
struct registrar {
  registrar(const char* name, op_fn fn, const char* signature) {
    auto [it, fresh] = registry().emplace(name, op_info{fn, signature});
    if (!fresh) duplicates().push_back(name);
  }
  static std::vector<std::string>& duplicates() {
    static std::vector<std::string> d;
    return d;
  }
};

}  // namespace seqmix::parity

#define SEQMIX_RUN_CAT2(a, b) a##b
#define SEQMIX_RUN_CAT(a, b) SEQMIX_RUN_CAT2(a, b)
/// SEQMIX_RUN_REGISTER("gla", &run_gla, "q k v gk [initial_state] [cu_seqlens] -> o final_state");
#define SEQMIX_RUN_REGISTER(name, fn, signature)                                             \
  static const ::seqmix::parity::registrar SEQMIX_RUN_CAT(seqmix_run_registrar_, __LINE__) { \
    name, fn, signature                                                                      \
  }
