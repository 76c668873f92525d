"""The registry of the probe set family: entries register themselves on import of the package."""
from ..registry import Registry

PROBES = Registry("probe set")
