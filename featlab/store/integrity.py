"""What is wrong with a store: damaged or truncated parts, lost sample table, stale index.

:func:`part_problem` judges one part: it must open (or, when it has a checksum record, have
the recorded size and bytes), hold ``stop - start`` rows in every dataset, and hold either
every layer of every backbone plus ``valid`` (image conditions) or ``probed`` (probe
conditions). :func:`check_store` lists every problem of a store, each naming its file and
how to repair it; ``featlab store info`` runs it cheaply (sizes and structure), ``featlab
store verify`` fully (every byte against its checksum).
"""
from __future__ import annotations

import json
import os
from typing import Optional

import h5py

from ..errors import FeatlabError
from . import checksums
from .layout import INDEX, MANIFEST, SAMPLES, condition_slug, list_parts
from .index import parts_signature
from .manifest import read_manifest
from .samples import read_samples, table_hash

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

    ``full`` checks the whole file's sha256 against its record (else only its size);
    ``decode_legacy`` decompresses every dataset of a part that has no record.
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
    return problem or _layout_problem(shapes, stop - start, manifest)


def _problem(file: str, problem: str, repair: str) -> dict:
    return dict(file=file, problem=problem, repair=repair)


def samples_problems(root: str, manifest: dict, full: bool) -> list:

    path = os.path.join(root, SAMPLES)
    repair = "rerun the extract command to rewrite it"
    if not os.path.isfile(path):
        return [_problem(SAMPLES, "missing (the sample table)", repair)]
    problem = checksums.check_file(path) if full else None
    if problem is None:
        try:
            with h5py.File(path, "r") as handle:
                same = table_hash(read_samples(handle)) == manifest["samples_sha256"]
            problem = None if same else "its rows differ from the table the store was made for"
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            problem = f"it cannot be read ({checksums.first_line(err)})"
    return [_problem(SAMPLES, problem, repair)] if problem else []


def _index_problems(root: str) -> list:

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
    return []


def _condition_problems(root: str, slug: str, manifest: dict, full: bool, counts) -> list:
    folder = os.path.join(root, "conditions", slug)
    rel = f"conditions/{slug}"
    try:
        with open(os.path.join(folder, "condition.json")) as handle:
            key = json.load(handle)["key"]
        if condition_slug(key) != slug:
            raise ValueError("its key does not match the folder name")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [_problem(f"{rel}/condition.json", f"missing or unreadable ({err})",
                         "rerun the extract command for this condition to rewrite it")]
    out, n, chunk = [], manifest["n_samples"], manifest["chunk_size"]
    parts = list_parts(folder)
    for start, stop, path in parts:
        counts["parts"] += 1
        counts["unrecorded"] += not os.path.isfile(checksums.sidecar(path))
        problem = part_problem(path, start, stop, manifest, full=full, decode_legacy=full)
        if problem:
            out.append(_problem(f"{rel}/{os.path.basename(path)}", f"damaged: {problem}",
                                EXTRACT))
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
            out.append(_problem(f"heads/{name}", f"damaged: {problem}",
                                "fit it again with 'featlab fit-head' (same options)"))
    return out


def damaged_parts(problems) -> dict:
    """Condition folder (slug) -> number of damaged parts among ``problems``."""
    out: dict = {}
    for p in problems:
        if p["file"].startswith("conditions/") and p["file"].endswith(".h5"):
            slug = p["file"].split("/")[1]
            out[slug] = out.get(slug, 0) + 1
    return out


def check_store(root: str, *, full: bool = False) -> dict:
    """Every problem of the store ``root``.

    Returns
    -------
    dict with ``problems`` (list of dicts: file, problem, repair), ``healthy`` (bool) and
    ``checked`` (counts of parts, parts without checksum records, heads).
    """
    counts = dict(parts=0, unrecorded=0, heads=0)
    try:
        manifest = read_manifest(root)
    except FeatlabError as err:
        problems = [_problem(MANIFEST, str(err), "restore it, or extract again elsewhere")]
        return dict(path=root, healthy=False, problems=problems, checked=counts)
    problems = samples_problems(root, manifest, full) + _index_problems(root)
    base = os.path.join(root, "conditions")
    for slug in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if os.path.isdir(os.path.join(base, slug)):
            problems += _condition_problems(root, slug, manifest, full, counts)
    problems += _head_problems(root, full, counts)
    return dict(path=root, healthy=not problems, problems=problems, checked=counts)
