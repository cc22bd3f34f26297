"""What every fixture script shares: the safetensors writer and the seeded weight randomiser.

The scripts import it from their own folder (sys.path holds it when a script runs as
/usr/bin/python3 scripts/make_*.py). A change here changes every committed fixture: regenerate them
all and commit them together.
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn

FIXTURE_VERSION = "1"  # test/helpers/fixtures.ts refuses a fixture of another version


def start(out, seed, script):
    """Seeds torch's global generator (0), makes the folder `out`, and returns a generator seeded
    with `seed` and the metadata every fixture file that `script` writes carries."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(seed)
    os.makedirs(out, exist_ok=True)
    return gen, {"version": FIXTURE_VERSION, "torch": torch.__version__, "regenerate": f"/usr/bin/python3 scripts/{script}"}


def write_safetensors(path, tensors, metadata):
    """Writes `tensors` (name → tensor, stored as little-endian F32, sorted by name) and `metadata`
    (str → str) to `path` atomically; returns the file's size in bytes."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        data = tensors[name].detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    encoded += b" " * (-len(encoded) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)
    return 8 + len(encoded) + offset


def randomize(model, gen, weight_gain=1.0, batches_tracked=None):
    """Random weights and non-trivial batch-norm statistics (eval mode uses the running ones), drawn
    from `gen` in module order. Conv and linear weights are N(0, weight_gain / fan_in) (1: LeCun,
    2: He); `batches_tracked`, when given, fills each batch norm's num_batches_tracked, as a trained
    checkpoint has it. Returns the model in eval mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                if batches_tracked is not None:
                    m.num_batches_tracked.fill_(batches_tracked)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(weight_gain / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()
