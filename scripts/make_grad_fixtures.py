#!/usr/bin/python3
"""Writes the PyTorch gradient and optimiser fixtures that the autograd tests compare against.

Run with Debian's PyTorch (apt-get install python3-torch):

    /usr/bin/python3 scripts/make_grad_fixtures.py          # or: npm run fixtures:grad

It writes, under test/fixtures/:
  grads.safetensors   every differentiable op on odd shapes: inputs, an upstream gradient and
                      PyTorch's input gradients (batch norm in training mode also its running
                      statistics after the step); cross-entropy with label smoothing; two whole
                      networks in training mode: weights, input, labels, loss, the input gradient,
                      every parameter gradient and the running statistics after one forward
  optim.safetensors   torch.optim.SGD (momentum, Nesterov, weight decay skipping 1-D parameters),
                      learning-rate schedules (torch.optim.lr_scheduler) and
                      torch.nn.utils.clip_grad_norm_

The networks are the plain-PyTorch re-implementations of scripts/make_fixtures.py (imported, not
copied), so only the parameter names are shared with the TypeScript code.

NOTE (2026-12-02): the committed network fixtures do not come out bit-identical when this script is
re-run on the 2-vCPU AMD EPYC VM: the same seeded draws give other inputs there (the ReLU-kink
search settles on another draw). Rerun, shufflenet_v1_g1_0.25x's BN-weight gradient then misses
the training plan test's 1e-4 by a little (1.7e-4). The slice cases were generated here from their
own generator (SIDE_CASES) and added to the committed file, whose other entries are unchanged.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import randomize, start, write_safetensors  # noqa: E402
from make_fixtures import build, paper_channel_shuffle  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")


def op_cases(gen):
    """(name, op, attrs, inputs, needs_grad, fn) for every differentiable op, on odd shapes."""
    r = lambda *shape: torch.randn(*shape, generator=gen)
    cases = []

    def conv(name, x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        top, left, bottom, right = pad
        attrs = {"stride": list(stride), "padding": list(pad), "dilation": list(dilation), "groups": groups}
        fn = lambda x, w, b=None: F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride, 0, dilation, groups)
        inputs = [x, w] + ([b] if b is not None else [])
        cases.append((name, "conv2d", attrs, inputs, fn))

    conv("conv_dense_3x3_bias", r(2, 5, 7, 7), r(4, 5, 3, 3), r(4), pad=(1, 1, 1, 1))
    conv("conv_stride2_odd", r(1, 6, 9, 9), r(8, 6, 3, 3), stride=(2, 2), pad=(1, 1, 1, 1))
    conv("conv_grouped_1x1_g3", r(2, 9, 5, 5), r(6, 3, 1, 1), groups=3)
    conv("conv_grouped_3x3_g2_bias", r(1, 6, 5, 6), r(4, 3, 3, 3), r(4), pad=(1, 1, 1, 1), groups=2)
    conv("conv_depthwise_s2_odd", r(2, 7, 7, 7), r(7, 1, 3, 3), stride=(2, 2), pad=(1, 1, 1, 1), groups=7)
    conv("conv_depthwise_1x1_spatial", r(2, 5, 1, 1), r(5, 1, 3, 3), pad=(1, 1, 1, 1), groups=5)
    conv("conv_5x5_s2_bias", r(1, 3, 11, 11), r(6, 3, 5, 5), r(6), stride=(2, 2), pad=(2, 2, 2, 2))
    conv("conv_rect_kernel", r(1, 2, 6, 5), r(3, 2, 3, 1), stride=(2, 1), pad=(1, 0, 1, 0))
    conv("conv_dilation2", r(1, 3, 9, 8), r(2, 3, 3, 3), pad=(2, 2, 2, 2), dilation=(2, 2))
    conv("conv_asymmetric_pad_s3", r(1, 2, 8, 7), r(3, 2, 3, 3), stride=(3, 2), pad=(0, 1, 2, 0))

    def bn_training(name, x, eps, momentum=0.1):
        c = x.shape[1]
        params = [torch.rand(c, generator=gen) + 0.5, r(c) * 0.3]
        stats = [r(c) * 0.3, torch.rand(c, generator=gen) + 0.2]
        cases.append((name, "batchNormTraining", {"eps": eps, "momentum": momentum}, [x] + params + stats, None))

    bn_training("batchnorm_training_odd", r(2, 7, 5, 3) * 2 + 1, 1e-5)
    bn_training("batchnorm_training_1x1_spatial", r(3, 4, 1, 1), 1e-3)
    bn_training("batchnorm_training_batch1", r(1, 3, 2, 3), 1e-5, 0.3)

    x, c = r(2, 5, 3, 4), 5
    stats = [torch.rand(c, generator=gen) + 0.5, r(c) * 0.3, r(c) * 0.3, torch.rand(c, generator=gen) + 0.2]
    fn = lambda x, w, b, m, v: F.batch_norm(x, m, v, w, b, False, 0.0, 1e-5)
    cases.append(("batchnorm_inference", "batchNorm", {"eps": 1e-5}, [x] + stats, fn))

    cases.append(("relu", "relu", {}, [r(2, 3, 4, 5)], F.relu))
    cases.append(("clip_relu6", "clip", {"min": 0, "max": 6}, [r(1, 4, 3, 5) * 4], lambda x: torch.clamp(x, 0, 6)))
    cases.append(("sigmoid", "sigmoid", {}, [r(2, 5) * 3], torch.sigmoid))
    cases.append(("add", "add", {}, [r(2, 3, 5, 5), r(2, 3, 5, 5)], lambda a, b: a + b))
    cases.append(("mul_channels", "mulChannels", {}, [r(2, 6, 3, 5), torch.rand(2, 6, 1, 1, generator=gen)], lambda x, s: x * s))

    def pool(name, op, x, k, st, p, include_pad=True):
        attrs = {"kernel": [k, k], "stride": [st, st], "padding": [p, p, p, p]}
        if op == "maxPool2d":
            fn = lambda x: F.max_pool2d(x, k, st, p)
        else:
            fn = lambda x: F.avg_pool2d(x, k, st, p, count_include_pad=include_pad)
            attrs["countIncludePad"] = include_pad
        cases.append((name, op, attrs, [x], fn))

    pool("maxpool_3x3s2p1_odd7", "maxPool2d", r(2, 3, 7, 7), 3, 2, 1)
    pool("maxpool_3x3s2p1_even8", "maxPool2d", r(1, 3, 8, 8), 3, 2, 1)
    pool("maxpool_3x3s1_overlap", "maxPool2d", r(1, 2, 5, 6), 3, 1, 0)
    pool("avgpool_shortcut_odd7", "avgPool2d", r(2, 3, 7, 7), 3, 2, 1)
    pool("avgpool_shortcut_even8", "avgPool2d", r(1, 3, 8, 8), 3, 2, 1)
    pool("avgpool_exclude_pad_odd7", "avgPool2d", r(1, 3, 7, 7), 3, 2, 1, include_pad=False)
    pool("avgpool_2x2s2_odd5", "avgPool2d", r(1, 2, 5, 5), 2, 2, 0)

    cases.append(("global_avgpool", "globalAvgPool", {}, [r(2, 5, 7, 3)], lambda x: F.adaptive_avg_pool2d(x, 1)))
    for name, shape, g in [("shuffle_g3", (2, 12, 3, 3), 3), ("shuffle_g2_odd", (1, 10, 3, 1), 2), ("shuffle_g8", (1, 16, 2, 2), 8)]:
        cases.append((name, "channelShuffle", {"groups": g}, [r(*shape)], lambda x, g=g: paper_channel_shuffle(x, g)))
    cases.append(("concat3", "concat", {}, [r(2, 3, 4, 3), r(2, 5, 4, 3), r(2, 1, 4, 3)], lambda *xs: torch.cat(xs, 1)))
    cases.append(("flatten", "flatten", {}, [r(2, 3, 2, 3)], lambda x: torch.flatten(x, 1)))
    cases.append(("linear_bias", "linear", {}, [r(3, 7), r(5, 7), r(5)], F.linear))
    cases.append(("linear_no_bias", "linear", {}, [r(1, 4), r(6, 4)], F.linear))
    cases.append(("softmax", "softmax", {}, [r(3, 7) * 3], lambda x: torch.softmax(x, -1)))
    # ShuffleNet V2's channel split, and a slice along another axis. Drawn from their own generator
    # (SIDE, also for their output gradients), so that every other fixture keeps its random draws.
    for name, shape, axis, start, end in [("slice_channels", (2, 7, 3, 2), 1, 2, 5), ("slice_width", (1, 3, 2, 5), 3, 1, 4)]:
        index = [slice(None)] * 4
        index[axis] = slice(start, end)
        x = torch.randn(*shape, generator=SIDE)
        cases.append((name, "slice", {"axis": axis, "start": start, "end": end}, [x], lambda x, i=tuple(index): x[i]))
    # The zoo's activations and broadcasts (issue 16), from SIDE too; ×4 spreads x over the kinks at ±3.
    side = lambda *shape: torch.randn(*shape, generator=SIDE)
    six = 1 / 6
    cases.append(("hard_sigmoid", "hardSigmoid", {"alpha": six, "beta": 0.5}, [side(2, 3, 4, 5) * 4], F.hardsigmoid))
    cases.append(("hard_sigmoid_onnx", "hardSigmoid", {"alpha": 0.2, "beta": 0.5}, [side(3, 7) * 4],
                  lambda x: torch.clamp(0.2 * x + 0.5, 0, 1)))
    cases.append(("hard_swish", "hardSwish", {"alpha": six, "beta": 0.5}, [side(2, 3, 4, 5) * 4], F.hardswish))
    cases.append(("broadcast_mul_same", "broadcastMul", {}, [side(2, 3, 4, 5), side(2, 3, 4, 5)], lambda a, b: a * b))
    cases.append(("broadcast_mul_rows", "broadcastMul", {}, [side(2, 3, 1, 5), side(4, 1)], lambda a, b: a * b))
    cases.append(("broadcast_add_channels", "broadcastAdd", {}, [side(2, 3, 4, 5), side(1, 3, 1, 1)], lambda a, b: a + b))
    return cases


SIDE = torch.Generator().manual_seed(1807_11164)
SIDE_CASES = {"slice_channels", "slice_width", "hard_sigmoid", "hard_sigmoid_onnx", "hard_swish",
              "broadcast_mul_same", "broadcast_mul_rows", "broadcast_add_channels"}


def op_fixtures(gen, tensors):
    meta = []
    for name, op, attrs, inputs, fn in op_cases(gen):
        differentiable = 3 if op in ("batchNorm", "batchNormTraining") else len(inputs)
        leaves = [t.clone().requires_grad_(i < differentiable) for i, t in enumerate(inputs)]
        if op == "batchNormTraining":
            x, w, b, rm, rv = leaves
            rm, rv = rm.detach().clone(), rv.detach().clone()
            y = F.batch_norm(x, rm, rv, w, b, True, attrs["momentum"], attrs["eps"])
            tensors[f"{name}/running_mean_after"] = rm
            tensors[f"{name}/running_var_after"] = rv
        else:
            y = fn(*leaves)
        gy = torch.randn(y.shape, generator=SIDE if name in SIDE_CASES else gen)
        y.backward(gy)
        for i, t in enumerate(inputs):
            tensors[f"{name}/in{i}"] = t
        for i in range(differentiable):
            tensors[f"{name}/grad{i}"] = leaves[i].grad
        tensors[f"{name}/out"] = y
        tensors[f"{name}/gradOut"] = gy
        meta.append({"name": name, "op": op, "attrs": attrs, "inputs": len(inputs), "differentiable": differentiable})

    losses = []
    for name, shape, smoothing in [("ce_plain", (4, 7), 0.0), ("ce_smooth", (5, 10), 0.1), ("ce_smooth_big_logits", (3, 4), 0.3)]:
        logits = (torch.randn(*shape, generator=gen) * (8 if "big" in name else 2)).requires_grad_(True)
        labels = torch.randint(0, shape[1], (shape[0],), generator=gen)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        loss.backward()
        tensors[f"{name}/logits"] = logits.detach()
        tensors[f"{name}/labels"] = labels.to(torch.float32)
        tensors[f"{name}/loss"] = loss.detach().reshape(1)
        tensors[f"{name}/grad"] = logits.grad
        losses.append({"name": name, "labelSmoothing": smoothing})
    return meta, losses


NETWORKS = [
    # name, options (as passed to createModel), input shape, label smoothing
    ("shufflenet_v1_g3_0.25x", {"numClasses": 10, "smallInput": True}, [2, 3, 32, 32], 0.1),
    ("shufflenet_v1_g2_0.25x_se", {"numClasses": 10, "smallInput": True}, [2, 3, 32, 32], 0.0),
    ("shufflenet_v1_g8_0.25x_noshuffle", {"numClasses": 7, "inputChannels": 1, "smallInput": True}, [2, 1, 28, 28], 0.2),
    # The ImageNet stem: stride-2 conv1 and the 3×3/2 max pool.
    ("shufflenet_v1_g1_0.25x", {"numClasses": 10, "smallInput": False}, [2, 3, 96, 96], 0.1),
]


def kink_margin(model, x):
    """Smallest distance of any ReLU input to 0, and of any max-pool window's two largest values.

    Where that distance is within float32 rounding (~1e-6 for activations of order 1), two correct
    implementations can take different sides of the kink and disagree on the gradient (seen: a
    ReLU input of 1.3e-6 flipped), so inputs are drawn until it is over 1e-5.
    """
    margins = []
    relu, max_pool2d = F.relu, F.max_pool2d

    def recording_relu(t, *args, **kwargs):
        # Exact zeros (an average of ReLU zeros) are no risk: both sides give them gradient 0.
        nonzero = t.detach().abs()[t.detach() != 0]
        if nonzero.numel() > 0:
            margins.append(nonzero.min().item())
        return relu(t, *args, **kwargs)

    def recording_max_pool2d(t, k, s, p):
        padded = F.pad(t.detach(), (p, p, p, p), value=-math.inf)
        windows = F.unfold(padded, k, stride=s).reshape(t.shape[0], t.shape[1], k * k, -1)
        top = windows.topk(2, dim=2).values
        relevant = top[:, :, 0] > 0  # a window of zeros routes its gradient into a masked ReLU
        if relevant.any():
            margins.append((top[:, :, 0] - top[:, :, 1])[relevant].min().item())
        return max_pool2d(t, k, s, p)

    F.relu, F.max_pool2d = recording_relu, recording_max_pool2d
    try:
        with torch.no_grad():
            model(x)
    finally:
        F.relu, F.max_pool2d = relu, max_pool2d
    return min(margins)


def network_fixtures(gen, tensors):
    meta = []
    for name, options, shape, smoothing in NETWORKS:
        model = randomize(build(name, options["numClasses"], options.get("inputChannels", 3), options["smallInput"]), gen).train()
        for key, t in model.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                tensors[f"{name}/state/{key}"] = t.clone()
        state = {k: t.clone() for k, t in model.state_dict().items()}
        for attempt in range(200):
            x = torch.randn(*shape, generator=gen)
            margin = kink_margin(model, x)
            model.load_state_dict(state)  # undo the running-statistics update of the probe
            if margin > 1e-5:
                break
        else:
            raise RuntimeError(f"{name}: no input with every ReLU and max-pool kink 1e-5 away in 200 draws")
        x.requires_grad_(True)
        labels = torch.randint(0, options["numClasses"], (shape[0],), generator=gen)
        loss = F.cross_entropy(model(x), labels, label_smoothing=smoothing)
        loss.backward()
        tensors[f"{name}/input"] = x.detach()
        tensors[f"{name}/labels"] = labels.to(torch.float32)
        tensors[f"{name}/loss"] = loss.detach().reshape(1)
        tensors[f"{name}/inputGrad"] = x.grad
        for key, p in model.named_parameters():
            tensors[f"{name}/grad/{key}"] = p.grad
        for key, t in model.state_dict().items():
            if "running_" in key:
                tensors[f"{name}/after/{key}"] = t
        meta.append({"name": name, "options": options, "input": shape, "labelSmoothing": smoothing})
        print(f"grads.safetensors: {name} loss {loss.item():.6f}, kink margin {margin:.2e}")
    return meta


def sgd_fixtures(gen, tensors):
    """A few SGD steps on three parameters (2-D, 1-D, 4-D) with given gradients and learning rates."""
    shapes = {"fc.weight": (3, 4), "bn.bias": (3,), "conv.weight": (2, 1, 3, 3)}
    initial = {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}
    steps = 4
    grads = [{k: torch.randn(*s, generator=gen) for k, s in shapes.items()} for _ in range(steps)]
    lrs = [0.1, 0.08, 0.05, 0.02]
    for k, t in initial.items():
        tensors[f"sgd/initial/{k}"] = t
    for i, g in enumerate(grads):
        for k, t in g.items():
            tensors[f"sgd/grad{i}/{k}"] = t
    configs = [
        {"name": "plain", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0},
        {"name": "momentum", "momentum": 0.9, "nesterov": False, "weightDecay": 0.0},
        {"name": "nesterov_decay", "momentum": 0.9, "nesterov": True, "weightDecay": 4e-3},
        {"name": "momentum_decay", "momentum": 0.5, "nesterov": False, "weightDecay": 1e-2},
    ]
    for c in configs:
        params = {k: t.clone().requires_grad_(True) for k, t in initial.items()}
        # The official recipe: weight decay on weights only, not on 1-D parameters (biases, BN).
        decayed = [p for p in params.values() if p.dim() > 1]
        flat = [p for p in params.values() if p.dim() <= 1]
        opt = torch.optim.SGD(
            [{"params": decayed, "weight_decay": c["weightDecay"]}, {"params": flat, "weight_decay": 0.0}],
            lr=lrs[0], momentum=c["momentum"], nesterov=c["nesterov"],
        )
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = lrs[i]
            for k, p in params.items():
                p.grad = grads[i][k].clone()
            opt.step()
            for k, p in params.items():
                tensors[f"sgd/{c['name']}/step{i}/{k}"] = p.detach().clone()
    return {"steps": steps, "lrs": lrs, "configs": configs}


def schedule_fixtures():
    """Learning rate at every step, from torch.optim.lr_scheduler, for the schedules we offer."""
    total, base = 20, 0.5
    p = torch.zeros(1, requires_grad=True)

    def trace(make):
        opt = torch.optim.SGD([p], lr=base)
        sched = make(opt)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return lrs

    S = torch.optim.lr_scheduler
    out = {
        "total": total,
        "base": base,
        "linear": trace(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=total)),
        "cosine": trace(lambda o: S.CosineAnnealingLR(o, T_max=total)),
        "warmup": 5,
        "warmupStartFactor": 0.1,
        "warmup_cosine": trace(
            lambda o: S.SequentialLR(
                o, [S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5), S.CosineAnnealingLR(o, T_max=total - 5)], [5]
            )
        ),
        "warmup_linear": trace(
            lambda o: S.SequentialLR(
                o,
                [S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5), S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=total - 5)],
                [5],
            )
        ),
    }
    return out


def clip_fixtures(gen, tensors):
    shapes = [(4, 3), (5,), (2, 2, 3, 3)]
    cases = []
    for name, scale, max_norm in [("clip_active", 1.0, 1.0), ("clip_inactive", 0.01, 5.0)]:
        grads = [torch.randn(*s, generator=gen) * scale for s in shapes]
        params = [torch.zeros(*s, requires_grad=True) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        for i, (p, g) in enumerate(zip(params, grads)):
            tensors[f"{name}/grad{i}"] = g
            tensors[f"{name}/clipped{i}"] = p.grad
        tensors[f"{name}/norm"] = norm.reshape(1)
        cases.append({"name": name, "maxNorm": max_norm, "count": len(shapes)})
    return cases


def main():
    gen, meta = start(OUT, 20180702, "make_grad_fixtures.py")

    tensors = {}
    ops, losses = op_fixtures(gen, tensors)
    nets = network_fixtures(gen, tensors)
    write_safetensors(
        os.path.join(OUT, "grads.safetensors"),
        tensors,
        {**meta, "ops": json.dumps(ops), "losses": json.dumps(losses), "networks": json.dumps(nets)},
    )
    print(f"grads.safetensors: {len(ops)} op cases, {len(losses)} losses, {len(nets)} networks")

    tensors = {}
    sgd = sgd_fixtures(gen, tensors)
    clip = clip_fixtures(gen, tensors)
    schedules = schedule_fixtures()
    write_safetensors(
        os.path.join(OUT, "optim.safetensors"),
        tensors,
        {**meta, "sgd": json.dumps(sgd), "clip": json.dumps(clip), "schedules": json.dumps(schedules)},
    )
    print("optim.safetensors: SGD, clipping, schedules")


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
