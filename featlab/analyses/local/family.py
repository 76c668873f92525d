"""Reading probe conditions (``isotropy``/``symmetry``) back from a store for the analyses.

A *family* is the set of stored probe conditions that differ only in ``radius``, e.g.
``isotropy:copies=16:samples=24:threshold=0.99:select=fg`` with radii 1, 5 and 10. Rows are
the probed images (``probed`` and ``valid`` in every radius); per-row blocks are read for
those rows only (h5py selections of the index's virtual datasets), so a large store's NaN
rows are never loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...conditions import condition_class, parse_condition
from ...errors import FeatlabError
from ...extraction.probe_precision import NOISE_TOLERANCE, relative_noise
from ...params import format_value
from ...store.heads import load_head
from ...store.rerun import extract_hint
from .lipschitz import MinMaxNormalizer

PROBE_KINDS = ("isotropy", "symmetry")
PIXELS = 255.0


@dataclass
class ProbeFamily:
    """Probe conditions of one kind and parameters, one per radius (sorted)."""

    kind: str
    name: str
    params: dict
    keys: dict = field(default_factory=dict)  # radius -> condition key

    @property
    def radii(self) -> list:
        return sorted(self.keys)

    @property
    def copies(self) -> int:
        return int(self.params["copies"])


def _family_name(kind: str, params: dict) -> str:
    spec = {p.name: p for p in condition_class(kind)[0].params}
    return ":".join([kind] + [f"{k}={format_value(v)}" for k, v in params.items()
                              if k != "radius" and (spec[k].keyed_default or v != spec[k].default)])


def families(store, kind: str) -> list[ProbeFamily]:

    out: dict = {}
    for key in store.conditions:
        info = store.condition_info(key)
        if info.get("name") != kind:
            continue
        params = parse_condition(key)[0].params  # declared order (condition.json sorts keys)
        name = _family_name(kind, params)
        fam = out.setdefault(name, ProbeFamily(kind, name, params))
        fam.keys[float(params["radius"])] = key
    return list(out.values())


def _extract_hint(store, kind: str) -> str:
    return extract_hint(store.path, store.manifest, f"{kind}:radius=1:5:10")


def choose_family(store, kind: str | None = "isotropy", probe: str | None = None) -> ProbeFamily:
    """The family asked for by ``probe`` (a condition string without radius), or the only one.

    ``kind=None`` accepts either kind (isotropy families first), as Mantel and Lipschitz do.
    """
    wanted = None
    if probe:
        pkind, _, rest = (t.strip() for t in probe.partition(":"))
        if pkind not in PROBE_KINDS or (kind and pkind != kind):
            raise FeatlabError(f"--probe {probe!r}: expected "
                               f"{kind or 'isotropy or symmetry'}[:param=value...]")
        if "radius" in rest:
            raise FeatlabError(f"--probe {probe!r}: give radii with --radius, not in --probe")
        params = parse_condition(f"{pkind}:radius=1" + (f":{rest}" if rest else ""))[0].params
        wanted, kind = _family_name(pkind, params), pkind
    kinds = [kind] if kind else list(PROBE_KINDS)
    found = [f for k in kinds for f in families(store, k)]
    if not found:
        what = kind or "isotropy or symmetry"
        raise FeatlabError(f"store {store.path} has no {what} probe conditions; add them with: "
                           f"{_extract_hint(store, kind or 'isotropy')}")
    if wanted:
        match = [f for f in found if f.name == wanted]
        if not match:
            raise FeatlabError(f"--probe {probe}: no such family in {store.path}; stored: "
                               f"{', '.join(f.name for f in found)}")
        return match[0]
    first = [f for f in found if f.kind == found[0].kind]
    if len(first) > 1:
        raise FeatlabError(f"store {store.path} holds several {found[0].kind} families; choose "
                           f"one with --probe, stored: {', '.join(f.name for f in first)}")
    return first[0]


def choose_radii(family: ProbeFamily, radii=None) -> list[float]:
    """``radii`` (all when empty), each checked to be extracted and complete."""
    have = family.radii
    wanted = sorted({float(r) for r in radii}) if radii else have
    missing = [r for r in wanted if r not in family.keys]
    if missing:
        raise FeatlabError(f"radius {format_value(missing[0])} was not extracted for "
                           f"{family.name}; extracted: {', '.join(format_value(r) for r in have)}")
    return wanted


def read_rows(store, key: str, name: str, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted indices) of the per-row array ``name`` of condition ``key``."""
    return store.read_array(name, key, rows=rows)


def probed_rows(store, family: ProbeFamily, radii) -> np.ndarray:
    """Sorted rows probed (and decoded) under every radius of ``radii``."""
    mask = np.ones(len(store.samples), dtype=bool)
    for r in radii:
        key = family.keys[r]
        mask &= store.read_array("probed", key).astype(bool) & store.valid(key)
    rows = np.flatnonzero(mask)
    if not len(rows):
        raise FeatlabError(f"no probed images in {family.name}; extract it again with a lower "
                           f"threshold=")
    return rows


def finite_block(values: np.ndarray, what: str) -> np.ndarray:
    """``values`` unchanged if finite, else a one-line FeatlabError naming the block."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise FeatlabError(f"{what} holds {int(bad.sum())} non-finite values in probed rows; "
                           f"re-extract that condition (delete its folder in the store)")
    return values


def stack_radii(store, family, radii, name, rows) -> np.ndarray:
    """``name`` for every radius: array of shape (n_rows, n_radii, ...)."""
    return np.stack([read_rows(store, family.keys[r], name, rows) for r in radii], axis=1)


def heads_in(store, family, radii, heads=None, backbones=None) -> list[str]:
    """Heads with stored scores (optionally restricted by name or by input backbone)."""
    stored = store.array_names(family.keys[radii[0]], "scores")
    if heads:
        unknown = [h for h in heads if h not in stored]
        if unknown:
            raise FeatlabError(f"--head {unknown[0]} has no scores in {family.name}; stored: "
                               f"{', '.join(stored) or '(none)'}")
        stored = list(heads)
    if backbones:
        inputs = {h: load_head(store.path, h)[1].get("inputs", []) for h in stored}
        stored = [h for h in stored if set(inputs[h]) & set(backbones)]
    if not stored:
        raise FeatlabError(f"no head scores stored with {family.name}; fit heads (featlab "
                           f"fit-head --store {store.path}) and extract the probes again")
    return stored


def check_backbones(store, backbones) -> list[str]:
    names = list(backbones or store.backbones)
    for b in names:
        if b not in store.backbones:
            raise FeatlabError(f"--backbone {b!r} is not in store {store.path}; stored: "
                               f"{', '.join(store.backbones)}")
    return names


def check_layers(store, backbones, layers) -> list[str]:
    layers = list(layers or ["penultimate"])
    for b in backbones:
        for layer in layers:
            if layer not in store.layers(b):
                raise FeatlabError(f"--layer {layer!r} is not stored for {b}; stored: "
                                   f"{', '.join(store.layers(b))}")
    return layers


def normalizers(store, family, backbone, layer, per_feature=False):
    """(g, h): min-max normalizers of ``layer`` (clean train features) and of the input."""
    if "clean" not in store.conditions:
        raise FeatlabError(f"the Lipschitz normalizer g needs clean features; extract them: "
                           f"{extract_hint(store.path, store.manifest, 'clean')}")
    clean = store.read(backbone=backbone, layer=layer, split="train")
    ok = store.valid("clean", split="train") & np.isfinite(clean).all(axis=1)
    key = family.keys[family.radii[0]]
    ranges = store.read_array("input_range", key, split="train")
    ranges = ranges[store.valid(key, split="train") & np.isfinite(ranges).all(axis=1)]
    if ok.sum() < 2 or not len(ranges):
        raise FeatlabError(f"too few clean train images in {store.path} to fit the normalizers")
    return (MinMaxNormalizer(per_feature).fit(clean[ok]), MinMaxNormalizer().fit(ranges))


def probe_features(store, family, radii, rows, backbone, layer, result=None):
    """Copies' features (n, R, T, d) and clean features (n, R, d), float64, checked finite.

    Where the float64 differences ``delta/<backbone>/<layer>`` are stored
    (:mod:`featlab.extraction.probe_precision`), the copies' features are
    ``clean + delta`` so that ``f - c`` is the accurate difference, and ``result`` (if
    given) gets the noise floor per radius in ``result["noise"]`` and a line in
    ``result["notes"]`` for each radius below it."""
    what = f"{family.name} {backbone}/{layer}"
    c = finite_block(stack_radii(store, family, radii, f"clean/{backbone}/{layer}", rows), what)
    c = c.astype(np.float64)
    if not all(layer in store.array_names(family.keys[r], f"delta/{backbone}") for r in radii):
        f = finite_block(stack_radii(store, family, radii, f"{backbone}/{layer}", rows), what)
        return f.astype(np.float64), c
    d = finite_block(stack_radii(store, family, radii, f"delta/{backbone}/{layer}", rows), what)
    d = d.astype(np.float64)
    if result is not None:
        _noise(store, family, radii, rows, f"{backbone}/{layer}", d, result)
    return c[:, :, None, :] + d, c


def _noise(store, family, radii, rows, name, delta, result) -> None:
    noise = stack_radii(store, family, radii, f"noise/{name}", rows)
    run = stack_radii(store, family, radii, f"noise_run/{name}", rows)
    for k, r in enumerate(radii):
        rel = relative_noise(noise[:, k], delta[:, k])
        rel_run = relative_noise(run[:, k], delta[:, k])
        row = dict(name=name, radius=r, relative_noise_max=float(np.max(rel)),
                   relative_noise_median=float(np.median(rel)),
                   relative_noise_run_precision_median=float(np.median(rel_run)))
        result.setdefault("noise", []).append(row)
        if row["relative_noise_max"] > NOISE_TOLERANCE:
            result.setdefault("notes", []).append(
                f"{name} at radius {format_value(r)}: feature differences are below the noise "
                f"floor (relative noise up to {row['relative_noise_max']:.3g} > "
                f"{NOISE_TOLERANCE:g}); use a larger radius")
