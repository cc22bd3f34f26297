#!/usr/bin/python3
"""PyTorch's side of `npm run bench:train`: median time of a training step (forward, cross-entropy,
backward, SGD with momentum 0.9) of a ShuffleNet v1 on random images, on the CPU.

    /usr/bin/python3 scripts/bench_train_torch.py --threads 1 [--arch shufflenet_v1_g3_0.5x]
        [--batch 64] [--size 64] [--steps 5] [--warmup 2]

The network comes from scripts/make_fixtures.py, our independent PyTorch re-implementation of the
paper's layout (the one our fixtures are generated with; torchvision has no ShuffleNet v1), with the
standard ImageNet stem (stride-2 conv1 and max pool), 3 input channels and 1000 classes. Prints one
line of JSON: {threads, batch, size, arch, steps, median_ms, images_per_second, torch}.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import build  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arch", default="shufflenet_v1_g3_0.5x")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build(a.arch, 1000, 3, small=False).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=4e-5)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    images = torch.randn(a.batch, 3, a.size, a.size)
    labels = torch.randint(0, 1000, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print(json.dumps({
        "threads": a.threads,
        "batch": a.batch,
        "size": a.size,
        "arch": a.arch,
        "steps": a.steps,
        "median_ms": median,
        "images_per_second": a.batch / (median / 1000),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    sys.exit(main())
