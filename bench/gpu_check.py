"""GPU check, run by ``bench/gpu_check.sh``: on one CUDA device,

1. throughput at 224 px: the two bare ResNet18 forwards vs featlab's per-batch work (pinned
   batch copied non-blocking, every layer captured, one device-to-host copy per batch,
   compressed parts written by the background writer), fp32 with TF32 off, side by side;
2. feature differences of ``--precision tf32`` and ``bf16`` from ``fp32`` on the same
   images: mean relative |difference| and max |difference| per layer, and how often the
   argmax of the logits changes.

``--device cpu`` runs the same code on the CPU (a smoke test of this script; the numbers
then say nothing about a GPU).

    bench/gpu_check.sh [--batch 64] [--batches 20]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
import torchvision

from featlab.backbones.base import Backbone
from featlab.data.base import SampleTable
from featlab.extraction.background import BackgroundWriter
from featlab.extraction.forward import FeatureForward
from featlab.extraction.precision import precision_mode
from featlab.store import StoreWriter

LAYERS = ("layer1.0.bn1", "layer4.1.bn2", "penultimate", "logits")


def _models(device):
    torch.manual_seed(0)
    return [Backbone(name, torchvision.models.resnet18(num_classes=k)).to(device).eval()
            for name, k in (("object", 1000), ("scene", 365))]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bare(models, batches, device):
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for cpu in batches:
            x = cpu.to(device, non_blocking=True)
            for model in models:
                model(x)
    _sync(device)
    return time.perf_counter() - start


def _featlab(models, batches, device, folder):
    n, batch = len(batches) * len(batches[0]), len(batches[0])
    samples = SampleTable(np.arange(n), np.array(["x"] * n), np.zeros(n, int),
                          np.array(["c"] * n), np.array(["s"] * n), np.array(["train"] * n),
                          np.full((n, 2, 4), np.nan, np.float32), np.ones(n, int),
                          np.ones(n, int), ["c"], ["s"])
    meta = {m.name: dict(weights_sha256="0", layers=m.layer_dims()) for m in models}
    fwd = FeatureForward(models)
    with StoreWriter(folder, samples=samples, backbones=meta, dataset_spec={},
                     chunk_size=batch) as writer:
        writer.add_condition("clean", {})
        _sync(device)
        start = time.perf_counter()
        with BackgroundWriter(writer) as out:
            for i, cpu in enumerate(batches):
                arrays = fwd(cpu.to(device, non_blocking=True))
                arrays["valid"] = np.ones(batch, bool)
                out.submit("clean", i * batch, (i + 1) * batch, arrays)
        return time.perf_counter() - start


def throughput(device, batch: int, n_batches: int) -> None:
    models = _models(device)
    gen = torch.Generator().manual_seed(0)
    pin = device.type == "cuda"
    batches = [torch.rand(batch, 3, 224, 224, generator=gen).pin_memory() if pin else
               torch.rand(batch, 3, 224, 224, generator=gen) for _ in range(n_batches)]
    with precision_mode("fp32", device):
        _bare(models, batches[:2], device)  # warm-up (cuDNN autotuning, allocator)
        bare, ours = [], []
        for r in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                bare.append(_bare(models, batches, device))
                ours.append(_featlab(models, batches, device, os.path.join(tmp, "s")))
    n = batch * n_batches
    b, f = np.median(bare), np.median(ours)
    print(f"224 px, batch {batch}, fp32 (TF32 off): bare {n / b:.1f} img/s, featlab "
          f"{n / f:.1f} img/s -> ratio {b / f:.3f}")


def precision_differences(device, batch: int) -> None:
    models = _models(device)
    images = torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    images = images.to(device)
    feats = {}
    for precision in ("fp32", "tf32", "bf16"):
        with precision_mode(precision, device) as autocast:
            feats[precision] = FeatureForward(models, autocast=autocast)(images)
    for precision in ("tf32", "bf16"):
        for name in [f"{m.name}/{layer}" for m in models for layer in LAYERS]:
            ref, got = feats["fp32"][name], feats[precision][name]
            rel = np.abs(got - ref).mean() / np.abs(ref).mean()
            print(f"{precision} vs fp32 {name:22s} mean relative |diff| {rel:.2e}, max |diff| "
                  f"{np.abs(got - ref).max():.2e}")
        for m in models:
            agree = (feats[precision][f"{m.name}/logits"].argmax(1)
                     == feats["fp32"][f"{m.name}/logits"].argmax(1)).mean()
            print(f"{precision} vs fp32 {m.name}: argmax of the logits unchanged for "
                  f"{100 * agree:.1f} % of {batch} images")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}")
    throughput(device, args.batch, args.batches)
    precision_differences(device, args.batch)
