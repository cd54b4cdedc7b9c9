"""Loss along lines and planes through parameter space (Li, Xu, Taylor, Studer, Goldstein 2018).

* ``filter_normalized_direction`` - a random direction scaled filter by filter to the norm of the
  network's own filters, so that a step of 1 means the same *relative* change for every filter
  (ReLU networks with BatchNorm are invariant to each filter's scale, so raw directions would
  compare apples with pears).
* ``interpolation_losses`` - loss on the straight line between two parameter vectors (e.g. the
  initial and the trained weights).
* ``loss_surface`` - loss on the plane theta* + a d1 + b d2 around trained weights theta*.
* ``top_hessian_eigenvalue`` - the sharpness of the loss at the weights: the largest eigenvalue
  of its Hessian, by power iteration on Hessian-vector products (double backward).
* ``probe_loss`` - the loss at the weights themselves, measured the same way as the slices.
* ``largest_rise`` - how far a line climbs on the way.

Losses are measured with BatchNorm in train mode, i.e. with the statistics of the evaluation batch
itself: moving the weights changes the statistics, and the running averages of the trained net
would belong to other weights. The network passed in is never modified (a copy is probed).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

State = dict[str, torch.Tensor]


def parameters_of(model: nn.Module) -> State:
    """A detached copy of every parameter, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def filter_normalized_direction(
    model: nn.Module, generator: torch.Generator | None = None
) -> State:
    """Gaussian direction d with ||d_f|| = ||theta_f|| for each filter f
    (Li et al., eq. 1).

    A filter is one slice along dim 0 of a weight with at least 2 dims (one
    output channel of a convolution, one row of a Linear layer). Vectors
    (biases, BatchNorm scales and shifts) get a zero direction, as in Li et
    al.'s experiments with BatchNorm.
    """
    direction = {}
    for name, p in model.named_parameters():
        if p.ndim < 2:
            direction[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype)
        # (C_out, ...) -> one norm per filter, broadcast back over the
        # filter's entries
        dims = tuple(range(1, p.ndim))
        d_norm = torch.linalg.vector_norm(d, dim=dims, keepdim=True)
        p_norm = torch.linalg.vector_norm(p.detach(), dim=dims, keepdim=True)
        direction[name] = d * p_norm / d_norm.clamp_min(1e-12)
    return direction


class _Probe:
    """A private copy of the model whose parameters are overwritten before each evaluation."""

    def __init__(self, model: nn.Module):
        self.model = copy.deepcopy(model).train()  # batch statistics (module doc)
        self.params = dict(self.model.named_parameters())

    @torch.no_grad()
    def loss(self, state: Mapping[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> float:
        for name, p in self.params.items():
            p.copy_(state[name])
        return F.cross_entropy(self.model(X), y).item()


def probe_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Cross-entropy on (X, y) at the model's own weights, BatchNorm on the batch's statistics
    (the centre of ``loss_surface``, the end of ``interpolation_losses``). The model is not
    modified (its running statistics included)."""
    return _Probe(model).loss(parameters_of(model), X, y)


def top_hessian_eigenvalue(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    iterations: int = 20,
    tol: float = 1e-3,
    generator: torch.Generator | None = None,
) -> float:
    """Largest eigenvalue of the Hessian of the cross-entropy on (X, y) with
    respect to all parameters, by power iteration on Hessian-vector products.

    The gradient is built once with ``create_graph=True``; each iteration
    differentiates ``grad . v`` again (double backward), which gives ``H v``
    without ever forming H. The iteration stops when the Rayleigh quotient ``v .
    H v`` changes by less than ``tol`` (relative) or after ``iterations`` steps.
    BatchNorm uses the batch's statistics, as in training and in the slices. For
    weights near a minimum the top eigenvalue is the largest in magnitude too,
    which is what power iteration finds. The model is not modified.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1; got {iterations}")
    probe = copy.deepcopy(model).train()
    params = [p for p in probe.parameters() if p.requires_grad]
    loss = F.cross_entropy(probe(X), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    v = [
        torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params
    ]
    eigenvalue = None
    for _ in range(iterations):
        norm = torch.sqrt(sum((u * u).sum() for u in v))
        v = [u / norm for u in v]
        dot = sum((g * u).sum() for g, u in zip(grads, v, strict=True))
        hv = torch.autograd.grad(dot, params, retain_graph=True)
        # v . Hv with |v| = 1
        rayleigh = sum((h * u).sum() for h, u in zip(hv, v, strict=True)).item()
        change = None if eigenvalue is None else abs(rayleigh - eigenvalue)
        converged = change is not None and change <= tol * abs(rayleigh)
        eigenvalue, v = rayleigh, [h.detach() for h in hv]
        if converged:
            break
    return float(eigenvalue)


def interpolation_losses(
    model: nn.Module,
    start: Mapping[str, torch.Tensor],
    end: Mapping[str, torch.Tensor],
    alphas: Sequence[float],
    X: torch.Tensor,
    y: torch.Tensor,
) -> np.ndarray:
    """Cross-entropy on (X, y) at ``start + alpha * (end - start)`` for each
    alpha (0: start, 1: end; values outside [0, 1] extrapolate)."""
    probe = _Probe(model)
    losses = []
    for alpha in alphas:
        state = {
            k: start[k] + alpha * (end[k] - start[k]) for k in probe.params
        }
        losses.append(probe.loss(state, X, y))
    return np.array(losses)


def loss_surface(
    model: nn.Module,
    d1: Mapping[str, torch.Tensor],
    d2: Mapping[str, torch.Tensor],
    coords: Sequence[float],
    X: torch.Tensor,
    y: torch.Tensor,
) -> np.ndarray:
    """Cross-entropy at theta* + a d1 + b d2 for a, b in ``coords``: array
    (len(coords), len(coords)) indexed [b, a] (rows follow d2, as
    ``plt.contour`` expects)."""
    centre = parameters_of(model)
    probe = _Probe(model)
    surface = np.empty((len(coords), len(coords)))
    for i, b in enumerate(coords):
        for j, a in enumerate(coords):
            state = {k: centre[k] + a * d1[k] + b * d2[k] for k in centre}
            surface[i, j] = probe.loss(state, X, y)
    return surface


# ----------------------------------------------------------------------------------------------
# Numbers that summarise a line or a plane of losses
# ----------------------------------------------------------------------------------------------
def largest_rise(losses: Sequence[float]) -> float:
    """Largest climb along a path: max over i < j of losses[j] - losses[i] (0 when the losses
    never go up). A path that only descends, like a convex valley's, gives 0."""
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError("losses must be a 1-D sequence of at least 2 values")
    lowest_so_far = np.minimum.accumulate(values)
    return float(max(0.0, (values[1:] - lowest_so_far[:-1]).max()))
