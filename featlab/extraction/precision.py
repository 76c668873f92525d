"""Numerical precision of the feature forward passes (``--precision``, ``--channels-last``).

``fp32`` (default): TF32 explicitly off — PyTorch lets cuDNN convolutions use TF32 on
Ampere and later GPUs by default (``torch.backends.cudnn.allow_tf32 = True``), which
changes features in the third significant digit; featlab turns it off (and the matmul
flag too) on every run, CPU runs included, unless asked. ``tf32``: both flags on (no
effect on the CPU). ``bf16``: feature forwards under ``torch.autocast(dtype=bfloat16)``
(on CUDA, or the CPU), features cast back to float32 for storage; attacks keep float32.

The flags are process-wide in PyTorch; :func:`precision_mode` sets them for the block
and restores the previous values after it.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from ..errors import FeatlabError

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise FeatlabError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def precision_mode(precision: str, device: torch.device):
    """Set the TF32 flags for ``precision``; yields a factory of the forward's autocast
    context (``nullcontext`` unless bf16)."""
    check_precision(precision)
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = precision == "tf32"
    if precision == "tf32" and device.type != "cuda":
        log.info("--precision tf32 has no effect on %s (TF32 is a CUDA tensor-core mode)",
                 device)
    if precision == "bf16":
        def autocast():
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    try:
        yield autocast
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = before


def to_memory_format(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last) if channels_last else model
