"""What the report knows about its stores: which condition families each holds, the
``fit-head`` results it reuses across sections (fitted once per store and subset, never saved
into the store), and the ``featlab`` command that would produce a missing section's data."""
from __future__ import annotations

import logging
import os

import numpy as np

from ..analyses.heads.robust_data import families
from ..analyses.heads.run import fit_head
from ..backbones.roles import fg_or_single
from ..conditions import parse_condition
from ..errors import CannotWrite, DamagedData, FeatlabError
from ..params import head_target
from ..store.rerun import extract_hint
from ..utils.figures import slug
from ..utils.paths import output_errors
from ..utils.results import write_json

log = logging.getLogger(__name__)
SUBSETS = ("all", "similar", "dissimilar")
#: fusion paper Figure 5: adversarial retraining examples at eps = 0.3, in normalized input
#: units (the paper's images are normalized with the dataset's mean and std, Section 3.1)
RETRAIN_EPS = 0.3
IMAGENET_STD = (0.229, 0.224, 0.225)  # when a store does not record its normalization


class Missing(Exception):
    """A section's data is not in the stores: ``command`` says what would produce it."""

    def __init__(self, reason: str, command: str):
        super().__init__(reason)
        self.reason, self.command = reason, command


class Context:
    """The stores of one report, the analysis results shared by its sections, its folders."""

    def __init__(self, stores, out_dir, *, alphas, n_boot, seed):
        self.stores, self.out_dir = list(stores), out_dir
        self.alphas, self.n_boot, self.seed = tuple(alphas), int(n_boot), int(seed)
        names = [os.path.basename(os.path.abspath(s.path)) for s in self.stores]
        self.names = {id(s): (n if names.count(n) == 1 else f"{n}-{i + 1}")
                      for i, (s, n) in enumerate(zip(self.stores, names))}
        self._fits: dict = {}
        self._once: dict = {}

    def name(self, store) -> str:
        return self.names[id(store)]

    def path(self, store, *parts) -> str:
        """A file under ``out_dir/data/<store name>/`` (folders created)."""
        path = os.path.join(self.out_dir, "data", self.name(store), *parts)
        with output_errors(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    # -- what a store holds ----------------------------------------------------------
    def family(self, store, prefix: str):
        """(family label, {strength: key}) of the first stored family named ``prefix``
        (attacks on the foreground head first), or None."""
        found = {f: k for f, k in families(store).items()
                 if parse_condition(next(iter(k.values())))[0].name == prefix}
        if not found:
            return None
        label = next((f for f in found if "target=fg" in f), next(iter(found)))
        return label, dict(sorted(found[label].items()))

    def subsets(self, store) -> list[str]:
        return [s for s in SUBSETS if s in store.samples.subsets]

    def hint(self, store, conditions: str) -> str:
        """The ``featlab extract`` command adding ``conditions`` to ``store`` (with the
        options the store was made with)."""
        return extract_hint(store.path, store.manifest, conditions)

    def once(self, key, compute):
        """``compute()`` the first time ``key`` is asked for, its stored result after."""
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]

    # -- fit-head, once per store and subset -----------------------------------------
    def fit(self, store, subset: str = "all") -> dict:
        """:func:`~featlab.analyses.heads.run.fit_head` on ``store``: the alpha sweep and,
        when an FGSM family is stored, adversarial retraining at the stored eps nearest the
        paper's 0.3 in the family's units (:func:`retrain_eps`; and on ``all`` the MAT heads on
        random-walk strengths). The sections read the alpha sweep only under FGSM (Figure 5),
        so a store without an FGSM family is fitted at the first alpha alone. Heads are not
        saved."""
        key = (id(store), subset)
        if key not in self._fits:
            if "clean" not in store.conditions:
                raise Missing(f"{self.name(store)} has no clean features",
                              self.hint(store, "clean"))
            options = self._robust_options(store, subset)
            log.info("report: fit-head on %s (subset %s%s)", self.name(store), subset,
                     ", robust heads" if options else "")
            alphas = self.alphas if self.family(store, "fgsm") else self.alphas[:1]
            result = fit_head(store, alphas=alphas, subset=subset, save=False,
                              seed=self.seed, **options)
            write_json(self.path(store, f"fit-head-{subset}.json"), result)
            self._fits[key] = result
        return self._fits[key]

    def _robust_options(self, store, subset) -> dict:
        fgsm = self.family(store, "fgsm")
        if not fgsm or not any(s > 0 for s in fgsm[1]):
            return {}
        by_strength = {s: k for s, k in fgsm[1].items() if s > 0}
        wanted = retrain_eps(store, next(iter(by_strength.values())))
        eps = min(by_strength, key=lambda s: (abs(s - wanted), s))
        options = dict(train_on=f"clean,{by_strength[eps]}")
        if subset == "all":
            options.update(recipe="mat-mixed,mat-parallel", strengths="auto")
        return options

    def try_fit(self, store, subset="all"):
        """:meth:`fit`, or None when the store cannot support it (logged)."""
        try:
            return self.fit(store, subset)
        except (DamagedData, CannotWrite):
            raise
        except (FeatlabError, Missing) as err:
            log.info("report: fit-head on %s/%s not possible: %s", self.name(store), subset, err)
            return None


def retrain_eps(store, key: str) -> float:
    """:data:`RETRAIN_EPS` in the units of the stored condition ``key``'s ``eps``.

    With ``eps_space=normalized`` the stored eps is in normalized input units, like the
    paper's: 0.3. With ``eps_space=pixel`` it is in [0, 1] pixel units, where 0.3 normalized
    is ``0.3 * std`` — the mean per-channel input std of the attacked backbone (the object one
    for ``target=fg``, the scene one for ``target=bg``, the mean over the backbones a
    ``target=head:NAME`` head reads, over both otherwise; ImageNet's when the store does not
    record it).
    """
    params = parse_condition(key)[0].params
    if params.get("eps_space", "pixel") == "normalized":
        return RETRAIN_EPS
    meta = store.backbone_meta
    fg, bg = fg_or_single(meta)
    names = {"fg": [fg], "bg": [bg or fg]}.get(params.get("target"), [n for n in (fg, bg) if n])
    if head_target(params.get("target")):
        names = (store.condition_info(key).get("head_settings") or {}).get("inputs") or names
    stds = [float(np.mean(meta[n]["normalization"][1])) for n in names
            if (meta[n] or {}).get("normalization")]
    return RETRAIN_EPS * float(np.mean(stds or [np.mean(IMAGENET_STD)]))


def save_png(fig, ctx, store, name: str) -> str:
    """The report's own figures: PNG only (150 dpi, no timestamp), under ``data/<store>/``."""
    path = ctx.path(store, "figures", slug(name) + ".png")
    fig.tight_layout()
    with output_errors(path):
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
    return path
