#!/usr/bin/python3
"""Writes the zoo import fixtures of issue 16: torchvision's mobile CNNs exported by PyTorch's own
ONNX exporter, small enough to commit, with an input and PyTorch's output for each.

Run with Debian's PyTorch 1.13 and torchvision 0.14 (apt-get install python3-torch python3-torchvision):

    /usr/bin/python3 scripts/make_zoo_fixtures.py          # or: npm run fixtures:zoo

It writes, under test/fixtures/onnx/zoo/:
  <name>.onnx              torch.onnx.export, dynamic batch axis, random weights with non-trivial
                           batch-norm statistics
  reference.safetensors    <name>/input [2, 3, H, W] and <name>/logits (PyTorch's output)

The networks are torchvision's own classes and blocks, narrowed so the files stay small:
  mobilenet_v3_small_0.25  torchvision.models.mobilenet_v3_small(width_mult=0.25), opset 14
                           (HardSwish and HardSigmoid as ops) and opset 13 (HardSigmoid + Mul)
  squeezenet_mini          torchvision's Fire blocks behind a stride-2 stem, with its MaxPool
                           3×3/2 ceil_mode=True, in SqueezeNet 1.1's order
  googlenet_mini           torchvision's BasicConv2d and Inception blocks (a MaxPool 3×3/1 ceil_mode
                           branch) behind GoogLeNet's stem pools (3×3/2 ceil_mode=True)
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models.googlenet import BasicConv2d, Inception
from torchvision.models.squeezenet import Fire

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import start, write_safetensors  # noqa: E402
from make_onnx_fixtures import export_network  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "onnx", "zoo")


class SqueezeNetMini(nn.Module):
    """SqueezeNet 1.1's layout (torchvision's `features` of version 1_1), at a quarter of its widths."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(16, 4, 16, 16),
            Fire(32, 4, 16, 16),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(32, 8, 32, 32),
            Fire(64, 8, 32, 32),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 12, 48, 48),
        )
        self.classifier = nn.Sequential(
            nn.Conv2d(96, num_classes, kernel_size=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class GoogLeNetMini(nn.Module):
    """GoogLeNet's stem and two Inception blocks (torchvision's), at an eighth of its widths."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = BasicConv2d(3, 8, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(8, 8, kernel_size=1)
        self.conv3 = BasicConv2d(8, 24, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(24, 8, 12, 16, 2, 4, 4)
        self.inception3b = Inception(32, 16, 16, 24, 4, 12, 8)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(60, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# name: (builder, input shape, opset). Odd input sizes make ceil_mode's partial windows appear.
NETWORKS = {
    "mobilenet_v3_small_0.25": (
        lambda: torchvision.models.mobilenet_v3_small(num_classes=10, width_mult=0.25),
        [2, 3, 40, 40],
        14,
    ),
    "mobilenet_v3_small_0.25_opset13": (
        lambda: torchvision.models.mobilenet_v3_small(num_classes=10, width_mult=0.25),
        [2, 3, 40, 40],
        13,
    ),
    "squeezenet_mini": (lambda: SqueezeNetMini(), [2, 3, 45, 45], 13),
    "googlenet_mini": (lambda: GoogLeNetMini(), [2, 3, 45, 45], 13),
}


def main():
    gen, metadata = start(OUT, 1616, "make_zoo_fixtures.py")
    tensors = {}
    listing = []
    for name, (build, shape, opset) in NETWORKS.items():
        size = export_network(OUT, name, build(), shape, opset, True, gen, tensors)
        listing.append({"name": name, "input": shape, "opset": opset, "bytes": size})
    write_safetensors(os.path.join(OUT, "reference.safetensors"), tensors, {**metadata, "networks": json.dumps(listing)})


if __name__ == "__main__":
    main()
