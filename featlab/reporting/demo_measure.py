"""What the demo's claims are decided on: per-image correctness (and agreement) vectors of
the saved heads on the same test images, collected from the demo stores for
:mod:`.claims`."""
from __future__ import annotations

import numpy as np

from ..analyses.heads.correct import head_predictions
from ..store.heads import head_name, list_heads, robust_head_name

ADV = robust_head_name("adv", "joint", "all")


def _correct(store, names, key, subset=None):
    p = head_predictions(store, names, key, subset=subset)
    return p, {n: p["predictions"][n] == p["labels"] for n in names}


def fusion_pair(store, key, subset="all"):
    """(joint alpha=0 correct, fg correct) on ``key``'s test images of ``subset``."""
    fg, joint = head_name("fg", subset), head_name("joint", subset, 0.0)
    _, c = _correct(store, [fg, joint], key, subset)
    return c[joint], c[fg]


def blur_pairs(store, keys, labels, subsets) -> dict:
    """Claim 1: ``{subset: {label: (joint, fg)}}``; a subset the store lacks maps to None."""
    return {s: ({label: fusion_pair(store, k, s) for k, label in zip(keys, labels)}
                if s in subsets else None) for s in ("all", "similar", "dissimilar")}


def membership(shift, fg, bg) -> dict:
    """The residual ratio (membership test) of each backbone from a ``pca_shift`` result,
    reported beside claim 2 (which ``shift["comparison"]`` decides)."""
    return {name: dict(shift["backbones"][name]["membership"], role=role)
            for name, role in ((bg, "scene"), (fg, "object"))}


def attack_measures(store, fg_keys, joint_keys, labels, alpha) -> dict:
    """Claims 3, 3b, 4 (see :func:`.claims.attack_claims`): fg-targeted FGSM keys and, per
    strength, the adaptive (target=joint) key or None."""
    fg, bg = head_name("fg"), head_name("bg")
    j0, jhi = head_name("joint", "all", 0.0), head_name("joint", "all", alpha)
    _, clean = _correct(store, [fg, j0, jhi], "clean")
    out = dict(alpha=alpha, clean=dict(fg=clean[fg], joint=clean[j0], joint_hi=clean[jhi]),
               fgsm={}, adaptive={})
    adv = [ADV] if ADV in list_heads(store.path) else []
    for key, jkey, label in zip(fg_keys, joint_keys, labels):
        p, c = _correct(store, [fg, bg, j0, jhi] + adv, key)
        pred = p["predictions"]
        out["fgsm"][label] = dict(fg=c[fg], joint=c[j0], joint_hi=c[jhi],
                                  adv=c[ADV] if adv else None,
                                  agree0=pred[j0] == pred[bg], agree_hi=pred[jhi] == pred[bg])
        if jkey is not None:
            q, cj = _correct(store, [j0], jkey)
            _, in_q, in_p = np.intersect1d(q["ids"], p["ids"], return_indices=True)
            out["adaptive"][label] = (cj[j0][in_q], c[fg][in_p])
    return out


def accuracy_table(blur, attack, dose) -> list[dict]:
    """The accuracies behind the claims (one row per subset / condition), for printing."""
    rows = []
    for subset, by_label in blur.items():
        for label, (joint, fg) in (by_label or {}).items():
            rows.append(dict(subset=subset, condition=f"blur {label}", fg=fg.mean(),
                             joint=joint.mean(), gain=joint.mean() - fg.mean(), n=len(fg)))
    for label, m in attack["fgsm"].items():
        adaptive = attack["adaptive"].get(label)
        rows.append(dict(subset="all", condition=f"fg-FGSM {label}", fg=m["fg"].mean(),
                         joint=m["joint"].mean(), gain=m["joint"].mean() - m["fg"].mean(),
                         joint_hi=m["joint_hi"].mean(),
                         adv=None if m["adv"] is None else m["adv"].mean(),
                         adaptive=None if adaptive is None else adaptive[0].mean(), n=len(m["fg"])))
    for level, pair in sorted(dose.items(), reverse=True):
        if pair is not None:
            joint, fg = pair
            rows.append(dict(subset=f"consistency {level:g}", condition="blur (dose)",
                             fg=fg.mean(), joint=joint.mean(), gain=joint.mean() - fg.mean(),
                             n=len(fg)))
    return rows
