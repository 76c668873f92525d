"""featlab: feature caches for studying how perturbations move internal representations.

The Python API has the names of the command line, and does what it does (``out_dir=``
writes the same JSON and figures)::

    import featlab
    featlab.extract(featlab.ExtractionSpec(store="cache/synth", root="cache/synthetic-data"))
    store = featlab.FeatureStore("cache/synth")
    featlab.fit_head(store, alphas=[0, 10], out_dir="analyses/synth/fit-head")
    featlab.pca_shift(store, condition="blur:sigma=2", out_dir="analyses/synth/pca-shift")
    featlab.mantel(store, radii=[1, 10])
    featlab.report(["cache/synth"], "analyses/report")  # HTML + PDF of every paper's figures
    featlab.replicate("0-4", jobs=2)  # the demo's claims over 5 seeds, pooled across them
    featlab.train(featlab.TrainSpec(out="cache/weights/robust.pt", root="cache/synthetic-data",
                                    recipe="mtlat"))
    featlab.random_walk_select(A, strengths=[0.01, 0.03], tested=[0, 0.01, 0.03])  # MAT 4.3

Names load on first use, so ``import featlab`` is cheap (no torch until it is needed).
"""
from importlib import import_module

from ._version import __version__

_API = {
    "FeatureStore": "featlab.store.featurestore",
    "ExtractionSpec": "featlab.extraction.pipeline",
    "extract": "featlab.extraction.pipeline",
    "fit_head": "featlab.analyses.heads.run",
    "pca_shift": "featlab.analyses.shift.run",
    "isotropy": "featlab.analyses.local.run",
    "symmetry": "featlab.analyses.local.run",
    "mantel": "featlab.analyses.local.run",
    "lipschitz": "featlab.analyses.local.run",
    "train": "featlab.training",
    "TrainSpec": "featlab.training",
    "random_walk_select": "featlab.mat",
    "fit_voting": "featlab.mat",
    "robustness": "featlab.analyses.robustness.run",
    "generate_synthetic": "featlab.data.synthetic",
    "DemoSpec": "featlab.reporting.demo",
    "demo": "featlab.reporting.demo",
    "report": "featlab.reporting.report",
    "replicate": "featlab.replication.run",
    "FeatlabError": "featlab.errors",
}


def __getattr__(name):
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'featlab' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))


__all__ = ["__version__", *_API]
