"""Seeds as independent processes: each in ``OUT/seed-K/`` (its ``config.json``, its own data,
weights, stores and ``log.txt``, and ``summary.json`` when complete), ``jobs`` side by side
with ``cores // jobs`` torch threads each.

A seed whose summary exists with the same settings is done and skipped; one with another
seed's settings (another size, another store) is refused before anything runs; one started
and killed is run again and resumes from what it completed.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from ..errors import FeatlabError
from ..utils.paths import atomic_write_text
from .worker import CONFIG, SUMMARY, read_json

log = logging.getLogger(__name__)
#: What makes two seeds' results comparable (threads and device only change the speed).
SAME = ("mode", "size", "demo", "pretrain", "store")


def seed_dir(out_dir: str, seed: int) -> str:
    return os.path.join(out_dir, f"seed-{seed}")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def same_study(a: dict, b: dict) -> bool:
    return all(json.dumps(a.get(k), sort_keys=True) == json.dumps(b.get(k), sort_keys=True)
               for k in SAME)


def plan(out_dir: str, seeds, base: dict) -> tuple[list, list]:
    """(seeds to run, seeds done) in ``out_dir`` for settings ``base``; refuses (before
    anything is written) a seed folder holding another study's settings."""
    todo, done = [], []
    for seed in seeds:
        folder = seed_dir(out_dir, seed)
        for name in (SUMMARY, CONFIG):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found = read_json(path)
                found = found.get("config", found)
                if not same_study(found, base):
                    raise FeatlabError(
                        f"{folder} holds seed {seed} of another study ({found.get('size')} "
                        f"size{', store ' + str(found.get('store')) if found.get('store') else ''})"
                        f"; use another --out, or remove {folder}")
        complete = os.path.isfile(os.path.join(folder, SUMMARY))
        (done if complete else todo).append(seed)
    return todo, done


def _start(folder: str, config: dict, threads: int) -> subprocess.Popen:
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(os.path.join(folder, CONFIG), json.dumps(config, indent=2))
    env = dict(os.environ, FEATLAB_NO_PROGRESS="1")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
        env[name] = str(threads)
    with open(os.path.join(folder, "log.txt"), "ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "featlab.replication.worker", folder],
                                stdout=log_file, stderr=subprocess.STDOUT, env=env)


@contextlib.contextmanager
def _sigterm_as_exit():
    """Within the block a SIGTERM (``kill PID``) exits through Python's ``finally`` clauses,
    as Ctrl-C does, so the seeds' processes are stopped with the command."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_seeds(out_dir: str, seeds, base: dict, jobs: int) -> dict:
    """Run ``seeds`` (``jobs`` at a time, ``cores() // jobs`` threads each); returns
    ``{seed: dict(ok, seconds, log)}``. Ctrl-C or SIGTERM stops the running seeds (they
    resume on the next run)."""
    threads = max(1, cores() // jobs)
    pending, running, result = list(seeds), {}, {}
    with _sigterm_as_exit():
        try:
            while pending or running:
                while pending and len(running) < jobs:
                    seed = pending.pop(0)
                    log.info("seed %d: started (%d thread(s); log %s)", seed, threads,
                             os.path.join(seed_dir(out_dir, seed), "log.txt"))
                    running[seed] = (_start(seed_dir(out_dir, seed),
                                            dict(base, seed=int(seed), threads=threads),
                                            threads), time.perf_counter())
                time.sleep(0.2)
                for seed, (proc, start) in list(running.items()):
                    if proc.poll() is not None:
                        del running[seed]
                        result[seed] = _finished(out_dir, seed, proc.returncode, start)
        finally:
            for proc, _ in running.values():
                proc.terminate()
            for proc, _ in running.values():
                proc.wait()
    return result


def _finished(out_dir, seed, code, start) -> dict:
    folder = seed_dir(out_dir, seed)
    ok = code == 0 and os.path.isfile(os.path.join(folder, SUMMARY))
    seconds = time.perf_counter() - start
    if ok:
        log.info("seed %d: done in %.0f s", seed, seconds)
    else:
        log.warning("seed %d: failed (exit %d) after %.0f s; see %s", seed, code, seconds,
                    os.path.join(folder, "log.txt"))
    return dict(ok=ok, seconds=seconds, log=os.path.join(folder, "log.txt"))
