"""The ``featlab extract`` command that adds conditions to an existing store.

A store is continued only with the options it was made with (the same sample table, the
same backbone weights, the same storage settings: :mod:`featlab.store.writer`,
:mod:`featlab.extraction.storage`), so a command suggested in an error message or a report
box repeats them as the manifest records them: ``--dataset``, ``--root``, ``--limit``,
``--image-size``, ``--seed``, the class list and COCO selection, every backbone with its
weights file, and storage options that differ from the defaults.
"""
from __future__ import annotations

import shlex

#: storage options the command must repeat when they differ from ``featlab extract``'s
#: defaults (channels-last and compression default to the store's own, so need no flag)
STORAGE_FLAGS = {"dtype": ("--dtype", "float32"), "precision": ("--precision", "fp32"),
                 "layers": ("--layers", "*")}
#: loaders whose class list the command repeats (their default is every class found)
CLASS_LOADERS = ("coco", "synthetic", "imagefolder")


def _backbones(manifest: dict) -> str:
    """``NAME=PATH,...`` in the stored order (the first is the object backbone); a backbone
    without a recorded file by its name alone."""
    entries = []
    for name, meta in manifest.get("backbones", {}).items():
        path = meta.get("weights_path") if isinstance(meta, dict) else None
        entries.append(f"{name}={path}" if path else name)
    return ",".join(entries)


def extract_options(root: str, manifest: dict) -> list[str]:
    """The flags of ``featlab extract`` that reopen the store ``root`` as it was made."""
    ds = manifest.get("dataset", {})
    flags = ["--store", root, "--dataset", str(ds.get("name", "NAME")),
             "--root", str(ds.get("root", "ROOT"))]
    if ds.get("limit") is not None:
        flags += ["--limit", str(ds["limit"])]
    if ds.get("image_size") is not None:
        flags += ["--image-size", str(ds["image_size"])]
    seed = manifest.get("seed", ds.get("seed", 0))
    if seed:
        flags += ["--seed", str(seed)]
    if ds.get("name") in CLASS_LOADERS and ds.get("classes"):
        flags += ["--classes", ",".join(ds["classes"])]
    if ds.get("selection") not in (None, "paper"):
        flags += ["--selection", str(ds["selection"])]
    if manifest.get("backbones"):
        flags += ["--backbones", _backbones(manifest)]
    storage = manifest.get("storage", {})
    for key, (flag, default) in STORAGE_FLAGS.items():
        if storage.get(key, default) != default:
            flags += [flag, str(storage[key])]
    return flags


def extract_hint(root: str, manifest: dict, conditions: str) -> str:
    """``featlab extract ... --conditions CONDITIONS`` for the store ``root``, as one shell
    line (arguments quoted where the shell needs it)."""
    words = ["featlab", "extract", *extract_options(root, manifest), "--conditions", conditions]
    return " ".join(shlex.quote(w) for w in words)
