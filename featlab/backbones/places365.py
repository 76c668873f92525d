"""The CSAIL Places365 ResNet18 (``resnet18_places365.pth.tar``).

The 2017 checkpoint is a pickled dict ``{"epoch", "arch", "state_dict", "best_prec1"}``
whose ``state_dict`` keys carry DataParallel's ``module.`` prefix, for 365 classes. It
pickles plain Python objects besides tensors, so ``weights_only=True`` may refuse it; only
then is it reloaded with ``weights_only=False`` (the file is trusted: you downloaded it).
"""
from __future__ import annotations

import logging
import os
import pickle

import torch

from .registry import BACKBONES
from .base import (IMAGENET_NORMALIZATION, Backbone, file_sha256, first_existing,
                   load_state_dict_checked, missing_weights)
from .resnet import resnet18

log = logging.getLogger(__name__)
PLACES_FILE = "resnet18_places365.pth.tar"
PLACES_URL = "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar"


def load_places_state(path) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError):
        log.info("%s needs weights_only=False (a 2017 pickle); loading it as trusted", path)
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        return {}
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


@BACKBONES.register("places365-resnet18")
def places365_resnet18(weights=None, cache_dir=None) -> Backbone:
    """ResNet18 trained on Places365 (``--weights PATH``, $FEATLAB_PLACES365 or cache/weights)."""
    looked = [weights] if weights else [os.environ.get("FEATLAB_PLACES365", ""),
                                        os.path.join(cache_dir or "cache", "weights", PLACES_FILE)]
    looked = [p for p in looked if p]
    path = first_existing(looked)
    if path is None:
        raise missing_weights(
            "places365-resnet18", looked,
            f"Download {PLACES_URL} on a machine with internet and pass --weights PATH "
            f"(or put it in cache/weights/).")
    net = resnet18(weights=None, num_classes=365)
    load_state_dict_checked(net, load_places_state(path), "Places365 ResNet18 (365 classes)", path)
    return Backbone("places365-resnet18", net, IMAGENET_NORMALIZATION,
                    weights_sha256=file_sha256(path), weights_path=os.path.abspath(path),
                    role="scene")
