"""String-dispatch registries for every family (datasets, backbones, perturbations, analyses).

Usage::

    DATASETS = Registry("dataset")

    @DATASETS.register("coco")
    def load_coco(...): ...

    DATASETS.get("coco")      # -> load_coco
    DATASETS.names()          # -> ["coco", ...]

An unknown name raises :class:`~featlab.errors.FeatlabError` listing the known ones.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import FeatlabError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of entry points of one family."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise FeatlabError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
