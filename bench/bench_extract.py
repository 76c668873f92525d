"""Extraction benchmarks, ratios measured side by side in one run.

1. Throughput: featlab's extraction of ``clean`` with both backbones and every captured layer
   (hooks on 20 BN layers + penultimate + logits, copy to numpy, write of the part by the
   pipeline's background writer thread with a new store's default ``--compression none``,
   all parts on disk before the clock stops) versus the two bare backbones' forward passes,
   on the same pre-decoded batches. Target: ratio >= 0.9 at 224 px and at 64 px.
   The same with ``--compression gzip`` is printed beside it. Both sides run in a new
   store's default memory format (channels-last; ``--contiguous`` for the other one) and
   with the C allocator set as the ``featlab`` command line sets it (freed memory kept in
   the process, featlab/utils/memory.py; ``--glibc-defaults`` for glibc's own).
2. Peak memory: a whole ``featlab extract`` run (fresh process, ru_maxrss) of 2N images versus
   N images. Target: within 10 %.

   Parts hold ``--chunk`` rows (featlab extract's default ``--chunk-size 256``; fewer when
   the run is smaller), the features of several batches concatenated as the chunk loop does.
   Each ratio is the median of paired ratios, a bare run and a featlab run back to back
   (alternating which goes first), with their range: this shared machine's load drifts by
   10-20 % within minutes, more than the effect measured. The 64 px run extracts 2,048
   images (8 parts): the last part is written after the last forward pass with nothing to
   overlap, a cost that a real extraction (hundreds of parts) spreads over all of them; on
   512 images (2 parts, ``--batches-64 8``) it is ~2 % of the time.

    python bench/bench_extract.py [--size 224] [--batch 32] [--batches 4] [--batches-64 32]
                                  [--repeats 5] [--chunk 256] [--n 400] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

from featlab.backbones.base import Backbone
from featlab.extraction.background import BackgroundWriter
from featlab.extraction.forward import FeatureForward
from featlab.extraction.storage import NEW_STORE_CHANNELS_LAST, NEW_STORE_COMPRESSION
from featlab.store import StoreWriter
from featlab.utils.memory import keep_freed_memory


def _backbones(channels_last):
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return [Backbone(name, torchvision.models.resnet18(weights=None, num_classes=k)).eval()
            .to(memory_format=fmt) for name, k in (("object", 1000), ("scene", 365))]


def _bare(models, batches, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    start = time.perf_counter()
    with torch.inference_mode():
        for images in batches:
            images = images.contiguous(memory_format=fmt)
            for model in models:
                model(images)
    return time.perf_counter() - start


def _featlab(models, batches, writer, chunk, channels_last):
    """The pipeline's per-batch work: capture, host copy, then one queued part per chunk of
    ``chunk`` rows (the batches' features concatenated, as the chunk loop does)."""
    fwd = FeatureForward(models, channels_last=channels_last)
    start, done = time.perf_counter(), 0
    with BackgroundWriter(writer) as out:
        pending = []
        for i, images in enumerate(batches):
            pending.append(fwd(images))
            rows = sum(len(next(iter(p.values()))) for p in pending)
            if rows == chunk or i == len(batches) - 1:
                arrays = {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}
                arrays["valid"] = np.ones(rows, bool)
                out.submit("clean", done, done + rows, arrays)
                done, pending = done + rows, []
    return time.perf_counter() - start


def _samples(n: int):
    from featlab.data.base import SampleTable

    return SampleTable(np.arange(n), np.array(["x"] * n), np.zeros(n, int), np.array(["c"] * n),
                       np.array(["s"] * n), np.array(["train"] * n),
                       np.full((n, 2, 4), np.nan, np.float32), np.ones(n, int), np.ones(n, int),
                       ["c"], ["s"])


def _pair(models, batches, samples, chunk, channels_last, compression, featlab_first):
    """(bare seconds, featlab seconds) run back to back, in the order given."""
    meta = {m.name: dict(weights_sha256="0", layers=m.layer_dims()) for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        with StoreWriter(os.path.join(tmp, "s"), samples=samples, backbones=meta,
                         dataset_spec={}, chunk_size=chunk,
                         extra=dict(storage=dict(compression=compression))) as writer:
            writer.add_condition("clean", {})
            if featlab_first:
                ours = _featlab(models, batches, writer, chunk, channels_last)
                return _bare(models, batches, channels_last), ours
            bare = _bare(models, batches, channels_last)
            return bare, _featlab(models, batches, writer, chunk, channels_last)


def throughput(size: int, batch: int, n_batches: int, repeats: int, chunk: int = 256,
               channels_last: bool = NEW_STORE_CHANNELS_LAST) -> float:
    """Median over ``repeats`` of the paired ratio bare time / featlab time, each pair run
    back to back (alternating which goes first) so that the shared machine's drifting load
    hits both sides of a ratio alike; the spread of the paired ratios is printed too."""
    models = _backbones(channels_last)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.rand(batch, 3, size, size, generator=gen) for _ in range(n_batches)]
    n = batch * n_batches
    chunk = min(chunk, n)
    if chunk % batch:
        raise SystemExit(f"--chunk {chunk} must be a multiple of the batch size {batch}")
    samples = _samples(n)
    _bare(models, batches[:1], channels_last)
    ratios = {NEW_STORE_COMPRESSION: [], "gzip": []}
    speed = []
    for r in range(repeats):
        for compression, paired in ratios.items():
            bare, ours = _pair(models, batches, samples, chunk, channels_last, compression,
                               featlab_first=r % 2 == 1)
            paired.append(bare / ours)
            if compression == NEW_STORE_COMPRESSION:
                speed.append((n / bare, n / ours))
    ratio = {c: statistics.median(v) for c, v in ratios.items()}
    low, high = min(ratios[NEW_STORE_COMPRESSION]), max(ratios[NEW_STORE_COMPRESSION])
    fmt = "channels-last" if channels_last else "contiguous"
    print(f"throughput at {size}px ({fmt}), {n} images in batches of {batch}, {-(-n // chunk)} "
          f"parts of {chunk} rows: bare {statistics.median(s[0] for s in speed):.1f} img/s, "
          f"featlab {statistics.median(s[1] for s in speed):.1f} img/s -> paired ratio "
          f"{ratio[NEW_STORE_COMPRESSION]:.3f} (median of {repeats}, range {low:.3f}-{high:.3f};"
          f" target >= 0.9; --compression {NEW_STORE_COMPRESSION}, the default); with "
          f"--compression gzip {ratio['gzip']:.3f}")
    return ratio[NEW_STORE_COMPRESSION]


def _extract_rss(root: str, store: str, weights: dict, limit: int) -> int:
    code = (
        "import resource, sys\n"
        "from featlab.extraction import ExtractionSpec, extract\n"
        f"extract(ExtractionSpec(store={store!r}, root={root!r}, conditions='clean,blur:sigma=2',"
        f" device='cpu', batch_size=32, chunk_size=64, weights={weights!r}, limit={limit}))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    env = dict(os.environ, FEATLAB_NO_PROGRESS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1])


def memory(n: int) -> float:
    from featlab.data.synthetic import generate_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        generate_synthetic(os.path.join(tmp, "data"), seed=0, n_images=2 * n, image_size=64)
        weights = {}
        for name, k in (("synthetic-object", 8), ("synthetic-scene", 8)):
            path = os.path.join(tmp, f"{name}.pt")
            torch.save({"state_dict": torchvision.models.resnet18(num_classes=k).state_dict()}, path)
            weights[name] = path
        root = os.path.join(tmp, "data")
        small = _extract_rss(root, os.path.join(tmp, "small"), weights, n)
        large = _extract_rss(root, os.path.join(tmp, "large"), weights, 2 * n)
    ratio = large / small
    print(f"peak memory: {n} images {small / 1024:.0f} MiB, {2 * n} images {large / 1024:.0f} MiB"
          f" -> ratio {ratio:.3f} (target <= 1.10)")
    return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batches-64", type=int, default=32,
                        help="batches of 64 images in the 64 px run (default 32: 2,048 images)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--chunk", type=int, default=256,
                        help="rows per part (featlab extract's default --chunk-size)")
    parser.add_argument("--contiguous", action="store_true",
                        help="both sides in contiguous memory format (default: channels-last)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads on both sides (default: torch's own; 1 leaves a "
                             "core of this 2-core machine to the part thread)")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="leave the C allocator as it is (default: keep freed memory in "
                             "the process, as the featlab command line does)")
    args = parser.parse_args()
    kept = not args.glibc_defaults and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("allocator:", "freed memory kept (the featlab command line's setting)" if kept
          else "glibc defaults")
    cl = NEW_STORE_CHANNELS_LAST and not args.contiguous
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu count {os.cpu_count()}")
    throughput(args.size, args.batch, args.batches, args.repeats, args.chunk, cl)
    throughput(64, 64, args.batches_64, args.repeats, args.chunk, cl)
    memory(args.n)
