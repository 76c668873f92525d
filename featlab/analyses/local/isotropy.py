"""Isotropy and symmetry summaries of class scores on probe sets (Sections 2.1 and 2.2).

For each sample and radius, the classifier scores ``s_i^r`` of the ``T`` probes (equation 4
for isotropy, equation 6 for symmetry) are summarised as in Figures 1 and 3:

* ``range(r) = max_i s_i^r - min_i s_i^r`` (zero for a locally isotropic / symmetric
  classifier, equation 2 and the definition after equation 5), drawn on a log axis;
* the mean score (the colour of each point);
* whether at least one probe was misclassified (square markers).

The score is the true class's probability, as in the paper (``Phi`` maps to ``[0, 1]^K``).
"""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError
from ...utils.validation import enough_copies, finite_array


def score_range(scores) -> np.ndarray:
    """``max - min`` over the probes (last axis).

    Parameters
    ----------
    scores : array of shape (..., T)

    Returns
    -------
    ndarray of shape (...)
    """
    s = finite_array(scores, "scores")
    enough_copies(s.shape[-1])
    return s.max(axis=-1) - s.min(axis=-1)


def misclassified_from_logits(logits, labels) -> np.ndarray:
    """Boolean ``argmax != label`` for logits (n_samples, n_radii, T, K) and labels (n_samples,)."""
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 4 or labels.shape != logits.shape[:1]:
        raise FeatlabError(f"expected logits (n_samples, n_radii, T, K) and labels (n_samples,), "
                           f"got {logits.shape} and {labels.shape}")
    return logits.argmax(axis=-1) != labels[:, None, None]


def summarize(scores, misclassified=None) -> dict:
    """Per (sample, radius) summaries as arrays.

    Parameters
    ----------
    scores : array of shape (n_samples, n_radii, T) — true-class probabilities
    misclassified : bool array of shape (n_samples, n_radii, T), optional

    Returns
    -------
    dict of ndarrays of shape (n_samples, n_radii): ``range``, ``mean_score``,
    ``min_score``, ``max_score``, ``misclassified_any`` (all False if not given)
    """
    s = finite_array(scores, "scores", ndim=3)
    enough_copies(s.shape[-1])
    if misclassified is None:
        mis = np.zeros(s.shape[:2], dtype=bool)
    else:
        m = np.asarray(misclassified, dtype=bool)
        if m.shape != s.shape:
            raise FeatlabError(f"misclassified must have the scores' shape {s.shape}, got {m.shape}")
        mis = m.any(axis=-1)
    lo, hi = s.min(axis=-1), s.max(axis=-1)
    return {"range": hi - lo, "mean_score": s.mean(axis=-1), "min_score": lo,
            "max_score": hi, "misclassified_any": mis}


def isotropy_rows(scores, radii, misclassified=None, sample_ids=None, **extra) -> list[dict]:
    """Tidy rows, one per (sample, radius), for JSON/CSV and plotting.

    Parameters
    ----------
    scores : array of shape (n_samples, n_radii, T)
    radii : sequence of float of length n_radii
    misclassified : bool array of shape (n_samples, n_radii, T), optional
    sample_ids : sequence of length n_samples, optional (default ``0..n-1``)
    **extra : columns added to every row (e.g. ``backbone=..., probe="isotropy"``); an
        array of length n_samples (``clean_correct=``) gives each sample its value

    Returns
    -------
    list of dict with keys ``sample, radius, range, mean_score, min_score, max_score,
    misclassified_any, n_copies`` plus ``extra``
    """
    summ = summarize(scores, misclassified)
    n_s, n_r = summ["range"].shape
    radii = [float(r) for r in radii]
    if len(radii) != n_r:
        raise FeatlabError(f"{len(radii)} radii given for scores with {n_r} radii")
    ids = list(range(n_s)) if sample_ids is None else list(sample_ids)
    if len(ids) != n_s:
        raise FeatlabError(f"{len(ids)} sample ids given for {n_s} samples")
    t = int(np.shape(scores)[-1])
    rows = []
    for i in range(n_s):
        for k in range(n_r):
            row = {"sample": ids[i].item() if hasattr(ids[i], "item") else ids[i],
                   "radius": radii[k], "n_copies": t}
            for key in ("range", "mean_score", "min_score", "max_score"):
                row[key] = float(summ[key][i, k])
            row["misclassified_any"] = bool(summ["misclassified_any"][i, k])
            row.update({c: (bool(v[i]) if isinstance(v, np.ndarray) else v)
                        for c, v in extra.items()})
            rows.append(row)
    return rows


def range_by_radius(rows) -> list[dict]:
    """Median, quartiles and misclassified fraction of ``range`` per radius (from rows).

    The misclassified fraction counts only rows whose ``clean_correct`` is true (all rows
    without that column): an image the head already gets wrong when clean says nothing
    about its probes (``n_clean_correct`` rows; NaN if none)."""
    out = []
    for r in sorted({row["radius"] for row in rows}):
        sel = [row for row in rows if row["radius"] == r]
        v = np.array([row["range"] for row in sel])
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        ok = [row["misclassified_any"] for row in sel if row.get("clean_correct", True)]
        out.append({"radius": r, "n": len(sel), "range_median": float(med),
                    "range_q1": float(q1), "range_q3": float(q3), "n_clean_correct": len(ok),
                    "misclassified_fraction": float(np.mean(ok)) if ok else float("nan")})
    return out
