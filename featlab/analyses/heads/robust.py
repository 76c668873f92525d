"""Robust heads on cached features: adversarial retraining and multi-strength adversarial
training (MAT), as weighted multi-set objectives of :class:`~featlab.heads.linear.LinearHead`.

* Adversarial retraining (fusion paper Section 3.4 / Figure 5, its reference [26]): a head
  trained on clean and attacked features, half and half (:func:`fit_multiset` with shares).
* Mixed MAT (MAT paper Section 4.1, Eq. 2)::

      J_M = sum_{i<=N_C} J(theta, X_i, T_i) + sum_{j<=S} sum_{i<=N_A} J(theta, f_j(X_i), T_i)

  every clean and every adversarial example with weight 1 (:func:`fit_multiset` without
  shares). LinearHead minimises the *mean* of its data term, so it minimises
  ``J_M / (N_C + S N_A)`` plus its penalties (the same minimiser as the paper's sum with the
  penalties scaled by N).
* Parallel MAT (Section 4.2, Eqs. 3-4): S heads, head k on clean + strength k
  (``J_P,k``), combined by voting coefficients learned on a validation split
  (:func:`featlab.mat.fit_voting`, Eq. 4) into :class:`VotedHeads`.

:data:`HEAD_RECIPES` is the head-level registry of ``fit-head --recipe``; the network-level
one of ``featlab train --recipe`` is :data:`featlab.training.recipes.TRAIN_RECIPES`
(``mat-mixed`` and ``mat-parallel`` name the same MAT method at both levels).

The recipes take a ``data`` object (:class:`~.robust_data.HeadData`) that serves train-split
features only: ``data.sets(keys, part)`` with ``part`` ``"train"`` (all train rows),
``"fit"`` (train minus validation) or ``"val"`` (the validation rows carved from train).
"""
from __future__ import annotations

import numpy as np

from ...errors import FeatlabError
from ...mat import fit_voting, label_probabilities
from ...registry import Registry
from ...heads.linear import LinearHead

HEAD_RECIPES = Registry("head recipe")
# The validation-stage heads (trained on train minus validation) only estimate validation
# accuracies — the matrix A of the strength selection, the probabilities the voting weights
# are learned from: a looser tolerance halves their iterations without moving those
# estimates. The final heads use fit-head's own tolerance.
SELECTION_TOL = 1e-4


def selection_kw(head_kw):
    """``head_kw`` with ``tol`` loosened to :data:`SELECTION_TOL` (never tightened)."""
    return dict(head_kw, tol=max(head_kw.get("tol", SELECTION_TOL), SELECTION_TOL))


def row_weights(sizes, shares=None):
    """Per-row weights of stacked sets: 1 each (shares None: the plain sum over every set,
    as ``J_M``), or ``shares[k] / sizes[k]`` so that set k carries ``shares[k]`` of the total."""
    sizes = [int(n) for n in sizes]
    if any(n < 1 for n in sizes):
        raise FeatlabError(f"every training set needs at least one row; sizes {sizes}")
    if shares is None:
        return np.ones(sum(sizes))
    shares = np.asarray(shares, np.float64)
    if shares.shape != (len(sizes),) or (shares <= 0).any():
        raise FeatlabError(f"need one share > 0 per set ({len(sizes)}); got {shares.tolist()}")
    return np.concatenate([np.full(n, s / n) for n, s in zip(sizes, shares / shares.sum())])


def fit_multiset(sets, *, shares=None, n_classes=None, warm_start_from=None, **head_kw):
    """One :class:`LinearHead` on the union of several (X, y) sets, weighted by set.

    Parameters
    ----------
    sets : list of (X ndarray (n_k, p), y ndarray (n_k,)). E.g. clean and attacked features
        of the same train images.
    shares : None or sequence of floats > 0, one per set. None: every row weighs 1 (Eq. 2);
        otherwise set k carries ``shares[k]`` of the total weight (half and half: (1, 1)).
    head_kw : go to :class:`LinearHead` (``l2``, ``tol``, ``max_iter``, ...).

    Returns
    -------
    LinearHead fitted with ``sample_weight`` = :func:`row_weights`.
    """
    if not sets:
        raise FeatlabError("fit_multiset needs at least one (X, y) set")
    X = np.concatenate([np.asarray(x) for x, _ in sets])
    y = np.concatenate([np.asarray(t) for _, t in sets])
    w = row_weights([len(t) for _, t in sets], shares)
    return LinearHead(**head_kw).fit(X, y, n_classes=n_classes, sample_weight=w,
                                     warm_start_from=warm_start_from)


def half_and_half(keys, clean="clean"):
    """Shares for adversarial retraining: clean gets half the weight and the other
    conditions share the other half equally (all equal when clean is absent or alone)."""
    keys = list(keys)
    others = [k for k in keys if k != clean]
    if clean not in keys or not others:
        return [1.0] * len(keys)
    return [0.5 if k == clean else 0.5 / len(others) for k in keys]


def single_strength_heads(data, keys, part="fit", **head_kw):
    """Heads trained on clean + one strength each (``J_P,k`` of Eq. 3), {key: LinearHead}."""
    return {key: fit_multiset(data.sets(["clean", key], part), **head_kw) for key in keys}


def accuracy_matrix(heads, data, tested):
    """``A`` (m, k): accuracy of each head (rows, in order) on the validation rows of each
    tested condition (columns, in order) — the pre-computation of Section 4.3."""
    sets = data.sets(tested, "val")
    return np.array([[float(np.mean(h.predict(x) == y)) for x, y in sets]
                     for h in heads.values()])


@HEAD_RECIPES.register("mat-mixed")
def mat_mixed(data, keys, *, tested=None, fitted=None, **head_kw):
    """Mixed MAT: one head on clean + every chosen strength, each row weight 1 (Eq. 2)."""
    head = fit_multiset(data.sets(["clean", *keys], "train"), **head_kw)
    return head, dict(objective="J_M", n_sets=1 + len(keys))


@HEAD_RECIPES.register("mat-parallel")
def mat_parallel(data, keys, *, tested, fitted=None, **head_kw):
    """Parallel MAT: one head per strength on clean + that strength (Eq. 3), voting
    coefficients (Eq. 4) learned on the validation rows of clean and every tested strength,
    then each head refitted on all train rows (warm-started) with the coefficients kept."""
    fitted = dict(fitted or {})
    missing = [k for k in keys if k not in fitted]
    fitted.update(single_strength_heads(data, missing, "fit", **selection_kw(head_kw)))
    members = [fitted[k] for k in keys]
    val = data.sets(tested, "val")
    yv = np.concatenate([y for _, y in val])
    probas = np.stack([np.concatenate([h.predict_proba(x) for x, _ in val]) for h in members])
    weights = fit_voting(label_probabilities(probas, yv))
    val_acc = [float(np.mean(p.argmax(1) == yv)) for p in probas]
    voted = float(np.mean(np.tensordot(weights, probas, 1).argmax(1) == yv))
    final = [fit_multiset(data.sets(["clean", k], "train"), warm_start_from=h, **head_kw)
             for k, h in zip(keys, members)]
    return VotedHeads(final, weights), dict(voting_weights=weights.tolist(),
                                            val_accuracy_members=val_acc, val_accuracy_voted=voted,
                                            n_val=int(len(yv)))


class VotedHeads:
    """Heads combined by voting: ``predict_proba(X) = sum_k a_k head_k.predict_proba(X)``.

    Parameters
    ----------
    heads : list of fitted :class:`~featlab.heads.linear.LinearHead` (same classes).
    weights : array_like (len(heads),), >= 0, summing to 1.
    """

    def __init__(self, heads, weights):
        weights = np.asarray(weights, np.float64)
        if len(heads) != len(weights) or (weights < 0).any() or abs(weights.sum() - 1) > 1e-9:
            raise FeatlabError(f"need one weight >= 0 per head, summing to 1; got {weights}")
        self.heads, self.weights = list(heads), weights
        self.classes_ = heads[0].classes_

    def predict_proba(self, X):
        """Voted class probabilities, ndarray (n_samples, n_classes)."""
        return sum(a * h.predict_proba(X) for a, h in zip(self.weights, self.heads) if a > 0)

    def predict(self, X):
        """Predicted labels, ndarray (n_samples,), values from ``classes_``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
