"""Plain, post-activation and pre-activation stacks of fully connected blocks with BatchNorm.

The three kinds hold the same layers (two bias-free Linear layers and two BatchNorms per block,
He-initialised) and differ only in where the shortcut and the nonlinearities sit:

* ``"plain"``    - ``relu(bn2(W2 relu(bn1(W1 x))))``: no shortcut.
* ``"post"``     - ``relu(bn2(W2 relu(bn1(W1 x))) + x)``: He et al. (2016a), ReLU *after* the
  addition, so the ReLU gates the shortcut too.
* ``"pre"``      - ``x + W2 relu(bn2(W1 relu(bn1(x))))``: He et al. (2016b), "Identity Mappings
  in Deep Residual Networks"; nothing after the addition, so ``x_L = x_l + sum of branches``.

A stack is ``stem -> num_blocks blocks -> head``: the plain and post-activation stacks use
Linear+BN+ReLU as their stem; the pre-activation stack uses a bare Linear stem and puts the
final BN+ReLU before the head (as the pre-activation ResNets of He et al., 2016b, do).
``final_norm=True`` gives the plain and post-activation stacks that same BN+ReLU before the
head, so that a comparison of the blocks is not also a comparison of the heads.
These are the fully connected analogues of the papers' convolutional blocks: cheap enough to
stack 200 blocks deep on a CPU.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("plain", "post", "pre")


def _check_count(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return kind


class DenseBlock(nn.Module):
    """Two bias-free Linear layers and two BatchNorms, wired as ``kind`` says (module doc).

    (N, width) -> (N, width). Attributes ``linear1, bn1, linear2, bn2`` exist for every kind, so
    probes can find the same layers in all three.
    """

    def __init__(self, width: int, kind: str = "post"):
        super().__init__()
        width = _check_count("width", width, 1)
        self.kind = _check_kind(kind)
        # no bias: a BatchNorm shift follows (or, pre-activation, precedes the next block)
        self.linear1 = nn.Linear(width, width, bias=False)
        self.linear2 = nn.Linear(width, width, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.bn2 = nn.BatchNorm1d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "pre":
            return self._pre(x)
        branch = self.bn2(self.linear2(F.relu(self.bn1(self.linear1(x)))))  # (N, width)
        return F.relu(branch + x) if self.kind == "post" else F.relu(branch)

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        # BN and ReLU act on the branch only; the sum leaves the block untouched.
        branch = self.linear2(F.relu(self.bn2(self.linear1(F.relu(self.bn1(x))))))
        return x + branch

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def he_init_(model: nn.Module) -> nn.Module:
    """He (Kaiming) normal init for every Linear weight (fan_in, ReLU gain), zero biases, and
    BatchNorm scale 1 / shift 0. In place; returns ``model``."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def dense_stack(
    kind: str,
    in_features: int,
    width: int,
    num_blocks: int,
    num_classes: int,
    final_norm: bool | None = None,
) -> nn.Sequential:
    """``num_blocks`` DenseBlocks of ``kind`` between a stem and a linear head, He-initialised.

    (N, in_features) -> (N, num_classes) logits; ``2 * num_blocks + 2`` Linear layers in all.
    ``final_norm``: a BatchNorm and a ReLU between the last block and the classifier; by
    default (None) only the pre-activation stack has them (module doc).
    """
    kind = _check_kind(kind)
    in_features = _check_count("in_features", in_features, 1)
    width = _check_count("width", width, 1)
    num_blocks = _check_count("num_blocks", num_blocks, 0)
    num_classes = _check_count("num_classes", num_classes, 1)
    if final_norm is None:
        # pre-activation: the last block's sum still needs a BN+ReLU before the classifier
        final_norm = kind == "pre"
    if not isinstance(final_norm, bool):
        raise ValueError(f"final_norm must be True, False or None; got {final_norm!r}")
    blocks = [DenseBlock(width, kind) for _ in range(num_blocks)]
    stem = [nn.Linear(in_features, width)]
    if kind != "pre":  # the pre-activation blocks normalise their own input
        stem += [nn.BatchNorm1d(width), nn.ReLU()]
    head = [nn.BatchNorm1d(width), nn.ReLU()] if final_norm else []
    layers = [*stem, *blocks, *head, nn.Linear(width, num_classes)]
    return he_init_(nn.Sequential(*layers))


def blocks_of(model: nn.Module) -> list[DenseBlock]:
    """The model's DenseBlocks in forward order."""
    return [m for m in model.modules() if isinstance(m, DenseBlock)]
