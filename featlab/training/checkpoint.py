"""Per-epoch checkpoints of a training stage, written whole and atomically.

``<out>.<stage>.ckpt`` holds, after each epoch, every network's state, its optimiser and
learning-rate schedule, the epoch count and the history. A killed run (SIGKILL included)
rerun with the same settings continues after the last complete epoch and ends with the
same weights as an uninterrupted run (all randomness is derived from the seed, the stage,
the epoch and the step, never carried in hidden state). A checkpoint made with other
settings is refused, not overwritten.
"""
from __future__ import annotations

import glob
import io
import os

import torch

from ..errors import FeatlabError
from ..utils.paths import atomic_write_bytes


def checkpoint_path(out: str, stage: str) -> str:
    return f"{out}.{stage}.ckpt"


def save_checkpoint(path: str, *, fingerprint: str, stage: str, epoch: int, nets, optimizers,
                    schedulers, history) -> None:
    payload = dict(fingerprint=fingerprint, stage=stage, epoch=int(epoch),
                   nets=[n.state_dict() for n in nets],
                   optimizers=[o.state_dict() for o in optimizers],
                   schedulers=[s.state_dict() for s in schedulers], history=history)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str, fingerprint: str, stage: str):
    """The checkpoint at ``path`` (None if absent); refuses one from other settings."""
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - writes are atomic: this is not our file
        raise FeatlabError(f"checkpoint {path} is unreadable ({type(err).__name__}); it was not "
                           f"written by featlab train: move it away and rerun") from None
    if state.get("fingerprint") != fingerprint or state.get("stage") != stage:
        raise FeatlabError(f"checkpoint {path} belongs to a run with other settings or data; "
                           f"rerun with those to continue it, or delete it / choose "
                           f"another --out to start afresh")
    return state


def restore(state, nets, optimizers, schedulers) -> None:
    for net, s in zip(nets, state["nets"]):
        net.load_state_dict(s)
    for opt, s in zip(optimizers, state["optimizers"]):
        opt.load_state_dict(s)
    for sched, s in zip(schedulers, state["schedulers"]):
        sched.load_state_dict(s)


def remove_checkpoints(out: str) -> None:
    for path in glob.glob(glob.escape(out) + ".*.ckpt"):
        os.unlink(path)
