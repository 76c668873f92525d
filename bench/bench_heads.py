"""Benchmark: LinearHead alpha sweep vs scikit-learn; robust head recipes; every head type.

Problem size of the fusion paper's COCO subset (Sec. 2.2): 7,500 images x 1,024 float32 joint
features (512 foreground + 512 background), 24 classes. The features are synthetic but shaped
like ResNet penultimate features (non-negative, correlated, power-law spectrum, near-separable).

    python bench/bench_heads.py                 # both parts below
    python bench/bench_heads.py --part sweep    # 10 alphas vs 10 sklearn fits of alpha=0
    python bench/bench_heads.py --part robust   # the head-level robust recipes, timed
    python bench/bench_heads.py --sk-tol 1e-4   # sklearn at its default tolerance
    python bench/bench_heads.py --part family   # linear, mlp, gated on three 512-d inputs

``sweep`` prints wall time of ``fit_alpha_sweep`` (10 alphas, warm-started) and of 10 sklearn
fits of the alpha=0 problem (``C = 1 / (2 l2 N)`` on standardized X), their ratio, and how far
the alpha=0 solutions are apart. ``robust`` writes a features-only store of that size with
clean and FGSM-like attacked features at 5 strengths (:mod:`feature_store`), then times
``featlab.fit_head`` as the command runs it — plain, with ``train_on`` (adversarial
retraining), each MAT recipe on given strengths, and everything at once with ``--strengths
auto`` and the figures — against a 2-minute budget. ``family`` fits each registered head
type (:data:`featlab.heads.HEADS`, default settings) on 7,500 x 1,536 (three 512-d inputs),
24 classes, with an alpha sweep of 4 values on the first input (warm-started), against the
same 2-minute budget per type.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from featlab.analyses.heads.fusion import mean_abs_weights  # noqa: E402
from featlab.heads.linear import fit_alpha_sweep  # noqa: E402


def synthetic_features(n=7500, n_each=512, n_classes=24, strengths=(0.35, 0.25), seed=0):
    """Two ResNet-like feature blocks (float32) whose class signal has the given strengths."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    blocks = []
    for strength in strengths:
        protos = rng.normal(size=(n_classes, 64)) * strength
        latent = protos[y] + rng.normal(size=(n, 64))
        mix = rng.normal(size=(64, n_each)) / 8.0
        rot = np.linalg.qr(rng.normal(size=(n_each, n_each)))[0]
        noise = (rng.normal(size=(n, n_each)) * (1.0 + np.arange(n_each)) ** -0.5) @ rot.T
        blocks.append(np.maximum(latent @ mix + noise + 0.3, 0.0))
    return np.hstack(blocks).astype(np.float32), y


ROBUST_RUNS = {
    "plain (fg, bg, joint alpha 0/1/10)": dict(),
    "train_on clean + eps 0.3": dict(train_on="clean,fgsm:eps=0.3:target=fg"),
    "mat-mixed, strengths 0.05,0.1,0.15": dict(recipe="mat-mixed", strengths="0.05,0.1,0.15"),
    "mat-parallel, strengths 0.05,0.1,0.15": dict(recipe="mat-parallel",
                                                  strengths="0.05,0.1,0.15"),
    "all: train_on + both MAT, strengths auto, figures": dict(
        train_on="clean,fgsm:eps=0.3:target=fg", recipe="mat-mixed,mat-parallel",
        strengths="auto", figures=True),
}


def robust_part(args):
    """Time fit_head with each robust recipe on a COCO-sized features-only store."""
    import shutil
    import tempfile

    from feature_store import write_store

    from featlab.analyses.heads.run import fit_head
    from featlab.store import FeatureStore

    work = tempfile.mkdtemp(prefix="bench-heads-")
    try:
        t0 = time.perf_counter()
        write_store(os.path.join(work, "store"), n=args.n, eps_list=(0.05, 0.1, 0.15, 0.2, 0.3))
        print(f"features-only store: {args.n} x (512 + 512), 24 classes, clean + FGSM-like at "
              f"5 strengths, written in {time.perf_counter() - t0:.1f} s")
        store = FeatureStore(os.path.join(work, "store"))
        times, cpu = {}, {}
        for label, options in ROBUST_RUNS.items():
            options = dict(options)
            out = os.path.join(work, "out") if options.pop("figures", False) else None
            t0, c0 = time.perf_counter(), time.process_time()
            result = fit_head(store, alphas=(0.0, 1.0, 10.0), out_dir=out, **options)
            times[label], cpu[label] = time.perf_counter() - t0, time.process_time() - c0
            chosen = result.get("robust", {}).get("strengths", {}).get("chosen")
            print(f"  {label:<52s} {times[label]:6.1f} s wall, {cpu[label]:6.1f} s CPU"
                  + (f"  chosen {chosen}" if chosen else ""))
        worst = max(times, key=times.get)
        verdict = {True: "within", False: "OVER"}
        print(f"slowest: {worst!r}: {times[worst]:.1f} s wall ({verdict[times[worst] <= 120]} "
              f"120 s), {cpu[worst]:.1f} s CPU ({verdict[cpu[worst] <= 120]} 120 s); load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("sweep", "robust", "family", "all"), default="all")
    ap.add_argument("--n", type=int, default=7500)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--sk-tol", type=float, default=None, help="sklearn tol (default: --tol)")
    ap.add_argument("--sk-fits", type=int, default=10)
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    if args.part in ("sweep", "all"):
        sweep_part(args)
    if args.part in ("robust", "all"):
        robust_part(args)
    if args.part in ("family", "all"):
        family_part(args)


def sweep_part(args):
    """LinearHead alpha sweep vs scikit-learn, on one COCO-sized joint feature matrix."""
    from sklearn.linear_model import LogisticRegression

    X, y = synthetic_features(n=args.n)
    alphas = [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
    print(f"X {X.shape} {X.dtype}, {len(np.unique(y))} classes, l2={args.l2}, tol={args.tol}")

    t0, c0 = time.perf_counter(), time.process_time()
    heads = fit_alpha_sweep(X, y, alphas, np.arange(512), l2=args.l2, tol=args.tol)
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    for a, h in zip(alphas, heads):
        fg, bg = mean_abs_weights(h, 512)
        print(f"  alpha={a:<6g} iters={h.n_iter_:4d}  train acc={h.score(X, y):.3f}  "
              f"mean|w| fg={fg:.4f} bg={bg:.4f}")
    print(f"featlab fit_alpha_sweep, {len(alphas)} alphas: {t_ours:.2f} s wall, {c_ours:.2f} s CPU"
          f" ({sum(h.n_iter_ for h in heads)} iterations)")

    sk_tol = args.sk_tol if args.sk_tol is not None else args.tol
    Xs = (X - X.mean(0, dtype=np.float64)) / X.std(0, dtype=np.float64)
    Xs = Xs.astype(np.float32)
    sk = LogisticRegression(C=1.0 / (2 * args.l2 * len(y)), tol=sk_tol, max_iter=5000)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.sk_fits):
            sk.fit(Xs, y)
    t_sk, c_sk = time.perf_counter() - t0, time.process_time() - c0
    print(f"sklearn LogisticRegression(lbfgs, tol={sk_tol:g}), {args.sk_fits} fits of alpha=0: "
          f"{t_sk:.2f} s wall, {c_sk:.2f} s CPU ({int(sk.n_iter_[0])} iterations each)")
    print(f"ratio sklearn / featlab: {t_sk / t_ours:.1f}x wall, {c_sk / c_ours:.1f}x CPU")
    print(f"alpha=0: max |coef_std - sklearn coef| = "
          f"{np.abs(heads[0].coef_std_ - sk.coef_).max():.2e} "
          f"(max |coef| = {np.abs(sk.coef_).max():.3f}); "
          f"objective featlab {heads[0].objective(X, y):.10f}")


FAMILY_ALPHAS = (0.0, 1.0, 10.0, 100.0)  # the paper's scale: beside the summed loss


def family_part(args):
    """Each head type's alpha sweep (4 values, paper's scale, on input 0) on three inputs."""
    from featlab.heads import HEADS
    from featlab.heads.base import fit_sweep

    X, y = synthetic_features(n=args.n, strengths=(0.35, 0.25, 0.15))
    blocks = [X[:, i * 512:(i + 1) * 512] for i in range(3)]
    penalties = [[a / len(y), 0.0, 0.0] for a in FAMILY_ALPHAS]
    print(f"family: {len(y)} x {X.shape[1]} float32 (three 512-d inputs), "
          f"{len(np.unique(y))} classes, alphas {FAMILY_ALPHAS} (paper's scale) on input 0")
    for name in HEADS.names():
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            heads = fit_sweep(name, blocks, y, penalties, l2=args.l2)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        verdict = "within" if wall <= 120 else "OVER"
        print(f"  {name:<7s} {wall:6.1f} s wall ({verdict} 120 s), {cpu:6.1f} s CPU; iterations "
              f"{[h.n_iter_ for h in heads]}")
        for a, h in zip(FAMILY_ALPHAS, heads):
            print(f"    alpha={a:<6g} train acc={h.score(blocks, y):.3f}  per input: "
                  + ", ".join(f"{w:.4f}" for w in h.input_weights(blocks)))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end")


if __name__ == "__main__":
    main()
