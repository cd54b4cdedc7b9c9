"""Training and evaluation loops for classification with cross-entropy.

``fit`` is the one-call loop the chapters use; ``train_one_epoch`` and ``evaluate`` are its parts.
Options for fast GPU training (all off by default, so CPU runs stay simple):
``amp`` (bfloat16 autocast), ``channels_last`` (NHWC memory layout for convolutions) and
``compile`` (``torch.compile``).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from resnet_course.device import pick_device
from resnet_course.validate import check_int, is_int, is_real

OPTIMIZERS = ("sgd", "adam")


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    # bfloat16 keeps float32's exponent range, so unlike float16 it needs no loss scaling.
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _to_device(
    X: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    # non_blocking lets the copy from pinned memory overlap with GPU work;
    # a no-op on CPU.
    X = X.to(device, non_blocking=True)
    if channels_last and X.ndim == 4:
        # the same (N, C, H, W) tensor, stored NHWC
        X = X.contiguous(memory_format=torch.channels_last)
    return X, y.to(device, non_blocking=True)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    amp: bool = False,
    channels_last: bool = False,
    step_losses: list[float] | None = None,
) -> float:
    """One pass over ``loader`` in train mode; returns the mean cross-entropy per *example*.

    Each batch's mean loss is weighted by its size, so a smaller last batch counts for what it
    holds. If ``step_losses`` is a list, each step's loss is appended to it. ``channels_last``
    converts the inputs; convert the model with ``model.to(memory_format=torch.channels_last)``.
    """
    device = torch.device(device)
    model.train()
    total, count, losses = None, 0, []
    for X, y in loader:
        X, y = _to_device(X, y, device, channels_last)
        with _autocast(device, amp):
            logits = model(X)  # (N, num_classes)
            loss = F.cross_entropy(logits, y)  # mean over the batch
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # keep the sums on the device: calling .item() every step would stall a GPU pipeline
        batch_total = loss.detach().float() * len(y)
        total = batch_total if total is None else total + batch_total
        count += len(y)
        losses.append(loss.detach().float())
    if count == 0:
        raise ValueError("the training loader yielded no examples")
    if step_losses is not None:
        step_losses.extend(torch.stack(losses).tolist())
    return total.item() / count


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str,
    amp: bool = False,
    channels_last: bool = False,
) -> float:
    """Accuracy in [0, 1] over ``loader``, in eval mode (BatchNorm uses its running statistics)
    and without gradients. The model is put back into the mode it was in."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        correct, count = None, 0
        for X, y in loader:
            X, y = _to_device(X, y, device, channels_last)
            with _autocast(device, amp):
                logits = model(X)  # (N, num_classes)
            batch_correct = (logits.argmax(dim=1) == y).sum()
            correct = batch_correct if correct is None else correct + batch_correct
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the evaluation loader yielded no examples")
    return correct.item() / count


def error_rate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str,
    amp: bool = False,
    channels_last: bool = False,
) -> float:
    """Fraction misclassified: ``1 - evaluate(...)``."""
    return 1.0 - evaluate(model, loader, device, amp=amp, channels_last=channels_last)


@dataclass
class History:
    """What ``fit`` measured. Per-epoch lists have one entry per epoch (``val_error`` stays empty
    without a validation loader, ``train_error`` without ``track_train_error``); ``step_losses``
    has one entry per optimizer step. Errors are fractions in [0, 1]."""

    train_loss: list[float] = field(default_factory=list)
    train_error: list[float] = field(default_factory=list)
    val_error: list[float] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # learning rate used in each epoch
    # training time per epoch, without evaluation; wall-clock, so left out of ``==``
    epoch_seconds: list[float] = field(default_factory=list, compare=False)

    @property
    def epochs(self) -> list[int]:
        """Epoch numbers 1, 2, ... for plotting the per-epoch lists."""
        return list(range(1, len(self.train_loss) + 1))


def _check_fit_args(num_epochs, lr, momentum, weight_decay, optimizer, milestones) -> None:
    check_int("num_epochs", num_epochs, minimum=0)
    if not (is_real(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    if not (is_real(momentum) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
    if not (is_real(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}")
    if milestones is not None:
        ok = all(is_int(m) and m > 0 for m in milestones)
        if not ok or list(milestones) != sorted(set(milestones)):
            raise ValueError(
                f"milestones must be increasing positive epoch numbers, e.g. [50, 75]; "
                f"got {milestones!r}"
            )


def make_optimizer(
    model: nn.Module, optimizer: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """SGD with (heavy-ball) momentum, or Adam (which has its own momentum; ``momentum`` unused)."""
    if optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    num_epochs: int = 10,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    optimizer: str = "sgd",
    device: torch.device | str | None = None,
    amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    progress: bool = True,
    milestones: Sequence[int] | None = None,
    gamma: float = 0.1,
    track_train_error: bool = True,
) -> History:
    """Train ``model`` (in place) with cross-entropy for ``num_epochs`` epochs; return a History.

    After each epoch it records the mean training loss, the training error (measured in eval
    mode over the whole training set, skipped with ``track_train_error=False``) and, with a
    ``val_loader``, the validation error. ``milestones`` are epochs after which the learning rate
    is multiplied by ``gamma`` (He et al. divide it by 10 twice). The model is left in train mode
    on ``device`` (default: ``pick_device()``).
    """
    _check_fit_args(num_epochs, lr, momentum, weight_decay, optimizer, milestones)
    device = pick_device() if device is None else torch.device(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, optimizer, lr, momentum, weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma=gamma)
        if milestones
        else None
    )
    # the compiled module shares the parameters, so training it trains ``model``
    net = torch.compile(model) if compile else model
    fast = {"amp": amp, "channels_last": channels_last}

    history = History()
    epochs = tqdm(range(num_epochs), desc="epochs", disable=not progress)
    for _ in epochs:
        history.lr.append(opt.param_groups[0]["lr"])
        start = time.perf_counter()
        loss = train_one_epoch(
            net, train_loader, opt, device, step_losses=history.step_losses, **fast
        )
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(loss)
        postfix = {"loss": f"{loss:.3f}"}
        if track_train_error:
            history.train_error.append(error_rate(net, train_loader, device, **fast))
            postfix["train_err"] = f"{history.train_error[-1]:.3f}"
        if val_loader is not None:
            history.val_error.append(error_rate(net, val_loader, device, **fast))
            postfix["val_err"] = f"{history.val_error[-1]:.3f}"
        epochs.set_postfix(postfix)
        if scheduler is not None:
            scheduler.step()
    model.train()
    return history
