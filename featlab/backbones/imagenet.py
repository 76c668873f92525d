"""The ImageNet ResNet18: torchvision's ImageNet-1k weights file, loaded offline into featlab's own
ResNet18 (:mod:`featlab.backbones.resnet`; torchvision itself is not imported)."""
from __future__ import annotations

import os

import torch

from .registry import BACKBONES
from .base import (IMAGENET_NORMALIZATION, Backbone, file_sha256, first_existing,
                   load_state_dict_checked, missing_weights)
from .resnet import resnet18

IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision ResNet18_Weights.IMAGENET1K_V1


def hub_checkpoint_dir() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints")


@BACKBONES.register("imagenet-resnet18")
def imagenet_resnet18(weights=None, cache_dir=None) -> Backbone:
    """ResNet18, ImageNet-1k weights (``--weights PATH`` or the torch hub cache)."""
    looked = [weights] if weights else [os.path.join(hub_checkpoint_dir(), IMAGENET_FILE)]
    if cache_dir and not weights:
        looked.append(os.path.join(cache_dir, "weights", IMAGENET_FILE))
    path = first_existing(looked)
    if path is None:
        raise missing_weights(
            "imagenet-resnet18", looked,
            "On a machine with internet run: python -c \"import torchvision; "
            "torchvision.models.resnet18(weights='IMAGENET1K_V1')\" and copy "
            f"~/.cache/torch/hub/checkpoints/{IMAGENET_FILE} here, or pass --weights PATH.")
    net = resnet18(weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    load_state_dict_checked(net, state, "torchvision ResNet18 (1000 classes)", path)
    return Backbone("imagenet-resnet18", net, IMAGENET_NORMALIZATION,
                    weights_sha256=file_sha256(path), weights_path=os.path.abspath(path),
                    role="object")
