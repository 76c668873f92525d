"""featlab: feature caches for studying how perturbations move internal representations."""
__version__ = "0.1.0"


def __getattr__(name):
    if name == "FeatureStore":
        from .store import FeatureStore

        return FeatureStore
    raise AttributeError(name)


__all__ = ["FeatureStore", "__version__"]
