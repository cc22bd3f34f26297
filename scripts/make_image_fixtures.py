#!/usr/bin/python3
"""Writes test/fixtures/images.safetensors: PIL/torchvision preprocessing of small random images.

Run with Debian's python3-torchvision: /usr/bin/python3 scripts/make_image_fixtures.py
Each case stores the uint8 HWC input and torchvision's output of
Resize(short side) → CenterCrop → ToTensor → Normalize (a float CHW tensor).
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_common import FIXTURE_VERSION, write_safetensors  # noqa: E402
from make_fixtures import OUT  # noqa: E402

CASES = [
    # name, (height, width, channels), PIL mode, resize, crop, mean, std
    ("rgb_downscale", (37, 23, 3), "RGB", 16, 14, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ("rgb_wide_downscale", (20, 61, 3), "RGB", 9, 9, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ("rgb_upscale", (5, 7, 3), "RGB", 12, 11, [0, 0, 0], [1, 1, 1]),
    ("gray_downscale", (30, 30, 1), "L", 28, 28, [0], [1]),
    ("rgb_to_gray", (33, 40, 3), "RGB->L", 28, 28, [0], [1]),
]


def main():
    rng = np.random.default_rng(5)
    tensors, cases = {}, []
    for name, (h, w, c), mode, resize, crop, mean, std in CASES:
        pixels = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
        # Smooth the noise a little so that resampling differences show as values, not noise.
        pixels = ((pixels.astype(np.float32) + np.roll(pixels, 1, 0) + np.roll(pixels, 1, 1)) / 3).astype(np.uint8)
        image = Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, "L" if c == 1 else "RGB")
        if mode == "RGB->L":
            image = image.convert("L")
        transform = T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(crop), T.ToTensor(), T.Normalize(mean, std)])
        tensors[f"{name}/pixels"] = torch.from_numpy(pixels.astype(np.float32))
        tensors[f"{name}/out"] = transform(image)
        cases.append({"name": name, "channels": "gray" if mode != "RGB" else "RGB", "resize": resize, "crop": crop, "mean": mean, "std": std})
    meta = {"version": FIXTURE_VERSION, "regenerate": "/usr/bin/python3 scripts/make_image_fixtures.py", "cases": json.dumps(cases)}
    write_safetensors(os.path.join(OUT, "images.safetensors"), tensors, meta)
    print(f"images.safetensors: {len(cases)} cases")


if __name__ == "__main__":
    main()
