"""``featlab extract --conditions clean`` vs the loop a researcher writes by hand.

Both run as fresh processes on the same JPEG files and compute the same features (both
ResNet18s, the 20 BN layers spatially averaged, penultimate, logits); the clock is each
process's wall time, start-up, imports and writing included. Target: featlab >= 1.3x the
loop's throughput at 64 and at 224 px.

The plain loop (:func:`plain_loop`): PIL ``open().convert("RGB").resize()``, batches of 64,
forward hooks that clone every BN output (a reference would be overwritten by the in-place
ReLU and residual add), spatial means after the forward, ``np.save`` of everything at the
end. featlab: ``featlab extract --dataset synthetic --conditions clean`` with its defaults
(batch 64, chunks of 256, uncompressed parts, channels-last, freed memory kept in the
process), once as is, once with ``--contiguous`` (the memory format the loop uses) and once
with ``FEATLAB_KEEP_FREED_MEMORY=0`` (glibc's allocator defaults, which the loop has).

Data: ``--images`` synthetic scenes (COCO format) written as JPEGs of ``--source``
pixels (default 480, about a COCO image's 640 x 480; ``--source 64`` gives the demo files).

    python bench/bench_vs_loop.py [--images 1600] [--source 480] [--sizes 64,224]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def plain_loop(files: list, weights: list, size: int, out: str, batch: int = 64) -> None:
    """What a researcher writes: decode, resize, forward with cloning hooks, save."""
    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    nets = []
    for path in weights:
        state = torch.load(path, map_location="cpu")["state_dict"]
        net = torchvision.models.resnet18(num_classes=state["fc.weight"].shape[0])
        net.load_state_dict(state)
        nets.append(net.eval())
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize((size, size)), torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(MEAN, STD)])
    captured, features = {}, {}
    for k, net in enumerate(nets):
        for name, module in net.named_modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.AdaptiveAvgPool2d,
                                   torch.nn.Linear)):
                module.register_forward_hook(
                    lambda m, i, o, key=f"{k}/{name}": captured.__setitem__(key, o.clone()))
    for start in range(0, len(files), batch):
        x = torch.stack([transform(Image.open(f).convert("RGB"))
                         for f in files[start:start + batch]])
        with torch.no_grad():
            for net in nets:
                captured.clear()
                net(x)
                for key, value in captured.items():
                    value = value.mean(dim=(2, 3)) if value.dim() == 4 else value.flatten(1)
                    features.setdefault(key, []).append(value.numpy())
    for key, values in features.items():
        np.save(os.path.join(out, key.replace("/", "_") + ".npy"), np.concatenate(values))


def _prepare(folder: str, images: int, source: int) -> tuple[str, list]:
    import torch
    import torchvision

    from featlab.data.synthetic import generate_synthetic

    root = os.path.join(folder, "data")
    generate_synthetic(root, seed=0, n_images=images, image_size=source)
    weights = []
    for k, name in enumerate(("synthetic-object", "synthetic-scene")):
        torch.manual_seed(k)
        path = os.path.join(folder, f"{name}.pt")
        torch.save({"state_dict": torchvision.models.resnet18(num_classes=16).state_dict()},
                   path)
        weights.append(path)
    return root, weights


def _timed(cmd: list, env=None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a fresh process."""
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "RSS %M"] + cmd, capture_output=True,
                         text=True, env=dict(os.environ, FEATLAB_NO_PROGRESS="1", **(env or {})))
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    rss = int(re.findall(r"RSS (\d+)", out.stderr)[-1]) / 1024
    return wall, rss


def _featlab_cmd(root, store, weights, size, extra=()):
    cmd = [sys.executable, "-m", "featlab", "-q", "extract", "--dataset", "synthetic",
           "--root", root, "--store", store, "--conditions", "clean", "--image-size",
           str(size), *extra]
    for name, path in zip(("synthetic-object", "synthetic-scene"), weights):
        cmd += ["--weights", f"{name}={path}"]
    return cmd


def _loop_cmd(root, weights, size, out):
    from featlab.data import DATASETS

    files = [os.path.join(root, f) for f in DATASETS.get("synthetic")(root).samples.file]
    spec = os.path.join(out, "files.json")
    os.makedirs(out, exist_ok=True)
    with open(spec, "w") as handle:
        json.dump(dict(files=files, weights=weights, size=size, out=out), handle)
    return [sys.executable, os.path.abspath(__file__), "--loop", spec]


#: featlab as it runs, and with one of its defaults undone (what each is worth)
VARIANTS = (("featlab", (), None), ("featlab --contiguous", ("--contiguous",), None),
            ("featlab, glibc allocator defaults", (), dict(FEATLAB_KEEP_FREED_MEMORY="0")))


def main(images: int, source: int, sizes: list, repeats: int) -> None:
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root, weights = _prepare(tmp, images, source)
        for size in sizes:
            runs = {"plain loop": [], **{name: [] for name, _, _ in VARIANTS}}
            for r in range(repeats):
                runs["plain loop"].append(_timed(_loop_cmd(root, weights, size,
                                                           os.path.join(tmp, f"loop{size}{r}"))))
                for k, (name, extra, env) in enumerate(VARIANTS):
                    store = os.path.join(tmp, f"store{size}{r}{k}")
                    runs[name].append(_timed(_featlab_cmd(root, store, weights, size, extra),
                                             env))
            loop = statistics.median(w for w, _ in runs["plain loop"])
            for name, values in runs.items():
                wall = statistics.median(w for w, _ in values)
                rss = max(m for _, m in values)
                print(f"{size} px, {name}: {wall:.1f} s ({images / wall:.1f} images/s), peak "
                      f"RSS {rss:.0f} MiB, throughput vs plain loop {loop / wall:.2f}x "
                      f"(runs {[round(w, 1) for w, _ in values]})")
    print(f"target: featlab >= 1.3x the plain loop; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1600)
    parser.add_argument("--source", type=int, default=480)
    parser.add_argument("--sizes", default="64,224")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--loop", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop:
        with open(args.loop) as handle:
            job = json.load(handle)
        plain_loop(job["files"], job["weights"], job["size"], job["out"])
    else:
        main(args.images, args.source, [int(s) for s in args.sizes.split(",")], args.repeats)
