#!/usr/bin/python3
"""Writes the PyTorch-checkpoint fixtures that test/torch*.test.ts read.

Run with Debian's PyTorch (apt-get install python3-torch):

    /usr/bin/python3 scripts/make_torch_fixtures.py          # or: npm run fixtures:torch

It writes, under test/fixtures/torch/:
  *.pth / *.pth.tar   checkpoints made by torch.save, in the zip format (torch >= 1.6) and the legacy
                      format (_use_new_zipfile_serialization=False), wrapped or not, with or without
                      the DataParallel `module.` prefix, in four module layouts:
                        official    megvii-model/ShuffleNet-Series ShuffleNetV1 (re-implemented below
                                    from its published module structure, random weights)
                        mmpretrain  open-mmlab's ShuffleNetV1 backbone + linear head key layout
                        ours        a state dict with this library's parameter names
                        torchvision torchvision's own ShuffleNetV2 class (small widths)
  malicious_*.pth     hand-made pickles that name os.system / builtins.eval, and a whole pickled
                      nn.Module: the importer must refuse them without running anything
  expected.safetensors  PyTorch's logits for every checkpoint, plus a JSON list of the cases

Inputs are not stored: they are a hash of the element index (see `hash_input`), which the tests
compute exactly in TypeScript. The networks here are written from the module structure of the
official code and of mmpretrain, independently of the TypeScript importer.
"""
import collections
import json
import math
import os
import pickle
import struct
import sys
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "torch")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import randomize as randomize_any, start, write_safetensors  # noqa: E402


def randomize(model, gen):
    """He-scaled weights, and num_batches_tracked as a trained checkpoint has it."""
    return randomize_any(model, gen, weight_gain=2.0, batches_tracked=1234)




def hash_input(shape):
    """x[i] = (i * 2654435761 mod 2^32) / 2^32 * 4 - 2: exact in float64 in Python and JavaScript."""
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    h = (i * 2654435761) % (2**32)
    return (h.to(torch.float64) / 2**32 * 4 - 2).to(torch.float32).reshape(shape)


# ----------------------------------------------------------------------------------------------
# megvii's official module layout: first_conv (conv, BN, ReLU), maxpool, features.N with
# branch_main_1 (conv1x1, BN, ReLU, dwconv3x3, BN) and branch_main_2 (conv1x1, BN), shuffle AFTER
# the depthwise conv + BN with a reshape to (C/g, g), classifier.0 without bias, AvgPool2d(7).


def official_shuffle(x, g):
    n, c, h, w = x.shape
    return x.reshape(n, c // g, g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class OfficialUnit(nn.Module):
    def __init__(self, inp, out, groups, first, stride):
        super().__init__()
        self.stride, self.groups = stride, groups
        mid = out // 4
        branch = out - inp if stride == 2 else out
        self.branch_main_1 = nn.Sequential(
            nn.Conv2d(inp, mid, 1, 1, 0, groups=1 if first else groups, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
        )
        self.branch_main_2 = nn.Sequential(nn.Conv2d(mid, branch, 1, 1, 0, groups=groups, bias=False), nn.BatchNorm2d(branch))
        if stride == 2:
            self.branch_proj = nn.AvgPool2d(3, 2, 1)

    def forward(self, x):
        y = self.branch_main_1(x)
        if self.groups > 1:
            y = official_shuffle(y, self.groups)
        y = self.branch_main_2(y)
        if self.stride == 1:
            return F.relu(y + x)
        return torch.cat((self.branch_proj(x), F.relu(y)), 1)


class OfficialShuffleNetV1(nn.Module):
    def __init__(self, groups, widths, n_class):
        super().__init__()
        conv1, stages = widths
        self.first_conv = nn.Sequential(nn.Conv2d(3, conv1, 3, 2, 1, bias=False), nn.BatchNorm2d(conv1), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        units, inp = [], conv1
        for s, (out, repeat) in enumerate(zip(stages, [4, 8, 4])):
            for i in range(repeat):
                units.append(OfficialUnit(inp, out, groups, s == 0 and i == 0, 2 if i == 0 else 1))
                inp = out
        self.features = nn.Sequential(*units)
        self.globalpool = nn.AvgPool2d(7)
        self.classifier = nn.Sequential(nn.Linear(inp, n_class, bias=False))
        self.last = inp

    def forward(self, x):
        x = self.features(self.maxpool(self.first_conv(x)))
        return self.classifier(self.globalpool(x).reshape(-1, self.last))


# ----------------------------------------------------------------------------------------------
# mmpretrain's key layout: backbone.conv1.{conv,bn}, backbone.layers.S.I.{g_conv_1x1_compress,
# depthwise_conv3x3_bn, g_conv_1x1_expand}.{conv,bn}, head.fc; the paper's shuffle (view (g, C/g))
# after the depthwise conv + BN; global average pooling.


class ConvModule(nn.Module):
    def __init__(self, inp, out, k, stride, groups, act):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.act = act

    def forward(self, x):
        y = self.bn(self.conv(x))
        return F.relu(y) if self.act else y


class MmUnit(nn.Module):
    def __init__(self, inp, out, groups, first, concat):
        super().__init__()
        self.groups, self.concat = groups, concat
        mid = out // 4
        branch = out - inp if concat else out
        self.g_conv_1x1_compress = ConvModule(inp, mid, 1, 1, 1 if first else groups, True)
        self.depthwise_conv3x3_bn = ConvModule(mid, mid, 3, 2 if concat else 1, mid, False)
        self.g_conv_1x1_expand = ConvModule(mid, branch, 1, 1, groups, False)

    def forward(self, x):
        y = self.depthwise_conv3x3_bn(self.g_conv_1x1_compress(x))
        if self.groups > 1:
            n, c, h, w = y.shape
            y = y.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
        y = self.g_conv_1x1_expand(y)
        if self.concat:
            return torch.cat((F.avg_pool2d(x, 3, 2, 1), F.relu(y)), 1)
        return F.relu(x + y)


class MmBackbone(nn.Module):
    def __init__(self, groups, widths):
        super().__init__()
        conv1, stages = widths
        self.conv1 = ConvModule(3, conv1, 3, 2, 1, True)
        self.layers = nn.ModuleList()
        inp = conv1
        for s, (out, repeat) in enumerate(zip(stages, [4, 8, 4])):
            self.layers.append(nn.Sequential(*[MmUnit(inp if i == 0 else out, out, groups, s == 0 and i == 0, i == 0) for i in range(repeat)]))
            inp = out

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 3, 2, 1)
        for layer in self.layers:
            x = layer(x)
        return x


class MmHead(nn.Module):
    def __init__(self, inp, n_class):
        super().__init__()
        self.fc = nn.Linear(inp, n_class)


class MmClassifier(nn.Module):
    def __init__(self, groups, widths, n_class):
        super().__init__()
        self.backbone = MmBackbone(groups, widths)
        self.head = MmHead(widths[1][-1], n_class)

    def forward(self, x):
        return self.head.fc(torch.flatten(F.adaptive_avg_pool2d(self.backbone(x), 1), 1))


def with_prefix(sd, prefix):
    return collections.OrderedDict((prefix + k, v) for k, v in sd.items())


def save(obj, name, legacy):
    path = os.path.join(OUT, name)
    torch.save(obj, path + ".tmp", _use_new_zipfile_serialization=not legacy)
    os.replace(path + ".tmp", path)
    return os.path.getsize(path)


def strided_copy(sd):
    """The same values, but the classifier weight stored transposed (a non-contiguous view) and the
    first BN's weight and bias sharing one storage at different offsets."""
    sd = collections.OrderedDict(sd)
    key = next(k for k in sd if k.endswith("classifier.0.weight"))
    sd[key] = sd[key].t().contiguous().t()
    assert not sd[key].is_contiguous()
    w, b = next(k for k in sd if k.endswith("first_conv.1.weight")), next(k for k in sd if k.endswith("first_conv.1.bias"))
    both = torch.stack([sd[w], sd[b]])
    sd[w], sd[b] = both[0], both[1]
    return sd


def official_width(groups, scale):
    """stage_out_channels of the official network.py for g = 3 and g = 8."""
    table = {
        (3, "0.5x"): (12, [120, 240, 480]),
        (3, "1.0x"): (24, [240, 480, 960]),
        (8, "0.5x"): (16, [192, 384, 768]),
        (8, "1.0x"): (24, [384, 768, 1536]),
    }
    return table[(groups, scale)]


def malicious(name, payload):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(payload)


def main():
    gen, meta = start(OUT, 1707_01083, "make_torch_fixtures.py")
    expected, cases = {}, []

    def case(file, model, shape, layout, arch=None, extra=None):
        x = hash_input(shape)
        with torch.no_grad():
            logits = model(x)
        expected[f"{file}/logits"] = logits
        cases.append({"file": file, "layout": layout, "input": shape, **({"arch": arch} if arch else {}), **(extra or {})})
        print(f"{file}: {layout}, logits {list(logits.shape)}, {os.path.getsize(os.path.join(OUT, file))} bytes")

    # Official widths, 10 classes, 224x224 (AvgPool2d(7) needs a 7x7 final map). Wrapped in
    # {"state_dict": ...} with the DataParallel `module.` prefix, as the official train.py saves.
    g3 = randomize(OfficialShuffleNetV1(3, official_width(3, "0.5x"), 10), gen)
    save({"state_dict": with_prefix(g3.state_dict(), "module.")}, "official_g3_0.5x.zip.pth.tar", legacy=False)
    case("official_g3_0.5x.zip.pth.tar", g3, [1, 3, 224, 224], "official", extra={"groups": 3, "shuffle": "paper"})
    g8 = randomize(OfficialShuffleNetV1(8, official_width(8, "0.5x"), 10), gen)
    save({"state_dict": with_prefix(g8.state_dict(), "module.")}, "official_g8_0.5x.legacy.pth.tar", legacy=True)
    case("official_g8_0.5x.legacy.pth.tar", g8, [1, 3, 224, 224], "official", extra={"groups": 8, "shuffle": "official"})

    # Tiny official-layout networks (the importer infers any widths): the other format/wrapper
    # combinations, half and double storages, strided views and shared storages. 200x200 inputs
    # also end on a 7x7 map.
    tiny_g3 = randomize(OfficialShuffleNetV1(3, (6, [24, 48, 96]), 5), gen)
    save(tiny_g3.state_dict(), "official_tiny_g3.zip.pth", legacy=False)
    case("official_tiny_g3.zip.pth", tiny_g3, [2, 3, 200, 200], "official", extra={"groups": 3, "shuffle": "paper"})
    save(with_prefix(tiny_g3.state_dict(), "module."), "official_tiny_g3.legacy.pth", legacy=True)
    case("official_tiny_g3.legacy.pth", tiny_g3, [2, 3, 200, 200], "official", extra={"groups": 3, "shuffle": "paper"})
    save({"model": strided_copy(tiny_g3.state_dict())}, "official_tiny_g3_strided.legacy.pth", legacy=True)
    case("official_tiny_g3_strided.legacy.pth", tiny_g3, [2, 3, 200, 200], "official", extra={"groups": 3, "shuffle": "paper"})
    save({"state_dict": strided_copy(tiny_g3.state_dict())}, "official_tiny_g3_strided.zip.pth", legacy=False)
    case("official_tiny_g3_strided.zip.pth", tiny_g3, [2, 3, 200, 200], "official", extra={"groups": 3, "shuffle": "paper"})
    # g = 4 with bottlenecks 16/32/64 (C/g² integral): relabelled into the paper's order.
    tiny_g4 = randomize(OfficialShuffleNetV1(4, (8, [64, 128, 256]), 5), gen)
    save({"state_dict": tiny_g4.state_dict()}, "official_tiny_g4.zip.pth.tar", legacy=False)
    case("official_tiny_g4.zip.pth.tar", tiny_g4, [1, 3, 200, 200], "official", extra={"groups": 4, "shuffle": "paper"})
    # Half and double storages: the model in that precision, saved as such.
    tiny_g8 = randomize(OfficialShuffleNetV1(8, (16, [64, 128, 256]), 5), gen)
    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in tiny_g8.state_dict().items())
    tiny_g8.load_state_dict(collections.OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in half.items()))
    save(half, "official_tiny_g8_half.legacy.pth", legacy=True)
    case("official_tiny_g8_half.legacy.pth", tiny_g8, [1, 3, 200, 200], "official", extra={"groups": 8, "shuffle": "official"})
    double = collections.OrderedDict((k, v.double() if v.is_floating_point() else v) for k, v in tiny_g3.state_dict().items())
    save(double, "official_tiny_g3_double.zip.pt", legacy=False)
    case("official_tiny_g3_double.zip.pt", tiny_g3, [1, 3, 200, 200], "official", extra={"groups": 3, "shuffle": "paper"})

    # mmpretrain layout, {"meta": ..., "state_dict": ...} as its checkpoints are saved.
    mm = randomize(MmClassifier(3, (6, [24, 48, 96]), 7), gen)
    save({"meta": {"mmcls_version": "0.x", "CLASSES": ("a", "b"), "epoch": 300}, "state_dict": mm.state_dict()}, "mmpretrain_tiny_g3.zip.pth", legacy=False)
    case("mmpretrain_tiny_g3.zip.pth", mm, [1, 3, 64, 64], "mmpretrain", extra={"groups": 3})
    save({"meta": {"epoch": 300}, "state_dict": with_prefix(mm.state_dict(), "module.")}, "mmpretrain_tiny_g3.legacy.pth", legacy=True)
    case("mmpretrain_tiny_g3.legacy.pth", mm, [1, 3, 64, 64], "mmpretrain", extra={"groups": 3})

    # Our own layout (the paper's network from scripts/make_fixtures.py), needs --arch.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_fixtures

    ours = randomize(make_fixtures.build("shufflenet_v1_g3_0.25x", 10), gen)
    save(ours.state_dict(), "ours_g3_0.25x.zip.pth", legacy=False)
    case("ours_g3_0.25x.zip.pth", ours, [1, 3, 64, 64], "ours", arch="shufflenet_v1_g3_0.25x")

    # torchvision's ShuffleNet V2 (its own class, with small widths: conv1 24 and Stage 2 32, so that
    # the first unit's branches are torchvision's halves, not the official code's 24 + 8).
    from torchvision.models.shufflenetv2 import ShuffleNetV2 as TorchvisionShuffleNetV2

    tv = randomize(TorchvisionShuffleNetV2([4, 8, 4], [24, 32, 48, 64, 96], num_classes=6), gen)
    save(tv.state_dict(), "torchvision_v2_tiny.zip.pth", legacy=False)
    case("torchvision_v2_tiny.zip.pth", tv, [2, 3, 64, 64], "torchvision")
    save({"state_dict": with_prefix(tv.state_dict(), "module.")}, "torchvision_v2_tiny.legacy.pth", legacy=True)
    case("torchvision_v2_tiny.legacy.pth", tv, [1, 3, 50, 50], "torchvision")

    # Hostile files: nothing in them may run. Protocol-2 pickles by hand.
    marker = "/tmp/shufflenet-pwned"
    cmd = f"touch {marker}".encode()
    os_system = b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    malicious("malicious_os_system.pth", os_system)
    posix = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    with zipfile.ZipFile(os.path.join(OUT, "malicious_posix_system.zip.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", posix)
        z.writestr("archive/version", "3\n")
    code = f"__import__('os').system('touch {marker}')".encode()
    evil = b"\x80\x02}X\x0a\x00\x00\x00state_dictcbuiltins\neval\nX" + struct.pack("<I", len(code)) + code + b"\x85Rs."
    header = b"".join(pickle.dumps(v, protocol=2) for v in [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}])
    malicious("malicious_eval.legacy.pth", header + evil)
    # A whole pickled module (torch.save(model)): legitimate, but it names a class, so it is refused.
    save(nn.Sequential(nn.Conv2d(1, 1, 1)), "whole_module.zip.pth", legacy=False)

    write_safetensors(os.path.join(OUT, "expected.safetensors"), expected, {**meta, "cases": json.dumps(cases), "marker": marker})
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(cases)} cases, {total} bytes in {OUT}")


if __name__ == "__main__":
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    sys.exit(main())
