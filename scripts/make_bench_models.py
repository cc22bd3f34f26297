#!/usr/bin/python3
"""Writes full-size torchvision classification CNNs as ONNX files for `shufflenet bench --model`
(issue 16): random weights with non-trivial batch-norm statistics (nothing is downloaded), exported
by PyTorch's own exporter at 224×224, batch 1. The files are large (5–50 MB each), so they go to
bench/models/, which git ignores; the benchmark's results file names each one. Beside them,
reference.safetensors holds each model's input and PyTorch's logits for it, which
`node bench/check-models.mjs` compares with our engine's.

Run with Debian's PyTorch 1.13 and torchvision 0.14 (apt-get install python3-torch python3-torchvision):

    /usr/bin/python3 scripts/make_bench_models.py [name ...]     # or: npm run bench:models
    node dist/cli/main.js bench --model bench/models/mobilenet_v2.onnx,... --threads 1

Names: the keys of MODELS below (all by default).
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import randomize, write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "models")

m = torchvision.models
# name: (builder, opset). MobileNet V3 at opset 14 keeps HardSwish and HardSigmoid as ops.
MODELS = {
    "mobilenet_v2": (lambda: m.mobilenet_v2(), 13),
    "mobilenet_v3_small": (lambda: m.mobilenet_v3_small(), 14),
    "mobilenet_v3_large": (lambda: m.mobilenet_v3_large(), 14),
    "mnasnet0_5": (lambda: m.mnasnet0_5(), 13),
    "mnasnet1_0": (lambda: m.mnasnet1_0(), 13),
    "efficientnet_b0": (lambda: m.efficientnet_b0(), 13),
    "regnet_x_400mf": (lambda: m.regnet_x_400mf(), 13),
    "regnet_y_400mf": (lambda: m.regnet_y_400mf(), 13),
    "resnet18": (lambda: m.resnet18(), 13),
    "shufflenet_v2_x1_0": (lambda: m.shufflenet_v2_x1_0(), 13),
    "squeezenet1_1": (lambda: m.squeezenet1_1(), 13),
    "googlenet": (lambda: m.googlenet(aux_logits=False, init_weights=False), 13),
}


def main(names):
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(16)
    tensors = {}
    for name in names or MODELS:
        build, opset = MODELS[name]
        model = randomize(build(), gen)
        x = torch.randn(1, 3, 224, 224, generator=gen)
        with torch.no_grad():
            tensors[f"{name}/input"] = x
            tensors[f"{name}/logits"] = model(x)
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(model, x, path + ".tmp", opset_version=opset, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"])
        os.replace(path + ".tmp", path)
        print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB", file=sys.stderr)
    write_safetensors(os.path.join(OUT, "reference.safetensors"), tensors, {"torch": torch.__version__})


if __name__ == "__main__":
    main(sys.argv[1:])
