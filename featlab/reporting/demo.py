"""``featlab demo``: the fusion paper's claims on the embedded synthetic benchmark, each with a
verdict that can fail, and a report of all four papers.

Generates the synthetic context scenes (COCO format), pretrains or reuses the two embedded
backbones, extracts clean, object-blurred and FGSM-attacked features (fg-targeted and the
adaptive target=joint), fits foreground / background / joint heads (an alpha sweep on the
paper's scale, :mod:`featlab.analyses.heads.alphas`) on All, Similar and Dissimilar plus an
adversarially retrained joint head, and decides from paired tests on the same test images
(:mod:`.claims`):

1. under object blur at every sigma, joint > fg on All, Similar and Dissimilar, and the gain
   is larger on Dissimilar (Section 3.2, Figure 3);
2. under object blur the object backbone's class centroids move more than the scene
   backbone's in the clean PCA coordinates, and the scene ones stay in place (Section 3.1,
   Figure 2; :mod:`featlab.analyses.shift.displacement`, margin ``shift_margin`` within-class
   SDs); the residual ratio outside the clean subspace
   (:mod:`featlab.analyses.shift.membership`, ``tolerance``) is reported beside it;
3. under fg-targeted FGSM at every strength joint > fg, at equal clean accuracy (Section 3.3,
   Figure 4), with the adaptive attack beside it (3b);
4. with the largest alpha the joint head follows the bg head under attack while clean
   accuracy stays within 2 points, and beats adversarial retraining (Section 3.4, Figure 5);
5. dose-response: the fusion gain at context consistency 1.0, 0.5, 0.0 shrinks as context
   stops predicting the class.

Claims 1-4 are built in by construction on this benchmark (its scene always tells the supercategory):
they show the pipeline works. Claim 5 varies what the finding depends on.

So that its report renders every section, the demo also extracts probe sets on a few test
images and trains two small networks (:mod:`.demo_sections`). Beside the claims, and not
counted in their verdicts, it explores non-linear fusion heads: the mlp and gated heads
against the linear joint head under blur and fg-FGSM, and the adaptive attack through each
(:mod:`.demo_explore`; ``exploration`` in the summary; ``explore=False`` skips it). With
``report=False`` (as ``featlab replicate`` runs each seed) it skips all three, since no claim
reads them, and its stores hold the penultimate layer only (all that the claims read; the
batch-norm layers are for the report). :func:`demo` returns its
summary and writes ``<analyses>/demo/summary.json`` (``claims``: the rows of :mod:`.claims`;
``stores``: the stores the report renders; ``phase_seconds``: wall time per phase).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from ..analyses.heads.run import fit_head
from ..backbones.roles import fg_bg
from ..analyses.shift.displacement import SHIFT_MARGIN
from ..analyses.shift.membership import TOLERANCE
from ..analyses.shift.run import pca_shift
from ..store import FeatureStore
from ..utils.paths import atomic_write_text
from . import claims as C
from .demo_explore import explore as explore_heads
from .demo_measure import accuracy_table, attack_measures, blur_pairs, fusion_pair, membership
from .demo_sections import probe_conditions, trained_store
from .demo_steps import benchmark, check_spec, extract_into
from .report import report


@dataclass
class DemoSpec:
    cache_dir: str = "cache"
    analyses_dir: str = "analyses"
    seed: int = 0
    n_images: int = 1600
    image_size: int = 64
    sigmas: tuple = (1.0, 2.0, 4.0)
    alphas: tuple = (0.0, 0.1, 1.0, 10.0)  # the paper's scale (Section 3.4, Figure 5)
    eps: tuple = (0.002, 0.005, 0.01, 0.02, 0.04)
    adaptive: bool = True
    consistencies: tuple = (1.0, 0.5, 0.0)
    dose_images: int = 800
    tolerance: float = TOLERANCE
    shift_margin: float = SHIFT_MARGIN
    n_boot: int = 2000
    device: str = "auto"
    workers: int = 0
    weights: dict = field(default_factory=dict)
    report: bool = True  # end by writing featlab report over the demo's stores
    explore: bool = True  # with report: the exploration beside the claims (.demo_explore)
    # probe sets for the local-property figures (on the main store's test images)
    probe_radii: tuple = (1.0, 10.0)
    probe_copies: int = 8
    probe_samples: int = 24
    probe_threshold: float = 0.9
    # networks trained by featlab train for M-TLAT Table 2, attacked on their own logits
    trained_recipes: tuple = ("standard", "tlat")
    train_arch: str = "resnet10-w16"
    train_epochs: int = 2
    train_image_size: int = 32
    trained_eps: tuple = (0.01, 0.03)


def _label(name, value):
    return f"{name}={value:g}"


def demo(spec: DemoSpec = DemoSpec()) -> dict:
    """Run every step; returns the summary (also ``<analyses_dir>/demo/summary.json``)."""
    check_spec(spec)
    start = time.perf_counter()
    clock = _Clock()
    out_dir = os.path.join(spec.analyses_dir, "demo")
    store, root, seconds = _main_store(spec)
    shift = pca_shift(store, condition=_label("blur:sigma", _middle(spec.sigmas)),
                      tolerance=spec.tolerance, margin=spec.shift_margin, n_boot=spec.n_boot,
                      seed=spec.seed, out_dir=out_dir)
    fg, bg = fg_bg(store.backbone_meta, None, None, where=f"store {store.path}")
    blur_keys = [store.resolve_condition(_label("blur:sigma", s)) for s in spec.sigmas]
    blur = blur_pairs(store, blur_keys, [_label("sigma", s) for s in spec.sigmas],
                      store.samples.subsets.keys() | {"all"})
    attack = attack_measures(store, *_attack_keys(store, spec), [_label("eps", e) for e in spec.eps],
                             alpha=max(spec.alphas))
    clock.lap("main store, heads, pca-shift")
    dose, dose_stores = _dose(spec)
    clock.lap("dose-response stores")
    explored = _explore(spec, store, root) if spec.report and spec.explore else None
    if explored is not None:
        clock.lap("exploration: mlp and gated heads")
    trained = trained_store(spec, root) if spec.report else None  # for M-TLAT Table 2
    if trained:
        clock.lap("trained networks and their store")
    kw = dict(n_boot=spec.n_boot, seed=spec.seed)
    members = membership(shift, fg, bg)
    rows = (C.blur_claims(blur, **kw) + C.subspace_claims(shift["comparison"])
            + C.attack_claims(attack, **kw) + C.dose_claims(dose, **kw))
    stores = [store.path] + dose_stores + ([trained] if trained else [])
    summary = dict(store=store.path, stores=stores,
                   images=len(store.samples), extraction_seconds=seconds, claims=rows,
                   verdicts=C.overall(rows), table=accuracy_table(blur, attack, dose),
                   shift_condition=shift["condition"], shift_comparison=shift["comparison"],
                   membership=members, figures=shift["figures"], alphas=list(spec.alphas),
                   alpha_scale="sum")
    if explored is not None:
        summary["exploration"] = explored
    if spec.report:
        written = report(stores=summary["stores"], out_dir=os.path.join(spec.analyses_dir, "report"),
                         alphas=spec.alphas, n_boot=spec.n_boot, seed=spec.seed)
        summary["report"] = {k: written[k] for k in ("html", "pdf") if k in written}
        summary["sections"] = {s["id"]: s["status"] for s in written["sections"]}
        clock.lap("report")
    summary["seconds"] = time.perf_counter() - start
    summary["phase_seconds"] = clock.laps
    summary["summary_json"] = os.path.join(out_dir, "summary.json")
    atomic_write_text(summary["summary_json"],
                      json.dumps(dict(summary, spec=asdict(spec)), indent=2, default=float))
    return summary


class _Clock:
    """Wall time of each phase since the previous one (``laps``: phase -> seconds)."""

    def __init__(self):
        self.laps, self._last = {}, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = now - self._last
        self._last = now


def _middle(values):
    return values[len(values) // 2]


def _layers(spec) -> dict:
    """Every layer when the report is written; without it, what the claims read."""
    return {} if spec.report else dict(layers="penultimate")


def _fgsm(spec, target):
    return f"fgsm:eps={':'.join(f'{e:g}' for e in spec.eps)}:target={target}"


def _main_store(spec):
    """Clean + blur features, the heads, then the attacks on them and the probe sets (both
    need the heads), and the alpha sweep beside adversarial retraining. Returns (store,
    benchmark root, extraction seconds)."""
    path = os.path.join(spec.cache_dir, "demo")
    root = benchmark(spec, "demo-data", path, spec.n_images, 1.0)
    blur = "blur:sigma=" + ":".join(f"{s:g}" for s in spec.sigmas)
    seconds = extract_into(spec, path, root, f"clean,{blur}", **_layers(spec))
    store = FeatureStore(path)
    fit_head(store, alphas=(0.0,), subset="all")  # the heads the attacks target
    for subset in ("similar", "dissimilar"):
        if subset in store.samples.subsets:
            fit_head(store, alphas=(0.0,), subset=subset)
    attacks = _fgsm(spec, "fg") + (f",{_fgsm(spec, 'joint')}" if spec.adaptive else "")
    if spec.report:  # the probe sets serve the report's local-property sections only
        attacks += f",{probe_conditions(spec)}"
    seconds += extract_into(spec, path, root, attacks, **_layers(spec))
    store = FeatureStore(path)
    adv = _label("fgsm:eps", _middle(spec.eps)) + ":target=fg"
    # the alpha sweep once, beside adversarial retraining (alpha 0 refits to the same head)
    fit_head(store, alphas=spec.alphas, subset="all", train_on=["clean", adv])
    return store, root, seconds


def _explore(spec, store, root):
    """The exploration beside the claims (:mod:`.demo_explore`) at the middle sigma and eps."""
    eps = _middle(spec.eps)
    blur = store.resolve_condition(_label("blur:sigma", _middle(spec.sigmas)))
    return explore_heads(spec, store, root, blur,
                   store.resolve_condition(_label("fgsm:eps", eps) + ":target=fg"), eps)


def _attack_keys(store, spec):
    fg = [store.resolve_condition(_label("fgsm:eps", e) + ":target=fg") for e in spec.eps]
    joint = [store.resolve_condition(_label("fgsm:eps", e) + ":target=joint")
             if spec.adaptive else None for e in spec.eps]
    return fg, joint


def _dose(spec):
    """Claim 5: the same pipeline (clean + the middle blur, fg and joint heads) per level."""
    dose, paths = {}, []
    sigma = _label("blur:sigma", _middle(spec.sigmas))
    for level in spec.consistencies:
        path = os.path.join(spec.cache_dir, f"demo-dose-{level:g}")
        root = benchmark(spec, f"demo-dose-{level:g}-data", path, spec.dose_images, level)
        extract_into(spec, path, root, f"clean,{sigma}", **_layers(spec))
        store = FeatureStore(path)
        fit_head(store, alphas=(0.0,), subset="all")
        dose[float(level)] = fusion_pair(store, store.resolve_condition(sigma))
        paths.append(path)
    return dose, paths
