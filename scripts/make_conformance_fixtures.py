#!/usr/bin/python3
"""Writes test/fixtures/conformance.safetensors: the cases of the executor conformance suite
(test/conformance.test.ts) and PyTorch's answers to them.

Run with Debian's PyTorch (apt-get install python3-torch):

    /usr/bin/python3 scripts/make_conformance_fixtures.py     # or: npm run fixtures:conformance

Each case is a tiny graph, written as a list of nodes in the header's `cases` metadata (JSON), so
that the TypeScript suite builds exactly the graph evaluated here. The graph's input is `x`; other
operands are parameters stored under `<case>/p/<name>`. For every case the file holds:

  <case>/x                   the input
  <case>/p/<name>            parameters and batch-norm running statistics
  <case>/eval                the output in inference mode (batch norm with running statistics)
  <case>/train               the output in training mode (batch statistics), only where it differs
  <case>/labels, <case>/loss labels and the mean cross-entropy of the training-mode output,
                             flattened to [N, K] (the training plan's loss; its gradient is the
                             upstream gradient every executor back-propagates)
  <case>/grad/<name|x>       ∂loss/∂ every trainable parameter and ∂loss/∂x
  <case>/running/<name>      running statistics after one training-mode forward (momentum update)

Sampling: enumerating the cross product of every attribute is thousands of graphs. Instead, each
sweep draws `count` cases where every attribute takes each of its values about equally often, in a
seeded random pairing: the values of one attribute are repeated to `count` entries and shuffled with
a fixed seed, independently per attribute (`balanced` below). Every single value is covered, pairs
are spread, and the same file comes out on every run. The shapes the fast kernels specialise and
the fused chains are listed explicitly after the sweeps.
"""
import json
import math
import os
import random
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "conformance.safetensors")
SIZE_LIMIT = 1_700_000  # bytes; the fixture is committed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import FIXTURE_VERSION, write_safetensors  # noqa: E402


# ----------------------------------------------------------------------------------------------
# The node interpreter: the same node list the TypeScript suite turns into a Graph.

TRAINABLE = lambda name: not name.endswith("running_mean") and not name.endswith("running_var")


def paper_channel_shuffle(x, groups):
    """The paper: channels viewed as (g, n), transposed to (n, g), flattened."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def apply_node(node, values, params, training):
    """Evaluates one node. In training mode batch norm uses batch statistics and updates the
    running statistics held in `params` (as PyTorch's train mode does)."""
    op, a = node["op"], node["attrs"]
    xs = [values[i] for i in node["inputs"]]
    ps = [params[p] for p in node["params"]]
    if op == "conv2d":
        top, left, bottom, right = a["padding"]
        x = F.pad(xs[0], (left, right, top, bottom))
        return F.conv2d(x, ps[0], ps[1] if len(ps) > 1 else None, a["stride"], 0, a["dilation"], a["groups"])
    if op == "batchNorm":
        gamma, beta, mean, var = ps
        if training:
            return F.batch_norm(xs[0], mean, var, gamma, beta, True, a["momentum"], a["eps"])
        return F.batch_norm(xs[0], mean, var, gamma, beta, False, 0.0, a["eps"])
    if op == "relu":
        return F.relu(xs[0])
    if op == "add":
        return xs[0] + xs[1]
    if op == "concat":
        return torch.cat(xs, 1)
    if op == "channelShuffle":
        return paper_channel_shuffle(xs[0], a["groups"])
    if op == "slice":
        assert a["axis"] == 1
        return xs[0][:, a["start"]:a["end"]]
    if op == "clip":
        return torch.clamp(xs[0], a["min"], a["max"])
    if op == "sigmoid":
        return torch.sigmoid(xs[0])
    if op == "hardSigmoid":
        return torch.clamp(xs[0] * a["alpha"] + a["beta"], 0, 1)
    if op == "hardSwish":
        return xs[0] * torch.clamp(xs[0] * a["alpha"] + a["beta"], 0, 1)
    if op in ("broadcastMul", "mulChannels"):
        return xs[0] * xs[1]
    if op in ("maxPool2d", "avgPool2d"):
        # Symmetric padding only: PyTorch's pools take one padding per axis.
        assert a["padding"][0] == a["padding"][2] and a["padding"][1] == a["padding"][3]
        pad = (a["padding"][0], a["padding"][1])
        if op == "maxPool2d":
            return F.max_pool2d(xs[0], a["kernel"], a["stride"], pad)
        return F.avg_pool2d(xs[0], a["kernel"], a["stride"], pad, count_include_pad=a["countIncludePad"])
    if op == "globalAvgPool":
        return xs[0].mean(dim=(2, 3), keepdim=True)
    if op == "flatten":
        return xs[0].flatten(1)
    if op == "linear":
        return F.linear(xs[0], ps[0], ps[1] if len(ps) > 1 else None)
    raise ValueError(f"unknown op {op}")


def run(case, x, params, training):
    values = {"x": x}
    for node in case["nodes"]:
        values[node["id"]] = apply_node(node, values, params, training)
    return values[case["output"]]


# ----------------------------------------------------------------------------------------------
# Case builder: records nodes and makes seeded parameters; shapes come from evaluating as it goes.


class Case:
    def __init__(self, name, family, input_shape, gen):
        self.gen = gen
        self.spec = {"name": name, "family": family, "input": list(input_shape), "nodes": [], "output": "x"}
        self.x = torch.randn(*input_shape, generator=gen)
        self.params = {}
        self.values = {"x": self.x}

    def shape(self, value):
        return tuple(self.values[value].shape)

    def _node(self, op, inputs, params, attrs):
        node = {"id": f"{op}{len(self.spec['nodes'])}", "op": op, "inputs": inputs, "params": params, "attrs": attrs}
        self.values[node["id"]] = apply_node(node, self.values, self.params, False)
        self.spec["nodes"].append(node)
        self.spec["output"] = node["id"]
        return node["id"]

    def _param(self, name, tensor):
        name = f"{len(self.spec['nodes'])}.{name}"
        self.params[name] = tensor
        return name

    def randn(self, *shape):
        return torch.randn(*shape, generator=self.gen)

    def conv(self, src, out, kernel=(1, 1), stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, bias=False, gain=1.0):
        c = self.shape(src)[1]
        fan_in = c // groups * kernel[0] * kernel[1]
        ps = [self._param("weight", self.randn(out, c // groups, *kernel) * gain / math.sqrt(fan_in))]
        if bias:
            ps.append(self._param("bias", self.randn(out) * 0.5))
        attrs = {"stride": list(stride), "padding": list(padding), "dilation": list(dilation), "groups": groups}
        return self._node("conv2d", [src], ps, attrs)

    def bn(self, src, eps=1e-5, momentum=0.1):
        c = self.shape(src)[1]
        ps = [
            self._param("weight", torch.rand(c, generator=self.gen) + 0.5),
            self._param("bias", self.randn(c) * 0.3),
            self._param("running_mean", self.randn(c) * 0.3),
            self._param("running_var", torch.rand(c, generator=self.gen) + 0.5),
        ]
        return self._node("batchNorm", [src], ps, {"eps": eps, "momentum": momentum})

    def relu(self, src):
        return self._node("relu", [src], [], {})

    def add(self, a, b):
        return self._node("add", [a, b], [], {})

    def concat(self, *parts):
        return self._node("concat", list(parts), [], {})

    def shuffle(self, src, groups):
        return self._node("channelShuffle", [src], [], {"groups": groups})

    def act(self, op, src, **attrs):
        return self._node(op, [src], [], attrs)

    def mul(self, op, a, b):
        return self._node(op, [a, b], [], {})

    def slice(self, src, start, end):
        return self._node("slice", [src], [], {"axis": 1, "start": start, "end": end})

    def pool(self, op, src, kernel, stride, pad, count_include_pad=True):
        attrs = {"kernel": [kernel, kernel], "stride": [stride, stride], "padding": [pad] * 4}
        if op == "avgPool2d":
            attrs["countIncludePad"] = count_include_pad
        return self._node(op, [src], [], attrs)

    def gap(self, src):
        return self._node("globalAvgPool", [src], [], {})

    def flatten(self, src):
        return self._node("flatten", [src], [], {})

    def linear(self, src, out, bias=True):
        f = self.shape(src)[1]
        ps = [self._param("weight", self.randn(out, f) / math.sqrt(f))]
        if bias:
            ps.append(self._param("bias", self.randn(out) * 0.5))
        return self._node("linear", [src], ps, {})

    def pre(self, channels=None):
        """A 1×1 convolution with bias in front of the op under test: it gives the training plan a
        parameter to train, so that the op's backward pass is exercised (the training plan computes
        no input gradient)."""
        return self.conv("x", channels or self.shape("x")[1], bias=True)


def balanced(rng, count, values):
    """`count` entries in which each value appears equally often (±1), in a seeded random order."""
    out = [values[i % len(values)] for i in range(count)]
    rng.shuffle(out)
    return out


def window_fits(size, kernel, stride, pad_lo, pad_hi, dilation=1):
    """At least one output along this axis, and some window reads a real pixel (not only padding:
    an output made of padding alone is zero in every executor and would test nothing)."""
    if size + pad_lo + pad_hi < dilation * (kernel - 1) + 1:
        return False
    outputs = (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1
    return any(0 <= o * stride - pad_lo + j * dilation < size for o in range(outputs) for j in range(kernel))


# ----------------------------------------------------------------------------------------------
# The cases.


def make_cases(gen):
    rng = random.Random(20240610)
    cases = []

    def new(name, family, shape):
        c = Case(name, family, shape, gen)
        cases.append(c)
        return c

    # conv2d, general sweep: groups 1–8, dilation 1–3, stride 1–2 per axis, asymmetric padding 0–2
    # per side, kernels 1–3 per axis, bias on and off, sizes 1–15, channels per group 1, 2, 3 or 5
    # (totals not multiples of 4 or 8 wherever the groups allow), with and without a producer in front.
    n = 56
    sweep = {
        "groups": balanced(rng, n, [1, 2, 3, 4, 5, 6, 7, 8]),
        "dilation": balanced(rng, n, [(1, 1), (2, 2), (3, 3), (1, 2), (2, 1), (1, 3)]),
        "stride": balanced(rng, n, [(1, 1), (2, 2), (1, 2), (2, 1)]),
        "kernel": balanced(rng, n, [(3, 3), (3, 3), (1, 1), (2, 2), (1, 3), (3, 2)]),
        "bias": balanced(rng, n, [True, False]),
        "pre": balanced(rng, n, [True, False]),
        "inPerGroup": balanced(rng, n, [1, 2, 3, 5]),
        "outPerGroup": balanced(rng, n, [1, 2, 3]),
        "batch": balanced(rng, n, [1, 2]),
    }
    for i in range(n):
        g, (dh, dw), (sh, sw), (kh, kw) = (sweep[k][i] for k in ("groups", "dilation", "stride", "kernel"))
        cin, cout = g * sweep["inPerGroup"][i], g * sweep["outPerGroup"][i]
        pad = tuple(rng.randint(0, 2) for _ in range(4))  # top, left, bottom, right
        h, w = rng.randint(1, 15), rng.randint(1, 15)
        # Grow the input until one window fits (small sizes stay small).
        while not window_fits(h, kh, sh, pad[0], pad[2], dh):
            h += 1
        while not window_fits(w, kw, sw, pad[1], pad[3], dw):
            w += 1
        bias, pre, batch = sweep["bias"][i], sweep["pre"][i], sweep["batch"][i]
        name = (
            f"conv2d/k{kh}x{kw} g{g} s{sh}x{sw} d{dh}x{dw} p{','.join(map(str, pad))} "
            f"{'bias' if bias else 'nobias'} {cin}to{cout} {h}x{w} n{batch}{' pre' if pre else ''}"
        )
        c = new(name, "conv2d", (batch, cin, h, w))
        src = c.pre() if pre else "x"
        c.conv(src, cout, (kh, kw), (sh, sw), pad, (dh, dw), g, bias)

    # The shapes the fast kernels specialise.
    # The known training-plan bug (issue 10): dilation 2, one group, no bias.
    for pre in (False, True):
        c = new(f"conv2d/dilation2 groups1 nobias 3x3 p2 3to5 9x9 n2{' pre' if pre else ''}", "conv2d", (2, 3, 9, 9))
        c.conv(c.pre() if pre else "x", 5, (3, 3), padding=(2, 2, 2, 2), dilation=(2, 2))
    # 1×1 pointwise, grouped (ShuffleNet's GConv).
    for i, (g, cin, cout, hw, bias) in enumerate(
        [(1, 3, 5, 7, False), (2, 6, 10, 5, True), (3, 9, 15, 6, False), (3, 15, 6, 1, True),
         (4, 12, 20, 4, False), (8, 8, 24, 3, True), (8, 24, 8, 5, False), (5, 15, 5, 9, True)]
    ):
        batch = 1 + i % 2
        c = new(f"pointwise/g{g} {cin}to{cout} {hw}x{hw} {'bias' if bias else 'nobias'} n{batch}", "conv2d", (batch, cin, hw, hw))
        c.conv(c.pre() if i % 2 else "x", cout, groups=g, bias=bias)
    # Depthwise 3×3, pad 1, stride 1 and 2.
    for i, (ch, hw, stride, bias) in enumerate(
        [(3, 7, 1, False), (5, 1, 1, False), (7, 8, 2, False), (9, 15, 2, True), (6, 2, 2, False),
         (13, 5, 1, True), (10, 11, 1, False), (3, 3, 2, True)]
    ):
        batch = 1 + i % 2
        c = new(f"depthwise/3x3 s{stride} {ch}ch {hw}x{hw} {'bias' if bias else 'nobias'} n{batch}", "conv2d", (batch, ch, hw, hw))
        c.conv(c.pre() if i % 2 else "x", ch, (3, 3), (stride, stride), (1, 1, 1, 1), groups=ch, bias=bias)
    # The 3×3 stride-2 stem (one group).
    for cin, cout, hw, bias in [(3, 12, 15, False), (1, 5, 8, False), (3, 6, 1, True), (2, 9, 9, False)]:
        c = new(f"stem/3x3 s2 p1 {cin}to{cout} {hw}x{hw} {'bias' if bias else 'nobias'}", "conv2d", (2, cin, hw, hw))
        c.conv("x", cout, (3, 3), (2, 2), (1, 1, 1, 1), bias=bias)

    # Batch norm: inference (running statistics) and training (batch statistics, momentum update).
    for i, (ch, hw, batch, eps, momentum) in enumerate(
        [(3, 5, 2, 1e-5, 0.1), (7, 1, 2, 1e-3, 0.3), (5, 4, 1, 1e-5, 0.1), (9, 3, 2, 1e-2, 0.0), (6, 7, 1, 1e-5, 1.0)]
    ):
        c = new(f"batchNorm/{ch}ch {hw}x{hw} n{batch} eps{eps:g} momentum{momentum:g}", "batchNorm", (batch, ch, hw, hw))
        c.bn(c.pre() if i % 2 else "x", eps, momentum)

    # Element-wise and channel moves, each behind a trainable producer (see Case.pre).
    for ch, hw in [(3, 5), (7, 1), (5, 9)]:
        c = new(f"relu/{ch}ch {hw}x{hw}", "relu", (2, ch, hw, hw))
        c.relu(c.pre())
    c = new("relu/behind 3x3 conv 5ch 6x6", "relu", (2, 5, 6, 6))
    c.relu(c.conv("x", 5, (3, 3), padding=(1, 1, 1, 1), bias=True))
    for ch, hw, same in [(3, 5, False), (5, 1, False), (6, 7, True)]:
        c = new(f"add/{ch}ch {hw}x{hw}{' same value twice' if same else ' input+conv'}", "add", (2, ch, hw, hw))
        a = c.pre()
        c.add(a, a if same else "x")
    for shapes in [((3, 5), (5, 5)), ((1, 1), (7, 1)), ((6, 4), (3, 4), (2, 4))]:
        hw = shapes[0][1]
        c = new(f"concat/{'+'.join(str(s[0]) for s in shapes)}ch {hw}x{hw}", "concat", (2, shapes[0][0], hw, hw))
        parts = ["x"] + [c.conv("x", s[0], bias=True) for s in shapes[1:]]
        c.concat(*parts)
    c = new("concat/same value twice 3ch 3x3", "concat", (2, 3, 3, 3))
    a = c.pre()
    c.concat(a, a)
    for g, per, hw in [(2, 3, 5), (3, 1, 4), (4, 3, 3), (5, 2, 1), (7, 1, 2), (8, 3, 3), (1, 5, 3)]:
        c = new(f"channelShuffle/g{g} {g * per}ch {hw}x{hw}", "channelShuffle", (2, g * per, hw, hw))
        c.shuffle(c.pre(), g)
    c = new("channelShuffle/behind 3x3 conv g3 6ch 5x5", "channelShuffle", (1, 6, 5, 5))
    c.shuffle(c.conv("x", 6, (3, 3), padding=(1, 1, 1, 1), bias=True), 3)

    # Pools: kernel 2–3, stride 1–2, padding 0–1, both divisor conventions, sizes 1–15.
    n = 24
    sweep = {
        "op": balanced(rng, n, ["maxPool2d", "avgPool2d", "avgPool2d"]),
        "kernel": balanced(rng, n, [2, 3, 3]),
        "stride": balanced(rng, n, [1, 2, 2]),
        "pad": balanced(rng, n, [0, 1]),
        "include": balanced(rng, n, [True, False]),
    }
    specials = [("maxPool2d", 3, 2, 1, True), ("avgPool2d", 3, 2, 1, True), ("avgPool2d", 3, 2, 1, False),
                ("avgPool2d", 3, 2, 0, False), ("maxPool2d", 3, 2, 0, True)]
    for i in range(n + len(specials)):
        if i < n:
            op, k, s, p, inc = (sweep[key][i] for key in ("op", "kernel", "stride", "pad", "include"))
        else:
            op, k, s, p, inc = specials[i - n]
        h, w = rng.randint(1, 15), rng.randint(1, 15)
        while not window_fits(h, k, s, p, p):
            h += 1
        while not window_fits(w, k, s, p, p):
            w += 1
        ch = rng.choice([1, 3, 5, 6, 7])
        divisor = "" if op == "maxPool2d" else (" includePad" if inc else " excludePad")
        c = new(f"{op}/k{k} s{s} p{p}{divisor} {ch}ch {h}x{w}", op, (2, ch, h, w))
        c.pool(op, c.pre(), k, s, p, inc)

    for ch, h, w in [(3, 5, 5), (7, 1, 1), (5, 4, 9)]:
        c = new(f"globalAvgPool/{ch}ch {h}x{w}", "globalAvgPool", (2, ch, h, w))
        c.gap(c.pre())
    for ch, hw in [(3, 4), (5, 1)]:
        c = new(f"flatten/{ch}ch {hw}x{hw}", "flatten", (2, ch, hw, hw))
        c.flatten(c.pre())
    for features, out, bias in [(7, 5, True), (13, 10, False), (1, 3, True), (24, 9, True)]:
        c = new(f"linear/{features}to{out} {'bias' if bias else 'nobias'}", "linear", (3, features))
        c.linear("x", out, bias)
    c = new("linear/behind gap+flatten 5ch 3x3 to 7", "linear", (2, 5, 3, 3))
    c.linear(c.flatten(c.gap(c.pre())), 7)
    c = new("linear/behind flatten 3ch 3x3 to 4", "linear", (2, 3, 3, 3))
    c.linear(c.flatten(c.pre()), 4)

    # The chains the inference plan fuses: a wrong attribute hides where steps merge.
    for g, per_in, per_mid, hw, kernel in [(3, 2, 1, 5, 1), (2, 3, 3, 4, 1), (4, 1, 3, 3, 1), (8, 1, 1, 2, 1),
                                           (3, 1, 2, 5, 3)]:
        c = new(f"chain/conv{kernel}x{kernel} g{g}-bn-relu-shuffle {g * per_in}to{g * per_mid} {hw}x{hw}", "chain",
                (2, g * per_in, hw, hw))
        pad = (kernel // 2,) * 4
        y = c.conv(c.pre(), g * per_mid, (kernel, kernel), padding=pad, groups=g)
        c.shuffle(c.relu(c.bn(y)), g)
    for ch, g, hw, kernel, residual in [(6, 3, 5, 1, "pre"), (5, 1, 4, 1, "x"), (4, 2, 3, 3, "pre"), (3, 3, 6, 3, "pre")]:
        c = new(f"chain/conv{kernel}x{kernel} g{g}-bn-add({residual})-relu {ch}ch {hw}x{hw}", "chain", (2, ch, hw, hw))
        a = c.pre()
        y = c.bn(c.conv(a, ch, (kernel, kernel), padding=(kernel // 2,) * 4, groups=g))
        c.relu(c.add(y, a if residual == "pre" else "x"))
    for ch, out, hw, shortcut in [(3, 5, 7, "avgPool2d"), (5, 3, 8, "avgPool2d"), (6, 6, 5, "maxPool2d")]:
        # The stride-2 ShuffleNet unit's tail: shortcut pool and a depthwise branch, concatenated.
        c = new(f"chain/{shortcut}+dwconv-bn-1x1-bn concat relu {ch}+{out}ch {hw}x{hw}", "chain", (2, ch, hw, hw))
        a = c.pre()
        short = c.pool(shortcut, a, 3, 2, 1)
        branch = c.bn(c.conv(c.bn(c.conv(a, ch, (3, 3), (2, 2), (1, 1, 1, 1), groups=ch)), out))
        c.relu(c.concat(short, branch))
    c = new("chain/conv1x1+conv1x1 concat relu 4ch 3x3", "chain", (1, 4, 3, 3))
    c.relu(c.concat(c.conv("x", 3, bias=True), c.conv("x", 5, groups=1)))

    # Appended last (the cases above keep their random draws). Channel slices, and the ShuffleNet V2
    # units: a channel split, a branch, concat, shuffle(2).
    for ch, hw, start, end in [(5, 3, 0, 2), (7, 4, 3, 7), (6, 1, 2, 3), (4, 5, 0, 4)]:
        c = new(f"slice/{ch}ch {hw}x{hw} [{start}, {end})", "slice", (2, ch, hw, hw))
        c.slice(c.pre(), start, end)
    c = new("slice/two halves added 6ch 3x3", "slice", (1, 6, 3, 3))
    a = c.pre()
    c.add(c.slice(a, 0, 3), c.slice(a, 3, 6))

    def v2_branch(c, src, mid, out, stride):
        y = c.relu(c.bn(c.conv(src, mid)))
        y = c.bn(c.conv(y, mid, (3, 3), (stride, stride), (1, 1, 1, 1), groups=mid))
        return c.relu(c.bn(c.conv(y, out)))

    for ch, hw in [(6, 5), (10, 4), (8, 1)]:
        c = new(f"chain/v2 split-branch concat shuffle2 {ch}ch {hw}x{hw}", "chain", (2, ch, hw, hw))
        a = c.pre()
        half = ch // 2
        c.shuffle(c.concat(c.slice(a, 0, half), v2_branch(c, c.slice(a, half, ch), half, half, 1)), 2)
    for ch, out, hw, proj in [(3, 8, 7, 3), (4, 8, 6, 4), (3, 10, 5, 5)]:
        c = new(f"chain/v2 stride-2 branches concat shuffle2 {ch}to{out}ch {hw}x{hw} proj {proj}", "chain",
                (2, ch, hw, hw))
        a = c.pre()
        b1 = c.bn(c.conv(a, ch, (3, 3), (2, 2), (1, 1, 1, 1), groups=ch))
        b1 = c.relu(c.bn(c.conv(b1, proj)))
        c.shuffle(c.concat(b1, v2_branch(c, a, out // 2, out - proj, 2)), 2)
    # A slice of the graph's input itself, and of a shuffled concat (the next V2 unit's split).
    c = new("chain/slice of the input, concat, shuffle2 4ch 3x3", "chain", (1, 4, 3, 3))
    y = c.shuffle(c.concat(c.slice("x", 0, 2), c.relu(c.conv(c.slice("x", 2, 4), 2, bias=True))), 2)
    c.relu(c.conv(c.slice(y, 2, 4), 3))

    # Activations the plan fuses into a producer or runs on their own (the zoo's): ReLU6, PyTorch's
    # hard swish and hard sigmoid, sigmoid, SiLU and hard swish written as x · gate(x), and SE's
    # rescale. A gain of 4 spreads the values over the kinks at ±3 and 6 and the sigmoid's tails.
    six = 1 / 6
    acts = {
        "relu6": ("clip", {"min": 0, "max": 6}),
        "hardswish": ("hardSwish", {"alpha": six, "beta": 0.5}),
        "hardsigmoid": ("hardSigmoid", {"alpha": six, "beta": 0.5}),
        "sigmoid": ("sigmoid", {}),
    }
    for (name, (op, attrs)), (ch, hw, kernel) in zip(acts.items(), [(5, 3, 1), (4, 5, 3), (3, 4, 1), (6, 2, 3)]):
        c = new(f"activation/conv{kernel}x{kernel}-bn-{name} {ch}ch {hw}x{hw}", "activation", (2, ch, hw, hw))
        pad = (kernel // 2,) * 4
        c.act(op, c.bn(c.conv("x", ch, (kernel, kernel), padding=pad, groups=ch if kernel == 3 else 1, gain=4.0)), **attrs)
    for gate, gate_attrs in [("sigmoid", {}), ("hardSigmoid", {"alpha": six, "beta": 0.5})]:
        c = new(f"activation/conv1x1-bn x·{gate}(x) 5ch 4x4", "activation", (2, 5, 4, 4))
        y = c.bn(c.conv("x", 5, gain=4.0))
        c.mul("broadcastMul", y, c.act(gate, y, **gate_attrs))
        # On its own: behind a sum of two slices, which no step can take an activation into.
        c = new(f"activation/slice sum x·{gate}(x) alone 3ch 3x3", "activation", (1, 6, 3, 3))
        a = c.conv("x", 6, bias=True, gain=4.0)
        y = c.add(c.slice(a, 0, 3), c.slice(a, 3, 6))
        c.mul("broadcastMul", y, c.act(gate, y, **gate_attrs))
    c = new("activation/sum of two slices, then hard swish alone 6ch 3x3", "activation", (2, 6, 3, 3))
    a = c.conv("x", 6, bias=True, gain=4.0)
    c.act("hardSwish", c.add(c.slice(a, 0, 3), c.slice(a, 3, 6)), alpha=six, beta=0.5)
    c = new("activation/maxpool3x3s2-relu6 4ch 7x7", "activation", (1, 4, 7, 7))
    c.act("clip", c.pool("maxPool2d", c.conv("x", 4, bias=True, gain=4.0), 3, 2, 1), min=0, max=6)
    for ch, hw in [(6, 4), (9, 3)]:
        # Squeeze-and-excitation: global pool, 1×1 down, ReLU, 1×1 up, sigmoid, rescale.
        c = new(f"activation/squeeze-excitation rescale {ch}ch {hw}x{hw}", "activation", (2, ch, hw, hw))
        a = c.pre()
        s = c.act("sigmoid", c.conv(c.relu(c.conv(c.gap(a), 2, bias=True)), ch, bias=True))
        c.mul("mulChannels", a, s)

    # Depthwise k×k beyond 3×3 (MnasNet, EfficientNet, MobileNet V3): the plan's own kernel.
    for k, st, pad, ch, hw, bias in [(5, 1, 2, 5, 7, True), (5, 2, 2, 6, 9, False), (5, 2, 2, 3, 8, True),
                                     (7, 2, 3, 4, 11, False), (5, 1, 1, 3, 6, True), (5, 1, 2, 2, 1, False)]:
        c = new(f"depthwise/{k}x{k} s{st} p{pad} {ch}ch {hw}x{hw} {'bias' if bias else 'nobias'}", "conv2d", (2, ch, hw, hw))
        c.conv(c.pre(), ch, (k, k), (st, st), (pad,) * 4, groups=ch, bias=bias)
    c = new("chain/dwconv5x5 s2-bn-hardswish 8ch 10x10", "activation", (2, 8, 10, 10))
    c.act("hardSwish", c.bn(c.conv(c.pre(), 8, (5, 5), (2, 2), (2, 2, 2, 2), groups=8, gain=4.0)), alpha=six, beta=0.5)
    return cases


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    cases = make_cases(gen)
    names = [c.spec["name"] for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    tensors = {}
    for case in cases:
        spec, prefix = case.spec, case.spec["name"]
        tensors[f"{prefix}/x"] = case.x
        for name, t in case.params.items():
            tensors[f"{prefix}/p/{name}"] = t
        with torch.no_grad():
            evaluated = run(spec, case.x, {k: v.clone() for k, v in case.params.items()}, False)
        tensors[f"{prefix}/eval"] = evaluated

        # Training mode: batch statistics, then cross-entropy of the flattened output.
        x = case.x.clone().requires_grad_(True)
        params = {k: v.clone().requires_grad_(TRAINABLE(k)) for k, v in case.params.items()}
        y = run(spec, x, params, True)
        has_bn = any(n["op"] == "batchNorm" for n in spec["nodes"])
        if has_bn:
            tensors[f"{prefix}/train"] = y.detach()
        logits = y.flatten(1)
        labels = torch.randint(0, logits.shape[1], (logits.shape[0],), generator=gen)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        tensors[f"{prefix}/labels"] = labels.to(torch.float32)
        tensors[f"{prefix}/loss"] = loss.detach().reshape(1)
        tensors[f"{prefix}/grad/x"] = x.grad
        for name, p in params.items():
            if TRAINABLE(name):
                tensors[f"{prefix}/grad/{name}"] = p.grad
            elif has_bn:
                tensors[f"{prefix}/running/{name}"] = p.detach()
        spec["trainable"] = [name for name in case.params if TRAINABLE(name)]
        spec["buffers"] = [name for name in case.params if not TRAINABLE(name)]

    metadata = {
        "version": FIXTURE_VERSION,
        "generator": "scripts/make_conformance_fixtures.py",
        "torch": torch.__version__,
        "cases": json.dumps([c.spec for c in cases], separators=(",", ":")),
    }
    size = write_safetensors(OUT, tensors, metadata)
    print(f"wrote {len(cases)} cases, {size} bytes to {os.path.relpath(OUT)}")
    assert size <= SIZE_LIMIT, f"the fixture is {size} bytes, over the {SIZE_LIMIT} limit: use fewer or smaller cases"


if __name__ == "__main__":
    main()
