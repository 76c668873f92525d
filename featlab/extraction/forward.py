"""One forward pass of every backbone on a batch, capturing the stored layers."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..backbones.base import capture_features


class FeatureForward:
    """Callable ``images -> {"<backbone>/<layer>": (n, d) float32 ndarray}``.

    Parameters
    ----------
    models : list of Backbone, on one device
    layers : dict backbone name -> list of layer names to capture, or None (all)
    autocast : callable returning a context manager (see :func:`precision_mode`), or None
    channels_last : bool — feed the batch in channels-last memory format

    On CUDA the features of a batch come back in one non-blocking copy into pinned host
    memory (one synchronisation per batch, not one per layer).
    """

    def __init__(self, models, layers=None, autocast=None, channels_last=False):
        self.models, self.layers = list(models), layers
        self.autocast = autocast or contextlib.nullcontext
        self.channels_last = channels_last

    def wanted(self, model, extra=()) -> list | None:
        if self.layers is None:
            return None
        names = list(self.layers[model.name])
        return names + [e for e in extra if e not in names]

    def __call__(self, images: torch.Tensor, extra=()) -> dict:
        """Features of ``images`` (n, 3, H, W); ``extra`` layers are captured too."""
        captured = {}
        with torch.inference_mode(), self.autocast():
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            for model in self.models:
                with capture_features(model, self.wanted(model, extra)) as feats:
                    model(images)
                for layer, values in feats.items():
                    captured[f"{model.name}/{layer}"] = values
        return _to_host(captured)


def _to_host(captured: dict) -> dict:
    if not captured:
        return {}
    first = next(iter(captured.values()))
    if first.device.type != "cuda":
        return {k: v.float().cpu().numpy() for k, v in captured.items()}
    flat = torch.cat([v.float().flatten(1) for v in captured.values()], dim=1)
    host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
    host.copy_(flat, non_blocking=True)
    torch.cuda.current_stream(flat.device).synchronize()
    array, out, at = host.numpy(), {}, 0
    for name, values in captured.items():
        width = values[0].numel()
        out[name] = np.ascontiguousarray(array[:, at:at + width]).reshape(values.shape)
        at += width
    return out


def forward(models, images: torch.Tensor) -> dict:
    """Captured features of every layer of every backbone: ``"<backbone>/<layer>"`` -> (n, d)
    float32 (``models`` may also be a :class:`FeatureForward`, used as it is)."""
    fwd = models if isinstance(models, FeatureForward) else FeatureForward(models)
    return fwd(images)
