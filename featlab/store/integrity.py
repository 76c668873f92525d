"""What is wrong with a store: damaged or truncated parts, lost sample table, stale index.

:func:`part_problem` judges one part: it must open (or, when it has a checksum record, have
the recorded size and bytes), hold ``stop - start`` rows in every dataset, and hold either
every layer of every backbone plus ``valid`` (image conditions) or ``probed`` (probe
conditions). :func:`check_store` lists every problem of a store, each naming its file and
how to repair it; ``featlab store info`` runs it cheaply (sizes and structure), ``featlab
store verify`` fully (every byte against its checksum).
"""
from __future__ import annotations

import os
from typing import Optional

import h5py

from ..errors import DamagedData, FeatlabError
from . import checksums
from .layout import (CONDITION_RECORD, INDEX, MANIFEST, SAMPLES, condition_slug, list_parts,
                     lock_holder, temporaries)
from .fits import mix_problems
from .index import parts_signature
from .manifest import read_manifest
from .records import read_record
from .table import REWRITE, index_copy, records_expected, samples_problem

EXTRACT = "rerun the extract command to recompute it"


def _datasets(path: str, decode: bool) -> dict:
    """name -> shape of every dataset of a part (decoding each one when ``decode``)."""
    shapes = {}
    with h5py.File(path, "r") as handle:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                shapes[name] = list(obj.shape)
                if decode:
                    obj[()]
        handle.visititems(visit)
    return shapes


def _layout_problem(shapes: dict, rows: int, manifest: dict) -> Optional[str]:
    short = sorted(n for n, s in shapes.items() if not s or s[0] != rows)
    if short:
        return f"{short[0]} does not have the part's {rows} rows"
    if "probed" in shapes:
        return None
    wanted = ["valid"] + [f"{b}/{layer}" for b, meta in manifest["backbones"].items()
                          for layer in meta["layers"]]
    missing = [n for n in wanted if n not in shapes]
    return f"it lacks {missing[0]} ({len(missing)} expected dataset(s) missing)" if missing else None


def part_problem(path: str, start: int, stop: int, manifest: dict, *, full: bool,
                 decode_legacy: bool = False) -> Optional[str]:
    """Why the part ``path`` of rows [start, stop) is not complete and intact (None: it is).

    ``full`` checks the whole file's sha256 against its record (else only its size); a
    part without a record is unverified (``decode_legacy`` first decompresses each of its
    datasets, to name a part that cannot even be read as such).
    """
    record, problem = checksums.read_record(path)
    if problem:
        return problem
    try:
        if record is not None:
            problem = checksums.check_file(path) if full else checksums.size_problem(path, record)
            shapes = {n: d["shape"] for n, d in record["datasets"].items()}
        else:
            shapes = _datasets(path, decode_legacy)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        return f"it cannot be read as HDF5 ({checksums.first_line(err)})"
    problem = problem or _layout_problem(shapes, stop - start, manifest)
    return problem or (checksums.unrecorded(path) if record is None else None)


def check_part(root: str, key: str, path: str, name: str, absent_ok: bool = True) -> None:
    """Raise a one-line FeatlabError when dataset ``name`` of the part ``path`` of condition
    ``key`` is damaged or unverified (:func:`featlab.store.checksums.check_dataset`)."""
    problem = checksums.check_dataset(path, name, absent_ok=absent_ok,
                                      required=records_expected(root))
    if problem:
        raise DamagedData(f"part {os.path.relpath(path, root)} of condition {key} is "
                          f"{checksums.verdict(problem)}: {problem}; {EXTRACT}")


def _problem(file: str, problem: str, repair: str) -> dict:
    return dict(file=file, problem=problem, repair=repair)


def samples_problems(root: str, manifest: dict, full: bool) -> list:
    """The sample table against its checksum record, and (``full``, or without a record)
    its rows against the manifest (:func:`featlab.store.table.samples_problem`)."""
    problem = samples_problem(root, manifest, full=full)
    return [_problem(SAMPLES, problem, REWRITE)] if problem else []


def _index_problems(root: str, manifest: dict, full: bool) -> list:

    path = os.path.join(root, INDEX)
    repair = "any featlab command with write access to the store rebuilds it"
    if not os.path.isfile(path):
        return [_problem(INDEX, "missing (the index readers open)", repair)]
    try:
        with h5py.File(path, "r") as handle:
            current = handle.attrs.get("parts_signature")
    except (OSError, ValueError) as err:
        return [_problem(INDEX, f"unreadable ({checksums.first_line(err)})", repair)]
    if current != parts_signature(root):
        return [_problem(INDEX, "out of date (files were added or removed since)", repair)]
    if full and index_copy(root, manifest) is None:
        return [_problem(INDEX, "its copy of the sample table differs from the table the "
                                "store was made for", repair)]
    return []


def _condition_problems(root: str, slug: str, manifest: dict, full: bool, counts) -> list:
    folder = os.path.join(root, "conditions", slug)
    rel = f"conditions/{slug}"
    try:
        key = read_record(folder)["key"]
        if condition_slug(key) != slug:
            raise ValueError("its key does not match the folder name")
    except (OSError, ValueError) as err:
        return [_problem(f"{rel}/{CONDITION_RECORD}", f"missing or unreadable ({err})",
                         "rerun the extract command for this condition to rewrite it")]
    out, n, chunk = [], manifest["n_samples"], manifest["chunk_size"]
    parts = list_parts(folder)
    for start, stop, path in parts:
        counts["parts"] += 1
        counts["unrecorded"] += not os.path.isfile(checksums.sidecar(path))
        problem = part_problem(path, start, stop, manifest, full=full, decode_legacy=full)
        if problem:
            out.append(_problem(f"{rel}/{os.path.basename(path)}",
                                f"{checksums.verdict(problem)}: {problem}", EXTRACT))
    expected = -(-n // chunk)
    if len(parts) < expected:
        out.append(_problem(rel, f"condition {key} is incomplete ({len(parts)}/{expected} "
                                 f"parts)", "rerun the extract command to finish it"))
    return out


def _head_problems(root: str, full: bool, counts) -> list:
    folder, out = os.path.join(root, "heads"), []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not name.endswith(".h5") or name.startswith(".tmp-"):
            continue
        counts["heads"] += 1
        path = os.path.join(folder, name)
        record, problem = checksums.read_record(path)
        if problem is None and record is not None and not full:
            problem = checksums.size_problem(path, record)
        elif problem is None:
            problem = checksums.head_problem(path)
        if problem:
            out.append(_problem(f"heads/{name}", f"{checksums.verdict(problem)}: {problem}",
                                "fit it again with 'featlab fit-head' (same options)"))
    return out + mix_problems(root)


def damaged_parts(problems) -> dict:
    """Condition folder (slug) -> what is wrong with its parts among ``problems``, e.g.
    ``damaged (1 part(s))`` or ``unverified (2 part(s) without checksum record)``."""
    counts: dict = {}
    for p in problems:
        if p["file"].startswith("conditions/") and p["file"].endswith(".h5"):
            slug, word = p["file"].split("/")[1], p["problem"].split(":")[0]
            counts.setdefault(slug, {}).setdefault(word, 0)
            counts[slug][word] += 1
    words = {"damaged": "part(s)", "unverified": "part(s) without checksum record"}
    return {slug: ", ".join(f"{w} ({n} {words.get(w, 'part(s)')})" for w, n in sorted(c.items()))
            for slug, c in counts.items()}


#: problems a live writer explains: the index it has not rebuilt yet, the conditions it is
#: extracting, the heads it is saving
IN_PROGRESS = ("store.h5", "incomplete", "heads of different fit-head runs")


def _status(problems: list, writer) -> tuple[str, list]:
    """(status word, the problems that count) of a store whose writer lock is held by
    ``writer`` (a pid, or None)."""
    if writer is not None:
        problems = [p for p in problems if not any(w in p["file"] or w in p["problem"]
                                                   for w in IN_PROGRESS)]
    words = {checksums.verdict(p["problem"]) for p in problems if p["file"] != INDEX}
    if problems:  # a stale index (rebuilt by any writer) beside unverified files: UNVERIFIED
        return ("UNVERIFIED" if words == {"unverified"} else "DAMAGED"), problems
    return ("BUSY" if writer is not None else "healthy"), problems


def check_store(root: str, *, full: bool = False) -> dict:
    """Every problem of the store ``root``.

    Returns
    -------
    dict with ``problems`` (list of dicts: file, problem, repair), ``status`` (``healthy``;
    ``DAMAGED``; ``UNVERIFIED``: only files without checksum records; ``BUSY``: a featlab
    process holds the writer lock, ``writer`` its pid, and the finished files are intact —
    the problems its unfinished work explains are left out), ``healthy`` (bool) and
    ``checked`` (counts of parts, parts without checksum records, heads, and ``unfinished``
    temporary files of a stopped write, which the next writer removes).
    """
    counts = dict(parts=0, unrecorded=0, heads=0, unfinished=0)
    writer = lock_holder(root)
    try:
        manifest = read_manifest(root)
    except FeatlabError as err:
        problems = [_problem(MANIFEST, str(err), "restore it, or extract again elsewhere")]
        return dict(path=root, healthy=False, status="DAMAGED", writer=writer,
                    problems=problems, checked=counts)
    problems = samples_problems(root, manifest, full) + _index_problems(root, manifest, full)
    base = os.path.join(root, "conditions")
    for slug in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if os.path.isdir(os.path.join(base, slug)):
            problems += _condition_problems(root, slug, manifest, full, counts)
    problems += _head_problems(root, full, counts)
    counts["unfinished"] = 0 if writer else len(temporaries(root))
    status, problems = _status(problems, writer)
    return dict(path=root, healthy=status == "healthy", status=status, writer=writer,
                problems=problems, checked=counts)
