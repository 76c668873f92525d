"""Which backbone of a store is the object (foreground) one and which the scene one.

The role is declared by the backbone itself (``Backbone.role``, set where it is registered:
``imagenet-resnet18`` and ``synthetic-object`` are ``object``, ``places365-resnet18`` and
``synthetic-scene`` are ``scene``; a network trained by ``featlab train`` records its own)
and written into the store's manifest at extraction. Stores written before roles were
recorded, and backbones that declare none, fall back on the order of ``--backbones``: the
first is the object backbone, the next the scene one.
"""
from __future__ import annotations

from ..errors import FeatlabError

OBJECT, SCENE = "object", "scene"
ROLES = (OBJECT, SCENE)


def _declared(backbones: dict, role: str) -> list[str]:
    return [name for name, meta in backbones.items() if (meta or {}).get("role") == role]


def fg_bg(backbones: dict, fg=None, bg=None, *, where: str = "this store") -> tuple[str, str]:
    """The foreground (object) and background (scene) backbones.

    Parameters
    ----------
    backbones : dict name -> metadata (the manifest's ``backbones``), in extraction order;
        metadata may hold ``role`` (``object`` or ``scene``).
    fg, bg : str or None — explicit choices, checked against ``backbones``.
    """
    names = list(backbones)
    if fg is None:
        fg = (_declared(backbones, OBJECT) or names)[0] if names else None
    if bg is None:
        rest = [n for n in names if n != fg]
        scene = [n for n in _declared(backbones, SCENE) if n != fg]
        bg = (scene or rest or [None])[0]
    for name in (fg, bg):
        if name is None:
            raise FeatlabError(f"{where} has one backbone ({fg}); fusion needs two — extract "
                               f"with --backbones OBJECT,SCENE")
        if name not in backbones:
            raise FeatlabError(f"backbone {name!r} is not in {where}; stored: {', '.join(names)}")
    if fg == bg:
        raise FeatlabError(f"foreground and background are both {fg!r}; give two backbones")
    return fg, bg


def fg_or_single(backbones: dict) -> tuple[str, str | None]:
    """(fg, bg) like :func:`fg_bg`, with ``bg`` None when there is a single backbone."""
    if len(backbones) == 1:
        return next(iter(backbones)), None
    return fg_bg(backbones)
