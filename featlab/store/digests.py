"""What a checksum record hashes: each dataset's storage description and raw stored bytes.

A dataset's digest covers its storage description (shape, dtype, chunks, filters) and its
raw stored bytes (the compressed chunks as they lie in the file), so it can be checked
without decompressing and without reading the other datasets of the file. The record
format and the checks are in :mod:`featlab.store.checksums`.
"""
from __future__ import annotations

import hashlib
import io
from typing import Callable, Optional

import h5py

FORMAT = 1


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
