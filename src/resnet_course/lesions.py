"""Lesion studies of trained networks, scored after BatchNorm has seen the
lesioned network.

Deleting or reordering blocks of a trained network with BatchNorm changes the
statistics every later BatchNorm layer sees; its running averages still
describe the intact network. Scoring the lesioned network with them mixes two
effects: what the network lost, and a mismatch of normalisation that a few
forward passes would remove. Veit, Wilber and Belongie (2016) measure the
first, so every lesion here is scored on a *copy* of the network whose
BatchNorm statistics have been re-estimated on training images
(``recalibrate_batchnorm_``: running statistics reset, forward passes in train
mode with a cumulative average, then eval mode). No weight changes.

* ``lesioned`` - a copy of a ``resnet_cifar`` network with blocks deleted
  (replaced by the identity) and/or pairs of blocks swapped.
* ``lesion_error`` - error of such a copy, with or without re-estimated
  statistics.
* ``single_deletion_errors`` - each deletable block deleted in turn.
* ``delete_k_errors`` / ``swap_k_errors`` - Veit et al.'s Figure 5 (a) and (b):
  k random blocks deleted, or k random pairs of adjacent blocks swapped,
  averaged over random draws.
* ``swappable_pairs`` - the pairs of adjacent blocks that can trade places
  (same shapes).

The networks are the ``resnet_cifar`` nets of ``probes.train_digits_net``;
which blocks may be deleted comes from ``probes.deletable_blocks`` (input and
output of the same shape).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from resnet_course.models import ResNet
from resnet_course.probes import deletable_blocks

Block = tuple[int, int]  # (stage, index in the stage)


@torch.no_grad()
def recalibrate_batchnorm_(
    model: nn.Module, X: torch.Tensor, batch_size: int = 256
) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on the images X.

    Running mean and variance are reset, then X goes through the model in train
    mode in batches of ``batch_size`` with ``momentum=None`` (a cumulative
    average over the batches: the mean of the batch statistics, not a decaying
    one). Each layer's momentum is restored afterwards and the model is left in
    eval mode. Weights, BatchNorm's scale and shift included, are unchanged.
    """
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    try:
        for start in range(0, len(X), batch_size):
            model(
                X[start : start + batch_size]
            )  # (B, C, H, W) -> logits, discarded
    finally:
        for bn, momentum in zip(norms, momenta, strict=True):
            bn.momentum = momentum
    return model.eval()


def swappable_pairs(model: ResNet) -> list[tuple[Block, Block]]:
    """Pairs of adjacent blocks of the same stage that can trade places: both
    deletable (input and output of one shape), so either order computes
    something of the right shape.
    """
    blocks = deletable_blocks(model)
    adjacent = zip(blocks, blocks[1:], strict=False)
    return [(a, b) for a, b in adjacent if a[0] == b[0] and b[1] == a[1] + 1]


def lesioned(
    model: ResNet,
    delete: Iterable[Block] = (),
    swap: Iterable[tuple[Block, Block]] = (),
) -> ResNet:
    """A deep copy of ``model`` with the blocks in ``delete`` replaced by the
    identity and the pairs in ``swap`` exchanged (swaps first, then deletions,
    both by original position). The original is not touched.
    """
    deletable = set(deletable_blocks(model))
    pairs = set(swappable_pairs(model))
    delete, swap = list(delete), list(swap)
    for block in delete:
        if block not in deletable:
            raise ValueError(
                f"block {block} cannot be deleted; "
                f"deletable: {sorted(deletable)}"
            )
    for pair in swap:
        if tuple(pair) not in pairs:
            raise ValueError(
                f"blocks {pair} cannot be swapped; swappable: {sorted(pairs)}"
            )
    copy_ = copy.deepcopy(model)
    for (s, a), (_, b) in swap:
        stage = copy_.stages[s]
        first, second = stage[a], stage[b]
        stage[a], stage[b] = second, first
    for s, b in delete:
        copy_.stages[s][b] = nn.Identity()
    return copy_


@torch.no_grad()
def lesion_error(
    model: ResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    X_calibrate: torch.Tensor | None,
    delete: Iterable[Block] = (),
    swap: Iterable[tuple[Block, Block]] = (),
) -> float:
    """Error on (X, y) of ``lesioned(model, delete, swap)`` in eval mode; with
    BatchNorm statistics re-estimated on ``X_calibrate`` (training images), or
    the intact network's running statistics if ``X_calibrate`` is None.
    """
    net = lesioned(model, delete, swap)
    if X_calibrate is None:
        net.eval()
    else:
        recalibrate_batchnorm_(net, X_calibrate)
    return (net(X).argmax(dim=1) != y).float().mean().item()


def single_deletion_errors(
    model: ResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    X_calibrate: torch.Tensor | None,
) -> list[float]:
    """``lesion_error`` with each deletable block deleted in turn, in
    ``deletable_blocks`` order.
    """
    return [
        lesion_error(model, X, y, X_calibrate, delete=[b])
        for b in deletable_blocks(model)
    ]


def _random_subsets(
    items: Sequence, k: int, num_samples: int, generator: torch.Generator
) -> list[list]:
    return [
        [
            items[i]
            for i in torch.randperm(len(items), generator=generator)[
                :k
            ].tolist()
        ]
        for _ in range(num_samples)
    ]


def delete_k_errors(
    model: ResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    X_calibrate: torch.Tensor | None,
    ks: Iterable[int],
    num_samples: int = 4,
    generator: torch.Generator | None = None,
) -> dict[int, float]:
    """Mean ``lesion_error`` with k deletable blocks, drawn at random
    ``num_samples`` times, deleted together: {k: mean error} (Veit et al. 2016,
    Figure 5a).
    """
    generator = generator or torch.Generator().manual_seed(0)
    blocks = deletable_blocks(model)
    errors = {}
    for k in ks:
        if not 0 <= k <= len(blocks):
            raise ValueError(f"k must be in [0, {len(blocks)}]; got {k}")
        subsets = _random_subsets(blocks, k, num_samples, generator)
        errors[k] = float(
            np.mean(
                [
                    lesion_error(model, X, y, X_calibrate, delete=d)
                    for d in subsets
                ]
            )
        )
    return errors


def swap_k_errors(
    model: ResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    X_calibrate: torch.Tensor | None,
    ks: Iterable[int],
    num_samples: int = 4,
    generator: torch.Generator | None = None,
) -> dict[int, float]:
    """Mean ``lesion_error`` with k pairs of adjacent blocks swapped, k pairs
    drawn at random among those that share no block, ``num_samples`` times: {k:
    mean error} (Veit et al. 2016, Figure 5b, "reordering").
    """
    generator = generator or torch.Generator().manual_seed(0)
    pairs = swappable_pairs(model)
    errors = {}
    for k in ks:
        samples = []
        for _ in range(num_samples):
            chosen, used = [], set()
            for i in torch.randperm(len(pairs), generator=generator).tolist():
                a, b = pairs[i]
                if len(chosen) < k and a not in used and b not in used:
                    chosen.append(pairs[i])
                    used.update((a, b))
            if len(chosen) < k:
                raise ValueError(
                    f"cannot swap {k} disjoint pairs of "
                    f"{len(pairs)} adjacent pairs"
                )
            samples.append(lesion_error(model, X, y, X_calibrate, swap=chosen))
        errors[k] = float(np.mean(samples))
    return errors
