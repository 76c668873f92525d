"""The registry of the head family: one module per head type, imported on first use.

Each entry is *declared* here (name -> module) so that the names are known to ``--help``
and to error messages without importing torch; the module registers its class with
``@HEADS.register(name)`` when :meth:`~featlab.registry.Registry.get` imports it. Adding a
head type is one new module plus its line below.
"""
from ..registry import Registry

HEADS = Registry("head", declared={
    "linear": "featlab.heads.linear",
    "mlp": "featlab.heads.mlp",
    "gated": "featlab.heads.gated",
})
