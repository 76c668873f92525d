"""One seed in its own process: ``python -m featlab.replication.worker SEED_DIR``.

Reads ``SEED_DIR/config.json`` (written by :mod:`.runner`), sets the torch threads it was
given, runs the seed (:func:`.seed_run.run_seed`, or :func:`.store_study.store_seed` on a
user's store) and writes ``SEED_DIR/summary.json`` last, atomically: a seed folder with a
summary is complete; one without is resumed by running it again (the demo's data, weights
and stores are reused where they are complete).
"""
from __future__ import annotations

import json
import logging
import os
import sys

import torch

from ..errors import FeatlabError
from ..utils.memory import keep_freed_memory
from ..utils.results import write_json
from .seed_run import run_seed
from .store_study import store_seed

CONFIG, SUMMARY = "config.json", "summary.json"
log = logging.getLogger(__name__)


def read_json(path: str):
    with open(path) as handle:
        return json.load(handle)


def run(seed_dir: str) -> dict:
    """Run the seed configured in ``seed_dir``; returns (and writes) its summary."""
    config = read_json(os.path.join(seed_dir, CONFIG))
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    if config["mode"] == "store":
        summary = store_seed(config["store"], seed_dir, config)
    else:
        summary = run_seed(seed_dir, config)
    summary = dict(summary, config=config)
    write_json(os.path.join(seed_dir, SUMMARY), summary)
    return summary


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    if len(argv) != 1:
        log.error("usage: python -m featlab.replication.worker SEED_DIR")
        return 2
    keep_freed_memory()  # as the featlab command line: featlab/utils/memory.py
    try:
        summary = run(argv[0])
    except FeatlabError as err:
        log.error("featlab: error: %s", err)
        return 2
    log.info("seed %s done in %.0f s: %s", summary["seed"], summary["seconds"],
             summary["verdicts"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
