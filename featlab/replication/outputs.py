"""Reading seeds' summaries (from a replicate folder, or several to merge) and writing the
pooled result as JSON and CSV."""
from __future__ import annotations

import csv
import glob
import io
import os

from ..errors import FeatlabError
from ..utils.paths import atomic_write_text
from .runner import SAME, same_study
from .worker import SUMMARY, read_json

CSV_COLUMNS = ("id", "claim", "seed", "effect", "low", "high", "se", "verdict", "n", "k",
               "tau2", "i2", "agree", "flips", "excluded")


def seed_summaries(folder: str) -> list[str]:
    """The ``summary.json`` paths of a seed folder or of every ``seed-*`` folder inside one."""
    own = os.path.join(folder, SUMMARY)
    if os.path.isfile(own) and "claims" in read_json(own):
        return [own]
    return sorted(glob.glob(os.path.join(folder, "seed-*", SUMMARY)))


def load(paths) -> list[dict]:
    """Seeds' summaries from ``paths`` (summary.json files), one per seed; refuses seeds of
    different studies and two different results for one seed."""
    by_seed, first = {}, None
    for path in paths:
        summary = dict(read_json(path), summary_json=os.path.abspath(path))
        if not {"seed", "claims", "config"} <= set(summary):
            raise FeatlabError(f"{path} is not the summary of a replicate seed (it lacks seed, "
                               f"claims or config); give folders written by featlab replicate")
        first = first or summary
        if not same_study(summary["config"], first["config"]):
            diff = [k for k in SAME if summary["config"].get(k) != first["config"].get(k)]
            raise FeatlabError(f"{path} is another study than {first['summary_json']} (they "
                               f"differ in {', '.join(diff)}); merge seeds of one study")
        seed = summary["seed"]
        if seed in by_seed and by_seed[seed]["claims"] != summary["claims"]:
            raise FeatlabError(f"seed {seed} has two different results ({path} and "
                               f"{by_seed[seed]['summary_json']}); keep one of them")
        by_seed[seed] = summary
    return [by_seed[s] for s in sorted(by_seed)]


def merge_dirs(dirs) -> list[dict]:
    """The summaries of every seed in ``dirs`` (seed folders or replicate folders)."""
    paths = []
    for folder in dirs:
        if not os.path.isdir(folder):
            raise FeatlabError(f"--merge {folder}: no such folder")
        found = seed_summaries(folder)
        if not found:
            raise FeatlabError(f"--merge {folder}: no seed summary (summary.json) in it or in "
                               f"its seed-* folders; run 'featlab replicate --out {folder}' first")
        paths += found
    return load(paths)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def csv_text(pooled: dict) -> str:
    """One line per claim row and seed, then the row's pooled line (``seed`` = pooled)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in pooled["rows"]:
        for s in row["seeds"]:
            writer.writerow({k: _fmt(v) for k, v in dict(s, id=row["id"],
                                                         claim=row["claim"]).items()})
        p = row["pooled"] or {}
        writer.writerow({k: _fmt(v) for k, v in dict(
            id=row["id"], claim=row["claim"], seed="pooled", effect=p.get("effect"),
            low=p.get("low"), high=p.get("high"), se=p.get("se"), verdict=row["verdict"],
            k=row["k"], tau2=p.get("tau2"), i2=p.get("i2"), agree=row["agree"],
            flips=row["flips"], excluded=" ".join(map(str, row["excluded"]))).items()})
    return buffer.getvalue()


def write_csv(path: str, pooled: dict) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, csv_text(pooled))
    return path
