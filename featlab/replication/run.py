"""``featlab replicate``: run a study once per seed, pool every claim across the seeds.

Without ``store``: the demo's study (:mod:`.seed_run`) per seed, at the demo's size or the
quick one. With ``store``: the demo's claims on that store per seed, varying what can vary
there (the train/test split and the heads: :mod:`.store_study`). With ``merge``: no run, the
seeds found in those folders are pooled (seeds run elsewhere, e.g. one per cluster job).

The result (``OUT/replicate.json``, ``replicate.csv``, ``figures/forest-claim-<id>.png|pdf``)
pools each claim row with a DerSimonian-Laird random-effects meta-analysis and decides it
across seeds with the claims' own rule (:mod:`.pool`, :mod:`.meta`).
"""
from __future__ import annotations

import logging
import os
import re

from ..errors import FeatlabError
from ..reporting.demo import DemoSpec
from ..utils.paths import check_output_dir, output_errors
from ..utils.results import write_json
from ..utils.validation import positive_int
from .figures import forest_figures
from .meta import MIN_SEEDS
from .outputs import load, merge_dirs, write_csv
from .pool import pool
from .runner import cores, plan, run_seeds, seed_dir
from .seed_run import size_config
from .worker import SUMMARY

log = logging.getLogger(__name__)
STORE_SETTINGS = ("alphas", "n_boot", "tolerance")


def parse_seeds(seeds) -> list[int]:
    """``"0-4"``, ``"0,3,7"``, ``"0-2,5"``, an int or a list of ints -> sorted distinct seeds."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if isinstance(seeds, str):
        out = []
        for part in seeds.replace(" ", "").split(","):
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
                raise FeatlabError(f"--seeds {seeds!r}: expected seeds like 0-4, 0,3,7 or 0-2,5")
            low = int(match.group(1))
            out += range(low, int(match.group(2) or low) + 1)
        seeds = out
    seeds = sorted({positive_int(s, "--seeds", low=0) for s in seeds})
    if not seeds:
        raise FeatlabError("--seeds: give at least one seed, e.g. 0-4")
    return seeds


def study_config(quick: bool, store, device: str, options=None) -> dict:
    """The settings every seed of the study shares (``seed`` and ``threads`` are added per
    seed)."""
    if store is None:
        return dict(mode="synthetic", device=device, store=None,
                    **size_config("quick" if quick else "default", options))
    if quick or options:
        raise FeatlabError("--quick sets the size of the synthetic study; with --store the "
                           "size is the store's")
    if not os.path.isdir(store):
        raise FeatlabError(f"--store {store}: no such store (make one with featlab extract)")
    defaults = DemoSpec()
    demo = {k: list(getattr(defaults, k)) if isinstance(getattr(defaults, k), tuple)
            else getattr(defaults, k) for k in STORE_SETTINGS}
    return dict(mode="store", device=device, store=os.path.abspath(store), size="store",
                demo=demo, pretrain=None)


def _run(seeds, jobs, out_dir, base) -> tuple[list, dict]:
    todo, done = plan(out_dir, seeds, base)
    if done:
        log.info("replicate: seed(s) %s already complete in %s", ",".join(map(str, done)),
                 out_dir)
    status = run_seeds(out_dir, todo, base, min(jobs, max(1, len(todo)))) if todo else {}
    paths = [os.path.join(seed_dir(out_dir, s), SUMMARY) for s in seeds]
    return load([p for p in paths if os.path.isfile(p)]), status


def replicate(seeds="0-4", *, jobs=1, out_dir="analyses/replicate", quick=False, store=None,
              merge=None, device="auto", options=None, min_seeds=MIN_SEEDS) -> dict:
    """Run (or merge) the seeds of a study and pool its claims across them.

    Parameters
    ----------
    seeds : "0-4", "0,3,7", an int or a list of ints. Ignored with ``merge``.
    jobs : int. Seeds run side by side, each with ``cores // jobs`` torch threads.
    out_dir : folder of the seeds (``seed-K/``) and of the pooled result.
    quick : bool. The quick size (32 px, 256 images, one pretraining epoch) instead of the
        demo's.
    store : a feature store: vary its split and heads instead of the synthetic study.
    merge : list of folders (seed folders or replicate folders): pool the seeds in them.
    device : auto, cpu or cuda. options : ``{"demo": {...}, "pretrain": {"object": {...},
        "scene": {...}}}`` laid over the size (:func:`.seed_run.size_config`).
    min_seeds : fewer seeds with an interval make a row's verdict across seeds inconclusive.

    Returns
    -------
    dict: :func:`.pool.pool`'s ``seeds``, ``rows``, ``claims``, ``min_seeds``, plus
    ``config``, ``summaries`` (seed -> summary.json), ``seconds`` (seed -> run seconds),
    ``failed`` seeds, ``figures`` (claim id -> paths), ``json``, ``csv``.
    """
    jobs = positive_int(jobs, "--jobs")
    min_seeds = positive_int(min_seeds, "min_seeds")
    check_output_dir(out_dir)
    if merge:
        summaries, status = merge_dirs(merge if not isinstance(merge, str) else [merge]), {}
    else:
        base = study_config(quick, store, device, options)
        summaries, status = _run(parse_seeds(seeds), jobs, out_dir, base)
    failed = sorted(s for s, st in status.items() if not st["ok"])
    if not summaries:
        raise FeatlabError(f"no seed completed; see {', '.join(status[s]['log'] for s in failed)}")
    result = dict(pool(summaries, min_seeds), config=summaries[0]["config"], failed=failed,
                  summaries={s["seed"]: s["summary_json"] for s in summaries},
                  seconds={s["seed"]: s.get("seconds") for s in summaries}, cores=cores(),
                  jobs=jobs, run_seconds={s: st["seconds"] for s, st in status.items()})
    with output_errors(out_dir):
        result["figures"] = forest_figures(result, out_dir)
        result["csv"] = write_csv(os.path.join(out_dir, "replicate.csv"), result)
        result["json"] = write_json(os.path.join(out_dir, "replicate.json"), result)
    if failed:
        raise FeatlabError(f"seed(s) {', '.join(map(str, failed))} failed (see "
                           f"{', '.join(status[s]['log'] for s in failed)}); the others are "
                           f"pooled in {result['json']}; rerun the same command to retry them")
    return result
