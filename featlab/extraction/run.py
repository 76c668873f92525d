"""One extraction run, in one process or as one rank of a torchrun job.

:func:`extract` opens the job's ranks (one, without torchrun); :func:`run_extraction` sets
the run up (dataset, device, precision, backbones, layers),
lets rank 0 open the store and plan the missing chunks, computes this rank's chunks
(:func:`compute_chunks`), then gathers the ranks and has rank 0 write the index.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter

import numpy as np

from ..conditions import parse_conditions
from ..errors import FeatlabError
from ..store import StoreWriter
from ..store.files import check_writable
from ..store.layout import list_parts
from ..store.records import record_bytes, restore_records, stored_record
from .chunks import compute_chunks
from .distributed import assign_chunks, rank_context
from .forward import FeatureForward
from .precision import check_precision, precision_mode
from .probe_precision import probe_metadata
from .spec import backbone_meta, build_backbones, check_conditions, load_dataset
from .storage import check_disk, check_settings, estimate_bytes, feature_dtype, \
    missing_on_disk, select_layers, settings_of, with_store_defaults
from .targets import TargetModels

log = logging.getLogger(__name__)



def _targets(writer, models, dataset, spec) -> TargetModels:
    """The attack targets of a run: heads of the store, or trained networks' own logits."""
    return TargetModels(writer.root, models, writer.manifest["backbones"],
                        classes=dataset.samples.classes, weights=spec.weights,
                        cache_dir=spec.cache_dir)

def _changed_heads(writer, key: str, info: dict):
    """Heads recorded in ``key``'s condition record whose digest differs from
    ``info["heads"]`` (the heads as they are now), and whether parts made against them are
    stored. A refit since then makes those parts stale: extending or reusing them would mix
    two heads' attacks in one condition."""
    old = (stored_record(writer.root, key) or {}).get("heads")
    if not isinstance(old, dict):
        return [], False
    now = info.get("heads") or {}
    return (sorted(n for n, d in old.items() if now.get(n) != d),
            bool(list_parts(writer.condition_dir(key))))


def _register(writer, conditions, targets) -> None:
    """Write each condition record, after refusing conditions whose stored parts were made
    against heads that have changed since (nothing is written before that check)."""
    infos = {c.key: dict(name=c.name, params=c.params, label=c.label, **targets.describe(c),
                         **probe_metadata(c), **_class_record(c, targets.classes))
             for c in conditions}
    for key, info in infos.items():
        changed, stored = _changed_heads(writer, key, info)
        if changed and stored:
            raise FeatlabError(f"{key} was extracted against head(s) {', '.join(changed)} as "
                               f"they were before a refit; its stored parts are stale: delete "
                               f"{writer.condition_dir(key)} and extract it again (or refit "
                               f"the head with its old settings)")
    for key, info in infos.items():  # a record without parts is rewritten: heads as they are
        writer.add_condition(key, info)


def _class_record(condition, classes) -> dict:
    """What a condition records about the store's classes (e.g. the number of target classes
    an AutoAttack component tries, at most K - 1)."""
    return condition.perturbation.class_record(condition.params, len(classes)) if classes else {}


def undo_records(writer, plan) -> None:
    """After a refusal: put back the condition record of every condition that got no part
    (so a refused run leaves no record, e.g. one naming no heads), and remove a store this
    run created when no part was written into it. Best effort: the refusal is what the user
    sees."""
    try:
        restore_records(writer.root, plan["records_before"], remove_empty_store=plan["created"])
    except OSError as err:
        log.warning("could not undo the condition records of the refused run: %s", err)


def _writer_args(spec, dataset, meta) -> dict:
    return dict(samples=dataset.samples, backbones=meta, chunk_size=spec.chunk_size,
                dataset_spec=dict(dataset.spec, limit=spec.limit))


def open_store(spec, conditions, dataset, models, meta):
    """Rank 0: check the disk, open (or create) the store under its lock, register the
    conditions. Returns ``(writer, targets)`` and the plan: ``missing`` (key -> chunks) and
    ``estimated_bytes`` (of the parts to write)."""
    settings = settings_of(spec)
    itemsize = np.dtype(feature_dtype(spec.dtype)).itemsize
    dims = sum(sum(m["layers"].values()) for m in meta.values())
    blocks = sum(len(m["layers"]) for m in meta.values())
    on_disk, chunk = missing_on_disk(os.path.abspath(spec.store), [c.key for c in conditions],
                                     len(dataset.samples), spec.chunk_size)
    estimate = estimate_bytes(conditions, on_disk, dims, itemsize, chunk, blocks)
    check_disk(spec.store, estimate)
    created = not os.path.exists(spec.store)  # a refusal below removes a store it created
    writer = StoreWriter(spec.store, extra=dict(seed=spec.seed, storage=settings),
                         **_writer_args(spec, dataset, meta))
    try:
        check_settings(writer.manifest, settings, writer.root, meta)
        targets = _targets(writer, models, dataset, spec)
        before = {c.key: record_bytes(writer.root, c.key) for c in conditions}
        _register(writer, conditions, targets)
        missing = {c.key: writer.missing_chunks(c.key) for c in conditions}
    except BaseException:
        writer.close()
        if created:
            shutil.rmtree(spec.store, ignore_errors=True)
        raise
    return (writer, targets), dict(missing=missing, estimated_bytes=estimate,
                                   records_before=before, created=created)


def _setup(spec, dataset, device, ctx):
    """Backbones and layer selection; a user error on any rank stops every rank."""
    error = models = layers = None
    try:
        models = build_backbones(spec, dataset, device)
        layers = select_layers(spec.layers, models)
    except FeatlabError as err:
        error = str(err)
    ctx.agree(error)
    return models, layers


def extract(spec) -> dict:
    """Run (or continue) an extraction; returns a JSON-able summary.

    Started by torchrun (``WORLD_SIZE > 1``), every rank computes its share of the chunks
    and all return the same summary (see :mod:`featlab.extraction.distributed`).
    """
    conditions = parse_conditions(spec.conditions)
    if spec.batch_size < 1 or spec.chunk_size < 1 or spec.workers < 0:
        raise FeatlabError("--batch-size and --chunk-size must be >= 1, --workers >= 0")
    check_writable(spec.store)  # a read-only store is refused before any work
    spec = with_store_defaults(spec)
    with rank_context() as ctx:
        return run_extraction(spec, conditions, ctx)


def run_extraction(spec, conditions, ctx) -> dict:
    """Body of :func:`extract` for the rank ``ctx``."""
    check_precision(spec.precision)
    dtype = feature_dtype(spec.dtype)
    dataset = ctx.first(lambda: load_dataset(spec))
    check_conditions(conditions, dataset)
    device = ctx.device(spec.device)
    with precision_mode(spec.precision, device) as autocast:
        models, layers = _setup(spec, dataset, device, ctx)
        fwd = FeatureForward(models, layers, autocast, spec.channels_last)
        meta = backbone_meta(models, layers)
        opened, plan = ctx.decide(lambda: open_store(spec, conditions, dataset, models, meta))
        if opened is None:  # rank > 0: parts only, under rank 0's lock
            writer = StoreWriter(spec.store, lock=False, **_writer_args(spec, dataset, meta))
            opened = writer, _targets(writer, models, dataset, spec)
        writer, targets = opened
        started = time.perf_counter()
        try:
            missing = {k: set(map(tuple, v)) for k, v in plan["missing"].items()}
            costs = Counter(c for chunks in missing.values() for c in chunks)
            mine = assign_chunks(costs, ctx.world_size, ctx.rank)
            if ctx.distributed:
                log.info("rank %d of %d: %d of %d chunks on %s", ctx.rank, ctx.world_size,
                         len(mine), len(costs), device)
            run = dict(spec=spec, fwd=fwd, targets=targets, device=device, dtype=dtype)
            failures = compute_chunks(run, conditions, dataset, writer, missing, mine)
            failures = sorted(f for part in ctx.all_gather(failures) for f in part)
            if ctx.is_zero:
                writer.rebuild_index()
            ctx.barrier()
        except FeatlabError:
            if ctx.is_zero:
                undo_records(writer, plan)
            raise
        finally:
            writer.close()
    return dict(store=writer.root, images=writer.n_rows, device=str(device),
                conditions={c.key: dict(computed=len(missing[c.key])) for c in conditions},
                decode_failures={file: reason for _, file, reason in failures},
                seconds=round(time.perf_counter() - started, 2),
                skipped_at_load=len(dataset.samples.skipped), ranks=ctx.world_size,
                estimated_bytes=plan["estimated_bytes"],
                rank=ctx.rank)
