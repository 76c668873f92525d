"""Channels-last vs contiguous forward passes, side by side in one run (why a new store's
default is channels-last).

Both ResNet18 backbones (1000 and 365 classes, featlab's :mod:`featlab.backbones.resnet`),
eval mode, ``torch.inference_mode``, batch ``--batch`` of random images, at 64 and 224 px;
the two formats alternate within each repeat so machine load hits both alike. Prints the
median seconds per batch of each and their ratio, and the largest relative difference of
the logits (float32 rounding, not a different function).

    python bench/bench_memory_format.py [--batch 64] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from featlab.backbones.resnet import resnet18


def _time(models, x) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for model in models:
            model(x)
    return time.perf_counter() - start


def compare(size: int, batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    nets = [resnet18(num_classes=k).eval() for k in (1000, 365)]
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    formats = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}
    times = {name: [] for name in formats}
    with torch.inference_mode():
        ref = nets[0](x)
    for _ in range(repeats + 1):  # the first round warms up both
        for name, fmt in formats.items():
            models = [n.to(memory_format=fmt) for n in nets]
            times[name].append(_time(models, x.contiguous(memory_format=fmt)))
    with torch.inference_mode():
        got = nets[0].to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    rel = float(((got - ref).abs().max() / ref.abs().max()))
    med = {name: statistics.median(t[1:]) for name, t in times.items()}
    ratio = med["contiguous"] / med["channels-last"]
    print(f"{size} px, batch {batch}: contiguous {med['contiguous']:.3f} s, channels-last "
          f"{med['channels-last']:.3f} s per batch (both backbones) -> channels-last "
          f"{ratio:.2f}x; max relative logit difference {rel:.1e}")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    for size in (64, 224):
        compare(size, args.batch, args.repeats)
