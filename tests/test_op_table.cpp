// The generic checks, each run over every entry of the op table (op_table.hpp) in float32 and
// float64: one TEST_CASE per check; a failure names the op's declaration, the sample and the dtype.
// Plus: the guard that every op declared in the public op headers has an entry, the proof that the
// fused-vs-formula comparator catches a one-ulp difference, and the operators as their named ops.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "autograd/detail/forward_ad.hpp"  // BatchedDualLevel
#include "autograd/forward_ad.hpp"
#include "op_table.hpp"

using namespace xgrad;
using namespace xgrad::test::optable;

namespace {

constexpr Dtype kDtypes[] = {kFloat32, kFloat64};

// Fresh leaves of the sample's values in `dt`; when `grad`, those that may take a gradient require it
// (for an op without gradient too: its result must still not require grad).
std::vector<Tensor> prepare(const OpInfo& op, const std::vector<Tensor>& values, Dtype dt, bool grad) {
  std::vector<Tensor> in;
  for (std::size_t i = 0; i < values.size(); ++i) {
    Tensor t = values[i].to(dt).detach().clone();
    t.requires_grad_(grad && op.differentiable_input(i));
    in.push_back(std::move(t));
  }
  return in;
}

std::vector<Tensor> requiring_grad(const std::vector<Tensor>& in) {
  std::vector<Tensor> out;
  for (const Tensor& t : in)
    if (t.requires_grad()) out.push_back(t);
  return out;
}

// Bitwise equality of shape, dtype and value bytes.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const void* pa = a.dtype() == kFloat32 ? static_cast<const void*>(a.data<float>().data()) : a.data<double>().data();
  const void* pb = b.dtype() == kFloat32 ? static_cast<const void*>(b.data<float>().data()) : b.data<double>().data();
  return std::memcmp(pa, pb, a.numel() * itemsize(a.dtype())) == 0;
}

// The first element where a and b differ, with both values, for a mismatch report.
std::string first_difference(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() ? "formula gave no gradient" : "fused gave no gradient";
  if (a.shape() != b.shape()) return "shapes " + shape_str(a.shape()) + " vs " + shape_str(b.shape());
  const xt::xarray<double> x = a.to(kFloat64).data<double>(), y = b.to(kFloat64).data<double>();
  for (std::size_t k = 0; k < x.size(); ++k)
    if (std::memcmp(&x.data()[k], &y.data()[k], sizeof(double)) != 0) {
      std::ostringstream os;
      os.precision(17);
      os << "element " << k << ": fused " << x.data()[k] << " vs formula " << y.data()[k];
      return os.str();
    }
  return "same values, different bits of the dtype";
}

}  // namespace

namespace xgrad::test::optable {

// The fused backward kernels (no graph recorded) against the Tensor-op formulas (create_graph), for
// every input of `inputs` that requires grad, bit for bit. The incoming gradient is random (seeded):
// once passed to autograd::grad as grad_output, and once arriving through sum(out ⊙ g), which hands the
// op an exclusively owned gradient so that in-place fused paths run too. Returns one line per mismatch.
std::vector<std::string> fused_formula_mismatches(const OpFn& fn, const std::vector<Tensor>& inputs,
                                                  std::uint64_t seed) {
  const std::vector<Tensor> wrt = requiring_grad(inputs);
  Tensor out = fn(inputs);
  if (!out.requires_grad()) return {"the result does not require grad"};
  manual_seed(seed);
  const Tensor g = randn_like(out.detach());
  std::vector<std::string> mismatches;
  const auto compare = [&](const char* route, const std::vector<Tensor>& fused, const std::vector<Tensor>& formula) {
    for (std::size_t i = 0; i < wrt.size(); ++i) {
      const Tensor f = formula[i].defined() ? formula[i].detach() : Tensor();
      if (!same_bits(fused[i], f))
        mismatches.push_back(std::string(route) + ", input " + std::to_string(i) + ": " + first_difference(fused[i], f));
    }
  };
  {
    const std::vector<Tensor> fused = autograd::grad({out}, wrt, {g}, true, false);
    const std::vector<Tensor> formula = autograd::grad({out}, wrt, {g}, true, true);
    compare("grad_output g", fused, formula);
  }
  {
    const Tensor loss = sum(mul(fn(inputs), g));
    const std::vector<Tensor> fused = autograd::grad({loss}, wrt, {}, true, false);
    const std::vector<Tensor> formula = autograd::grad({loss}, wrt, {}, true, true);
    compare("through sum(out * g)", fused, formula);
  }
  return mismatches;
}

}  // namespace xgrad::test::optable

// ---- The table itself ------------------------------------------------------------------------------

TEST_CASE("op table: every entry has samples, a reason for each check it skips, and a unique declaration") {
  std::set<std::string> decls;
  std::size_t samples = 0, empty = 0;
  for (const OpInfo& op : op_table()) {
    CAPTURE(op.decl);
    CHECK(decls.insert(op.decl).second);
    CHECK_FALSE(op.samples.empty());
    CHECK_FALSE(op.error_name.empty());
    for (const Sample& s : op.samples) {
      CHECK((s.fn || op.fn));
      CHECK_FALSE(s.inputs.empty());
    }
    for (const auto& skipped : op.skip) CHECK_MESSAGE(!skipped.second.empty(), check_name(skipped.first));
    // Every op says what it does on 0-element inputs, unless it says why not.
    if (op.applies(Check::Empty)) CHECK_FALSE(op.empty_samples.empty());
    samples += op.samples.size();
    empty += op.empty_samples.size();
  }
  MESSAGE("op table: " << op_table().size() << " entries, " << samples << " samples, " << empty << " 0-element samples");
  CHECK(op_table().size() >= 106);  // 87 + the 19 layer ops
}

TEST_CASE("op table: forward in both dtypes, float32 close to float64") {
  std::size_t runs = 0;
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::Forward)) continue;
    for (const Sample& s : op.samples) {
      if (!s.applies(Check::Forward)) continue;
      INFO(op.decl << " | " << s.name);
      const Tensor y64 = op.fn_of(s)(prepare(op, s.inputs, kFloat64, false));
      const Tensor y32 = op.fn_of(s)(prepare(op, s.inputs, kFloat32, false));
      CHECK(y64.dtype() == kFloat64);
      CHECK(y32.dtype() == kFloat32);
      REQUIRE(y32.shape() == y64.shape());
      const xt::xarray<double> a = y32.to(kFloat64).data<double>(), b = y64.data<double>();
      for (std::size_t k = 0; k < a.size(); ++k) {
        const double x = a.data()[k], y = b.data()[k];
        CAPTURE(k);
        CAPTURE(x);
        CAPTURE(y);
        if (std::isnan(y))
          CHECK(std::isnan(x));
        else if (std::isinf(y))
          CHECK(x == y);
        else
          CHECK(std::abs(x - y) <= 1e-4 * (1 + std::abs(y)));  // float32 rounding, a few ulps of it
      }
      ++runs;
    }
  }
  CHECK(runs > 100);
}

TEST_CASE("op table: gradcheck and gradgradcheck in float64 at default tolerances") {
  std::size_t first = 0, second = 0;
  for (const OpInfo& op : op_table()) {
    for (const Sample& s : op.samples) {
      INFO(op.decl << " | " << s.name);
      for (Check c : {Check::Gradcheck, Check::Gradgradcheck}) {
        if (!op.applies(c) || !s.applies(c)) continue;
        INFO(check_name(c));
        const std::vector<Tensor> in = prepare(op, s.inputs, kFloat64, true);
        REQUIRE_FALSE(requiring_grad(in).empty());
        bool ok = false;
        std::string error;
        try {
          ok = c == Check::Gradcheck ? gradcheck(op.fn_of(s), in) : gradgradcheck(op.fn_of(s), in);
        } catch (const std::exception& e) {
          error = e.what();
        }
        CHECK_MESSAGE(ok, error);
        ++(c == Check::Gradcheck ? first : second);
      }
    }
  }
  CHECK(first > 100);
  CHECK(second > 100);
}

TEST_CASE("op table: fused backward kernels give the formulas' gradients bit for bit") {
  std::size_t runs = 0;
  std::uint64_t seed = 1;
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::FusedVsFormula)) continue;
    for (const Sample& s : op.samples) {
      if (!s.applies(Check::FusedVsFormula)) continue;
      // Every differentiable input at once, then (with two or more) each one alone: a backward node
      // takes other paths when only some of its inputs need a gradient (and may then work in place).
      std::vector<std::size_t> diff;
      for (std::size_t i = 0; i < s.inputs.size(); ++i)
        if (op.differentiable_input(i)) diff.push_back(i);
      std::vector<std::optional<std::size_t>> only{std::nullopt};
      if (diff.size() >= 2) only.insert(only.end(), diff.begin(), diff.end());
      for (const std::optional<std::size_t>& alone : only)
        for (Dtype dt : kDtypes) {
          INFO(op.decl << " | " << s.name << " | " << std::string(dtype_name(dt)) << " | "
                       << (alone ? "only input " + std::to_string(*alone) + " requires grad" : "all inputs require grad"));
          std::vector<Tensor> in = prepare(op, s.inputs, dt, true);
          if (alone)
            for (std::size_t i = 0; i < in.size(); ++i)
              if (i != *alone) in[i].requires_grad_(false);
          for (const std::string& m : fused_formula_mismatches(op.fn_of(s), in, ++seed)) FAIL_CHECK(m);
          ++runs;
        }
    }
  }
  CHECK(runs > 200);
}

namespace {
// A test-only op, 2x, whose fused backward path (no graph recorded) can be made to differ from its
// formula by one ulp in one element: the comparator must report exactly that.
bool g_skew_fused_path = false;
struct Doubler : autograd::Function<Doubler> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    Tensor r = g[0] * 2.0;
    if (g_skew_fused_path && !is_grad_enabled()) {  // the fused path: no create_graph
      r = r.detach().clone();
      if (r.dtype() == kFloat32) {
        float& v = r.data<float>().data()[1];
        v = std::nextafter(v, INFINITY);
      } else {
        double& v = r.data<double>().data()[1];
        v = std::nextafter(v, INFINITY);
      }
    }
    return {r};
  }
};
}  // namespace

TEST_CASE("op table: the fused-vs-formula comparator reports a one-ulp difference") {
  const OpFn doubler = [](const std::vector<Tensor>& v) { return Doubler::apply(v[0]); };
  for (Dtype dt : kDtypes) {
    INFO(std::string(dtype_name(dt)));
    Tensor x = randn({2, 3}, dt).requires_grad_();
    g_skew_fused_path = false;
    CHECK(fused_formula_mismatches(doubler, {x}, 5).empty());  // honest: both paths agree
    g_skew_fused_path = true;
    const std::vector<std::string> m = fused_formula_mismatches(doubler, {x}, 5);
    g_skew_fused_path = false;
    REQUIRE(m.size() == 2);  // both routes, input 0, element 1
    for (const std::string& line : m) {
      CHECK(line.find("input 0") != std::string::npos);
      CHECK(line.find("element 1") != std::string::npos);
    }
  }
}

TEST_CASE("op table: 0-element inputs, forward shape as PyTorch, 0-element gradients or an Error") {
  std::size_t runs = 0;
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::Empty)) continue;
    for (const EmptySample& s : op.empty_samples) {
      for (Dtype dt : kDtypes) {
        INFO(op.decl << " | " << s.name << " | " << std::string(dtype_name(dt)));
        const std::vector<Tensor> in = prepare(op, s.inputs, dt, true);
        const OpFn& fn = op.fn_of(s);
        ++runs;
        if (!s.error.empty()) {  // PyTorch refuses: an xgrad::Error naming the op
          CHECK_THROWS_WITH_AS(fn(in), doctest::Contains(s.error.c_str()), Error);
          CHECK_THROWS_WITH_AS(fn(in), doctest::Contains(op.error_name.c_str()), Error);
          continue;
        }
        Tensor out;
        REQUIRE_NOTHROW(out = fn(in));
        CHECK(out.shape() == s.expected);
        CHECK(out.dtype() == dt);
        CHECK(out.requires_grad() == op.differentiable);
        if (!op.differentiable) continue;
        const std::vector<Tensor> wrt = requiring_grad(in);
        for (bool create_graph : {false, true}) {
          INFO("create_graph " << create_graph);
          std::vector<Tensor> grads;
          REQUIRE_NOTHROW(grads = autograd::grad({out}, wrt, {ones_like(out.detach())}, true, create_graph));
          REQUIRE(grads.size() == wrt.size());
          for (std::size_t i = 0; i < wrt.size(); ++i) {
            REQUIRE(grads[i].defined());
            CHECK(grads[i].shape() == wrt[i].shape());
            CHECK(grads[i].dtype() == dt);
            // Non-empty inputs next to an empty one (a weight, a bias) get finite gradients.
            const xt::xarray<double> v = grads[i].detach().to(kFloat64).data<double>();
            for (double x : v) CHECK(std::isfinite(x));
          }
        }
      }
    }
  }
  CHECK(runs > 100);
}

TEST_CASE("op table: mixing float32 and float64 inputs throws an Error naming the op") {
  std::size_t runs = 0;
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::DtypeMismatch)) continue;
    for (const Sample& s : op.samples) {
      if (s.inputs.size() < 2 || !s.applies(Check::DtypeMismatch)) continue;
      for (std::size_t odd = 0; odd < s.inputs.size(); ++odd)
        for (Dtype dt : kDtypes) {
          INFO(op.decl << " | " << s.name << " | input " << odd << " not " << std::string(dtype_name(dt)));
          std::vector<Tensor> in = prepare(op, s.inputs, dt, true);
          in[odd] = in[odd].detach().to(dt == kFloat32 ? kFloat64 : kFloat32);
          CHECK_THROWS_WITH_AS(op.fn_of(s)(in), doctest::Contains(op.error_name.c_str()), Error);
          ++runs;
        }
    }
  }
  CHECK(runs > 100);
}

TEST_CASE("op table: nothing is recorded under NoGradGuard or when no input requires grad") {
  std::size_t runs = 0;
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::NoGrad)) continue;
    for (const Sample& s : op.samples) {
      if (!s.applies(Check::NoGrad)) continue;
      for (Dtype dt : kDtypes) {
        INFO(op.decl << " | " << s.name << " | " << std::string(dtype_name(dt)));
        const std::vector<Tensor> in = prepare(op, s.inputs, dt, true);
        {
          NoGradGuard guard;
          const Tensor out = op.fn_of(s)(in);
          CHECK_FALSE(out.requires_grad());
          CHECK(out.grad_fn() == nullptr);
        }
        const Tensor plain = op.fn_of(s)(prepare(op, s.inputs, dt, false));
        CHECK_FALSE(plain.requires_grad());
        CHECK(plain.grad_fn() == nullptr);
        // The same call with grad mode on does record (so the two checks above can fail).
        const Tensor recorded = op.fn_of(s)(in);
        CHECK(recorded.requires_grad() == op.differentiable);
        ++runs;
      }
    }
  }
  CHECK(runs > 200);
}

// ---- The coverage guard ---------------------------------------------------------------------------

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// "const std::vector<int>& dims = {}" -> "std::vector<int>"
std::string param_type(std::string p) {
  if (const auto eq = p.find('='); eq != std::string::npos) p = p.substr(0, eq);
  p = trim(p);
  if (p.starts_with("const ")) p = trim(p.substr(6));
  // Drop the parameter's name: the last identifier, when something precedes it.
  const auto last = p.find_last_of(" &*>");
  if (last != std::string::npos && last + 1 < p.size()) p = trim(p.substr(0, last + 1));
  std::string out;
  for (char c : p)
    if (c != '&' && c != '*') out += c;
  return trim(out);
}

// Every function declaration `Ret name(params);` in a header's text, normalised as
// "prefix name(T1, T2)": parameter names, defaults, const and & dropped.
std::vector<std::string> declarations(const std::string& header, const std::string& prefix) {
  std::istringstream in(header);
  std::string text, line;
  while (std::getline(in, line)) {
    if (const auto c = line.find("//"); c != std::string::npos) line.resize(c);
    text += line + "\n";
  }
  static const std::regex decl(
      R"(((?:const\s+)?[\w:]+(?:<[^;(){}]*>)?[&*]?)\s+(operator\s*[^\s(]+|[A-Za-z_]\w*)\s*\(([^()]*)\)\s*;)");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator(); ++it) {
    const std::string params = (*it)[3].str();
    std::vector<std::string> types;
    std::string cur;
    int depth = 0;  // inside <...> or {...} (a default like {1, 1}), a comma does not end the parameter
    for (char c : params) {
      depth += (c == '<' || c == '{') - (c == '>' || c == '}');
      if (c == ',' && depth == 0) {
        types.push_back(param_type(cur));
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!trim(cur).empty()) types.push_back(param_type(cur));
    std::string name = (*it)[2].str(), joined;
    name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
    for (std::size_t i = 0; i < types.size(); ++i) {
      if (i) joined += ", ";
      joined += types[i];
    }
    out.push_back(prefix + name + "(" + joined + ")");
  }
  return out;
}

std::vector<std::string> declarations_in(const std::filesystem::path& file, const std::string& prefix) {
  std::ifstream in(file);
  REQUIRE_MESSAGE(in.good(), "cannot read " << file.string());
  std::stringstream text;
  text << in.rdbuf();
  return declarations(text.str(), prefix);
}

// Declarations covered by neither a table entry, an operator form nor the list of non-ops.
std::vector<std::string> without_entry(const std::vector<std::string>& declared, const std::set<std::string>& covered) {
  std::vector<std::string> out;
  for (const std::string& d : declared)
    if (!covered.contains(d)) out.push_back(d);
  return out;
}

// The operators: each is its named op (the table covers the named op), checked below bit for bit.
struct OperatorForm {
  const char* decl;
  OpFn as_operator, as_named;
};
const std::vector<OperatorForm>& operator_forms() {
  using V = std::vector<Tensor>;
  static const std::vector<OperatorForm> forms{
      {"operator+(Tensor, Tensor)", [](const V& v) { return v[0] + v[1]; }, [](const V& v) { return add(v[0], v[1]); }},
      {"operator-(Tensor, Tensor)", [](const V& v) { return v[0] - v[1]; }, [](const V& v) { return sub(v[0], v[1]); }},
      {"operator*(Tensor, Tensor)", [](const V& v) { return v[0] * v[1]; }, [](const V& v) { return mul(v[0], v[1]); }},
      {"operator/(Tensor, Tensor)", [](const V& v) { return v[0] / v[1]; }, [](const V& v) { return div(v[0], v[1]); }},
      {"operator+(Tensor, double)", [](const V& v) { return v[0] + 0.7; }, [](const V& v) { return add(v[0], 0.7); }},
      {"operator-(Tensor, double)", [](const V& v) { return v[0] - 0.7; }, [](const V& v) { return sub(v[0], 0.7); }},
      {"operator*(Tensor, double)", [](const V& v) { return v[0] * 0.7; }, [](const V& v) { return mul(v[0], 0.7); }},
      {"operator/(Tensor, double)", [](const V& v) { return v[0] / 0.7; }, [](const V& v) { return div(v[0], 0.7); }},
      {"operator+(double, Tensor)", [](const V& v) { return 0.7 + v[0]; }, [](const V& v) { return add(v[0], 0.7); }},
      {"operator-(double, Tensor)", [](const V& v) { return 0.7 - v[0]; }, [](const V& v) { return rsub(v[0], 0.7); }},
      {"operator*(double, Tensor)", [](const V& v) { return 0.7 * v[0]; }, [](const V& v) { return mul(v[0], 0.7); }},
      {"operator/(double, Tensor)", [](const V& v) { return 0.7 / v[0]; }, [](const V& v) { return rdiv(v[0], 0.7); }},
      {"operator-(Tensor)", [](const V& v) { return -v[0]; }, [](const V& v) { return neg(v[0]); }},
  };
  return forms;
}

// Declarations in the op headers that are not ops, each with the reason. (Today none: the Reduction
// enum and the `using` re-exports of nn/functional.hpp are not function declarations; the operators
// are listed in operator_forms.)
const std::map<std::string, std::string> kNotOps{};

}  // namespace

TEST_CASE("op table: every op declared in the public op headers has an entry") {
  const std::filesystem::path root = XGRAD_SOURCE_DIR;
  std::vector<std::string> declared = declarations_in(root / "autograd" / "ops.hpp", "");
  if (std::filesystem::is_directory(root / "autograd" / "ops"))  // the per-family op headers
    for (const auto& f : std::filesystem::directory_iterator(root / "autograd" / "ops"))
      if (f.path().extension() == ".hpp")
        for (std::string& d : declarations_in(f.path(), "")) declared.push_back(std::move(d));
  // The layer ops (conv, pooling, normalisation, ...), which nn::functional re-exports with `using`.
  for (std::string& d : declarations_in(root / "autograd" / "layer_ops.hpp", "")) declared.push_back(std::move(d));
  for (std::string& d : declarations_in(root / "nn" / "functional.hpp", "nn::functional::")) declared.push_back(std::move(d));
  std::sort(declared.begin(), declared.end());
  declared.erase(std::unique(declared.begin(), declared.end()), declared.end());
  REQUIRE(declared.size() >= 109);  // 87 + 19 layer ops and 13 operators today: the parser found them

  std::set<std::string> covered, in_table;
  for (const OpInfo& op : op_table()) in_table.insert(op.decl);
  covered = in_table;
  for (const OperatorForm& f : operator_forms()) covered.insert(f.decl);
  for (const auto& [d, why] : kNotOps) covered.insert(d);
  for (const std::string& d : without_entry(declared, covered))
    FAIL_CHECK("declared in a public op header but has no op table entry (add one in tests/op_table_<family>.cpp): " << d);
  // And nothing in the table, the operators or the non-ops names a declaration that no longer exists.
  const std::set<std::string> declared_set(declared.begin(), declared.end());
  for (const std::string& d : covered) CHECK_MESSAGE(declared_set.contains(d), "covers an undeclared function: " << d);
  MESSAGE("op headers declare " << declared.size() << " functions; the table covers " << in_table.size()
                                << ", the operators " << operator_forms().size());
}

TEST_CASE("op table: the coverage guard parses declarations and reports one without an entry") {
  const std::string header = R"(
    // Tensor commented_out(const Tensor& t);
    Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                  const std::vector<int>& stride = {1, 1}, int groups = 1);  // spans two lines
    Tensor operator%(const Tensor& a, double b);
    std::vector<Tensor> split(const Tensor& t, std::int64_t size, int dim = 0);
    enum class Reduction { None, Mean, Sum };
    using xgrad::relu;
  )";
  const std::vector<std::string> found = declarations(header, "nn::functional::");
  REQUIRE(found.size() == 3);
  CHECK(found[0] == "nn::functional::conv2d(Tensor, Tensor, Tensor, std::vector<int>, int)");
  CHECK(found[1] == "nn::functional::operator%(Tensor, double)");
  CHECK(found[2] == "nn::functional::split(Tensor, std::int64_t, int)");
  const std::vector<std::string> missing = without_entry(found, {"nn::functional::operator%(Tensor, double)"});
  REQUIRE(missing.size() == 2);
  CHECK(missing[0] == found[0]);
  CHECK(missing[1] == found[2]);
}

TEST_CASE("op table: each operator is its named op, value and gradient") {
  for (const OperatorForm& f : operator_forms()) {
    for (Dtype dt : kDtypes) {
      INFO(f.decl << " | " << std::string(dtype_name(dt)));
      manual_seed(9);
      Tensor a = (randn({2, 3}, dt) + 3.0).detach().requires_grad_();  // away from 0: a divisor
      Tensor b = (randn({3}, dt) - 3.0).detach().requires_grad_();
      const std::vector<Tensor> in{a, b};
      const Tensor x = f.as_operator(in), y = f.as_named(in);
      CHECK(same_bits(x.detach(), y.detach()));
      CHECK(x.grad_fn_name() == y.grad_fn_name());
      const std::vector<Tensor> wrt = f.decl == std::string("operator-(Tensor)") || std::string(f.decl).find("double") != std::string::npos
                                          ? std::vector<Tensor>{a}
                                          : in;
      const Tensor g = randn_like(x.detach());
      const std::vector<Tensor> gx = autograd::grad({x}, wrt, {g}), gy = autograd::grad({y}, wrt, {g});
      for (std::size_t i = 0; i < wrt.size(); ++i) CHECK(same_bits(gx[i], gy[i]));
    }
  }
}

// ---- Forward mode: the JVP columns ---------------------------------------------------------------
// Every sample of every differentiable entry, in float64. Finite differences need a smooth point, so
// the columns that use them run where the matching reverse-mode column does (Gradcheck for first
// derivatives, Gradgradcheck for second ones); the exact identities (forward == reverse on random
// vectors, batched == looped) run on every sample, kinks and ties included.

namespace {

namespace fwd = autograd::forward_ad;

double dot(const Tensor& a, const Tensor& b) {
  const xt::xarray<double> x = a.detach().to(kFloat64).data<double>(), y = b.detach().to(kFloat64).data<double>();
  REQUIRE(x.size() == y.size());
  double s = 0;
  for (std::size_t k = 0; k < x.size(); ++k) s += x.data()[k] * y.data()[k];
  return s;
}
double abs_dot(const Tensor& a, const Tensor& b) {
  const xt::xarray<double> x = a.detach().to(kFloat64).data<double>(), y = b.detach().to(kFloat64).data<double>();
  double s = 0;
  for (std::size_t k = 0; k < x.size(); ++k) s += std::abs(x.data()[k] * y.data()[k]);
  return s;
}

// One random direction per differentiable input (undefined for the others), with `batch` in front
// when nonzero.
std::vector<Tensor> directions(const OpInfo& op, const std::vector<Tensor>& in, std::int64_t batch) {
  std::vector<Tensor> v(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (!op.differentiable_input(i)) continue;
    Shape s = in[i].shape();
    if (batch) s.insert(s.begin(), static_cast<std::size_t>(batch));
    v[i] = randn(s, kFloat64);
  }
  return v;
}

// The inputs with their directions as tangents (an open level is required).
std::vector<Tensor> duals_of(const std::vector<Tensor>& in, const std::vector<Tensor>& v) {
  std::vector<Tensor> d = in;
  for (std::size_t i = 0; i < in.size(); ++i)
    if (v[i].defined()) d[i] = fwd::make_dual(in[i], v[i]);
  return d;
}

// The output's tangent, zeros when it has none (an output that does not depend on the inputs).
Tensor tangent_or_zeros(const Tensor& out, std::int64_t batch) {
  Tensor t = fwd::unpack_dual(out).tangent;
  if (t.defined()) return t;
  Shape s = out.shape();
  if (batch) s.insert(s.begin(), static_cast<std::size_t>(batch));
  return zeros(s, out.dtype());
}

bool applies(const OpInfo& op, const Sample& s, Check c) { return op.differentiable && op.applies(c) && s.applies(c); }

}  // namespace

namespace xgrad::test::optable {

// <u, J·v> by one forward pass against <Jᵀ·u, v> by one backward pass, for random u and v (float64
// inputs, those that require grad get a direction). Returns a description of the mismatch, or "".
std::string adjoint_mismatch(const OpInfo& op, const OpFn& fn, const std::vector<Tensor>& in) {
  const std::vector<Tensor> v = directions(op, in, 0);
  Tensor jv, out;
  {
    fwd::DualLevel level;
    out = fn(duals_of(in, v));
    jv = tangent_or_zeros(out, 0);
  }
  if (jv.shape() != out.shape() || jv.dtype() != out.dtype()) return "the tangent's shape or dtype is not the output's";
  const Tensor u = randn(out.shape(), kFloat64);
  const double forward = dot(u, jv);
  double reverse = 0, scale = abs_dot(u, jv);
  const Tensor y = fn(in);
  if (y.requires_grad()) {
    const std::vector<Tensor> wrt = requiring_grad(in);
    const std::vector<Tensor> g = autograd::grad({y}, wrt, {u}, false, false, true);
    for (std::size_t i = 0, w = 0; i < in.size(); ++i) {
      if (!in[i].requires_grad()) continue;
      if (g[w].defined() && v[i].defined()) {
        reverse += dot(g[w], v[i]);
        scale += abs_dot(g[w], v[i]);
      }
      ++w;
    }
  }
  const bool ok = !std::isfinite(forward) || !std::isfinite(reverse)
                      ? forward == reverse || (std::isnan(forward) && std::isnan(reverse))  // both agree on a NaN or inf
                      : std::abs(forward - reverse) <= 1e-12 * (1 + scale);
  if (ok) return "";
  std::ostringstream os;
  os.precision(17);
  os << "<u, J·v> by forward mode " << forward << " vs <Jᵀ·u, v> by reverse mode " << reverse;
  return os.str();
}

// The tangent of fn at `in` along batch random directions under a batched level against the single
// jvps, one per direction. Returns one line per mismatching element.
std::vector<std::string> batched_mismatches(const OpInfo& op, const OpFn& fn, const std::vector<Tensor>& in,
                                            std::int64_t batch) {
  const std::vector<Tensor> v = directions(op, in, batch);
  Tensor batched, out;
  {
    detail::BatchedDualLevel level(batch);
    out = fn(duals_of(in, v));
    batched = tangent_or_zeros(out, batch);
  }
  Shape expected = out.shape();
  expected.insert(expected.begin(), static_cast<std::size_t>(batch));
  if (batched.shape() != expected)
    return {"batched tangent of shape " + shape_str(batched.shape()) + ", expected " + shape_str(expected)};
  std::vector<std::string> mismatches;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> vb(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i].defined()) vb[i] = squeeze(slice(v[i], 0, b, b + 1), 0);
    Tensor single;
    {
      fwd::DualLevel level;
      single = tangent_or_zeros(fn(duals_of(in, vb)), 0);
    }
    const xt::xarray<double> x = squeeze(slice(batched, 0, b, b + 1), 0).data<double>(), y = single.data<double>();
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double bx = x.data()[k], sy = y.data()[k];
      const bool ok = std::isnan(sy)   ? std::isnan(bx)
                      : std::isinf(sy) ? bx == sy  // an infinite slope (sqrt, log at 0): the same infinity
                                       : std::abs(bx - sy) <= 1e-12 * (1 + std::abs(sy));
      if (!ok) {
        std::ostringstream os;
        os.precision(17);
        os << "entry " << b << ", element " << k << ": batched " << bx << " vs single " << sy;
        mismatches.push_back(os.str());
      }
    }
  }
  return mismatches;
}

// Reverse mode through the tangent: gradcheck of (inputs..., directions...) -> jvp(inputs; directions).
bool reverse_over_forward_ok(const OpInfo& op, const OpFn& fn, const std::vector<Tensor>& in, std::string* error) {
  const std::size_t n = in.size();
  std::vector<Tensor> all = in;
  std::vector<std::size_t> diff;
  for (std::size_t i = 0; i < n; ++i)
    if (op.differentiable_input(i)) {
      diff.push_back(i);
      all.push_back(randn(in[i].shape(), kFloat64).requires_grad_());
    }
  const auto tangent_fn = [&](const std::vector<Tensor>& a) -> Tensor {
    std::vector<Tensor> xs(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<Tensor> v(n);
    for (std::size_t k = 0; k < diff.size(); ++k) v[diff[k]] = a[n + k];
    fwd::DualLevel level;
    return tangent_or_zeros(fn(duals_of(xs, v)), 0);
  };
  try {
    return gradcheck(tangent_fn, all);
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return false;
}

}  // namespace xgrad::test::optable

TEST_CASE("op table: forward AD, jvp columns vs finite differences and forward vs reverse") {
  std::size_t columns = 0, adjoint = 0;
  manual_seed(2024);
  for (const OpInfo& op : op_table()) {
    for (const Sample& s : op.samples) {
      if (!applies(op, s, Check::ForwardAD)) continue;
      INFO(op.decl << " | " << s.name);
      const OpFn& fn = op.fn_of(s);
      if (op.applies(Check::Gradcheck) && s.applies(Check::Gradcheck)) {
        const std::vector<Tensor> in = prepare(op, s.inputs, kFloat64, true);
        bool ok = false;
        std::string error;
        try {
          ok = gradcheck(fn, in, GradcheckOptions{.check_forward_ad = true});
        } catch (const std::exception& e) {
          error = e.what();
        }
        CHECK_MESSAGE(ok, error);
        ++columns;
      }
      const std::string m = adjoint_mismatch(op, fn, prepare(op, s.inputs, kFloat64, true));
      CHECK_MESSAGE(m.empty(), m);
      ++adjoint;
    }
  }
  MESSAGE("forward AD: " << columns << " gradchecks with forward columns, " << adjoint << " forward-vs-reverse identities");
  CHECK(columns > 300);
  CHECK(adjoint > 300);
}

TEST_CASE("op table: forward over reverse, gradgradcheck with forward-mode columns") {
  std::size_t runs = 0;
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::Gradgradcheck)) continue;
    for (const Sample& s : op.samples) {
      if (!applies(op, s, Check::FwdOverRev) || !s.applies(Check::Gradgradcheck)) continue;
      INFO(op.decl << " | " << s.name);
      const std::vector<Tensor> in = prepare(op, s.inputs, kFloat64, true);
      bool ok = false;
      std::string error;
      try {
        ok = gradgradcheck(op.fn_of(s), in, GradcheckOptions{.check_forward_ad = true});
      } catch (const std::exception& e) {
        error = e.what();
      }
      CHECK_MESSAGE(ok, error);
      ++runs;
    }
  }
  MESSAGE("forward over reverse: " << runs << " samples");
  CHECK(runs > 300);
}

TEST_CASE("op table: reverse over forward, gradcheck of the tangent as a function of primal and direction") {
  std::size_t runs = 0;
  manual_seed(2025);
  for (const OpInfo& op : op_table()) {
    if (!op.applies(Check::Gradgradcheck)) continue;
    for (const Sample& s : op.samples) {
      if (!applies(op, s, Check::RevOverFwd) || !s.applies(Check::Gradgradcheck)) continue;
      INFO(op.decl << " | " << s.name);
      std::string error;
      CHECK_MESSAGE(reverse_over_forward_ok(op, op.fn_of(s), prepare(op, s.inputs, kFloat64, true), &error), error);
      ++runs;
    }
  }
  MESSAGE("reverse over forward: " << runs << " samples");
  CHECK(runs > 300);
}

TEST_CASE("op table: batched tangents give the single jvps stacked") {
  std::size_t runs = 0;
  manual_seed(2026);
  for (const OpInfo& op : op_table()) {
    for (const Sample& s : op.samples) {
      if (!applies(op, s, Check::BatchedJvp)) continue;
      INFO(op.decl << " | " << s.name);
      for (const std::string& m : batched_mismatches(op, op.fn_of(s), prepare(op, s.inputs, kFloat64, true), 3))
        FAIL_CHECK(m);
      ++runs;
    }
  }
  MESSAGE("batched jvp: " << runs << " samples");
  CHECK(runs > 300);
}

namespace {
// A test-only op, sin, whose JVP rule can be made wrong in three ways: a wrong value, a tangent with no
// history back to the primal (reverse over forward then misses a term), or a wrong batched path.
enum class Skew { None, Value, Detached, Batched };
Skew g_skew = Skew::None;
Tensor skewed_sin(const std::vector<Tensor>& v) {
  const Tensor& x = v[0];
  Tensor out = sin(x);
  // Replaces sin's own tangent by the rule under test.
  detail::record_jvp("skewed_sin", out, {&x}, [&](detail::Tangents t) {
    switch (g_skew) {
      case Skew::Value: return mul(t[0], mul(cos(x), 1.0 + 1e-6));
      case Skew::Detached: return mul(t[0], cos(x.detach()));
      case Skew::Batched: return detail::tangent_batch() ? mul(t[0], mul(cos(x), 2.0)) : mul(t[0], cos(x));
      case Skew::None: break;
    }
    return mul(t[0], cos(x));
  }, detail::JvpBatching::Aware);
  return out;
}
}  // namespace

TEST_CASE("op table: the JVP columns catch a wrong value, a tangent without history, and a wrong batched rule") {
  const OpInfo op{"skewed_sin(Tensor)", "skewed_sin", skewed_sin, {}, {}};
  manual_seed(12);
  const Tensor values = randn({2, 3}, kFloat64);
  const auto in = [&] { return std::vector<Tensor>{values.detach().clone().requires_grad_()}; };
  std::string error;
  g_skew = Skew::None;  // honest: every column passes
  CHECK(adjoint_mismatch(op, skewed_sin, in()).empty());
  CHECK(gradcheck(skewed_sin, in(), GradcheckOptions{.check_forward_ad = true}));
  CHECK(reverse_over_forward_ok(op, skewed_sin, in(), &error));
  CHECK(batched_mismatches(op, skewed_sin, in(), 3).empty());
  // Tolerances tight enough for a 1e-6 relative error, which the honest rule meets.
  const GradcheckOptions tight{.atol = 1e-9, .rtol = 1e-8, .raise = false, .check_forward_ad = true};
  CHECK(gradcheck(skewed_sin, in(), tight));

  g_skew = Skew::Value;  // a relative error of 1e-6: the adjoint identity sees it, finite differences too
  CHECK_FALSE(adjoint_mismatch(op, skewed_sin, in()).empty());
  CHECK_FALSE(gradcheck(skewed_sin, in(), tight));

  g_skew = Skew::Detached;  // right value, but reverse mode through the tangent misses d cos(x)/dx
  CHECK(adjoint_mismatch(op, skewed_sin, in()).empty());
  CHECK_FALSE(reverse_over_forward_ok(op, skewed_sin, in(), &error));
  CHECK(error.find("Jacobian mismatch") != std::string::npos);

  g_skew = Skew::Batched;  // right unbatched, wrong under a batched level
  CHECK(adjoint_mismatch(op, skewed_sin, in()).empty());
  CHECK(batched_mismatches(op, skewed_sin, in(), 3).size() == 3 * 6);
  g_skew = Skew::None;
}
