"""String-dispatch registries for every family (datasets, backbones, perturbations, analyses).

Usage::

    DATASETS = Registry("dataset")

    @DATASETS.register("coco")
    def load_coco(...): ...

    DATASETS.get("coco")      # -> load_coco
    DATASETS.names()          # -> ["coco", ...]

An entry may also be *declared* before its module is imported,
``Registry("backbone", declared={"imagenet-resnet18": "featlab.backbones.imagenet"})``:
its name is then known (for ``--help`` and error messages) without importing torch, and
``get`` imports the module, whose ``@register`` fills the entry. A contract test checks that
every declared entry is registered by its module.

An unknown name raises :class:`~featlab.errors.FeatlabError` listing the known ones.
"""
from __future__ import annotations

from importlib import import_module
from typing import Callable, Generic, Iterator, Optional, TypeVar

from .errors import FeatlabError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of entry points of one family."""

    def __init__(self, kind: str, declared: Optional[dict] = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self.declared: dict[str, str] = dict(declared or {})

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries and name in self.declared:
            import_module(self.declared[name])
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise FeatlabError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(set(self._entries) | set(self.declared))

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self.declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
