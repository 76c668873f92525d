"""The demo's claims as verdicts that can fail (fusion paper Sections 3.1-3.4).

Every claim is decided from per-image measurements on the same test images: a paired
bootstrap interval of an accuracy (or agreement) difference and the exact McNemar p
(:mod:`featlab.analyses.stats`), or an interval of the class-centroid shift in the clean PCA
coordinates (claim 2, :mod:`featlab.analyses.shift.displacement`). Every claim states a
margin of practical equivalence, in the effect's units, and its verdict ``yes`` / ``no`` /
``inconclusive`` reads the interval against 0 and that margin
(:func:`~featlab.analyses.stats.verdict` for "effect > 0": ``no`` when the whole interval
lies below the margin, so two identical heads give ``no``;
:func:`~featlab.analyses.stats.within_verdict` for "equal within the margin"). Margins:
:data:`GAIN_MARGIN` (1 accuracy point) for gains and agreement, :data:`MARGIN` (2 points)
for equal clean accuracy, :data:`~featlab.analyses.shift.displacement.SHIFT_MARGIN` (0.5
within-class SD) for claim 2. A missing subset or condition is ``inconclusive``, never a
pass. The functions here take plain boolean vectors (``True`` = the head got that image
right) so the logic is tested on constructed vectors; :mod:`.demo_measure` collects them
from the stores.

A row is ``dict(claim, id, section, verdict, effect, low, high, margin, test, n,
by_construction, decides)`` (plus ``p_value`` where McNemar applies). Claims 1-4 are built in *by
construction* on the synthetic benchmark (its scene always tells the supercategory); claim 5
varies exactly that.
"""
from __future__ import annotations

from ..analyses.shift.displacement import SHIFT_MARGIN
from ..analyses.stats import (bootstrap_difference, mcnemar, paired_bootstrap, verdict,
                              within_verdict)

#: Clean-accuracy margin for "equal clean accuracy" / "stays within 2 points".
MARGIN = 0.02
#: Smallest accuracy (or agreement) difference that counts as a gain: 1 point.
GAIN_MARGIN = 0.01
SECTIONS = {"1": "fusion 3.2, Fig. 3", "2": "fusion 3.1, Fig. 2", "3": "fusion 3.3, Fig. 4",
            "3b": "adaptive attack (beside Fig. 4)", "4": "fusion 3.4, Fig. 5",
            "5": "fusion 3.2 / CIFAR discussion"}


def row(cid, claim, verdict_, effect=None, low=None, high=None, test="", n=0, *, margin,
        **extra):
    """One claim row; ``margin``: its practical-equivalence margin in the effect's units;
    ``by_construction`` is True for claims 1-4 (see the module docstring); ``decides``: the
    row counts in :func:`overall` (set False for a row reported beside a claim)."""
    return dict(claim=claim, id=cid, section=SECTIONS[cid], verdict=verdict_, effect=effect,
                low=low, high=high, margin=float(margin), test=test, n=int(n),
                by_construction=cid != "5", decides=True, **extra)


def missing(cid, claim, why, margin=GAIN_MARGIN):
    """A claim that cannot be measured: inconclusive, saying why."""
    return row(cid, claim, "inconclusive", test=f"not measured: {why}", margin=margin)


def paired(cid, claim, a, b, *, n_boot, seed, direction="greater", margin=GAIN_MARGIN):
    """Claim ``mean(a) - mean(b) > 0`` (or < 0) on the same images, by at least ``margin``
    in practice (:func:`~featlab.analyses.stats.verdict`)."""
    if a is None or b is None or len(a) == 0:
        return missing(cid, claim, "no such images", margin)
    s = paired_bootstrap(a, b, n_boot=n_boot, seed=seed)
    return row(cid, claim, verdict(s["low"], s["high"], direction, margin), s["effect"],
               s["low"], s["high"], "paired bootstrap 95% + exact McNemar", s["n"],
               margin=margin, p_value=mcnemar(a, b)["p_value"])


def within(cid, claim, a, b, *, n_boot, seed, margin=MARGIN):
    """Claim ``|mean(a) - mean(b)| < margin`` (equivalence) on the same images."""
    if a is None or b is None or len(a) == 0:
        return missing(cid, claim, "no such images", margin)
    s = paired_bootstrap(a, b, n_boot=n_boot, seed=seed)
    return row(cid, claim, within_verdict(s["low"], s["high"], margin), s["effect"], s["low"],
               s["high"], f"paired bootstrap 95% inside ±{margin:g}", s["n"], margin=margin,
               p_value=mcnemar(a, b)["p_value"])


def unpaired_gain(cid, claim, first, second, *, n_boot, seed, margin=GAIN_MARGIN):
    """Claim ``gain(first) > gain(second)`` for two disjoint image sets, each ``(joint, fg)``:
    each set's paired gain is bootstrapped independently (different seeds) and the interval
    of the difference read from the differences of the resamples."""
    if first is None or second is None:
        return missing(cid, claim, "a subset is missing from the store", margin)
    g1 = paired_bootstrap(*first, n_boot=n_boot, seed=seed, return_boots=True)
    g2 = paired_bootstrap(*second, n_boot=n_boot, seed=seed + 1, return_boots=True)
    d = bootstrap_difference(g1, g2)
    return row(cid, claim, verdict(d["low"], d["high"], margin=margin), d["effect"], d["low"],
               d["high"], "independent paired bootstraps, difference 95%", d["n"],
               margin=margin)


def blur_claims(blur, *, n_boot=2000, seed=0) -> list[dict]:
    """Claim 1. ``blur``: ``{subset: {label: (joint, fg)} or None}`` for all/similar/dissimilar,
    ``label`` naming the sigma; every (subset, sigma) is its own row, and per sigma
    gain(Dissimilar) > gain(Similar)."""
    rows, labels = [], next((list(v) for v in blur.values() if v), [])
    for subset in ("all", "similar", "dissimilar"):
        for label in labels:
            text = f"joint > fg under blur {label} ({subset})"
            pair = (blur.get(subset) or {}).get(label)
            rows.append(paired("1", text, *pair, n_boot=n_boot, seed=seed) if pair
                        else missing("1", text, f"no {subset} subset"))
    for label in labels:
        sim, dis = ((blur.get(s) or {}).get(label) for s in ("similar", "dissimilar"))
        rows.append(unpaired_gain("1", f"gain(dissimilar) > gain(similar) under blur {label}",
                                  dis, sim, n_boot=n_boot, seed=seed))
    return rows


def subspace_claims(comparison) -> list[dict]:
    """Claim 2 from the ``comparison`` of :func:`featlab.analyses.shift.run.pca_shift` (or
    None: inconclusive): the object backbone's class centroids move more than the scene
    backbone's in the clean PCA coordinates (paired over the same test images), and the
    scene backbone's stay within ``±margin`` within-class SDs. Effects in within-class SDs."""
    texts = ("object class centroids move more than scene ones in the clean PCA coordinates",
             "scene class centroids stay in place in the clean PCA coordinates")
    if comparison is None:
        return [missing("2", t, "no object and scene backbone pair", SHIFT_MARGIN)
                for t in texts]
    c, m = comparison, comparison["margin"]
    test = "class-centroid shift in within-class SDs, 95% bootstrap over test images"
    return [row("2", f"{c['object']} (object) class centroids move more than {c['scene']} "
                "(scene) ones in the clean PCA coordinates", c["moves_more"], c["effect"],
                c["low"], c["high"], f"{test}, paired across backbones", c["n"], margin=m),
            row("2", f"{c['scene']} (scene) class centroids stay within ±{m:g} within-class SD "
                "in the clean PCA coordinates", c["scene_stays"], c["scene_shift"],
                c["scene_low"], c["scene_high"], test, c["n"], margin=m)]


def attack_claims(attack, *, n_boot=2000, seed=0) -> list[dict]:
    """Claims 3, 3b and 4 from ``attack``: ``alpha`` (the high alpha), ``clean`` =
    ``dict(fg, joint, joint_hi)`` (All subset, clean; joint at alpha 0 and high alpha),
    ``fgsm`` = ``{label: dict(fg, joint, joint_hi, adv, agree0, agree_hi)}`` under the
    fg-targeted FGSM (``adv``: the adversarially retrained joint head; ``agree*``: the joint
    head predicts what the bg head predicts), ``adaptive`` = ``{label: (joint under
    target=joint, fg under target=fg)}`` on the same images, or None when not extracted."""
    kw, clean, hi = dict(n_boot=n_boot, seed=seed), attack["clean"], f"{attack['alpha']:g}"
    rows = [within("3", "clean accuracy: joint (alpha=0) = fg within ±2 points",
                   clean["joint"], clean["fg"], **kw)]
    rows += [paired("3", f"joint > fg under fg-FGSM {label}", m["joint"], m["fg"], **kw)
             for label, m in attack["fgsm"].items()]
    for label in attack["fgsm"]:
        pair = (attack.get("adaptive") or {}).get(label)
        text = f"joint under adaptive FGSM {label} (target=joint) > fg under fg-FGSM"
        rows.append(paired("3b", text, *pair, **kw) if pair
                    else missing("3b", text, "adaptive attack not extracted"))
    rows.append(within("4", f"clean accuracy: joint (alpha={hi}) within ±2 points of alpha=0",
                       clean["joint_hi"], clean["joint"], **kw))
    for label, m in attack["fgsm"].items():
        rows.append(paired("4", f"under fg-FGSM {label}: joint (alpha={hi}) agrees with the bg "
                           "head more than alpha=0", m["agree_hi"], m["agree0"], **kw))
    for label, m in attack["fgsm"].items():
        text = f"under fg-FGSM {label}: joint (alpha={hi}) > adversarially retrained joint"
        rows.append(paired("4", text, m["joint_hi"], m["adv"], **kw) if m.get("adv") is not None
                    else missing("4", text, "no adversarially retrained head"))
    return rows


def dose_claims(dose, *, n_boot=2000, seed=0) -> list[dict]:
    """Claim 5. ``dose``: ``{consistency: (joint, fg) or None}`` under one blur; the gain per
    level, and gain(highest) - gain(lowest) > 0 ("the gain shrinks as context stops
    predicting the class"). The claim predicts a gain only at the highest level; the rows
    of the lower levels are reported with ``decides=False`` (a "no" there, a gain shown to
    be below the margin, is what the claim expects, so :func:`overall` skips them)."""
    top = max(dose) if dose else None
    rows = []
    for c, pair in sorted(dose.items(), reverse=True):
        text = f"fusion gain > 0 at context consistency {c:g}" + (
            "" if c == top else " (reported, not part of the claim)")
        r = (paired("5", text, *pair, n_boot=n_boot, seed=seed) if pair
             else missing("5", text, "no store"))
        rows.append(dict(r, decides=c == top))
    levels = sorted(dose)
    text = "fusion gain shrinks as context consistency falls"
    if len(levels) < 2:
        return rows + [missing("5", text, "fewer than two consistency levels")]
    hi, lo = dose[levels[-1]], dose[levels[0]]
    rows.append(unpaired_gain("5", f"{text}: gain({levels[-1]:g}) > gain({levels[0]:g})", hi, lo,
                              n_boot=n_boot, seed=seed))
    return rows


def overall(rows) -> dict:
    """Verdict per claim id over its deciding rows (``decides``, True unless a row says
    otherwise): ``no`` if any fails, ``yes`` if every one holds, else ``inconclusive``."""
    out = {}
    for cid in dict.fromkeys(r["id"] for r in rows):
        vs = [r["verdict"] for r in rows if r["id"] == cid and r["decides"]]
        out[cid] = "no" if "no" in vs else "yes" if all(v == "yes" for v in vs) else "inconclusive"
    return out
