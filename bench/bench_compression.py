"""Part compression: deterministic gzip vs lzf, side by side in one run.

The same captured features (two ResNet18s, every BN layer + penultimate + logits, on the
same pre-decoded batches) are written as parts with each setting, interleaved over repeats
so that machine load hits every setting alike:

* ``lzf direct`` — a plain write (h5py straight to disk, lzf + shuffle), no checksum record;
* ``lzf`` / ``gzip-N`` / ``none`` — featlab's path (file built in memory, checksum record,
  fsync, rename: :meth:`featlab.store.StoreWriter.write_part`) with each compressor.

Extraction throughput of a setting = images / (forward time + write time), forward time
measured once on the same batches (the serial cost: with the background writer on a busy
CPU the compressing thread takes its time from the forward passes instead); the ratio to
``none`` is what the store's default rule compares (compress unless it costs more than 10 %
of extraction throughput), at 224 px and at 64 px, where the forward passes are 12x cheaper
and the features as large. Also prints bytes per part, and whether two writes of the same
arrays give identical file bytes.

    python bench/bench_compression.py [--size 224] [--batch 32] [--batches 3] [--repeats 3]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time

import h5py
import numpy as np
import torch
import torchvision

from featlab.backbones.base import Backbone
from featlab.extraction.pipeline import forward
from featlab.store import StoreWriter

SETTINGS = {
    "lzf direct": dict(compression="lzf", shuffle=True),
    "lzf": dict(compression="lzf", shuffle=True),
    "gzip-1": dict(compression="gzip", compression_opts=1, shuffle=True),
    "gzip-4": dict(compression="gzip", compression_opts=4, shuffle=True),
    "none": {},
}


def _direct_write(folder, start, stop, arrays):
    """A plain part write: h5py to a temporary file, fsync, rename."""
    final = os.path.join(folder, f"part-{start:09d}-{stop:09d}.h5")
    tmp = os.path.join(folder, f".tmp-part-{start:09d}-{stop:09d}.h5")
    with h5py.File(tmp, "w") as part:
        for name, values in arrays.items():
            opts = SETTINGS["lzf direct"] if values.dtype.kind == "f" and values.size > 64 else {}
            part.create_dataset(name, data=values, track_times=False, **opts)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _writer(folder, batch, n, models):
    from featlab.data.base import SampleTable

    samples = SampleTable(np.arange(n), np.array(["x"] * n), np.zeros(n, int), np.array(["c"] * n),
                          np.array(["s"] * n), np.array(["train"] * n),
                          np.full((n, 2, 4), np.nan, np.float32), np.ones(n, int), np.ones(n, int),
                          ["c"], ["s"])
    meta = {m.name: dict(weights_sha256="0", layers=m.layer_dims()) for m in models}
    return StoreWriter(folder, samples=samples, backbones=meta, dataset_spec={}, chunk_size=batch)


def _write_all(setting, features, writer, folder, batch):
    """Seconds to write every batch's part with ``setting``."""
    writer.filters = SETTINGS[setting]
    start = time.perf_counter()
    for i, arrays in enumerate(features):
        a, b = i * batch, (i + 1) * batch
        if setting == "lzf direct":
            _direct_write(folder, a, b, arrays)
        else:
            writer.write_part(setting, a, b, arrays)
    return time.perf_counter() - start


def _part_bytes(root):
    sizes, digests = [], []
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if name.startswith("part-") and name.endswith(".h5"):
                path = os.path.join(folder, name)
                sizes.append(os.path.getsize(path))
                digests.append(hashlib.sha256(open(path, "rb").read()).hexdigest())
    return sizes, digests


def main(size, batch, n_batches, repeats):
    torch.manual_seed(0)
    models = [Backbone(name, torchvision.models.resnet18(weights=None, num_classes=k)).eval()
              for name, k in (("object", 1000), ("scene", 365))]
    gen = torch.Generator().manual_seed(0)
    batches = [torch.rand(batch, 3, size, size, generator=gen) for _ in range(n_batches)]
    forward(models, batches[0])  # warm-up
    fwd, features = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        features = [dict(forward(models, images), valid=np.ones(batch, bool)) for images in batches]
        fwd.append(time.perf_counter() - start)
    t_fwd = statistics.median(fwd)
    times = {s: [] for s in SETTINGS}
    digests = {s: [] for s in SETTINGS}
    sizes = {}
    for r in range(repeats):
        for setting in SETTINGS:
            with tempfile.TemporaryDirectory() as tmp:
                folder = os.path.join(tmp, "direct")
                os.makedirs(folder)
                with _writer(os.path.join(tmp, "s"), batch, batch * n_batches, models) as w:
                    w.add_condition(setting, {})
                    times[setting].append(_write_all(setting, features, w, folder, batch))
                sizes[setting], d = _part_bytes(tmp)
                digests[setting].append(d)
    n = batch * n_batches
    print(f"{n} images at {size}px in parts of {batch}; forward (2 backbones, capture) "
          f"{n / t_fwd:.1f} img/s; median of {repeats} interleaved repeats")
    base = n / (t_fwd + statistics.median(times["none"]))
    for setting in SETTINGS:
        t_w = statistics.median(times[setting])
        rate = n / (t_fwd + t_w)
        same = all(d == digests[setting][0] for d in digests[setting])
        print(f"{setting:10s}: write {batch * n_batches / t_w:7.1f} img/s, "
              f"{statistics.mean(sizes[setting]) / 2 ** 20:6.2f} MiB/part, extraction "
              f"{rate:6.2f} img/s = {rate / base:.3f} x none; same bytes in every "
              f"repeat: {same}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu {os.cpu_count()}")
    main(args.size, args.batch, args.batches, args.repeats)
    main(64, 2 * args.batch, args.batches, args.repeats)
