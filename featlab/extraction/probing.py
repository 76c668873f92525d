"""Extracting probe conditions (``isotropy``, ``symmetry``) for the local-property analyses.

The pipeline routes every condition of the probe family (:data:`featlab.probes.PROBES`) here, one
decoded chunk at a time (one decode per image, reused for all its radii and copies).

Which images are probed is decided up front, from the store, without forward passes: the
selecting head (``select=fg|bg|joint`` -> ``fg-all``, ``bg-all``, ``joint-all-alpha=0``,
the files ``featlab fit-head`` writes; ``select=head:NAME`` -> any stored head NAME) applied
to the store's clean features gives each test image's probability of its true label;
images at or above ``threshold`` are candidates, and the first ``samples`` of a seeded
permutation of them (seed: the run seed) are probed. The choice is therefore the same in
every chunk, in a resumed run, for every radius, and for isotropy and symmetry with the same
``samples/threshold/select``.

Per stored row (``probed`` says which rows were probed; the others read as NaN, or -1 / 0
for ``pred``; a chunk without probed rows stores only ``probed`` and ``input_range``):

=============================  ==========  =================================================
``<backbone>/<layer>``         (T, d)      features of the T copies, every stored layer
``clean/<backbone>/<layer>``   (d,)        features of the clean image, fed first in the
                                           same batches as its copies
``delta/<backbone>/<layer>``   (T, d)      ``f(x+v) - f(x)`` in float64, stored float32
``noise/<backbone>/<layer>``   ()          float64 noise floor of the clean features
``noise_run/<backbone>/<l>``   ()          the run's precision against float64, clean image
``scores/<head>``              (T,)        softmax probability of the true label, per head
``pred/<head>``                (T,)        predicted class of each copy, per head
``clean_score/<head>``         ()          the clean image's true-class probability
``clean_pred/<head>``          ()          the clean image's predicted class
``norms``                      (T,)        ``|x_a - x|`` of the inputs fed, 0-255 units
``input_pdist``                (T(T-1)/2,) condensed distances between the copies, 0-255
                                           units, float64 (``scipy.spatial.distance.pdist``
                                           order)
``input_range``                (2,)        min and max of the clean image (every decoded
                                           row, for the Lipschitz normalizer ``h``)
``probed``                     ()          bool
=============================  ==========  =================================================

Features are computed in float64 on the CPU (:mod:`featlab.extraction.probe_precision`,
which also defines the noise floor). Heads (:mod:`featlab.store.heads`): every one of
``fg-all``, ``bg-all``, ``joint-all-alpha=0`` and the condition's own ``select=head:NAME``
(:func:`scoring_heads`) fitted in the store whose backbones are all in this run, applied to
the copies' features of the layer it was fitted on.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import FeatlabError
from ..params import head_target
from ..probes.base import SELECT
from ..probes.sets import pairwise_condensed, perturbation_norms, sample_seed
from ..store.heads import head_probabilities, heads_for, list_heads, selecting_head
from ..store.rerun import extract_hint
from .probe_precision import float64_copies, forward64, noise_floor, warn_below_floor
from ..utils.seeding import derive_seed

log = logging.getLogger(__name__)
PIXELS = 255.0


def scoring_heads(select: str) -> list[str]:
    """Heads a probe condition with ``select`` scores: ``fg-all``, ``bg-all``,
    ``joint-all-alpha=0`` and, with ``select=head:NAME``, NAME."""
    named = head_target(select)
    return [selecting_head(s) for s in SELECT] + ([named] if named else [])


def select_rows(writer, samples, heads, *, select, threshold, samples_wanted, seed,
                dataset) -> np.ndarray:
    """Sorted rows to probe (see the module docstring)."""
    root = writer.root
    name = head_target(select) or selecting_head(select)
    if name not in heads:
        raise FeatlabError(f"probe conditions select images with the head {name}, which store "
                           f"{root} does not have for this run's backbones (stored heads: "
                           f"{', '.join(list_heads(root)) or 'none'}); fit it: featlab "
                           f"fit-head --store {root}")
    head = heads[name]
    if head["classes"] is not None and list(head["classes"]) != list(samples.classes):
        raise FeatlabError(f"head {name} was fitted on a class subset; probes need the "
                           f"all-classes head: featlab fit-head --store {root} --subset all")
    how = f"extract them first: {extract_hint(root, writer.manifest, 'clean')}"
    names = [f"{b}/{head['layer']}" for b in head["inputs"]] + ["valid"]
    clean = writer.read_complete("clean", names, how=how)
    prob = head_probabilities(head, clean)
    ok = clean["valid"].astype(bool) & np.isfinite(prob).all(axis=1) & (samples.split == "test")
    p_true = np.where(ok, prob[np.arange(len(samples)), samples.label], -1.0)
    candidates = np.flatnonzero(ok & (p_true >= threshold))
    if not len(candidates):
        best = p_true[ok].max() if ok.any() else float("nan")
        raise FeatlabError(f"no test image reaches threshold={threshold:g} with head {name} "
                           f"(highest true-class probability {best:.4g}); lower the threshold")
    # one seeded order of the candidates: a larger ``samples`` extends a smaller one's choice
    order = np.random.default_rng(derive_seed("probe-selection", seed))
    chosen = np.sort(order.permutation(candidates)[:samples_wanted])
    if len(chosen) < samples_wanted:
        log.warning("only %d test images reach threshold %g with head %s (asked for %d)",
                    len(chosen), threshold, name, samples_wanted)
    return chosen


class ProbeRunner:
    """Computes the stored arrays of probe conditions, chunk by chunk (see module docstring).

    Parameters
    ----------
    writer : StoreWriter — the store being written (its heads, parts and chunk size)
    dataset : ImageDataset — its sample table gives image ids, labels and splits
    fwd : FeatureForward — the run's backbones (on its device) and stored layers; the
        heads' layers are captured too, and stored only when selected
    spec : ExtractionSpec — ``seed`` and ``batch_size`` are used
    selects : the ``select`` values of the run's probe conditions (their heads are loaded)
    """

    def __init__(self, writer, dataset, fwd, spec, selects=()):
        self.writer, self.root = writer, writer.root
        self.dataset, self.fwd, self.spec = dataset, fwd, spec
        self.models = fwd.models
        self.models64 = float64_copies(fwd.models)  # probes are computed in float64, CPU
        self.samples = dataset.samples
        self.device = next(self.models[0].parameters()).device
        names = dict.fromkeys(n for s in ("fg", *selects) for n in scoring_heads(s))
        self.heads = heads_for(self.root, list(names), [m.name for m in self.models])
        self.head_layers = sorted({h["layer"] for h in self.heads.values()})
        self.chunk_size = writer.chunk_size
        self._selection: dict = {}
        self._checked: set = set()

    def selected(self, params: dict) -> np.ndarray:
        """Boolean mask over all rows: the images probed by conditions with these params."""
        key = (params["select"], params["threshold"], params["samples"])
        if key not in self._selection:
            rows = select_rows(self.writer, self.samples, self.heads, select=params["select"],
                               threshold=params["threshold"], samples_wanted=params["samples"],
                               seed=self.spec.seed, dataset=self.dataset)
            mask = np.zeros(len(self.samples), dtype=bool)
            mask[rows] = True
            self._selection[key] = mask
            log.info("probing %d test images (select=%s, threshold=%g)", len(rows), *key[:2])
        return self._selection[key]

    def _check_resume(self, cond, mask) -> None:
        """Once per condition: parts already stored must have probed the same images."""
        if cond.key in self._checked:
            return
        self._checked.add(cond.key)
        dims = sum(d for m in self.models for layer, d in m.layer_dims().items()
                   if self.stored(m.name, layer))
        size = self.chunk_size * (cond.params["copies"] + 1) * dims * 4 / 2 ** 30
        if size > 2:
            log.warning("%s holds %.1f GiB of features per chunk of %d rows; use fewer copies "
                        "or a store with a smaller --chunk-size", cond.key, size, self.chunk_size)
        for start, stop, probed in self.writer.stored_rows(cond.key, "probed"):
            if probed is None or not np.array_equal(probed, mask[start:stop]):
                raise FeatlabError(f"{cond.key}: the stored parts probed other images than the "
                                   f"heads select now (refitted since?); delete "
                                   f"{self.writer.condition_dir(cond.key)} and extract again")

    def chunk(self, group, start, stop, images, labels):
        """Arrays of rows [start, stop) for each condition of ``group``.

        Returns an iterator of dicts, one per condition, produced lazily so that memory
        holds one radius at a time (rows x copies x features).
        """
        mask = self.selected(group[0].params)
        for cond in group:
            self._check_resume(cond, mask)
        local = np.flatnonzero(mask[start:stop])
        ranges = images.flatten(1).aminmax(dim=1)
        base = {"probed": mask[start:stop].copy(),
                "input_range": torch.stack([ranges.min, ranges.max], 1).float().cpu().numpy()}
        if not len(local):
            return iter([{k: v.copy() for k, v in base.items()} for _ in group])
        labels = labels.cpu().numpy()
        return (self._condition(cond, base, local, images, labels, start, stop) for cond in group)

    # -- one condition of a chunk -------------------------------------------------------
    def stored(self, backbone: str, layer: str) -> bool:
        return self.fwd.layers is None or layer in self.fwd.layers[backbone]

    def _heads(self, params: dict) -> dict:
        """The heads a condition scores (:func:`scoring_heads`) that are fitted."""
        return {n: self.heads[n] for n in scoring_heads(params["select"]) if n in self.heads}

    def _forward(self, batch: torch.Tensor) -> dict:
        """Float64 features (CPU) of ``batch``: stored layers and the heads' layers."""
        return forward64(self.models64, batch, lambda m: self.fwd.wanted(m, self.head_layers),
                         self.spec.batch_size)

    def _condition(self, cond, base, local, images, labels, start, stop) -> dict:
        probe, p = cond.perturbation, cond.params
        t, n = p["copies"], stop - start
        out = {k: v.copy() for k, v in base.items()}
        out["norms"] = np.full((n, t), np.nan)
        out["input_pdist"] = np.full((n, t * (t - 1) // 2), np.nan)
        for head in self._heads(p):
            out[f"scores/{head}"] = np.full((n, t), np.nan)
            out[f"pred/{head}"] = np.full((n, t), -1, np.int64)
            out[f"clean_score/{head}"] = np.full(n, np.nan)
            out[f"clean_pred/{head}"] = np.full(n, -1, np.int64)
        for row in local:
            self._sample(out, probe, p, row, images[row], int(labels[row]), start + row, n)
        warn_below_floor(cond.key, out, local)
        return out

    def _sample(self, out, probe, p, row, x, label, global_row, n) -> None:
        """Probe one image: the clean image and its copies through the float64 copy of
        every backbone (one batch sequence, so the clean reference is computed like the
        copies), the heads on top, the noise floor, and the copies' input geometry."""
        seed = sample_seed(self.spec.seed, self.samples.image_id[global_row])
        v = probe.probe_set(tuple(x.shape), radius=p["radius"], copies=p["copies"], seed=seed,
                            norm=p.get("norm", "l2"))
        x64 = x.detach().cpu().to(torch.float64)
        fed = torch.cat([x64[None], x64[None] + v.to(torch.float64)])
        feats = self._forward(fed)
        alone = self._forward(x64[None])
        run = self.fwd(x[None], extra=self.head_layers)  # the run's own precision
        for name, values in feats.items():
            if not self.stored(*name.split("/", 1)):
                continue
            arrays = ((name, values[1:]), (f"clean/{name}", values[0]),
                      (f"delta/{name}", values[1:] - values[0]),
                      (f"noise/{name}", noise_floor(values[0], alone[name][0])),
                      (f"noise_run/{name}", np.linalg.norm(run[name][0] - values[0])))
            for key, part in arrays:
                if key not in out:
                    shape, dtype = np.shape(part), np.float32 if np.ndim(part) else np.float64
                    out[key] = np.full((n,) + shape, np.nan, dtype)
                out[key][row] = part
        for head, spec in self._heads(p).items():
            prob = head_probabilities(spec, feats)
            out[f"scores/{head}"][row] = prob[1:, label]
            out[f"pred/{head}"][row] = prob[1:].argmax(axis=1)
            out[f"clean_score/{head}"][row] = prob[0, label]
            out[f"clean_pred/{head}"][row] = prob[0].argmax()
        out["norms"][row] = perturbation_norms(fed[1:], x64) * PIXELS
        out["input_pdist"][row] = pairwise_condensed(fed[1:]) * PIXELS
