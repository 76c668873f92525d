"""The demo's exploration beside the paper's claims: non-linear fusion heads.

The fusion paper (Section 4) names richer fusion layers as future work; this is not a claim
of the papers and its rows do not count in the demo's verdicts. On the main demo store,
the ``mlp`` and ``gated`` heads (:data:`featlab.heads.HEADS`) are fitted on the object and
scene backbones' clean train features (alpha 0) and compared with the linear joint head
(alpha 0) on the same test images under object blur (the middle sigma) and fg-targeted FGSM
(the middle eps): a paired bootstrap 95 % interval of the accuracy difference, exact McNemar
p, and the claims' verdict rule (:func:`~featlab.analyses.stats.verdict`, "effect > 0" with
the claims' :data:`~.claims.GAIN_MARGIN`: yes when the interval lies above 0, no when it lies
below the margin, else inconclusive). Beside them, the adaptive attack ``fgsm:eps=<middle>:
target=head:NAME`` crafted through both backbones and that head: its accuracy with a 95 %
Wilson interval, reported (no verdict).

A row is ``dict(head, condition, versus, verdict, effect, low, high, margin, test, n)``
(plus ``p_value`` for the paired rows); ``versus`` is the linear joint head's name, or None
for the adaptive rows, whose ``effect`` is the accuracy and ``verdict`` "reported".
"""
from __future__ import annotations

import logging

from ..analyses.heads.correct import head_predictions
from ..analyses.heads.run import fit_head
from ..analyses.stats import mcnemar, paired_bootstrap, verdict, wilson_interval
from ..store import FeatureStore
from ..store.heads import head_name
from .claims import GAIN_MARGIN
from .demo_steps import extract_into
from .robust import short

log = logging.getLogger(__name__)

#: The head types explored against the linear joint head.
EXPLORED = ("mlp", "gated")


def compare(head, condition, versus, correct, reference, *, n_boot, seed,
            margin=GAIN_MARGIN) -> dict:
    """``mean(correct) - mean(reference) > 0`` on the same images, decided as the claims
    decide "effect > 0".

    Parameters
    ----------
    head, condition, versus : str — labels of the row
    correct, reference : ndarray of shape (n,) bool — per test image, right or not, for
        ``head`` and ``versus`` on the same images
    n_boot, seed : bootstrap resamples and their seed
    margin : float — practical-equivalence margin (accuracy points)
    """
    base = dict(head=head, condition=condition, versus=versus, margin=float(margin))
    if len(correct) == 0:
        return dict(base, verdict="inconclusive", effect=None, low=None, high=None,
                    test="not measured: no test images", n=0)
    s = paired_bootstrap(correct, reference, n_boot=n_boot, seed=seed)
    return dict(base, verdict=verdict(s["low"], s["high"], "greater", margin),
                effect=s["effect"], low=s["low"], high=s["high"], n=s["n"],
                test="paired bootstrap 95% + exact McNemar",
                p_value=mcnemar(correct, reference)["p_value"])


def adaptive(head, condition, correct) -> dict:
    """The accuracy of ``head`` under the attack crafted through it, 95 % Wilson interval."""
    n, k = len(correct), int(correct.sum())
    low, high = wilson_interval(k, n) if n else (None, None)
    return dict(head=head, condition=condition, versus=None, verdict="reported",
                effect=k / n if n else None, low=low, high=high, margin=0.0,
                test="accuracy, Wilson 95%", n=n)


def _correct(store, names, key):
    p = head_predictions(store, names, key)
    return {n: p["predictions"][n] == p["labels"] for n in names}


def explore(spec, store, root: str, blur: str, fgsm: str, eps: float) -> list[dict]:
    """Fit the :data:`EXPLORED` heads on ``store`` (subset all, alpha 0, saved), extract the
    adaptive FGSM at ``eps`` through each into the store, and return the exploration rows
    (module docstring). ``blur`` / ``fgsm``: the conditions compared on."""
    names = {}
    for kind in EXPLORED:
        fitted = fit_head(store, head=kind, alphas=(0.0,), subset="all", conditions=["clean"])
        names[kind] = fitted["heads"][0]
    attacks = {name: f"fgsm:eps={eps:g}:target=head:{name}" for name in names.values()}
    log.info("demo exploration: %s", ", ".join(attacks.values()))
    extract_into(spec, store.path, root, ",".join(attacks.values()))
    store = FeatureStore(store.path)
    linear = head_name("joint", "all", 0.0)
    kw = dict(n_boot=spec.n_boot, seed=spec.seed)
    rows = []
    for label, key in (("blur", blur), ("fg-FGSM", fgsm)):
        correct = _correct(store, [linear, *names.values()], key)
        rows += [compare(name, f"{label} {short(key)}", linear, correct[name],
                         correct[linear], **kw) for name in names.values()]
    for name, attack in attacks.items():
        rows.append(adaptive(name, attack, _correct(store, [name], attack)[name]))
    return rows
