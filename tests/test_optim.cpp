// Update rules of SGD, Adam, AdamW and RMSprop against steps computed by hand (PyTorch's
// algorithms as documented in torch.optim), in float64 and float32.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

Tensor param(std::initializer_list<double> values, Dtype dtype) { return tensor(values, dtype, true); }

void set(Tensor& p, std::initializer_list<double> grad) { p.set_grad(tensor(grad, p.dtype())); }

double at(const Tensor& t, std::size_t i) {
  return t.dtype() == kFloat64 ? t.data<double>().data()[i] : static_cast<double>(t.data<float>().data()[i]);
}

// Tolerance: float64 runs agree with the paper values to rounding; float32 runs to ~1 ulp per operation.
double tol(Dtype d) { return d == kFloat64 ? 1e-12 : 2e-6; }

}  // namespace

// ---- Options ---------------------------------------------------------------------------------------

TEST_CASE("optim: options are aggregates with PyTorch's defaults") {
  const optim::SGDOptions sgd{};
  CHECK(sgd.lr == 0.01);
  CHECK(sgd.momentum == 0);
  CHECK(sgd.dampening == 0);
  CHECK(sgd.weight_decay == 0);
  CHECK_FALSE(sgd.nesterov);
  const optim::AdamOptions adam{};
  CHECK(adam.lr == 1e-3);
  CHECK(adam.betas[0] == 0.9);
  CHECK(adam.betas[1] == 0.999);
  CHECK(adam.eps == 1e-8);
  CHECK(adam.weight_decay == 0);
  CHECK_FALSE(adam.amsgrad);
  const optim::AdamWOptions adamw{};
  CHECK(adamw.lr == 1e-3);
  CHECK(adamw.weight_decay == 1e-2);
  CHECK(adamw.eps == 1e-8);
  const optim::RMSpropOptions rms{};
  CHECK(rms.lr == 1e-2);
  CHECK(rms.alpha == 0.99);
  CHECK(rms.eps == 1e-8);
  CHECK(rms.weight_decay == 0);
  CHECK(rms.momentum == 0);

  // Designated initializers, in declaration order.
  Tensor p = param({1.0}, kFloat32);
  optim::SGD s(std::vector<Tensor>{p}, {.lr = 0.1, .momentum = 0.9});
  CHECK(s.lr() == 0.1);
  CHECK(s.options().momentum == 0.9);
  optim::Adam a(std::vector<Tensor>{p}, {.lr = 1e-2, .betas = {0.8, 0.99}, .amsgrad = true});
  CHECK(a.options().betas[0] == 0.8);
  CHECK(a.options().amsgrad);
  optim::AdamW w(std::vector<Tensor>{p}, {.weight_decay = 0.5});
  CHECK(w.options().weight_decay == 0.5);
  CHECK(w.name() == "AdamW");
  optim::RMSprop r(std::vector<Tensor>{p}, {.lr = 1e-3, .momentum = 0.5});
  CHECK(r.options().momentum == 0.5);
}

// ---- SGD ----------------------------------------------------------------------------------------------

TEST_CASE("optim: SGD plain and with weight decay") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // p = [1, -2], g = [0.5, 1], lr = 0.1:  p - lr*g = [0.95, -2.1]
    Tensor p = param({1.0, -2.0}, d);
    optim::SGD sgd({p}, {.lr = 0.1});
    set(p, {0.5, 1.0});
    sgd.step();
    CHECK(at(p, 0) == doctest::Approx(0.95).epsilon(tol(d)));
    CHECK(at(p, 1) == doctest::Approx(-2.1).epsilon(tol(d)));

    // weight_decay = 0.1: g' = g + 0.1*p = [0.5 + 0.1, 1 - 0.2] = [0.6, 0.8]; p - 0.1*g' = [0.94, -2.08]
    Tensor q = param({1.0, -2.0}, d);
    optim::SGD sgd_wd({q}, {.lr = 0.1, .weight_decay = 0.1});
    set(q, {0.5, 1.0});
    sgd_wd.step();
    CHECK(at(q, 0) == doctest::Approx(0.94).epsilon(tol(d)));
    CHECK(at(q, 1) == doctest::Approx(-2.08).epsilon(tol(d)));
  }
}

TEST_CASE("optim: SGD momentum with dampening, three steps") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // lr = 0.1, momentum = 0.9, dampening = 0.5, constant g = [1, -2], p0 = [1, 0].
    // step 1: buf = g (no dampening on the first step) = [1, -2];      p = [1 - 0.1, 0 + 0.2] = [0.9, 0.2]
    // step 2: buf = 0.9*buf + 0.5*g = [1.4, -2.8];                     p = [0.9 - 0.14, 0.2 + 0.28] = [0.76, 0.48]
    // step 3: buf = 0.9*[1.4, -2.8] + 0.5*g = [1.76, -3.52];           p = [0.76 - 0.176, 0.48 + 0.352] = [0.584, 0.832]
    Tensor p = param({1.0, 0.0}, d);
    optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
    const double expected[3][2] = {{0.9, 0.2}, {0.76, 0.48}, {0.584, 0.832}};
    for (const auto& e : expected) {
      set(p, {1.0, -2.0});
      sgd.step();
      CHECK(at(p, 0) == doctest::Approx(e[0]).epsilon(tol(d)));
      CHECK(at(p, 1) == doctest::Approx(e[1]).epsilon(tol(d)));
    }
    const auto sd = sgd.state_dict();
    // The buffer after step 3 is [1.76, -3.52].
    const Tensor& buf = sd[0].second;
    CHECK(sd[0].first == "state.0.momentum_buffer");
    CHECK(at(buf, 0) == doctest::Approx(1.76).epsilon(tol(d)));
    CHECK(at(buf, 1) == doctest::Approx(-3.52).epsilon(tol(d)));
  }
}

TEST_CASE("optim: SGD Nesterov momentum, with and without weight decay") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // lr = 0.1, momentum = 0.9, nesterov, constant g = 1, p0 = 1.
    // step 1: buf = 1;                 g' = g + 0.9*buf = 1.9;   p = 1 - 0.19 = 0.81
    // step 2: buf = 0.9 + 1 = 1.9;     g' = 1 + 0.9*1.9 = 2.71;  p = 0.81 - 0.271 = 0.539
    Tensor p = param({1.0}, d);
    optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    set(p, {1.0});
    sgd.step();
    CHECK(at(p, 0) == doctest::Approx(0.81).epsilon(tol(d)));
    set(p, {1.0});
    sgd.step();
    CHECK(at(p, 0) == doctest::Approx(0.539).epsilon(tol(d)));

    // Adding weight_decay = 0.1 (the decayed gradient feeds the buffer and the Nesterov term):
    // step 1: g = 1 + 0.1*1 = 1.1;  buf = 1.1;  g' = 1.1 + 0.99 = 2.09;  p = 1 - 0.209 = 0.791
    // step 2: g = 1 + 0.0791 = 1.0791;  buf = 0.99 + 1.0791 = 2.0691;
    //         g' = 1.0791 + 0.9*2.0691 = 2.94129;  p = 0.791 - 0.294129 = 0.496871
    Tensor q = param({1.0}, d);
    optim::SGD sgd_wd({q}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
    set(q, {1.0});
    sgd_wd.step();
    CHECK(at(q, 0) == doctest::Approx(0.791).epsilon(tol(d)));
    set(q, {1.0});
    sgd_wd.step();
    CHECK(at(q, 0) == doctest::Approx(0.496871).epsilon(tol(d)));
  }
}

TEST_CASE("optim: SGD on a large parameter matches the per-element rule everywhere") {
  // 1000 elements (SIMD body and scalar tail): p_i = i/100, g_i = 1 - i/500, lr = 0.5, momentum 0.5,
  // two steps of the same gradient: buf1 = g, p1 = p - 0.5g; buf2 = 0.5g + g = 1.5g, p2 = p1 - 0.75g
  // = p - 1.25 g.
  const std::size_t n = 1000;
  xt::xarray<double> p0 = xt::zeros<double>({n});
  xt::xarray<double> g0 = xt::zeros<double>({n});
  for (std::size_t i = 0; i < n; ++i) {
    p0(i) = static_cast<double>(i) / 100;
    g0(i) = 1 - static_cast<double>(i) / 500;
  }
  Tensor p = tensor(p0, true);
  optim::SGD sgd({p}, {.lr = 0.5, .momentum = 0.5});
  for (int s = 0; s < 2; ++s) {
    p.set_grad(tensor(g0));
    sgd.step();
  }
  for (std::size_t i = 0; i < n; ++i) CHECK(at(p, i) == doctest::Approx(p0(i) - 1.25 * g0(i)).epsilon(1e-12));
}

TEST_CASE("optim: step skips parameters without a gradient, zero_grad drops gradients") {
  Tensor a = param({1.0, 2.0}, kFloat64);
  Tensor b = param({3.0}, kFloat64);
  optim::SGD sgd({a, b}, {.lr = 1.0, .momentum = 0.9});
  set(a, {0.5, 0.5});
  sgd.step();
  // a - 1*[0.5, 0.5] = [0.5, 1.5]; b has no gradient: unchanged, and no state created for it.
  CHECK(at(a, 0) == 0.5);
  CHECK(at(a, 1) == 1.5);
  CHECK(at(b, 0) == 3.0);
  const auto sd = sgd.state_dict();
  for (const auto& [name, t] : sd) CHECK(name.rfind("state.1.", 0) != 0);

  sgd.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  sgd.step();  // nothing to do
  CHECK(at(a, 0) == 0.5);

  set(a, {1.0, 1.0});
  sgd.zero_grad(/*set_to_none=*/false);
  REQUIRE(a.grad().defined());
  CHECK(at(a.grad(), 0) == 0.0);
  CHECK(at(a.grad(), 1) == 0.0);
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("optim: step works with gradients from backward and under set_lr") {
  // loss = sum(p^2) -> g = 2p. p = [1, -3], lr = 0.25: p - 0.25*2p = p/2 = [0.5, -1.5]
  Tensor p = param({1.0, -3.0}, kFloat64);
  optim::SGD sgd({p}, {.lr = 0.25});
  (p * p).sum().backward();
  sgd.step();
  CHECK(at(p, 0) == 0.5);
  CHECK(at(p, 1) == -1.5);
  CHECK_FALSE(p.grad_fn());  // still a leaf
  sgd.zero_grad();
  // set_lr(0.5): p - 0.5*2p = 0
  sgd.set_lr(0.5);
  CHECK(sgd.lr() == 0.5);
  CHECK(sgd.options().lr == 0.5);
  (p * p).sum().backward();
  sgd.step();
  CHECK(at(p, 0) == 0.0);
  CHECK(at(p, 1) == 0.0);
}

// ---- Adam / AdamW -----------------------------------------------------------------------------------------

TEST_CASE("optim: Adam, two steps on a 2-element parameter") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // lr = 0.1, betas = (0.9, 0.999), eps = 1e-8; p0 = [1, 2]; g1 = [0.5, -1]; g2 = [1, 1].
    // Paper form (the same as PyTorch's step_size / denom form):
    //   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  m^ = m/(1-b1^t);  v^ = v/(1-b2^t);
    //   p -= lr m^ / (sqrt(v^) + eps)
    // step 1: m = [0.05, -0.1]; v = [0.00025, 0.001]; m^ = g1; v^ = g1^2
    //         p = [1 - 0.1*0.5/(0.5+1e-8), 2 + 0.1*1/(1+1e-8)] = [0.900000002, 2.099999999]
    // step 2: m = 0.9 m + 0.1 g2 = [0.145, 0.01]; v = 0.999 v + 0.001 = [0.00124975, 0.001999]
    //         bc1 = 1 - 0.81 = 0.19; bc2 = 1 - 0.998001 = 0.001999
    //         m^ = [0.763157894737, 0.052631578947]; v^ = [0.625187593797, 1]; sqrt(v^) = [0.790688050875, 1]
    //         update = 0.1 m^ / (sqrt(v^) + 1e-8) = [0.096518201361, 0.005263157842]
    //         p = [0.803481800639, 2.094736841158]
    Tensor p = param({1.0, 2.0}, d);
    optim::Adam adam({p}, {.lr = 0.1});
    set(p, {0.5, -1.0});
    adam.step();
    CHECK(at(p, 0) == doctest::Approx(0.900000002).epsilon(tol(d)));
    CHECK(at(p, 1) == doctest::Approx(2.099999999).epsilon(tol(d)));
    set(p, {1.0, 1.0});
    adam.step();
    CHECK(at(p, 0) == doctest::Approx(0.803481800638509).epsilon(tol(d)));
    CHECK(at(p, 1) == doctest::Approx(2.09473684115789).epsilon(tol(d)));

    // The state holds the moments and the step count.
    const auto sd = adam.state_dict();
    CHECK(sd[0].first == "state.0.step");
    CHECK(sd[0].second.item() == 2.0);
    CHECK(sd[1].first == "state.0.exp_avg");
    CHECK(at(sd[1].second, 0) == doctest::Approx(0.145).epsilon(tol(d)));
    CHECK(at(sd[1].second, 1) == doctest::Approx(0.01).epsilon(tol(d)));
    CHECK(sd[2].first == "state.0.exp_avg_sq");
    CHECK(at(sd[2].second, 0) == doctest::Approx(0.00124975).epsilon(tol(d)));
    CHECK(at(sd[2].second, 1) == doctest::Approx(0.001999).epsilon(tol(d)));
  }
}

TEST_CASE("optim: Adam with beta1 >= 0.5 (PyTorch's other lerp branch)") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // betas = (0.2, 0.999), lr = 0.1, p0 = [1, 2], g1 = [0.5, -1], g2 = [1, 1]. The lerp weight is 0.8.
    // step 1: as in the test above (m^ = g1, v^ = g1^2): p = [0.900000002, 2.099999999]
    // step 2: m = 0.2*[0.4, -0.8] + 0.8*[1, 1] = [0.88, 0.64]; bc1 = 1 - 0.04 = 0.96; m^ = [0.916666.., 0.666666..]
    //         v^ as above: sqrt = [0.790688050875, 1]
    //         p = [0.900000002 - 0.1*0.9166667/0.7906881, 2.099999999 - 0.1*0.6666667/1] = [0.784067219905, 2.033333333]
    Tensor p = param({1.0, 2.0}, d);
    optim::Adam adam({p}, {.lr = 0.1, .betas = {0.2, 0.999}});
    set(p, {0.5, -1.0});
    adam.step();
    set(p, {1.0, 1.0});
    adam.step();
    CHECK(at(p, 0) == doctest::Approx(0.784067219904876).epsilon(tol(d)));
    CHECK(at(p, 1) == doctest::Approx(2.033333333).epsilon(tol(d)));
  }
}

TEST_CASE("optim: Adam with AMSGrad uses the running maximum of v") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // lr = 0.1, p0 = 1, g1 = 2, g2 = 0 (so v decreases in step 2).
    // step 1: m = 0.2, v = 0.004, vmax = 0.004; m^ = 2, v^ = 4; p = 1 - 0.1*2/(2+1e-8) = 0.9000000005
    // step 2: m = 0.18, v = 0.999*0.004 = 0.003996 < vmax = 0.004; m^ = 0.18/0.19 = 0.947368421053
    //   amsgrad: v^ = 0.004/0.001999 = 2.001000500250, sqrt = 1.414567248401
    //            p = 0.9000000005 - 0.1*0.947368421053/1.414567248401 = 0.833027686852
    //   plain:   v^ = 0.003996/0.001999 = 1.998999499750, sqrt = 1.413859787868
    //            p = 0.9000000005 - 0.1*0.947368421053/1.413859787868 = 0.832994175560
    Tensor p = param({1.0}, d);
    Tensor q = param({1.0}, d);
    optim::Adam ams({p}, {.lr = 0.1, .amsgrad = true});
    optim::Adam plain({q}, {.lr = 0.1});
    for (double g : {2.0, 0.0}) {
      set(p, {g});
      set(q, {g});
      ams.step();
      plain.step();
    }
    CHECK(at(p, 0) == doctest::Approx(0.833027686852419).epsilon(tol(d)));
    CHECK(at(q, 0) == doctest::Approx(0.832994175560267).epsilon(tol(d)));
    const auto sd = ams.state_dict();
    CHECK(sd[3].first == "state.0.max_exp_avg_sq");
    CHECK(at(sd[3].second, 0) == doctest::Approx(0.004).epsilon(tol(d)));
  }
}

TEST_CASE("optim: Adam L2 weight decay versus AdamW decoupled weight decay") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // Adam, weight_decay = 0.1, lr = 0.1, p0 = 1, g = 0.5 twice.
    // step 1: g' = 0.5 + 0.1*1 = 0.6; m^ = 0.6, v^ = 0.36; p = 1 - 0.1*0.6/(0.6+1e-8) = 0.900000001667
    // step 2: g' = 0.5 + 0.1*0.900000001667 = 0.590000000167; m = 0.9*0.06 + 0.1*g' = 0.113000000017
    //         v = 0.999*0.00036 + 0.001*g'^2 = 0.000707740000197
    //         m^ = m/0.19 = 0.594736842193; v^ = v/0.001999 = 0.354047023610, sqrt = 0.595018506948
    //         p = 0.900000001667 - 0.1*0.594736842193/0.595018506948 = 0.800047340488
    Tensor p = param({1.0}, d);
    optim::Adam adam({p}, {.lr = 0.1, .weight_decay = 0.1});
    // AdamW, same numbers: p *= 1 - lr*wd = 0.99 first, then Adam on the raw gradient.
    // step 1: p = 0.99 - 0.1*0.5/(0.5+1e-8) = 0.890000002
    // step 2: p = 0.890000002*0.99 = 0.88110000198; m = 0.095, v = 0.00049975; m^ = 0.5, v^ = 0.25
    //         p = 0.88110000198 - 0.1*0.5/(0.5+1e-8) = 0.781100003980
    Tensor q = param({1.0}, d);
    optim::AdamW adamw({q}, {.lr = 0.1, .weight_decay = 0.1});
    for (int s = 0; s < 2; ++s) {
      set(p, {0.5});
      set(q, {0.5});
      adam.step();
      adamw.step();
      if (s == 0) {
        CHECK(at(p, 0) == doctest::Approx(0.900000001666667).epsilon(tol(d)));
        CHECK(at(q, 0) == doctest::Approx(0.890000002).epsilon(tol(d)));
      }
    }
    CHECK(at(p, 0) == doctest::Approx(0.800047340488332).epsilon(tol(d)));
    CHECK(at(q, 0) == doctest::Approx(0.781100003980001).epsilon(tol(d)));
  }
}

TEST_CASE("optim: AdamW defaults to weight_decay 0.01, AMSGrad works with decoupled decay") {
  // Defaults: lr = 1e-3, wd = 0.01. p0 = 2, g = 4: p = 2*(1 - 1e-5) - 1e-3*4/(4+1e-8) = 1.99898000001
  Tensor p = param({2.0}, kFloat64);
  optim::AdamW adamw({p});
  set(p, {4.0});
  adamw.step();
  CHECK(at(p, 0) == doctest::Approx(2.0 * (1 - 1e-5) - 1e-3 * 4 / (4 + 1e-8)).epsilon(1e-14));
  // With amsgrad: the first step is the same (vmax = v).
  Tensor q = param({2.0}, kFloat64);
  optim::AdamW ams({q}, {.amsgrad = true});
  set(q, {4.0});
  ams.step();
  CHECK(at(q, 0) == at(p, 0));
}

// ---- RMSprop -------------------------------------------------------------------------------------------------

TEST_CASE("optim: RMSprop plain, with momentum and with weight decay") {
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // lr = 0.01, alpha = 0.99, eps = 1e-8; p0 = [1, -1]; g1 = [0.1, 0.2]; g2 = [0.3, -0.1].
    // step 1: v = 0.01 g1^2 = [1e-4, 4e-4]; avg = sqrt(v) + eps = [0.01000001, 0.02000001]
    //         p = p - 0.01 g1/avg = [1 - 0.0999999, -1 - 0.09999995] = [0.9000000999999, -1.09999995]
    // step 2: v = 0.99 v + 0.01 g2^2 = [0.000999, 0.000496]; sqrt = [0.0316069612586, 0.0222710574513]
    //         p = [0.9000001 - 0.01*0.3/0.03160697, -1.09999995 + 0.01*0.1/0.02227106]
    //           = [0.805084330455, -1.055098644655]
    Tensor p = param({1.0, -1.0}, d);
    optim::RMSprop rms({p});
    // momentum = 0.9 (buffer starts at 0):
    // step 1: buf = g1/avg = [9.99999, 9.999995]; p = p - 0.01 buf: the same as without momentum
    // step 2: buf = 0.9 buf + g2/avg2 = [8.999991 + 9.4915766, 8.9999955 - 4.4901305] = [18.491567955, 4.509864965]
    //         p = [0.9000000999999 - 0.18491568, -1.09999995 - 0.04509865] = [0.715084420455, -1.145098599655]
    Tensor q = param({1.0, -1.0}, d);
    optim::RMSprop rms_mom({q}, {.momentum = 0.9});
    // weight_decay = 0.1: g1' = g1 + 0.1 p0 = [0.2, 0.1]; v = [4e-4, 1e-4]; avg = [0.02000001, 0.01000001]
    // step 1: p = [1 - 0.01*0.2/0.02000001, -1 - 0.01*0.1/0.01000001] = [0.90000005, -1.0999999]
    // step 2: g2' = [0.3 + 0.090000005, -0.1 - 0.10999999] = [0.390000005, -0.20999999]
    //         v = [0.99*4e-4 + 0.01*0.1521000039, 0.99*1e-4 + 0.01*0.0440999958] = [0.001917000039, 0.000539999958]
    //         p = [0.90000005 - 0.01*0.390000005/0.0437835588, -1.0999999 + 0.01*0.20999999/0.0232379]
    //           = [0.810925537831, -1.009630328266]
    Tensor r = param({1.0, -1.0}, d);
    optim::RMSprop rms_wd({r}, {.weight_decay = 0.1});
    const std::vector<std::vector<double>> grads = {{0.1, 0.2}, {0.3, -0.1}};
    for (const auto& g : grads) {
      for (Tensor* t : {&p, &q, &r}) t->set_grad(tensor({g[0], g[1]}, d));
      rms.step();
      rms_mom.step();
      rms_wd.step();
    }
    CHECK(at(p, 0) == doctest::Approx(0.805084330454671).epsilon(tol(d)));
    CHECK(at(p, 1) == doctest::Approx(-1.05509864465461).epsilon(tol(d)));
    CHECK(at(q, 0) == doctest::Approx(0.715084420454581).epsilon(tol(d)));
    CHECK(at(q, 1) == doctest::Approx(-1.14509859965464).epsilon(tol(d)));
    CHECK(at(r, 0) == doctest::Approx(0.810925537830777).epsilon(tol(d)));
    CHECK(at(r, 1) == doctest::Approx(-1.00963032826641).epsilon(tol(d)));
    // The state: square_avg after step 2 = [0.000999, 0.000496], step count 2.
    const auto sd = rms.state_dict();
    CHECK(sd[0].first == "state.0.step");
    CHECK(sd[0].second.item() == 2.0);
    CHECK(sd[1].first == "state.0.square_avg");
    CHECK(at(sd[1].second, 0) == doctest::Approx(0.000999).epsilon(tol(d)));
    CHECK(at(sd[1].second, 1) == doctest::Approx(0.000496).epsilon(tol(d)));
  }
}

TEST_CASE("optim: every element follows the same rule, in SIMD lanes and in the scalar tail") {
  // The same value and gradient in every element of a 37-element parameter (SIMD body + tail) and of
  // a 1-element one (scalar only): after a few steps all elements must be bitwise equal.
  using Make = std::function<std::unique_ptr<optim::Optimizer>(const Tensor&)>;
  const std::vector<std::pair<const char*, Make>> configs = {
      {"SGD", [](const Tensor& p) { return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.1}); }},
      {"SGD nesterov", [](const Tensor& p) { return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true}); }},
      {"Adam", [](const Tensor& p) { return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{.lr = 0.1, .weight_decay = 0.1, .amsgrad = true}); }},
      {"Adam beta1 0.3", [](const Tensor& p) { return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{.lr = 0.1, .betas = {0.3, 0.9}}); }},
      {"AdamW", [](const Tensor& p) { return std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, optim::AdamWOptions{.lr = 0.1}); }},
      {"RMSprop", [](const Tensor& p) { return std::make_unique<optim::RMSprop>(std::vector<Tensor>{p}, optim::RMSpropOptions{.weight_decay = 0.1, .momentum = 0.5}); }},
  };
  for (const auto& [name, make] : configs) {
    for (Dtype d : {kFloat32, kFloat64}) {
      const auto& label = name;  // CAPTURE cannot capture a structured binding before clang 16
      CAPTURE(label);
      CAPTURE(d);
      Tensor wide = full({37}, 0.7, d).requires_grad_();
      Tensor single = full({1}, 0.7, d).requires_grad_();
      auto a = make(wide);
      auto b = make(single);
      for (double g : {0.3, -1.1, 0.05, 2.0}) {
        wide.set_grad(full({37}, g, d));
        single.set_grad(full({1}, g, d));
        a->step();
        b->step();
      }
      CHECK(wide.dtype() == d);
      CHECK(at(single, 0) != 0.7);  // it moved
      for (std::size_t i = 0; i < 37; ++i) {
        CAPTURE(i);
        CHECK(at(wide, i) == at(single, 0));
      }
    }
  }
}
