"""Corrupted extraction: the per-image corruptions in the decode workers versus a
single-process loop that calls ``imagecorruptions`` per image, side by side in one run, on
identical images (asserted).

1. End to end, both backbones: wall time of the real command
   ``featlab extract --conditions corrupt:name=imagenet-c:severity=3 --workers 2`` (a fresh
   process) against a fresh process that decodes each image, calls
   ``imagecorruptions.corrupt`` per image and condition (seeded as featlab seeds it) and runs
   both backbones on the same batches. Target: >= 1.6x. The stored penultimate features must
   equal the loop's. The loop's own timers split its time into corruption and forward
   passes; ``(corrupt + forward) / forward`` bounds any speed-up that only hides the
   corruption (on a CPU-only machine the forward passes, one per condition, dominate). The
   ``featlab`` process also runs its forward passes faster than the loop's (it keeps freed
   memory in the process, featlab/utils/memory.py; the loop has glibc's defaults), so it can
   exceed that bound.
2. The corruption stage alone (what a GPU machine waits for): featlab's decode workers
   draining the chunks (decode + corrupt, no forward) against the same single-process loop
   without forward passes; identical bytes asserted.

Data: the synthetic generator's JPEGs at ``--size``; random-initialised ResNet18 backbones
(1000 and 365 classes; the forward cost of trained ones).

    python bench/bench_corruptions.py [--n 192] [--size 224] [--workers 2] [--chunk 32]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

CONDITIONS = "corrupt:name=imagenet-c:severity=3"


def _setup(tmp: str, n: int, size: int) -> tuple[str, dict]:
    from featlab.data.synthetic import generate_synthetic

    root = os.path.join(tmp, "data")
    generate_synthetic(root, seed=0, n_images=n, image_size=size)
    weights = {}
    for name, classes, seed in (("synthetic-object", 1000, 1), ("synthetic-scene", 365, 2)):
        torch.manual_seed(seed)
        path = os.path.join(tmp, f"{name}.pt")
        torch.save({"state_dict": torchvision.models.resnet18(num_classes=classes).state_dict(),
                    "report": {}}, path)
        weights[name] = path
    return root, weights


def _spec(args, root, weights, store="unused"):
    from featlab.extraction import ExtractionSpec

    return ExtractionSpec(store=store, root=root, dataset="synthetic", conditions=CONDITIONS,
                          device="cpu", batch_size=args.batch, chunk_size=args.chunk,
                          image_size=args.size, weights=weights, workers=args.workers)


def _decode(dataset, rows) -> list:
    return [dataset.load(int(row))[0] for row in rows]


def _loop_images(images, image_ids, cond) -> np.ndarray:
    """Single process: imagecorruptions on each decoded image, with featlab's seeds."""
    import imagecorruptions

    p = cond.params
    out = []
    for image, image_id in zip(images, image_ids):
        u8 = np.rint(image * np.float32(255)).astype(np.uint8).transpose(1, 2, 0).copy()
        seed = cond.perturbation.image_seed(0, image_id, p) % 2 ** 32
        kwargs = {"seed": seed} if p["name"] in ("glass_blur", "impulse_noise") else {}
        np.random.seed(seed)
        corrupted = imagecorruptions.corrupt(u8, severity=p["severity"],
                                             corruption_name=p["name"], **kwargs)
        out.append(corrupted.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    return np.stack(out)


def role_loop(args, root, weights, out_path):
    """The reference loop, in its own process: decode, corrupt per image, forward."""
    import dataclasses

    from featlab.extraction.forward import FeatureForward, forward
    from featlab.extraction.pipeline import build_backbones, load_dataset
    from featlab.extraction.storage import NEW_STORE_CHANNELS_LAST
    from featlab.conditions import parse_conditions

    started = time.perf_counter()
    # the memory format featlab extract uses for a new store, so both compute the same
    spec = dataclasses.replace(_spec(args, root, weights), channels_last=NEW_STORE_CHANNELS_LAST)
    dataset = load_dataset(spec)
    models = FeatureForward(build_backbones(spec, dataset, torch.device("cpu")),
                            channels_last=NEW_STORE_CHANNELS_LAST)
    conditions = parse_conditions(CONDITIONS)
    n = len(dataset)
    timers = dict(decode=0.0, corrupt=0.0, forward=0.0)
    feats = {c.key: {m.name: [] for m in models.models} for c in conditions}
    ids = dataset.samples.image_id
    for start in range(0, n, args.chunk):
        stop = min(start + args.chunk, n)
        t = time.perf_counter()
        decoded = _decode(dataset, range(start, stop))  # once per chunk, as featlab does
        timers["decode"] += time.perf_counter() - t
        for cond in conditions:
            for b in range(start, stop, args.batch):
                e = min(b + args.batch, stop)
                t = time.perf_counter()
                images = torch.from_numpy(_loop_images(decoded[b - start:e - start], ids[b:e],
                                                       cond))
                timers["corrupt"] += time.perf_counter() - t
                t = time.perf_counter()
                result = forward(models, images)
                timers["forward"] += time.perf_counter() - t
                for m in models.models:
                    feats[cond.key][m.name].append(result[f"{m.name}/penultimate"])
    arrays = {f"{k}|{b}": np.concatenate(v) for k, d in feats.items() for b, v in d.items()}
    np.savez(out_path, **arrays)
    timers["total"] = time.perf_counter() - started
    print(json.dumps(timers))


def _run(cmd: list[str]) -> tuple[float, str]:
    env = dict(os.environ, FEATLAB_NO_PROGRESS="1")
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def end_to_end(args, tmp, root, weights) -> float:
    from featlab.store import FeatureStore

    store = os.path.join(tmp, "store")
    cmd = [sys.executable, "-m", "featlab", "-q", "extract", "--dataset", "synthetic",
           "--root", root, "--store", store, "--image-size", str(args.size), "--device", "cpu",
           "--backbones", "synthetic-object,synthetic-scene", "--conditions", CONDITIONS,
           "--workers", str(args.workers), "--batch-size", str(args.batch),
           "--chunk-size", str(args.chunk)]
    cmd += [f"--weights={k}={v}" for k, v in weights.items()]
    featlab_s, _ = _run(cmd)
    loop_out = os.path.join(tmp, "loop.npz")
    loop_s, stdout = _run([sys.executable, os.path.abspath(__file__), "--role", "loop",
                           "--root", root, "--weights-json", json.dumps(weights),
                           "--out", loop_out, *_shared_flags(args)])
    timers = json.loads(stdout.strip().splitlines()[-1])
    reference, worst, exact = np.load(loop_out), 0.0, True
    fs = FeatureStore(store)
    for name in reference.files:
        key, backbone = name.split("|")
        ours = fs.read(backbone=backbone, layer="penultimate", condition=key)
        exact &= ours.tobytes() == reference[name].tobytes()
        worst = max(worst, float(np.abs(ours - reference[name]).max()))
    assert worst < 1e-4, f"featlab's features differ from the loop's by {worst}"
    n = len(fs.samples)
    ratio = loop_s / featlab_s
    print(f"end to end, {n} images at {args.size} px, 15 conditions, both backbones:")
    print(f"  loop (1 process)          {n / loop_s:6.2f} img/s  ({loop_s:.1f} s: decode "
          f"{timers['decode']:.1f} s, corrupt {timers['corrupt']:.1f} s, forward "
          f"{timers['forward']:.1f} s)")
    print(f"  featlab --workers {args.workers}        {n / featlab_s:6.2f} img/s  "
          f"({featlab_s:.1f} s)")
    print(f"  ratio {ratio:.2f} (target >= 1.6); features {'bit-identical' if exact else 'equal'}"
          f" (max |diff| {worst:.1e}); bound if the corruption were free and the forward "
          f"passes as fast as the loop's: "
          f"{(timers['corrupt'] + timers['forward']) / timers['forward']:.2f}")
    return ratio


def corruption_stage(args, root, weights) -> float:
    """Decode + corrupt only: the workers against the single-process loop, same bytes."""
    from featlab.extraction.cpu_perturb import PerImagePlan
    from featlab.extraction.decode import iter_chunks
    from featlab.extraction.pipeline import load_dataset
    from featlab.conditions import parse_conditions

    dataset = load_dataset(_spec(args, root, weights))
    conditions = parse_conditions(CONDITIONS)
    n = len(dataset)
    chunks = [(a, min(a + args.chunk, n)) for a in range(0, n, args.chunk)]
    plan = PerImagePlan(conditions, {c.key: chunks for c in conditions},
                        dataset.samples.image_id, 0, args.size)
    ids = dataset.samples.image_id
    warm = parse_conditions("corrupt:name=glass_blur:severity=3")  # numba compile, not timed
    _loop_images(_decode(dataset, [0]), ids[:1], warm[0])
    started = time.perf_counter()
    loop = {c.key: [] for c in conditions}
    for a, b in chunks:
        decoded = _decode(dataset, range(a, b))
        for c in conditions:
            loop[c.key].append(_loop_images(decoded, ids[a:b], c))
    loop = {k: np.concatenate(v) for k, v in loop.items()}
    loop_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = {c.key: [] for c in conditions}
    for _, _, _, _, _, cpu in iter_chunks(dataset, chunks, args.workers, plan):
        for key in cpu.images:
            ours[key].append(cpu.float_images(key).numpy())
    featlab_s = time.perf_counter() - started
    for key, images in loop.items():
        assert np.concatenate(ours[key]).tobytes() == images.tobytes(), key
    ratio = loop_s / featlab_s
    print(f"corruption stage only (decode + 15 corruptions, no forward), {n} images:")
    print(f"  loop {n / loop_s:.2f} img/s, featlab workers={args.workers} "
          f"{n / featlab_s:.2f} img/s -> ratio {ratio:.2f}; images bit-identical")
    return ratio


def _shared_flags(args) -> list[str]:
    return ["--n", str(args.n), "--size", str(args.size), "--workers", str(args.workers),
            "--chunk", str(args.chunk), "--batch", str(args.batch)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=192)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--role", default="bench", choices=("bench", "loop"))
    parser.add_argument("--root"), parser.add_argument("--out")
    parser.add_argument("--weights-json")
    args = parser.parse_args()
    if args.role == "loop":
        role_loop(args, args.root, json.loads(args.weights_json), args.out)
        sys.exit(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu count "
          f"{os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        data_root, paths = _setup(tmp, args.n, args.size)
        end_to_end(args, tmp, data_root, paths)
        corruption_stage(args, data_root, paths)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
