"""Why deep residual networks train: each branch starts small (chapter "Small branches").

A residual stack computes ``x[k+1] = x[k] + alpha * F_k(x[k])``. At initialisation the variance
of ``x`` grows by ``1 + alpha**2 * v`` per block, where ``v`` is the branch's gain; unless the
branches start small, the signal (and the logits) grow exponentially with depth. This module
builds the stacks the chapter compares and measures them:

- ``scaled_residual_mlp``: a residual MLP whose blocks are ``x + alpha * F(x)`` with
  ``F(x) = W2 relu(W1 relu(x))`` (no normalisation) or the BatchNorm pre-activation form
  ``F(x) = W2 relu(BN(W1 relu(BN(x))))``; ``alpha`` fixed (1, or 1/sqrt(L) as in Fixup's and
  NFNets' scaled branches) or learnable from 0 (SkipInit / ReZero); He or PyTorch's default init.
- ``branch_study``: train each kind on the same data from several seeds, recording the logits'
  scale at initialisation and the training error at the end.
- ``branch_to_trunk_ratios``: ``||alpha F_k(x_k)|| / ||x_k||`` block by block at initialisation
  (De & Smith 2020: in a BatchNorm pre-activation stack it falls like ``1/sqrt(k)``).
- ``plain_gradient_growth``: the factor by which the weight gradients grow per layer, going
  backwards, in a plain BatchNorm + ReLU MLP at initialisation (Yang et al. 2019 predict
  ``pi / (pi - 1)`` per layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet_course.mlp_experiments import (
    bn_plain_mlp,
    branch_ratios,
    classification_error,
    gradient_norms_by_layer,
    linear_layers,
    make_net,
)
from resnet_course.train import set_seed
from resnet_course.validate import ints_at_least

# name -> (normalised, alpha, init): alpha is a number, "1/sqrt(L)" or "learnable" (from 0).
KINDS: dict[str, tuple[bool, object, str]] = {
    "He, alpha = 1": (False, 1.0, "he"),
    "default init, alpha = 1": (False, 1.0, "default"),
    "He, alpha = 1/sqrt(L)": (False, "1/sqrt(L)", "he"),
    "He, learnable alpha = 0 (SkipInit)": (False, "learnable", "he"),
    "He, BatchNorm pre-activation": (True, 1.0, "he"),
}


class ScaledBlock(nn.Module):
    """``x + alpha * F(x)``, ``F`` two Linear layers with ReLUs before each (and BatchNorm)."""

    def __init__(self, width: int, normalised: bool, alpha: float | None):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(width) if normalised else nn.Identity()
        self.linear1 = nn.Linear(width, width)
        self.bn2 = nn.BatchNorm1d(width) if normalised else nn.Identity()
        self.linear2 = nn.Linear(width, width)
        if alpha is None:  # SkipInit / ReZero: a learnable scalar that starts at 0
            self.alpha = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("alpha", torch.tensor(float(alpha)))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        # (N, width) -> (N, width)
        return self.linear2(F.relu(self.bn2(self.linear1(F.relu(self.bn1(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.branch(x)


def _alpha(alpha: object, num_blocks: int) -> float | None:
    if alpha == "learnable":
        return None
    if alpha == "1/sqrt(L)":
        return 1.0 / math.sqrt(max(num_blocks, 1))
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and math.isfinite(alpha):
        return float(alpha)
    raise ValueError(f"alpha must be a finite number, '1/sqrt(L)' or 'learnable'; got {alpha!r}")


def he_init_(model: nn.Module) -> nn.Module:
    """He (Kaiming) normal weights, std sqrt(2 / fan_in), and zero biases for every Linear."""
    for layer in linear_layers(model):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model


@ints_at_least(in_features=1, width=1, num_blocks=0, num_classes=1)
def scaled_residual_mlp(
    in_features: int,
    width: int,
    num_blocks: int,
    num_classes: int,
    normalised: bool = False,
    alpha: object = 1.0,
    init: str = "he",
) -> nn.Sequential:
    """Linear into ``width``, ``num_blocks`` ScaledBlocks, a head (BN if normalised, ReLU, Linear).

    Both kinds get the same head shape, so they differ only in what the blocks do.
    """
    if init not in ("he", "default"):
        raise ValueError(f"init must be 'he' or 'default'; got {init!r}")
    scale = _alpha(alpha, num_blocks)
    model = nn.Sequential(
        nn.Linear(in_features, width),  # (N, in) -> (N, width)
        *[ScaledBlock(width, normalised, scale) for _ in range(num_blocks)],
        nn.BatchNorm1d(width) if normalised else nn.Identity(),
        nn.ReLU(),
        nn.Linear(width, num_classes),  # (N, width) -> (N, num_classes)
    )
    return he_init_(model) if init == "he" else model


def make_kind(kind: str, in_features: int, width: int, num_blocks: int, num_classes: int):
    """The stack named ``kind`` (a key of ``KINDS``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
    normalised, alpha, init = KINDS[kind]
    return scaled_residual_mlp(in_features, width, num_blocks, num_classes,
                               normalised=normalised, alpha=alpha, init=init)  # fmt: skip


@dataclass
class BranchRun:
    """One training run of one kind: logits' RMS at initialisation, training error at the end."""

    kind: str
    seed: int
    init_logit_rms: float  # root mean square of the logits at initialisation
    final_error: float  # NaN losses count as an error of 1 - 1/num_classes (chance)
    diverged: bool


@ints_at_least(num_steps=1)
def train_until_diverged(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    num_steps: int,
    lr: float,
) -> bool:
    """Full-batch SGD (momentum 0.9) on (X, y).

    Stops early, returning True, once the loss is not finite: the run has
    diverged, and nothing after that step can recover it.
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(num_steps):
        loss = F.cross_entropy(model(X), y)  # (N, classes) -> scalar
        if not math.isfinite(loss.item()):
            return True
        opt.zero_grad()
        loss.backward()
        opt.step()
    return False


def _score(model: nn.Module, X, y, seed: int, kind: str, num_steps: int, lr: float) -> BranchRun:
    num_classes = int(y.max()) + 1
    with torch.no_grad():
        model.train()
        logit_rms = model(X).pow(2).mean().sqrt().item()  # (N, classes) -> scalar
    diverged = train_until_diverged(model, X, y, num_steps, lr)
    if not diverged:
        model.eval()
        error = classification_error(model, X, y)
        diverged = not math.isfinite(error)
    return BranchRun(kind, seed, logit_rms, 1 - 1 / num_classes if diverged else error, diverged)


def branch_study(
    X: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    kinds: Sequence[str] = tuple(KINDS),
    num_blocks: int = 32,
    width: int = 32,
    num_steps: int = 300,
    lr: float = 0.01,
) -> list[BranchRun]:
    """Train every kind from every seed on the full batch: SGD, same steps and lr for all."""
    runs = []
    for kind in kinds:
        for seed in seeds:
            set_seed(seed)
            model = make_kind(kind, X.shape[1], width, num_blocks, int(y.max()) + 1)
            runs.append(_score(model, X, y, seed, kind, num_steps, lr))
    return runs


def twin_init_study(
    X: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    depths: Sequence[int] = (16, 32, 64),
    width: int = 32,
    num_steps: int = 300,
    lr: float = 0.01,
) -> list[BranchRun]:
    """The degradation chapter's residual twins (no BatchNorm), PyTorch's default init vs He init.

    Kind ``"default init, depth D"`` or ``"He, depth D"``; same SGD as ``branch_study``.
    """
    runs = []
    for depth in depths:
        for init in ("default init", "He"):
            for seed in seeds:
                set_seed(seed)
                model = make_net("residual", depth, X.shape[1], width, int(y.max()) + 1)
                if init == "He":
                    he_init_(model)
                kind = f"{init}, depth {depth}"
                runs.append(_score(model, X, y, seed, kind, num_steps, lr))
    return runs


def twin_branch_ratio(model: nn.Sequential, X: torch.Tensor) -> float:
    """Mean over the residual blocks of ``||F(a)|| / ||a||`` at one forward pass, for the
    degradation chapter's twins (``mlp_experiments.branch_ratios``, averaged)."""
    ratios = branch_ratios(model, X)
    if not ratios:
        raise ValueError("model has no residual block (a module with linear1 and linear2)")
    return float(np.mean(ratios))


@torch.no_grad()
def branch_to_trunk_ratios(
    model: nn.Sequential, X: torch.Tensor
) -> list[float]:
    """``||alpha F_k(x_k)|| / ||x_k||`` for each ScaledBlock k, in order.

    One forward pass; norms over the whole batch (Frobenius). Train mode:
    BatchNorm uses the batch's statistics, as at the first training step.
    """
    ratios = []
    x = X
    for module in model:
        if isinstance(module, ScaledBlock):
            update = module.alpha * module.branch(x)  # (N, width)
            ratios.append((update.norm() / x.norm()).item())
            x = x + update
        else:
            x = module(x)
    return ratios


def fit_power_law(ks: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of ``log values = log c + p log k``; returns ``(p, c)``."""
    slope, intercept = np.polyfit(np.log(ks), np.log(values), 1)
    return float(slope), float(math.exp(intercept))


def plain_gradient_growth(
    X: torch.Tensor,
    y: torch.Tensor,
    depth: int = 32,
    width: int = 256,
    seed: int = 0,
) -> tuple[list[float], float]:
    """Weight-gradient norms of a plain BatchNorm + ReLU MLP at init,
    input side first, and the fitted growth factor per layer going backwards.

    The fit uses the hidden layers only: the first and the last Linear layer
    have other fan-ins.
    """
    set_seed(seed)
    model = bn_plain_mlp(X.shape[1], width, depth, int(y.max()) + 1)
    model.train()  # BatchNorm on the batch's statistics, as in training
    norms = gradient_norms_by_layer(model, X, y)
    hidden = np.log(norms[1:-1])
    slope = np.polyfit(np.arange(len(hidden)), hidden, 1)[0]
    # gradients grow towards the input: the slope is negative
    return norms, float(math.exp(-slope))
