"""One forward pass of every backbone with feature capture on."""
from __future__ import annotations

import torch

from ..backbones.base import capture_features


def forward(models, images: torch.Tensor) -> dict:
    """Captured features of every backbone: ``"<backbone>/<layer>"`` -> (n, d) float32."""
    out = {}
    with torch.inference_mode():
        for model in models:
            with capture_features(model) as feats:
                model(images)
            for layer, values in feats.items():
                out[f"{model.name}/{layer}"] = values.float().cpu().numpy()
    return out
