"""Checkpoints that know how they were made, and can be resumed.

A checkpoint is one file (``torch.save`` of a dict of plain types and tensors) holding

* ``config`` - the settings that define the run (depth, data, batch size, lr, schedule, seed...),
  so a checkpoint found on disk months later says what it is, and a resumed run can refuse to
  continue with different settings;
* ``step`` - optimizer steps taken so far;
* ``model`` / ``optimizer`` - their ``state_dict`` (the optimizer's holds SGD's momentum buffers:
  without them a resumed run would not continue the same trajectory);
* ``history`` - whatever the training script measured so far (losses, validation errors).

It is written to a temporary file first and then renamed, so a run killed while saving leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from resnet_course.validate import ints_at_least

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "config", "step", "model", "optimizer")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


@ints_at_least(step=0)
def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: Mapping,
    history: Mapping | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename); return
    its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT_VERSION,
        "config": dict(config),
        "step": int(step),  # a NumPy integer is not weights_only-safe
        # the unwrapped model's: loadable without DDP or torch.compile
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": dict(history or {}),
        # a plain str: TorchVersion is not weights_only-safe
        "torch": str(torch.__version__),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic on POSIX and Windows
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (tensors only, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    missing = [key for key in REQUIRED_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of this course: missing {missing}")
    if state["format"] != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {state['format']}, expected {FORMAT_VERSION}")
    return state


def check_config(saved: Mapping, current: Mapping, keys: Iterable[str]) -> None:
    """Raise ValueError naming every setting in ``keys`` where ``current`` differs from ``saved``
    (a run resumed with another depth, lr, ... would silently be a different experiment)."""
    diffs = [
        f"{key}: checkpoint has {saved.get(key)!r}, this run has {current.get(key)!r}"
        for key in keys
        if saved.get(key) != current.get(key)
    ]
    if diffs:
        raise ValueError(
            "cannot resume: the checkpoint was made with other settings ("
            + "; ".join(diffs)
            + "). Use the same settings, or start a new run without --resume."
        )


def restore(
    state: Mapping, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Load a checkpoint's weights (and optimizer state) in place; return its step."""
    unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def state_hash(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes and bytes): equal hashes mean
    bit-for-bit equal models, e.g. on every rank of a distributed run."""
    digest = hashlib.sha256()
    for name, tensor in unwrap(model).state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
