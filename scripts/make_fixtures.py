#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that the tests compare against.

Run with Debian's PyTorch (apt-get install python3-torch):

    /usr/bin/python3 scripts/make_fixtures.py          # or: npm run fixtures

It writes, under test/fixtures/:
  ops.safetensors        every op on odd shapes: inputs, weights and PyTorch's outputs
  networks.safetensors   nine networks with random weights (non-trivial BN statistics),
                         their inputs and PyTorch's logits
  complexity.json        multiply-adds and parameters of every registered network, counted by
                         PyTorch forward hooks on the modules below

The networks are re-implemented here in plain PyTorch from the paper and from the width rule in
docs/architecture.md, independently of the TypeScript code; only the parameter names are shared.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import randomize, start, write_safetensors  # noqa: E402


# ----------------------------------------------------------------------------------------------
# The paper's networks, in PyTorch.

STAGE2_1X = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}  # Table 1


def nearest_multiple(value, of):
    return max(of, math.floor(value / of + 0.5) * of)


def shufflenet_widths(groups, scale, shallow):
    stage2 = nearest_multiple((math.sqrt(2) if shallow else 1) * scale * STAGE2_1X[groups], groups)
    nominal = max(12, 24 * 2 ** math.floor(math.log2(scale)))
    if scale >= 0.5:
        conv1 = math.ceil(nominal / groups) * groups
    else:
        conv1 = max(groups, math.floor(nominal / groups) * groups)
    repeats = [2, 4, 2] if shallow else [4, 8, 4]
    return conv1, [stage2, 2 * stage2, 4 * stage2], repeats


def paper_channel_shuffle(x, groups):
    """The paper: channels viewed as (g, n), transposed to (n, g), flattened."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def official_channel_shuffle(x, groups):
    """megvii ShuffleNetV1's variant: reshape to (C/g, g) before transposing."""
    n, c, h, w = x.shape
    return x.reshape(n, c // groups, groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class ShuffleUnit(nn.Module):
    def __init__(self, inp, out, stride, groups, first, shuffle, se):
        super().__init__()
        self.stride, self.groups, self.shuffle = stride, groups, shuffle
        branch = out - inp if stride == 2 else out
        mid = nearest_multiple(out / 4, groups)
        self.gconv1 = nn.Conv2d(inp, mid, 1, groups=1 if first else groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.dwconv = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.gconv2 = nn.Conv2d(mid, branch, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)
        self.se = SqueezeExcitation(out, math.ceil(out / 16)) if se else None

    def forward(self, x):
        y = F.relu(self.bn1(self.gconv1(x)))
        if self.shuffle and self.groups > 1:
            y = paper_channel_shuffle(y, self.groups)
        y = self.bn2(self.dwconv(y))
        y = self.bn3(self.gconv2(y))
        if self.stride == 1:
            return F.relu(x + (self.se(y) if self.se else y))
        y = torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1)
        return F.relu(self.se(y) if self.se else y)


class ShuffleNet(nn.Module):
    def __init__(self, groups, scale, shuffle=True, se=False, shallow=False, num_classes=1000, in_ch=3, small=False):
        super().__init__()
        conv1, stages, repeats = shufflenet_widths(groups, scale, shallow)
        self.small = small
        self.conv1 = nn.Conv2d(in_ch, conv1, 3, 1 if small else 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(conv1)
        inp = conv1
        for s, (out, rep) in enumerate(zip(stages, repeats)):
            units = []
            for i in range(rep):
                units.append(ShuffleUnit(inp if i == 0 else out, out, 2 if i == 0 else 1, groups, s == 0 and i == 0, shuffle, se))
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            inp = out
        self.fc = nn.Linear(inp, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if not self.small:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ShuffleNet V2 (Ma et al.): the official megvii code's widths (a stride-2 unit's projection
# branch keeps its input's width) unless split == "half" (torchvision's: each branch makes half).
# Module names follow torchvision so that state dicts are shared.
V2_WIDTHS = {"0.5": [24, 48, 96, 192, 1024], "1.0": [24, 116, 232, 464, 1024],
             "1.5": [24, 176, 352, 704, 1024], "2.0": [24, 244, 488, 976, 2048]}


class ShuffleV2Unit(nn.Module):
    def __init__(self, inp, out, stride, split):
        super().__init__()
        self.stride = stride
        mid = out // 2
        proj = (inp if split == "input" else out // 2) if stride == 2 else 0
        main_out = out - proj if stride == 2 else out // 2
        if stride == 2:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, proj, 1, bias=False), nn.BatchNorm2d(proj), nn.ReLU())
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride == 2 else out // 2, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.Conv2d(mid, main_out, 1, bias=False), nn.BatchNorm2d(main_out), nn.ReLU())

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            y = torch.cat((a, self.branch2(b)), 1)
        else:
            y = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return paper_channel_shuffle(y, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, scale, num_classes=1000, in_ch=3, small=False, split="input", widths=None):
        super().__init__()
        conv1, s2, s3, s4, conv5 = V2_WIDTHS[scale] if widths is None else [widths["conv1"], *widths["stages"], widths["conv5"]]
        self.small = small
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch, conv1, 3, 1 if small else 2, 1, bias=False), nn.BatchNorm2d(conv1), nn.ReLU())
        inp = conv1
        for s, (out, rep) in enumerate(zip([s2, s3, s4], [4, 8, 4])):
            setattr(self, f"stage{s + 2}", nn.Sequential(*[ShuffleV2Unit(inp if i == 0 else out, out, 2 if i == 0 else 1, split) for i in range(rep)]))
            inp = out
        self.conv5 = nn.Sequential(nn.Conv2d(inp, conv5, 1, bias=False), nn.BatchNorm2d(conv5), nn.ReLU())
        self.fc = nn.Linear(conv5, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        if not self.small:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


class DepthwiseSeparable(nn.Module):
    def __init__(self, inp, out, stride):
        super().__init__()
        self.dwconv = nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False)
        self.bn1 = nn.BatchNorm2d(inp)
        self.pwconv = nn.Conv2d(inp, out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)

    def forward(self, x):
        return F.relu(self.bn2(self.pwconv(F.relu(self.bn1(self.dwconv(x))))))


MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    def __init__(self, alpha, num_classes=1000, in_ch=3, small=False):
        super().__init__()
        width = lambda c: max(1, int(c * alpha))
        ch = width(32)
        self.conv1 = nn.Conv2d(in_ch, ch, 3, 1 if small else 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        blocks = []
        for out, stride in MOBILENET_BLOCKS:
            blocks.append(DepthwiseSeparable(ch, width(out), stride))
            ch = width(out)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class AlexNet(nn.Module):
    """Krizhevsky et al.'s two-tower AlexNet (groups=2 in conv2, conv4, conv5), without LRN."""

    def __init__(self, num_classes=1000, in_ch=3, size=224):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 96, 11, 4, 2)
        self.conv2 = nn.Conv2d(96, 256, 5, 1, 2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, 1, 1)
        self.conv4 = nn.Conv2d(384, 384, 3, 1, 1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, 1, 1, groups=2)
        side = (size + 4 - 11) // 4 + 1
        for _ in range(3):
            side = (side - 3) // 2 + 1
        self.fc6 = nn.Linear(256 * side * side, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 3, 2)
        x = F.relu(self.conv4(F.relu(self.conv3(x))))
        x = F.max_pool2d(F.relu(self.conv5(x)), 3, 2)
        return self.fc8(F.relu(self.fc7(F.relu(self.fc6(torch.flatten(x, 1))))))


def build(name, num_classes=1000, in_ch=3, small=False, widths=None):
    if name == "alexnet":
        return AlexNet(num_classes, in_ch)
    if name.startswith("mobilenet_v1_"):
        return MobileNetV1(float(name.split("_")[2]), num_classes, in_ch, small)
    if name.startswith("shufflenet_v2_"):
        return ShuffleNetV2(name.split("_")[2][:-1], num_classes, in_ch, small, widths=widths)
    parts = name.split("_")  # shufflenet v1 g3 1.0x [variant]
    groups, scale = int(parts[2][1:]), float(parts[3][:-1])
    variant = parts[4] if len(parts) > 4 else ""
    return ShuffleNet(groups, scale, variant != "noshuffle", variant == "se", variant == "shallow", num_classes, in_ch, small)


def registered_names():
    names = []
    for suffix in ["", "_noshuffle", "_se", "_shallow"]:
        for g in [1, 2, 3, 4, 8]:
            for s in ["0.25", "0.5", "1.0", "1.5", "2.0"]:
                names.append(f"shufflenet_v1_g{g}_{s}x{suffix}")
    names += [f"mobilenet_v1_{a}" for a in ["0.25", "0.5", "0.75", "1.0"]] + ["alexnet"]
    names += [f"shufflenet_v2_{s}x" for s in ["0.5", "1.0", "1.5", "2.0"]]
    return names


def count_complexity(model, size):
    """Multiply-adds of convolutions and linear layers, by forward hooks; trainable parameters."""
    macs = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs[0] += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            macs[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return macs[0], sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Fixtures.


def op_cases(gen):
    """(name, op, attrs, inputs, output) for every op, on odd shapes."""
    r = lambda *shape: torch.randn(*shape, generator=gen)
    cases = []

    def conv(name, x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        top, left, bottom, right = pad
        y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride, 0, dilation, groups)
        attrs = {"stride": list(stride), "padding": list(pad), "dilation": list(dilation), "groups": groups}
        cases.append((name, "conv2d", attrs, [x, w] + ([b] if b is not None else []), y))

    conv("conv_dense_3x3", r(2, 5, 7, 7), r(4, 5, 3, 3), pad=(1, 1, 1, 1))
    conv("conv_stride2_odd_bias", r(1, 6, 9, 9), r(8, 6, 3, 3), r(8), stride=(2, 2), pad=(1, 1, 1, 1))
    conv("conv_grouped_1x1_g3", r(2, 9, 5, 5), r(6, 3, 1, 1), groups=3)
    conv("conv_grouped_1x1_g8", r(1, 16, 3, 3), r(24, 2, 1, 1), groups=8)
    conv("conv_depthwise_s2_odd", r(1, 7, 7, 7), r(7, 1, 3, 3), stride=(2, 2), pad=(1, 1, 1, 1), groups=7)
    conv("conv_depthwise_1x1_spatial", r(2, 5, 1, 1), r(5, 1, 3, 3), pad=(1, 1, 1, 1), groups=5)
    conv("conv_1x1_spatial_g4", r(2, 12, 1, 1), r(8, 3, 1, 1), groups=4)
    conv("conv_5x5_s2_bias", r(1, 3, 11, 11), r(6, 3, 5, 5), r(6), stride=(2, 2), pad=(2, 2, 2, 2))
    conv("conv_rect_kernel", r(1, 2, 6, 5), r(3, 2, 3, 1), stride=(2, 1), pad=(1, 0, 1, 0))
    conv("conv_dilation2", r(1, 3, 9, 9), r(2, 3, 3, 3), pad=(2, 2, 2, 2), dilation=(2, 2))
    conv("conv_11x11_s4_alexnet", r(1, 3, 35, 35), r(4, 3, 11, 11), r(4), stride=(4, 4), pad=(2, 2, 2, 2))
    conv("conv_grouped_3x3_g2", r(1, 6, 5, 5), r(4, 3, 3, 3), pad=(1, 1, 1, 1), groups=2)
    conv("conv_asymmetric_pad", r(1, 2, 5, 6), r(3, 2, 3, 3), stride=(2, 2), pad=(0, 1, 1, 0))

    def bn(name, x, eps):
        c = x.shape[1]
        stats = [torch.rand(c, generator=gen) + 0.5, r(c) * 0.3, r(c) * 0.3, torch.rand(c, generator=gen) + 0.2]
        y = F.batch_norm(x, stats[2], stats[3], stats[0], stats[1], False, 0.0, eps)
        cases.append((name, "batchNorm", {"eps": eps}, [x, stats[0], stats[1], stats[2], stats[3]], y))

    bn("batchnorm_odd", r(2, 7, 5, 5), 1e-5)
    bn("batchnorm_1x1_spatial", r(1, 3, 1, 1), 1e-3)

    x = r(2, 3, 4, 5)
    x[0, 0, 0, :2] = 0
    cases.append(("relu", "relu", {}, [x], F.relu(x)))
    x = r(2, 5) * 10
    x[0, 0], x[0, 1] = 30, -30
    cases.append(("sigmoid", "sigmoid", {}, [x], torch.sigmoid(x)))
    x = r(1, 4, 3, 3) * 4
    cases.append(("clip_relu6", "clip", {"min": 0, "max": 6}, [x], torch.clamp(x, 0, 6)))
    a, b = r(2, 3, 5, 5), r(2, 3, 5, 5)
    cases.append(("add", "add", {}, [a, b], a + b))
    x, s = r(2, 6, 3, 3), torch.rand(2, 6, 1, 1, generator=gen)
    cases.append(("mul_channels", "mulChannels", {}, [x, s], x * s))

    def pool(name, op, x, k, st, p, include_pad=True):
        attrs = {"kernel": [k, k], "stride": [st, st], "padding": [p, p, p, p]}
        if op == "maxPool2d":
            y = F.max_pool2d(x, k, st, p)
        else:
            y = F.avg_pool2d(x, k, st, p, count_include_pad=include_pad)
            attrs["countIncludePad"] = include_pad
        cases.append((name, op, attrs, [x], y))

    pool("maxpool_3x3s2p1_odd7", "maxPool2d", r(1, 3, 7, 7), 3, 2, 1)
    pool("maxpool_3x3s2p1_odd9", "maxPool2d", r(1, 2, 9, 9), 3, 2, 1)
    pool("maxpool_3x3s2p1_1x1", "maxPool2d", r(1, 2, 1, 1), 3, 2, 1)
    pool("maxpool_3x3s2p1_even8", "maxPool2d", r(2, 3, 8, 8), 3, 2, 1)
    pool("maxpool_3x3s2_nopad_13", "maxPool2d", r(1, 2, 13, 13), 3, 2, 0)
    pool("avgpool_shortcut_odd7", "avgPool2d", r(1, 3, 7, 7), 3, 2, 1)
    pool("avgpool_shortcut_1x1", "avgPool2d", r(1, 2, 1, 1), 3, 2, 1)
    pool("avgpool_shortcut_even8", "avgPool2d", r(2, 3, 8, 8), 3, 2, 1)
    pool("avgpool_exclude_pad_odd7", "avgPool2d", r(1, 3, 7, 7), 3, 2, 1, include_pad=False)
    pool("avgpool_2x2s2_odd5", "avgPool2d", r(1, 2, 5, 5), 2, 2, 0)

    x = r(2, 5, 7, 7)
    cases.append(("global_avgpool", "globalAvgPool", {}, [x], F.adaptive_avg_pool2d(x, 1)))
    x = r(1, 3, 1, 1)
    cases.append(("global_avgpool_1x1", "globalAvgPool", {}, [x], F.adaptive_avg_pool2d(x, 1)))

    for name, shape, g in [("shuffle_g3", (2, 12, 3, 3), 3), ("shuffle_g8", (1, 24, 2, 2), 8), ("shuffle_g2_1x1", (1, 6, 1, 1), 2), ("shuffle_g1", (1, 5, 2, 2), 1)]:
        x = r(*shape)
        cases.append((name, "channelShuffle", {"groups": g}, [x], paper_channel_shuffle(x, g)))
    # The official code's variant with g = 3 is the paper's shuffle with C/g = 4 groups.
    x = r(1, 12, 2, 2)
    cases.append(("shuffle_official_g3", "channelShuffle", {"groups": 4}, [x], official_channel_shuffle(x, 3)))

    xs = [r(2, 3, 4, 4), r(2, 5, 4, 4), r(2, 1, 4, 4)]
    cases.append(("concat3", "concat", {}, xs, torch.cat(xs, 1)))
    x = r(2, 3, 2, 2)
    cases.append(("flatten", "flatten", {}, [x], torch.flatten(x, 1)))
    x, w, b = r(3, 7), r(5, 7), r(5)
    cases.append(("linear_bias", "linear", {}, [x, w, b], F.linear(x, w, b)))
    x, w = r(1, 1), r(4, 1)
    cases.append(("linear_no_bias", "linear", {}, [x, w], F.linear(x, w)))
    x = r(3, 10) * 20
    cases.append(("softmax", "softmax", {}, [x], torch.softmax(x, -1)))
    return cases


NETWORKS = [
    # name, options (as passed to createModel), input shape
    ("shufflenet_v1_g3_1.0x", {"numClasses": 10}, [1, 3, 224, 224]),
    ("shufflenet_v1_g8_0.5x", {"numClasses": 10}, [2, 3, 65, 65]),
    ("shufflenet_v1_g3_0.5x_noshuffle", {"numClasses": 10}, [1, 3, 64, 64]),
    ("shufflenet_v1_g2_0.25x_se", {"numClasses": 10}, [1, 3, 97, 97]),
    ("mobilenet_v1_0.25", {"numClasses": 10}, [1, 3, 75, 75]),
    ("shufflenet_v1_g1_0.25x_shallow", {"numClasses": 10, "inputChannels": 1, "smallInput": True}, [2, 1, 28, 28]),
    ("shufflenet_v1_g4_0.5x", {"numClasses": 10, "smallInput": True}, [1, 3, 32, 32]),
    # Appended last, so that the networks above keep their random draws.
    # Explicit narrow widths keep the file small; Stage 2's first unit still splits 24 + 16.
    ("shufflenet_v2_1.0x", {"numClasses": 10, "widths": {"conv1": 24, "stages": [40, 80, 160], "conv5": 256}}, [1, 3, 96, 80]),
    ("shufflenet_v2_0.5x", {"numClasses": 10, "inputChannels": 1, "smallInput": True}, [2, 1, 28, 28]),
]


def main():
    gen, meta = start(OUT, 20180701, "make_fixtures.py")

    tensors, cases = {}, []
    for name, op, attrs, inputs, output in op_cases(gen):
        for i, t in enumerate(inputs):
            tensors[f"{name}/in{i}"] = t
        tensors[f"{name}/out"] = output
        cases.append({"name": name, "op": op, "attrs": attrs, "inputs": len(inputs)})
    write_safetensors(os.path.join(OUT, "ops.safetensors"), tensors, {**meta, "cases": json.dumps(cases)})
    print(f"ops.safetensors: {len(cases)} cases")

    tensors, nets = {}, []
    for name, options, shape in NETWORKS:
        model = randomize(build(name, options.get("numClasses", 1000), options.get("inputChannels", 3), options.get("smallInput", False), options.get("widths")), gen)
        x = torch.randn(*shape, generator=gen)
        with torch.no_grad():
            logits = model(x)
        for key, t in model.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                tensors[f"{name}/{key}"] = t
        tensors[f"{name}/input"] = x
        tensors[f"{name}/logits"] = logits
        nets.append({"name": name, "options": options, "input": shape})
        print(f"networks.safetensors: {name} {list(logits.shape)}")
    write_safetensors(os.path.join(OUT, "networks.safetensors"), tensors, {**meta, "networks": json.dumps(nets)})

    table = {}
    for name in registered_names():
        macs, params = count_complexity(build(name).eval(), 224)
        table[name] = {"macs": macs, "params": params}
    with open(os.path.join(OUT, "complexity.json.tmp"), "w") as f:
        json.dump({**meta, "inputSize": 224, "networks": table}, f, indent=1)
    os.replace(os.path.join(OUT, "complexity.json.tmp"), os.path.join(OUT, "complexity.json"))
    print(f"complexity.json: {len(table)} networks")


if __name__ == "__main__":
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    sys.exit(main())
