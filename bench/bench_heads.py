"""Benchmark: LinearHead alpha sweep vs scikit-learn LogisticRegression.

Problem size of the fusion paper's COCO subset (Sec. 2.2): 7,500 images x 1,024 float32 joint
features (512 foreground + 512 background), 24 classes. The features are synthetic but shaped
like ResNet penultimate features (non-negative, correlated, power-law spectrum, near-separable).

    python bench/bench_heads.py                 # 10 alphas vs 10 sklearn fits of alpha=0
    python bench/bench_heads.py --sk-tol 1e-4   # sklearn at its default tolerance

Prints wall time of ``fit_alpha_sweep`` (10 alphas, warm-started) and of 10 sklearn fits of
the alpha=0 problem (``C = 1 / (2 l2 N)`` on standardized X), their ratio, and how far the
alpha=0 solutions are apart.
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
from featlab.analyses.heads.fusion import mean_abs_weights  # noqa: E402
from featlab.analyses.heads.linear import fit_alpha_sweep  # noqa: E402


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=7500)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--sk-tol", type=float, default=None, help="sklearn tol (default: --tol)")
    ap.add_argument("--sk-fits", type=int, default=10)
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    X, y = synthetic_features(n=args.n)
    alphas = [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"X {X.shape} {X.dtype}, {len(np.unique(y))} classes, l2={args.l2}, tol={args.tol}")

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


if __name__ == "__main__":
    main()
