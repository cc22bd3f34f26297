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
  mobilenet_v3_large_0.25  torchvision.models.mobilenet_v3_large(width_mult=0.25): 5×5 depthwise
  mnasnet_0.2              torchvision.models.MNASNet(alpha=0.2): 5×5 depthwise, ReduceMean
  efficientnet_b0_mini     torchvision's EfficientNet class on efficientnet_b0's config at width 0.25,
                           depth 0.5: SiLU (Sigmoid + Mul), squeeze-and-excitation, 5×5 depthwise
  regnet_x_mini            torchvision's RegNet class (X: grouped 3×3 bottlenecks), narrow and shallow
  regnet_y_mini            the same with squeeze-and-excitation (RegNet Y)
  resnet_mini              torchvision's BasicBlock and Bottleneck behind ResNet's 7×7/2 stem and max
                           pool, at a quarter of ResNet's widths (ResNet-18 itself is 45 MB)
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
from torchvision.models.googlenet import BasicConv2d, Inception
from torchvision.models.regnet import BlockParams, RegNet
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1
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


class ResNetMini(nn.Module):
    """ResNet's stem, then torchvision's BasicBlock (identity and projection shortcuts) and
    Bottleneck (expansion 4), at a quarter of ResNet's widths."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        down = lambda i, o: nn.Sequential(conv1x1(i, o, 2), nn.BatchNorm2d(o))
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2, downsample=down(16, 32))
        self.layer3 = Bottleneck(32, 16, stride=2, downsample=down(32, 64))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def efficientnet_b0_mini():
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    return EfficientNet(setting, 0.2, num_classes=10, last_channel=last_channel)


def regnet_mini(se_ratio):
    params = BlockParams.from_init_params(depth=4, w_0=8, w_a=8.0, w_m=2.0, group_width=4, se_ratio=se_ratio)
    return RegNet(params, num_classes=10, stem_width=8)


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
    "mobilenet_v3_large_0.25": (
        lambda: torchvision.models.mobilenet_v3_large(num_classes=10, width_mult=0.25),
        [2, 3, 64, 64],
        14,
    ),
    "mnasnet_0.2": (lambda: torchvision.models.MNASNet(alpha=0.2, num_classes=10), [2, 3, 64, 64], 13),
    "efficientnet_b0_mini": (efficientnet_b0_mini, [2, 3, 64, 64], 13),
    "regnet_x_mini": (lambda: regnet_mini(None), [2, 3, 45, 45], 13),
    "regnet_y_mini": (lambda: regnet_mini(0.25), [2, 3, 45, 45], 13),
    "resnet_mini": (lambda: ResNetMini(), [2, 3, 45, 45], 13),
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
