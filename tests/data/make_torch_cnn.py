# Writes the PyTorch fixtures of tests/test_torch_interop.cpp (run once; the test itself needs no Python):
#   torch_cnn.safetensors     the state_dict of a small CNN trained a few steps in PyTorch (float32, and
#                             int64 num_batches_tracked, as PyTorch keeps them)
#   torch_cnn_io.safetensors  an input batch, the eval-mode logits PyTorch computes for it, and the
#                             logits' float16 and bfloat16 roundings.
# Usage: /usr/bin/python3 tests/data/make_torch_cnn.py  (PyTorch 1.13: Debian's python3-torch)
# The architecture must match make_model() in tests/test_torch_interop.cpp.
import json
import os
import struct

import torch
from torch import nn

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
          torch.float16: "F16", torch.bfloat16: "BF16"}


def save_safetensors(path, tensors):
    """The safetensors format: 8-byte little-endian header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False),
        nn.GroupNorm(3, 6),
        nn.GELU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 8),
        nn.LayerNorm([8]),
        nn.SiLU(),
        nn.Linear(8, 3),
    )


def main():
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # a few steps, so the running statistics and num_batches_tracked are not the defaults
        x = torch.randn(5, 1, 8, 8)
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        logits = model(x)
    here = os.path.dirname(os.path.abspath(__file__))
    save_safetensors(os.path.join(here, "torch_cnn.safetensors"), model.state_dict())
    save_safetensors(os.path.join(here, "torch_cnn_io.safetensors"),
                     {"input": x, "logits": logits, "logits_f16": logits.half(), "logits_bf16": logits.bfloat16()})
    print({k: (v.dtype, tuple(v.shape)) for k, v in model.state_dict().items()})


if __name__ == "__main__":
    main()
