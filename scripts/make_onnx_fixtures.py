#!/usr/bin/python3
"""Writes the ONNX import fixtures: small networks exported by PyTorch's own exporter, with an
input and PyTorch's output for each, plus PyTorch results for the generic ops the importer adds.

Run with Debian's PyTorch 1.13 and torchvision 0.14 (apt-get install python3-torch python3-torchvision):

    /usr/bin/python3 scripts/make_onnx_fixtures.py          # or: npm run fixtures:onnx

It writes, under test/fixtures/onnx/:
  <name>.onnx              torch.onnx.export, opset 13, dynamic batch axis, random weights with
                           non-trivial batch-norm statistics
  reference.safetensors    <name>/input [2, C, H, W] and <name>/logits (PyTorch's output), and
                           ops/* inputs and outputs of reshape, transpose, slice, broadcasting
                           add/mul, gemm and matmul

The networks are written here from their papers and official code, independently of the
TypeScript code: the paper's ShuffleNet v1 layout, the official megvii layout (shuffle after the
depthwise conv + BN, channel_shuffle reshaping to (C/g, g), bias-free classifier), torchvision's
shufflenet_v2_x0_5 and mobilenet_v2, a MobileNet v1 with ReLU6, and a small network that uses the
remaining operators (dilated conv, AveragePool without padding in the divisor, SE, Split, Slice,
Transpose, MatMul, Gemm with alpha/beta, Softmax).
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "onnx")
OPSET = 13


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import FIXTURE_VERSION, write_safetensors  # noqa: E402


# ----------------------------------------------------------------------------------------------
# ShuffleNet v1 as the paper draws it: GConv → BN → ReLU → shuffle → DWConv → BN → GConv → BN.


def paper_shuffle(x, groups):
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class PaperUnit(nn.Module):
    def __init__(self, inp, out, stride, groups, first):
        super().__init__()
        self.stride, self.groups = stride, groups
        mid = out // 4
        branch = out - inp if stride == 2 else out
        self.gconv1 = nn.Conv2d(inp, mid, 1, groups=1 if first else groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.dwconv = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.gconv2 = nn.Conv2d(mid, branch, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)

    def forward(self, x):
        y = paper_shuffle(F.relu(self.bn1(self.gconv1(x))), self.groups)
        y = self.bn3(self.gconv2(self.bn2(self.dwconv(y))))
        if self.stride == 1:
            return F.relu(x + y)
        return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))


class PaperShuffleNet(nn.Module):
    def __init__(self, groups=3, conv1=12, stages=(60, 120, 240), repeats=(2, 2, 2), num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, conv1, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(conv1)
        units, inp = [], conv1
        for s, (out, rep) in enumerate(zip(stages, repeats)):
            for i in range(rep):
                units.append(PaperUnit(inp if i == 0 else out, out, 2 if i == 0 else 1, groups, s == 0 and i == 0))
            inp = out
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(inp, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.units(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------------------------
# The official megvii-model ShuffleNetV1 layout (ShuffleNet-Series/ShuffleNetV1), re-written.


class OfficialBlock(nn.Module):
    def __init__(self, inp, oup, group, first_group, mid_channels, stride):
        super().__init__()
        self.stride, self.group = stride, group
        outputs = oup - inp if stride == 2 else oup
        self.branch_main_1 = nn.Sequential(
            nn.Conv2d(inp, mid_channels, 1, 1, 0, groups=1 if first_group else group, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, mid_channels, 3, stride, 1, groups=mid_channels, bias=False),
            nn.BatchNorm2d(mid_channels),
        )
        self.branch_main_2 = nn.Sequential(
            nn.Conv2d(mid_channels, outputs, 1, 1, 0, groups=group, bias=False),
            nn.BatchNorm2d(outputs),
        )
        if stride == 2:
            self.branch_proj = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)

    def channel_shuffle(self, x):
        batchsize, num_channels, height, width = x.data.size()
        group_channels = num_channels // self.group
        x = x.reshape(batchsize, group_channels, self.group, height, width)
        x = x.permute(0, 2, 1, 3, 4)
        return x.reshape(batchsize, num_channels, height, width)

    def forward(self, old_x):
        x = self.branch_main_1(old_x)
        if self.group > 1:
            x = self.channel_shuffle(x)
        x = self.branch_main_2(x)
        if self.stride == 1:
            return F.relu(x + old_x)
        return torch.cat((self.branch_proj(old_x), F.relu(x)), 1)


class OfficialShuffleNetV1(nn.Module):
    def __init__(self, group=3, stage_out_channels=(-1, 12, 60, 120, 240), repeats=(2, 2, 2), pool=2, n_class=10):
        super().__init__()
        self.stage_out_channels = stage_out_channels
        input_channel = stage_out_channels[1]
        self.first_conv = nn.Sequential(
            nn.Conv2d(3, input_channel, 3, 2, 1, bias=False), nn.BatchNorm2d(input_channel), nn.ReLU(inplace=True)
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        features = []
        for idxstage, numrepeat in enumerate(repeats):
            output_channel = stage_out_channels[idxstage + 2]
            for i in range(numrepeat):
                stride = 2 if i == 0 else 1
                first_group = idxstage == 0 and i == 0
                features.append(
                    OfficialBlock(input_channel, output_channel, group, first_group, output_channel // 4, stride)
                )
                input_channel = output_channel
        self.features = nn.Sequential(*features)
        self.globalpool = nn.AvgPool2d(pool)
        self.classifier = nn.Sequential(nn.Linear(stage_out_channels[-1], n_class, bias=False))

    def forward(self, x):
        x = self.maxpool(self.first_conv(x))
        x = self.globalpool(self.features(x))
        x = x.contiguous().view(-1, self.stage_out_channels[-1])
        return self.classifier(x)


# ----------------------------------------------------------------------------------------------
# MobileNet v1 (Howard et al.) with ReLU6, which exports as Clip.


def dw_separable(inp, out, stride):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.ReLU6(inplace=True),
        nn.Conv2d(inp, out, 1, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self, alpha=0.25, num_classes=10):
        super().__init__()
        blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        ch = int(32 * alpha)
        layers = [nn.Conv2d(3, ch, 3, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU6(inplace=True)]
        for out, stride in blocks:
            layers.append(dw_separable(ch, int(out * alpha), stride))
            ch = int(out * alpha)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ----------------------------------------------------------------------------------------------
# The remaining operators of the importer's subset, in one small network.


class Mixed(nn.Module):
    def __init__(self, num_classes=6):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 2, dilation=2)
        self.bn = nn.BatchNorm2d(8)
        self.conv_b = nn.Conv2d(4, 4, (3, 1), (2, 1), (1, 0), groups=2)
        self.se1 = nn.Conv2d(8, 4, 1)
        self.se2 = nn.Conv2d(4, 8, 1)
        self.w = nn.Parameter(torch.randn(8 * 4, 12) * 0.2)
        self.fc = nn.Linear(12, num_classes)
        self.bias = nn.Parameter(torch.randn(num_classes) * 0.1)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))  # [N, 8, 16, 16]
        x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)  # [N, 8, 8, 8]
        x = x * torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(x, 1)))))
        a, b = torch.chunk(x, 2, dim=1)  # Split
        b = F.max_pool2d(self.conv_b(b), (1, 2), (1, 2))  # [N, 4, 4, 4]
        a = F.max_pool2d(a, 2)[:, 1:4]  # Slice → [N, 3, 4, 4]
        x = torch.cat([a, b[:, :1]], 1)  # [N, 4, 4, 4]
        x = x.permute(0, 2, 3, 1)  # Transpose [N, 4, 4, 4] (H, W, C)
        x = torch.flatten(x, 1)[:, :32]  # [N, 32]
        x = torch.matmul(x, self.w)  # MatMul
        x = torch.addmm(self.bias, F.relu(x), self.fc.weight.t(), beta=0.5, alpha=2.0)  # Gemm
        return torch.softmax(x, dim=-1)


# ----------------------------------------------------------------------------------------------


def randomize(model, gen):
    """Random weights, and non-trivial batch-norm statistics and affine parameters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    model.eval()


# name: (builder, input shape, dynamic batch). The official layout reads its sizes through
# `x.data.size()`, which the tracer records as constants, so its file only runs at the traced batch
# (as a user of the official code would get it); the others declare a symbolic batch "N".
NETWORKS = {
    "shufflenet_v1_paper": (lambda: PaperShuffleNet(), [2, 3, 32, 32], True),
    "shufflenet_v1_official": (lambda: OfficialShuffleNetV1(), [2, 3, 64, 64], False),
    "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=10), [2, 3, 32, 32], True),
    "mobilenet_v1_relu6": (lambda: MobileNetV1(alpha=0.125), [2, 3, 32, 32], True),
    "mobilenet_v2_0.25": (lambda: torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25), [2, 3, 32, 32], True),
    "mixed_ops": (lambda: Mixed(), [2, 3, 16, 16], True),
}


def export_network(out, name, model, shape, opset, dynamic, gen, tensors):
    """Randomises `model`, runs it on a random input of `shape` and exports it with
    torch.onnx.export to out/<name>.onnx; adds <name>/input and <name>/logits to `tensors` and
    returns the file's size."""
    randomize(model, gen)
    x = torch.randn(*shape, generator=gen)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(out, f"{name}.onnx")
    torch.onnx.export(
        model,
        x,
        path,
        opset_version=opset,
        do_constant_folding=True,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}} if dynamic else None,
    )
    tensors[f"{name}/input"] = x
    tensors[f"{name}/logits"] = y
    print(f"{name}: {os.path.getsize(path)} bytes", file=sys.stderr)
    return os.path.getsize(path)


def op_fixtures(gen):
    """Generic ops on odd shapes, computed by PyTorch."""
    t = {}
    r = lambda *s: torch.randn(*s, generator=gen)
    x = r(2, 3, 5, 7)
    t["ops/x"] = x
    t["ops/reshape"] = x.reshape(2, 15, 7)
    t["ops/transpose"] = x.permute(2, 0, 3, 1)
    t["ops/slice"] = x[:, :, 1:4]
    y = r(3, 1, 7)
    t["ops/y"] = y
    t["ops/add"] = x + y
    t["ops/mul"] = x * y
    a, b, c = r(4, 5), r(6, 5), r(6)
    t["ops/gemm_a"], t["ops/gemm_b"], t["ops/gemm_c"] = a, b, c
    t["ops/gemm"] = 1.5 * (a.t().t() @ b.t()) + 0.25 * c  # transA=0, transB=1
    at = r(5, 4)
    t["ops/gemm_at"] = at
    t["ops/gemm_t"] = 0.5 * (at.t() @ b.t()) - 2.0 * c.reshape(1, 6)  # transA=1, transB=1, beta=-2
    m1, m2 = r(2, 1, 3, 4), r(3, 4, 5)
    t["ops/matmul_a"], t["ops/matmul_b"] = m1, m2
    t["ops/matmul"] = torch.matmul(m1, m2)  # [2, 3, 3, 5]
    v = r(4)
    t["ops/matmul_v"] = v
    t["ops/matmul_vb"] = torch.matmul(v, m2)  # [3, 5]
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    tensors = op_fixtures(gen)
    listing = []
    for name, (build, shape, dynamic) in NETWORKS.items():
        size = export_network(OUT, name, build(), shape, OPSET, dynamic, gen, tensors)
        listing.append({"name": name, "input": shape, "dynamicBatch": dynamic, "bytes": size})
    write_safetensors(
        os.path.join(OUT, "reference.safetensors"),
        tensors,
        {"version": FIXTURE_VERSION, "torch": torch.__version__, "opset": str(OPSET), "networks": json.dumps(listing)},
    )


if __name__ == "__main__":
    main()
