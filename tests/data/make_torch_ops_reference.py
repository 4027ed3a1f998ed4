# Writes tests/data/torch_ops_reference.safetensors: for each case of tests/test_torch_ops_reference.cpp,
# float64 inputs, PyTorch's output, a cotangent w with the gradients of <out, w> for each input, and
# vectors v with the second derivatives d<grads, v>/d inputs (double backward). Run once:
#   /usr/bin/python3 tests/data/make_torch_ops_reference.py      (PyTorch 1.13: Debian's python3-torch)
# The test needs no Python. Case names and arguments must match the C++ table.
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_cnn import save_safetensors  # noqa: E402

torch.manual_seed(1)
D = torch.float64


def r(*shape):
    return torch.randn(*shape, dtype=D)


def distinct(*shape):  # values at least 1/n apart: no near-ties for max pooling
    n = 1
    for s in shape:
        n *= s
    return (torch.randperm(n, dtype=D) * (2.0 / n) - 1.0).reshape(shape)


EMB_IDX = torch.tensor([[0, 3, 1], [3, 2, 2]])
CASES = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
               [r(2, 4, 5, 6), r(6, 2, 3, 3), r(6)]),
    "conv2d_same": (lambda x, w: F.conv2d(x, w, padding="same"), [r(1, 2, 5, 5), r(3, 2, 2, 4)]),
    "conv2d_depthwise": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3), [r(2, 3, 6, 6), r(3, 1, 3, 3), r(3)]),
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=2, dilation=2), [r(2, 3, 9), r(4, 3, 3), r(4)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True),
                   [distinct(2, 2, 7, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                   [r(2, 2, 7, 6)]),
    "avg_pool2d_include": (lambda x: F.avg_pool2d(x, (2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True), [r(1, 2, 5, 6)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [r(2, 2, 7, 5)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [r(4, 3, 2, 2), r(3), r(3)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (2, 4), w, b), [r(3, 2, 4), r(2, 4), r(2, 4)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 3, w, b), [r(2, 6, 3), r(6), r(6)]),
    "gelu": (lambda x: F.gelu(x), [r(3, 4)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [r(3, 4)]),
    "silu": (lambda x: F.silu(x), [r(3, 4)]),
    "elu": (lambda x: F.elu(x, 1.3), [r(3, 4)]),
    "softplus": (lambda x: F.softplus(x, 2.0, 3.0), [r(3, 4)]),
    "erf": (lambda x: torch.erf(x), [r(3, 4)]),
    "log1p": (lambda x: torch.log1p(x), [torch.rand(3, 4, dtype=D)]),
    "expm1": (lambda x: torch.expm1(x), [r(3, 4)]),
    "pad_reflect": (lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [r(1, 2, 3, 4)]),
    "pad_replicate": (lambda x: F.pad(x, (1, 2, 2, 0), mode="replicate"), [r(1, 2, 3, 4)]),
    "pad_circular": (lambda x: F.pad(x, (1, 2, 2, 1), mode="circular"), [r(1, 2, 3, 4)]),
    "pad_constant": (lambda x: F.pad(x, (1, -1, 0, 2), value=0.5), [r(2, 3, 4)]),
    "unfold": (lambda x: F.unfold(x, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), [r(2, 2, 4, 5)]),
    "fold": (lambda x: F.fold(x, (4, 5), 2, padding=1, stride=2), [r(2, 8, 9)]),
    "embedding": (lambda w: F.embedding(EMB_IDX, w, padding_idx=3), [r(4, 3)]),
}


def main():
    out = {}
    for name, (fn, inputs) in CASES.items():
        xs = [t.clone().requires_grad_() for t in inputs]
        y = fn(*xs)
        w = r(*y.shape)
        grads = torch.autograd.grad(y, xs, w, create_graph=True, allow_unused=True)
        vs = [r(*x.shape) for x in xs]
        total = sum((g * v).sum() for g, v in zip(grads, vs) if g is not None and g.requires_grad)
        ggs = torch.autograd.grad(total, xs, allow_unused=True) if torch.is_tensor(total) else [None] * len(xs)
        out[f"{name}.out"] = y.detach()
        out[f"{name}.w"] = w
        for i, x in enumerate(inputs):
            out[f"{name}.in{i}"] = x
            out[f"{name}.v{i}"] = vs[i]
            out[f"{name}.grad{i}"] = grads[i].detach() if grads[i] is not None else torch.zeros_like(x)
            out[f"{name}.gg{i}"] = ggs[i] if ggs[i] is not None else torch.zeros_like(x)
    # BatchNorm's running statistics after one training step from (0, 1) with momentum 0.3.
    x = r(5, 3, 2)
    rm, rv = torch.zeros(3, dtype=D), torch.ones(3, dtype=D)
    F.batch_norm(x, rm, rv, training=True, momentum=0.3)
    out["bn_running.x"], out["bn_running.mean"], out["bn_running.var"] = x, rm, rv
    save_safetensors(os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_ops_reference.safetensors"), out)
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
