"""The report's "Replication" section, from a ``featlab replicate`` result: per claim the
verdict across seeds, the per-seed verdicts, and its forest plot (one line per seed, the
pooled random-effects diamond)."""
from __future__ import annotations

import json
import os

from ..errors import FeatlabError

LEAD = "What replication tests"
WHAT = ("A verdict from one seed captures the sampling of test images, not the variance from "
        "generating the data, pretraining the backbones, splitting and fitting. Each claim row "
        "is pooled across seeds with a DerSimonian-Laird random-effects meta-analysis (95 %) "
        "and decided with the claim's own rule; a claim whose seeds disagree (some yes, some "
        "no) flips with the seed and is not a finding.")


def load_replicate(source) -> tuple[dict, str]:
    """(result, its folder) from a replicate result dict, its ``replicate.json`` or folder."""
    if isinstance(source, dict):
        return source, os.path.dirname(source.get("json", "")) or "."
    path = os.path.join(source, "replicate.json") if os.path.isdir(source) else str(source)
    if not os.path.isfile(path):
        raise FeatlabError(f"--replicate {source}: no replicate.json there; make it with "
                           f"featlab replicate")
    with open(path) as handle:
        return json.load(handle), os.path.dirname(os.path.abspath(path))


def _table(result) -> dict:
    rows = []
    for cid, c in result["claims"].items():
        state = "flips" if c["flips"] else "stable" if c["stable"] else "varies"
        rows.append([cid, c["verdict"], f"{c['agree']}/{len(result['seeds'])}", state,
                     " ".join(f"{s}:{v}" for s, v in c["per_seed"].items())])
    return dict(kind="table", columns=["claim", "across seeds", "agree", "seeds", "per seed"],
                rows=rows, caption=f"verdict per claim across seeds {result['seeds']} (a row "
                f"needs >= {result['min_seeds']} seeds with an interval)")


def _caption(cid, result) -> str:
    parts = []
    for r in (r for r in result["rows"] if r["id"] == cid):
        p = r["pooled"]
        pooled = "no interval" if p is None else (
            f"{p['effect']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}], tau2 {p['tau2']:.2g}, "
            f"I2 {p['i2']:.0%}")
        parts.append(f"{r['claim']}: {pooled} -> {r['verdict']} ({r['agree']}/"
                     f"{len(r['seeds'])} seeds agree{', flips' if r['flips'] else ''})")
    return f"claim {cid}: " + "; ".join(parts)


def replication_section(source) -> dict:
    """The section (as :func:`featlab.reporting.report.report` builds them) of a replicate
    result (dict, ``replicate.json`` or its folder)."""
    result, folder = load_replicate(source)
    where = f"replicate {folder}"
    items = [dict(_table(result), store=where, alt="replication table")]
    for cid in result["claims"]:
        png = os.path.join(folder, "figures", f"forest-claim-{cid}.png")
        if os.path.isfile(png):
            items.append(dict(kind="figure", png=png, caption=_caption(cid, result),
                              store=where, alt=f"forest plot of claim {cid}"))
    return dict(id="replication", paper="replication", label="Replication",
                title=f"the claims across {len(result['seeds'])} seeds", reports=WHAT,
                lead=LEAD, status="rendered", items=items, missing=[], unreadable=[])
