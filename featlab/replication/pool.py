"""Every claim row pooled across seeds (:func:`pool`), from the seeds' summaries.

A seed's summary holds the claim rows of :mod:`featlab.reporting.claims` (``id``, ``claim``,
``verdict``, ``effect``, ``low``, ``high``, ... and the rule it was decided by); rows are
matched across seeds by ``(id, claim)``, other fields are carried along untouched. Per row:
every seed's effect, interval and verdict, the random-effects pool (:func:`.meta.
random_effects`; each seed's variance from its interval, :func:`.meta.standard_error`), the
verdict across seeds (:func:`.meta.across_verdict`), how many seeds' own verdicts agree with
it and whether they flip (some yes, some no). Rows of a seed without a usable interval are
left out of the pool and listed in ``excluded``.
"""
from __future__ import annotations

from collections import Counter

from ..reporting.claims import overall
from .meta import MIN_SEEDS, across_verdict, random_effects, rule, standard_error

VERDICTS = ("yes", "no", "inconclusive")


def _keys(summaries):
    """(id, claim) of every row, in the order of first appearance."""
    return list(dict.fromkeys((r["id"], r["claim"]) for s in summaries for r in s["claims"]))


def _per_seed(summaries, key):
    out = []
    for s in summaries:
        found = next((r for r in s["claims"] if (r["id"], r["claim"]) == key), None)
        if found is not None:
            out.append((s["seed"], found))
    return out


def _counts(verdicts) -> dict:
    c = Counter(verdicts)
    return {v: int(c.get(v, 0)) for v in VERDICTS}


def pool_row(key, entries, min_seeds=MIN_SEEDS) -> dict:
    """One row across seeds; ``entries`` = [(seed, row)] of the seeds that have it."""
    first = entries[0][1]
    rule_ = rule(first)
    seeds, used, excluded = [], [], []
    for seed, r in entries:
        se = standard_error(r)
        seeds.append(dict(seed=seed, effect=r.get("effect"), low=r.get("low"),
                          high=r.get("high"), se=se, verdict=r["verdict"], n=r.get("n")))
        (used if se is not None and r.get("effect") is not None else excluded).append(seeds[-1])
    pooled = (random_effects([s["effect"] for s in used], [s["se"] ** 2 for s in used])
              if used else None)
    verdict = across_verdict(rule_, pooled, min_seeds)
    counts = _counts(s["verdict"] for s in seeds)
    extra = {k: v for k, v in first.items()
             if k not in ("verdict", "effect", "low", "high", "n", "p_value", "se")}
    return dict(extra, id=key[0], claim=key[1], **rule_, seeds=seeds,
                excluded=[s["seed"] for s in excluded], k=len(used),
                pooled=pooled, verdict=verdict, counts=counts,
                agree=counts[verdict], flips=counts["yes"] > 0 and counts["no"] > 0)


def _claim(cid, rows, summaries) -> dict:
    per_seed = {s["seed"]: s.get("verdicts", {}).get(cid) or overall(
        [r for r in s["claims"] if r["id"] == cid]).get(cid, "inconclusive") for s in summaries}
    verdict = overall(rows)[cid]
    counts = _counts(per_seed.values())
    return dict(id=cid, verdict=verdict, per_seed=per_seed, counts=counts,
                agree=counts[verdict], stable=len(set(per_seed.values())) == 1,
                flips=counts["yes"] > 0 and counts["no"] > 0,
                rows_flipping=sum(r["flips"] for r in rows))


def pool(summaries, min_seeds=MIN_SEEDS) -> dict:
    """Pool the claims of ``summaries`` (each ``dict(seed, claims, verdicts)``).

    Returns
    -------
    dict ``seeds`` (sorted), ``rows`` (one per claim row: its fields, ``seeds`` (seed,
    effect, low, high, se, verdict, n), ``pooled`` (effect, se, low, high, tau2, i2, q, k) or
    None, ``verdict`` across seeds, ``counts`` of per-seed verdicts, ``agree``, ``flips``,
    ``excluded`` seeds), ``claims`` (per id: ``verdict`` across seeds (no if a pooled row
    fails, yes if all hold), ``per_seed`` verdicts, ``counts``, ``agree``, ``stable`` (every
    seed the same), ``flips`` (some yes, some no)), ``min_seeds``.
    """
    summaries = sorted(summaries, key=lambda s: s["seed"])
    rows = [pool_row(key, _per_seed(summaries, key), min_seeds) for key in _keys(summaries)]
    claims = {cid: _claim(cid, [r for r in rows if r["id"] == cid], summaries)
              for cid in dict.fromkeys(r["id"] for r in rows)}
    return dict(seeds=[s["seed"] for s in summaries], rows=rows, claims=claims,
                min_seeds=int(min_seeds))
