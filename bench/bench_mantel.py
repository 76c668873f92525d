"""Mantel tests for many samples: featlab's ``mantel_batch`` vs scikit-bio's ``mantel`` per sample.

Workload of the local-properties study (Aghdam et al., Section 2.3, Figure 4): per sample,
the input-space and feature-space distance matrices of its T perturbed copies, 999
permutations. Both sides run in this process, on the same inputs, and the statistics are
checked to be identical (r to 1e-12, p exactly) before the ratio is printed.

    python bench/bench_mantel.py [--samples 100] [--copies 100] [--permutations 999]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist, squareform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def make_inputs(samples: int, copies: int, seed: int = 0):
    """Condensed input/feature distance matrices of T copies around each sample."""
    rng = np.random.default_rng(seed)
    X, Y = [], []
    for _ in range(samples):
        v = rng.uniform(-1, 1, (copies, 3 * 32 * 32))
        v *= 5.0 / np.linalg.norm(v, axis=1, keepdims=True)
        w = rng.standard_normal((v.shape[1], 64)) / 50
        X.append(pdist(v))
        Y.append(pdist(np.maximum(v @ w, 0) + 0.1 * rng.standard_normal((copies, 64))))
    return np.stack(X), np.stack(Y)


def run_skbio(X, Y, method, permutations, seed):
    from skbio.stats.distance import mantel

    out = [mantel(squareform(x), squareform(y), method=method, permutations=permutations,
                  seed=seed) for x, y in zip(X, Y)]
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def run_featlab(X, Y, method, permutations, seed):
    from featlab.analyses.local.mantel import mantel_batch

    r, p, _ = mantel_batch(X, Y, method=method, permutations=permutations, random_state=seed)
    return r, p


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--copies", type=int, default=100)
    ap.add_argument("--permutations", type=int, default=999)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.samples} samples x {args.copies} copies x {args.permutations} permutations")
    X, Y = make_inputs(args.samples, args.copies)
    warm = run_featlab(X[:2, :3], Y[:2, :3], "pearson", 9, 0)  # JIT compile / cache load
    del warm
    for method in ("pearson", "spearman"):
        t_sk, (r_sk, p_sk) = timed(run_skbio, X, Y, method, args.permutations, args.seed)
        t_fl, (r_fl, p_fl) = timed(run_featlab, X, Y, method, args.permutations, args.seed)
        same_r = np.allclose(r_fl, r_sk, rtol=0, atol=1e-12)
        same_p = np.array_equal(p_fl, p_sk)
        print(f"{method:8s}  scikit-bio {t_sk:7.3f} s   featlab {t_fl:7.3f} s   "
              f"speed-up {t_sk / t_fl:5.1f}x   identical r: {same_r}  identical p: {same_p}")
        if not (same_r and same_p):
            raise SystemExit("statistics differ from scikit-bio")


if __name__ == "__main__":
    main()
