"""Where a run writes, checked before any work; an earlier run's result recognised; weights
that are not finite never written.

A run writes ``--out`` (and its ``.json`` sidecar), checkpoints ``<out>.<stage>.ckpt``
while it trains, and with ``--crafting-model auto`` the crafting network beside it
(:func:`crafting_path`). :func:`check_output` refuses a directory in any of those places
or a folder it cannot write in, with one line and before the data is loaded, so a refused
run writes nothing and loses no work.
"""
from __future__ import annotations

import errno
import logging
import os
import tempfile

import torch

from ..backbones.trained import read_trained, write_sidecar
from ..errors import FeatlabError
from .checkpoint import remove_checkpoints

log = logging.getLogger(__name__)
DENIED = {errno.EROFS, errno.EACCES, errno.EPERM}


def sidecar_path(out: str) -> str:
    return os.path.splitext(out)[0] + ".json"


def crafting_path(out: str) -> str:
    """The file of the crafting network a run trains itself (``--crafting-model auto``)."""
    stem, ext = os.path.splitext(out)
    return f"{stem}-crafting{ext or '.pt'}"


def _probe(folder: str, out: str) -> None:
    """Create and remove a temporary file in ``folder`` (the nearest existing ancestor of
    the output's folder); a refused write is one line."""
    try:
        fd, path = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
    except OSError as err:
        if err.errno in DENIED:
            raise FeatlabError(f"--out {out}: cannot write in {folder} "
                               f"({os.strerror(err.errno)}); choose a writable folder") from None
        raise
    os.close(fd)
    os.unlink(path)


def check_output(spec, paths=()) -> None:
    """Refuse an ``--out`` that cannot be written, before anything is loaded or written.

    ``paths``: further files the run writes (the crafting network's).
    """
    out = spec.out
    for path in (out, sidecar_path(out), *paths):
        if os.path.isdir(path):
            raise FeatlabError(f"--out {out}: {path} is a directory; give a file path such as "
                               f"{os.path.join(path, 'NAME.pt')}")
    folder = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise FeatlabError(f"--out {out}: {folder} is a file, not a directory")
    _probe(folder, out)


def finished(spec, fingerprint: str, paths=()):
    """The record (sidecar) of an existing result from the same settings, or None when
    there is none; refuses to overwrite a result of other settings or a foreign file.

    The settings are read from the network file itself, so a file whose sidecar was lost
    is recognised (and its sidecar written again). ``paths``: further result files the run
    writes; one of another run is refused the same way.
    """
    for path in paths:
        if os.path.isfile(path) and _recorded_fingerprint(path) != fingerprint:
            raise FeatlabError(f"{path} already exists and was trained with other settings "
                               f"or data; choose another --out or delete it")
    if not os.path.isfile(spec.out):
        return None
    payload = read_trained(spec.out)
    if payload.get("meta", {}).get("fingerprint") != fingerprint:
        raise FeatlabError(f"{spec.out} already exists and was trained with other settings "
                           f"or data; choose another --out or delete it")
    info = {k: v for k, v in payload.items() if k != "members"}
    if not os.path.isfile(sidecar_path(spec.out)):
        log.info("%s had no sidecar: writing %s again", spec.out, sidecar_path(spec.out))
        write_sidecar(spec.out, payload)
    return info


def _recorded_fingerprint(path: str):
    return read_trained(path).get("meta", {}).get("fingerprint")


def check_finite(nets, spec, stage: str, epoch: int) -> None:
    """Refuse weights with NaN or inf: the run diverged. Its checkpoints are removed (a
    rerun with the same settings diverges again; other settings cannot continue them)."""
    for k, net in enumerate(nets):
        for key, value in net.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                remove_checkpoints(spec.out)
                raise FeatlabError(
                    f"training diverged: non-finite weights ({key} of network {k + 1}) after "
                    f"epoch {epoch} of stage {stage}; nothing was saved — lower --lr "
                    f"(now {spec.lr}) and rerun")
