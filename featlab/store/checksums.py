"""Checksums of store files, recorded when each file is written and checked when it is read.

Every part ``conditions/<slug>/part-<a>-<b>.h5``, every head ``heads/<name>.h5`` and the
sample table ``samples.h5`` has a sidecar ``<file>.json`` written just before the file
itself is renamed into place::

    {"format": 1, "file": "part-000000000-000000256.h5", "size": 1234567,
     "sha256": "<sha256 of the file's bytes>",
     "datasets": {"<name>": {"shape": [256, 512], "dtype": "<f4", "sha256": "..."}, ...}}

A dataset's ``sha256`` covers its storage description (chunks, filters) and its raw stored
bytes (the compressed chunks as they lie in the file), so it can be checked without
decompressing and without reading the other datasets of the file: readers check exactly
the datasets they read, once per process (:func:`check_dataset`). ``featlab store verify``
and ``featlab extract`` check the whole file's ``sha256`` (:func:`check_file`).

Files written before checksums existed have no sidecar; they are checked for structure only.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Callable, Optional

import h5py

from ..errors import DamagedData, FeatlabError

FORMAT = 1
SUFFIX = ".json"
_VERIFIED: set = set()  # (path, dataset, inode, size, mtime_ns) checked in this process


def sidecar(path: str) -> str:
    """Path of the checksum record of ``path``."""
    return path + SUFFIX


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__


def storage_plan(dset: h5py.Dataset) -> tuple:
    """What a dataset's checksum covers: ``(description, pieces)``, each piece bytes held in
    the object header or an ``(offset, size)`` range of the file. Offsets of an open file
    being written are final once it is flushed (HDF5 never moves raw data)."""
    description = repr((dset.shape, dset.dtype.str, dset.chunks, dset.compression,
                        dset.compression_opts, dset.shuffle, dset.fletcher32,
                        dset.scaleoffset)).encode()
    dsid = dset.id
    layout = dsid.get_create_plist().get_layout()
    pieces: list = []
    if layout == h5py.h5d.CHUNKED:
        for i in range(dsid.get_num_chunks()):
            info = dsid.get_chunk_info(i)
            pieces.append(repr((info.chunk_offset, info.filter_mask)).encode())
            pieces.append((info.byte_offset, info.size))
    elif layout == h5py.h5d.CONTIGUOUS:
        offset = dsid.get_offset()
        if offset is not None:
            pieces.append((offset, dsid.get_storage_size()))
    else:  # compact: the values live in the object header
        pieces.append(dset[()].tobytes())
    return description, pieces


def plan_digest(plan: tuple, read: Callable[[int, int], bytes]) -> str:
    """sha256 of a :func:`storage_plan`, the file ranges read with ``read(offset, size)``."""
    description, pieces = plan
    digest = hashlib.sha256(description)
    for piece in pieces:
        digest.update(piece if isinstance(piece, bytes) else read(*piece))
    return digest.hexdigest()


def dataset_digest(dset: h5py.Dataset, read: Callable[[int, int], bytes]) -> str:
    """sha256 of a dataset's storage description and raw stored bytes.

    Parameters
    ----------
    dset : h5py.Dataset — an open dataset
    read : callable(offset, size) -> bytes — reads the bytes of the file ``dset`` lives in
    """
    return plan_digest(storage_plan(dset), read)


def storage_plans(handle: h5py.Group, datasets=None) -> dict:
    """``{name: (shape, dtype, plan)}`` of ``datasets`` (all of ``handle``'s when None)."""
    if datasets is None:
        datasets = []
        handle.visititems(lambda key, obj: datasets.append(obj)
                          if isinstance(obj, h5py.Dataset) else None)
    return {d.name.lstrip("/"): (list(d.shape), d.dtype.str, storage_plan(d)) for d in datasets}


def image_record(name: str, image, plans: Optional[dict] = None) -> dict:
    """The checksum record of an HDF5 file held in memory (``image``: bytes-like).

    ``plans``: its datasets' :func:`storage_plans`, taken from the handle that wrote it;
    without them the image is opened to find its datasets."""
    view = memoryview(image)
    if plans is None:
        with h5py.File(io.BytesIO(view), "r") as handle:
            plans = storage_plans(handle)
    datasets = {key: dict(shape=shape, dtype=dtype,
                          sha256=plan_digest(plan, lambda o, n: view[o:o + n]))
                for key, (shape, dtype, plan) in plans.items()}
    return dict(format=FORMAT, file=name, size=len(view),
                sha256=hashlib.sha256(view).hexdigest(), datasets=datasets)


def read_record(path: str) -> tuple[Optional[dict], Optional[str]]:
    """(record, None), (None, None) when there is no sidecar, or (None, problem)."""
    try:
        with open(sidecar(path)) as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"its checksum record {os.path.basename(sidecar(path))} is unreadable " \
                     f"({first_line(err)})"
    keys = ("size", "sha256", "datasets")
    if not isinstance(record, dict) or any(k not in record for k in keys):
        return None, f"its checksum record {os.path.basename(sidecar(path))} is malformed"
    return record, None


def _matching(path: str, record: dict) -> tuple[list, Optional[str]]:
    """Record entries of the file's size: the current one and/or ``previous`` (the file this
    one replaced, kept so that a write stopped between the record and the file is no false
    alarm); or a problem."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return [], "the file is missing"
    previous = record.get("previous")
    entries = [e for e in [record] + ([previous] if isinstance(previous, dict) else [])
               if e.get("size") == size]
    if not entries:
        return [], f"the file is {size} bytes, {record['size']} when it was written (truncated?)"
    return entries, None


def size_problem(path: str, record: dict) -> Optional[str]:
    return _matching(path, record)[1]


def file_sha256(path: str, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: str) -> Optional[str]:
    """Why the whole file ``path`` differs from its record (None: it matches, or no record)."""
    record, problem = read_record(path)
    if problem or record is None:
        return problem
    entries, problem = _matching(path, record)
    if problem:
        return problem
    if file_sha256(path) not in {e.get("sha256") for e in entries}:
        return "its bytes do not match the checksum recorded when it was written"
    return None


def _dataset_problem(path: str, name: str, record: Optional[dict],
                     absent_ok: bool) -> Optional[str]:
    if record is not None and name not in record["datasets"]:
        return None if absent_ok else f"it was written without {name!r}"
    with open(path, "rb") as raw, h5py.File(path, "r") as handle:
        if name not in handle or not isinstance(handle[name], h5py.Dataset):
            return None if absent_ok and record is None else f"it has no dataset {name!r}"
        if record is None:
            return None
        want = record["datasets"][name]
        dset = handle[name]
        if list(dset.shape) != want["shape"] or dset.dtype.str != want["dtype"]:
            return (f"{name} has shape {list(dset.shape)} {dset.dtype.str}, "
                    f"{want['shape']} {want['dtype']} when it was written")
        if dataset_digest(dset, lambda o, n: os.pread(raw.fileno(), n, o)) != want["sha256"]:
            return f"the stored bytes of {name} do not match the checksum recorded when written"
    return None


def check_dataset(path: str, name: str, absent_ok: bool = False) -> Optional[str]:
    """Why dataset ``name`` of ``path`` cannot be trusted (None: it can). Once per process.

    ``absent_ok``: a part written without ``name`` is fine (probe parts without probed rows).
    """
    try:
        st = os.stat(path)
    except OSError:
        return "the file is missing"
    key = (path, name, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return None
    record, problem = read_record(path)
    if record is not None:
        entries, problem = _matching(path, record)
        record = entries[0] if entries else None
    if problem is None:
        try:
            problem = _dataset_problem(path, name, record, absent_ok)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            problem = f"it cannot be read as HDF5 ({first_line(err)})"
    if problem is None:
        _VERIFIED.add(key)
    return problem


def head_problem(path: str) -> Optional[str]:
    """Why the head file ``path`` cannot be used (None: it can). Heads are small: whole file."""
    problem = check_file(path)
    if problem is None:
        try:
            with h5py.File(path, "r") as handle:
                handle.attrs.keys()
        except (OSError, ValueError) as err:
            problem = f"it cannot be read as HDF5 ({first_line(err)})"
    return problem


def check_head(path: str, name: str, root: str) -> None:
    """Raise a one-line :class:`FeatlabError` when the head file ``path`` is damaged."""
    problem = head_problem(path)
    if problem:
        raise DamagedData(f"head {name} in store {root} is damaged: {problem}; fit it again "
                           f"with 'featlab fit-head --store {root}' (same options)")
