"""The fitted linear heads of a store: their names, files and loading — the one owner.

A head is ``STORE/heads/<name>.h5``: arrays ``coef`` (C, d), ``intercept`` (C,), ``mean``,
``scale`` (d,), ``coef_std`` (C, d), and JSON attributes (``kind``, ``alpha``, ``subset``,
``layer``, ``inputs`` — the backbones whose features it reads, in order —, ``classes``,
``training_conditions``, ``n_train``, ...). ``featlab fit-head`` writes them; attacks, probe
selection and the analyses read them through this module only.

Identity (issue 8): :func:`head_digest` is a sha256 over a head's arrays and attributes, so
two fits give the same digest exactly when they give the same head. Attack and probe
conditions record the digests of the heads they were made against (``heads`` in their
``condition.json``); a refit that changes such a head leaves those conditions *stale*
(:func:`stale_heads`), and the analyses label their results ``stale`` — featlab marks, it
does not keep old heads beside new ones, and refitting the old settings makes them current
again.

Names: ``fg-all``, ``bg-similar``, ``joint-all-alpha=10`` (:func:`head_name`); robust heads
``adv-joint-all``, ``mat-mixed-joint-all``, ``mat-parallel-joint-all-eps=0.1`` (one file per
voting member; :func:`robust_head_name`).
"""
from __future__ import annotations

import hashlib
import json
import os

import h5py
import numpy as np

from ..errors import DamagedData, FeatlabError
from ..params import format_value
from ..utils.paths import fsync_dir
from .checksums import check_head
from .files import check_writable, write_h5
from .index import build_index
from .layout import SAMPLES, WriterLock, remove_temporaries
from .table import records_expected

HEADS_DIR = "heads"
FIT = "fit"  # the attribute naming the heads saved together (featlab.store.fits)


def head_name(kind: str, subset: str = "all", alpha=None) -> str:
    """Store name of a head: ``fg-all``, ``bg-similar``, ``joint-all-alpha=10``."""
    if alpha is None:
        return f"{kind}-{subset}"
    return f"{kind}-{subset}-alpha={format_value(float(alpha))}"


def robust_head_name(recipe: str, kind: str, subset: str = "all", strength=None,
                     param: str = "eps") -> str:
    """Store name of a robust head: ``adv-joint-all``, ``mat-parallel-fg-all-eps=0.1``."""
    name = f"{recipe}-{kind}-{subset}"
    return name if strength is None else f"{name}-{param}={format_value(float(strength))}"


def selecting_head(select: str, subset: str = "all", alpha: float = 0.0) -> str:
    """The head a role names: ``fg`` -> ``fg-all``, ``joint`` -> ``joint-all-alpha=0``."""
    return head_name(select, subset, alpha if select == "joint" else None)


def _names(items) -> str:
    items = list(items)
    return ", ".join(items) if items else "(none)"


def head_path(root: str, name: str) -> str:
    return os.path.join(root, HEADS_DIR, f"{name}.h5")


def list_heads(root: str) -> list[str]:
    """Names of the heads fitted in the store at ``root``, sorted."""
    folder = os.path.join(root, HEADS_DIR)
    if not os.path.isdir(folder):
        return []
    return sorted(n[:-3] for n in os.listdir(folder)
                  if n.endswith(".h5") and not n.startswith(".tmp-"))


def load_head(root: str, name: str, *, purpose: str = "") -> tuple[dict, dict]:
    """Arrays and attributes of head ``name``; a one-line FeatlabError when it is missing
    or unreadable. ``purpose`` ends the hint (e.g. "to attack")."""
    path = head_path(root, name)
    if not os.path.isfile(path):
        alpha = f" --alpha {name.split('=')[1]}" if "alpha=" in name else ""
        subset = name.split("-")[1] if name.count("-") >= 1 else "all"
        raise FeatlabError(f"no head {name!r} in store {root}{' ' + purpose if purpose else ''}; "
                           f"fitted: {_names(list_heads(root))}; fit it: featlab fit-head "
                           f"--store {root} --subset {subset}{alpha}")
    check_head(path, name, root, records_expected(root))  # against the record written with it
    try:
        with h5py.File(path, "r") as handle:
            arrays = {k: handle[k][()] for k in handle}
            attrs = {k: json.loads(v) for k, v in handle.attrs.items()}
    except (OSError, ValueError, KeyError) as err:
        raise DamagedData(f"head file {path} is damaged ({type(err).__name__}); refit it: "
                           f"featlab fit-head --store {root}") from None
    if "coef" not in arrays or "intercept" not in arrays:
        raise FeatlabError(f"head file {path} lacks coef/intercept; refit it: featlab fit-head "
                           f"--store {root}")
    return arrays, attrs


def head_digest(arrays: dict, attrs: dict) -> str:
    """sha256 (hex) of a head's content: every array (name, dtype, shape, bytes) and every
    attribute but ``fit`` (which run saved it, :mod:`featlab.store.fits`) as JSON, in sorted
    order. Same fit, same bytes on CPU: same digest."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    content = {k: attrs[k] for k in sorted(attrs) if k != FIT}
    digest.update(json.dumps(content, sort_keys=True).encode())
    return digest.hexdigest()


_DIGESTS: dict = {}  # (path, size, mtime_ns) -> digest, per process


def current_digest(root: str, name: str):
    """Digest of the head file ``name`` as it is now, or None when there is none."""
    path = head_path(root, name)
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = head_digest(*load_head(root, name))
    return _DIGESTS[key]


def head_digests(root: str, names) -> dict:
    """name -> digest of each head among ``names`` that is fitted (what a condition records)."""
    found = {name: current_digest(root, name) for name in names}
    return {name: d for name, d in found.items() if d is not None}


def stale_heads(root: str, info: dict, now=None):
    """Heads a condition was made against that have changed or gone since (sorted list);
    ``[]`` when all are as recorded or it used none; None when the condition predates head
    digests and names a head (cannot tell). ``now``: name -> digest overriding the files
    (heads fitted but not yet saved)."""
    recorded = info.get("heads")
    if recorded is None:
        return None if info.get("head") not in (None, "own-logits") else []
    now = now or {}
    return sorted(n for n, d in recorded.items()
                  if (now[n] if n in now else current_digest(root, n)) != d)


def in_store_classes(arrays: dict, attrs: dict, classes) -> dict:
    """A subset head's coef/intercept widened to all ``classes`` (the store's), the classes
    outside the subset at a constant logit of -1e4 (softmax probability 0): the subset head's
    decision on its own classes, with labels indexing the store's classes."""
    own = list(attrs.get("classes") or classes)
    if own == list(classes):
        return arrays
    coef = np.zeros((len(classes), arrays["coef"].shape[1]), arrays["coef"].dtype)
    intercept = np.full(len(classes), -1e4, arrays["intercept"].dtype)
    rows = [list(classes).index(c) for c in own]
    coef[rows], intercept[rows] = arrays["coef"], arrays["intercept"]
    return dict(arrays, coef=coef, intercept=intercept)


def head_record(head, **attrs) -> tuple[dict, dict]:
    """(arrays, attrs) of a fitted :class:`~featlab.analyses.heads.linear.LinearHead`."""
    arrays = dict(coef=head.coef_.astype(np.float32), intercept=head.intercept_.astype(np.float32),
                  mean=head.mean_.astype(np.float32), scale=head.scale_.astype(np.float32),
                  coef_std=head.coef_std_.astype(np.float32))
    return arrays, attrs


def save_heads(root: str, records: dict) -> list[str]:
    """Write heads (name -> (arrays, attrs)) and refresh the index, under the writer lock.

    Each head is built in memory and written with its checksum record
    (:func:`featlab.store.files.write_h5`): a full disk or a read-only store is one line and
    leaves every head file complete. Each records the digests of all heads of this call
    (attribute ``fit``), so that heads of two calls are told apart (:mod:`.fits`);
    unfinished files of a writer that was killed are removed first.
    """
    check_writable(root)
    if not os.path.isfile(os.path.join(root, SAMPLES)):  # the index could not be rebuilt
        raise FeatlabError(f"store {root} has lost {SAMPLES}; rerun the extract command to "
                           f"rewrite it before fitting heads")
    folder = os.path.join(root, HEADS_DIR)
    fit = {"heads": {name: head_digest(*record) for name, record in sorted(records.items())}}
    with WriterLock(root):
        remove_temporaries(root)
        for name, (arrays, attrs) in records.items():
            def fill(handle, arrays=arrays, attrs=dict(attrs, **{FIT: fit})):
                for key, value in arrays.items():
                    handle.create_dataset(key, data=value, track_times=False)
                for key, value in attrs.items():
                    handle.attrs[key] = json.dumps(value)
            write_h5(head_path(root, name), fill, root=root, what=f"head {name}")
        fsync_dir(folder)
        build_index(root)
    return sorted(records)


def heads_for(root: str, names, backbones) -> dict:
    """Heads among ``names`` whose inputs are all in ``backbones``: name -> dict(coef,
    intercept (float64), inputs, layer, classes)."""
    out = {}
    for name in names:
        if not os.path.isfile(head_path(root, name)):
            continue
        arrays, attrs = load_head(root, name)
        if all(b in backbones for b in attrs.get("inputs", [])):
            out[name] = dict(coef=arrays["coef"].astype(np.float64),
                             intercept=arrays["intercept"].astype(np.float64),
                             inputs=list(attrs["inputs"]), layer=attrs.get("layer", "penultimate"),
                             classes=attrs.get("classes"))
    return out


def head_probabilities(head: dict, feats: dict) -> np.ndarray:
    """Softmax of a head (as :func:`heads_for` gives it) on ``feats["<backbone>/<layer>"]``."""
    x = np.concatenate([np.asarray(feats[f"{b}/{head['layer']}"], dtype=np.float64)
                        for b in head["inputs"]], axis=1)
    logits = x @ head["coef"].T + head["intercept"]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)
