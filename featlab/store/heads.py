"""The fitted heads of a store: their names, files and loading — the one owner of head I/O.

A head is ``STORE/heads/<name>.h5``: the arrays of its type (:meth:`featlab.heads.base.Head.
to_arrays`; a linear head: ``coef`` (C, d), ``intercept`` (C,), ``mean``, ``scale`` (d,),
``coef_std`` (C, d)) and JSON attributes (``head_type`` — absent for linear heads —, ``kind``,
``alpha``, ``subset``, ``layer``, ``inputs`` — the backbones whose features it reads, in
order —, ``classes``, ``training_conditions``, ``n_train``, ...). ``featlab fit-head`` writes
them; attacks, probe selection and the analyses read them through this module only, as head
objects (:func:`heads_for`, :func:`featlab.heads.base.head_from_arrays`).

Identity: :func:`head_digest` is a sha256 over a head's arrays and attributes, so
two fits give the same digest exactly when they give the same head. Attack and probe
conditions record the digests of the heads they were made against (``heads`` in their
``condition.json``); a refit that changes such a head leaves those conditions *stale*
(:func:`stale_heads`), and the analyses label their results ``stale`` — featlab marks, it
does not keep old heads beside new ones, and refitting the old settings makes them current
again.

Names: ``fg-all``, ``bg-similar``, ``joint-all-alpha=10`` (:func:`head_name`; alpha on the
fusion paper's scale, Section 3.4: :mod:`featlab.analyses.heads.alphas`); robust heads
``adv-joint-all``, ``mat-mixed-joint-all``, ``mat-parallel-joint-all-eps=0.1`` (one file per
voting member; :func:`robust_head_name`).
"""
from __future__ import annotations

import json
import logging
import os

import h5py
import numpy as np

from ..errors import DamagedData, FeatlabError
from ..heads.records import content_digest, head_from_arrays
from ..params import format_value
from ..utils.paths import fsync_dir
from .checksums import check_head
from .files import check_writable, write_h5
from .index import build_index
from .layout import SAMPLES, WriterLock, remove_temporaries
from .table import records_expected

HEADS_DIR = "heads"
FIT = "fit"  # the attribute naming the heads saved together (featlab.store.fits)
log = logging.getLogger(__name__)
_WARNED: set = set()  # head files whose mean-scale alpha was logged, per process


def head_name(kind: str, subset: str = "all", alpha=None) -> str:
    """Store name of a head: ``fg-all``, ``bg-similar``, ``joint-all-alpha=10`` (``alpha``:
    the paper's, beside the summed cross-entropy)."""
    if alpha is None:
        return f"{kind}-{subset}"
    return f"{kind}-{subset}-alpha={format_value(float(alpha))}"


def robust_head_name(recipe: str, kind: str, subset: str = "all", strength=None,
                     param: str = "eps") -> str:
    """Store name of a robust head: ``adv-joint-all``, ``mat-parallel-fg-all-eps=0.1``."""
    name = f"{recipe}-{kind}-{subset}"
    return name if strength is None else f"{name}-{param}={format_value(float(strength))}"


def paper_alpha(attrs: dict):
    """A head's alpha on the paper's scale from its attributes (or an attack condition's
    ``head_settings``); None when it has none. A nonzero ``alpha`` recorded without
    ``alpha_scale`` is on the mean scale: the paper's is that times ``n_train``."""
    alpha = attrs.get("alpha")
    if alpha is None or alpha == 0 or attrs.get("alpha_scale") == "sum":
        return alpha
    return float(f"{alpha * attrs['n_train']:.12g}") if attrs.get("n_train") else None


def _mean_scale_note(root: str, name: str, attrs: dict) -> None:
    """Log once that a head records its alpha on the mean scale while its name is read on
    the paper's: it stays usable, and a refit replaces it (attacks on it then read stale)."""
    key = (os.path.abspath(root), name)
    if attrs.get("alpha") in (None, 0) or "alpha_scale" in attrs or key in _WARNED:
        return
    _WARNED.add(key)
    paper = paper_alpha(attrs)
    log.warning("head %s of store %s records alpha=%g on the mean scale (the paper's alpha "
                "%s) while head names give the paper's alpha; refit it: featlab fit-head "
                "--store %s --subset %s --alpha %s", name, root, attrs["alpha"],
                "unknown" if paper is None else f"{paper:g}", root,
                attrs.get("subset", "all"), name.split("alpha=")[-1])


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
    _mean_scale_note(root, name, attrs)
    return arrays, attrs


def head_digest(arrays: dict, attrs: dict) -> str:
    """sha256 (hex) of a head's content (:func:`featlab.heads.base.content_digest`): every
    array and every attribute but ``fit`` (which run saved it, :mod:`featlab.store.fits`).
    Same fit, same bytes on CPU: same digest."""
    return content_digest(arrays, attrs, skip=(FIT,))


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
    """A subset head's output layer widened to all ``classes`` (the store's), the classes
    outside the subset at a constant logit of -1e4 (softmax probability 0): the subset head's
    decision on its own classes, with labels indexing the store's classes. The output layer
    is ``coef`` (C, .) with ``intercept`` (C,) or, one per expert, (K, C)."""
    own = list(attrs.get("classes") or classes)
    if own == list(classes):
        return arrays
    rows = [list(classes).index(c) for c in own]
    coef = np.zeros((len(classes), arrays["coef"].shape[1]), arrays["coef"].dtype)
    coef[rows] = arrays["coef"]
    old = arrays["intercept"]
    intercept = np.full(old.shape[:-1] + (len(classes),), -1e4, old.dtype)
    intercept[..., rows] = old
    return dict(arrays, coef=coef, intercept=intercept)


def head_record(head, **attrs) -> tuple[dict, dict]:
    """(arrays, attrs) of a fitted head (:class:`featlab.heads.base.Head`): its own
    :meth:`~featlab.heads.base.Head.to_arrays` with ``attrs`` added."""
    arrays, own = head.to_arrays()
    return arrays, dict(own, **attrs)


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
    """Heads among ``names`` whose inputs are all in ``backbones``: name -> dict(head (the
    head object), inputs, layer, layers (one per input), classes)."""
    out = {}
    for name in names:
        if not os.path.isfile(head_path(root, name)):
            continue
        arrays, attrs = load_head(root, name)
        if all(b in backbones for b in attrs.get("inputs", [])):
            layer = attrs.get("layer", "penultimate")
            out[name] = dict(head=head_from_arrays(arrays, attrs), inputs=list(attrs["inputs"]),
                             layer=layer, layers=list(attrs.get("layers") or
                                                      [layer] * len(attrs["inputs"])),
                             classes=attrs.get("classes"))
    return out


def head_probabilities(head: dict, feats: dict) -> np.ndarray:
    """Class probabilities (n, C), float64, of a head as :func:`heads_for` gives it, on
    ``feats["<backbone>/<layer>"]``; NaN rows where a feature is not finite."""
    blocks = [np.asarray(feats[f"{b}/{lay}"]) for b, lay in zip(head["inputs"], head["layers"])]
    ok = np.logical_and.reduce([np.isfinite(x).all(axis=1) for x in blocks])
    out = np.full((len(ok), len(head["head"].classes_)), np.nan)
    if ok.any():
        out[ok] = head["head"].predict_proba([x[ok] for x in blocks])
    return out
