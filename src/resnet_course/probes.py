"""Measurements inside networks: the probes of the chapter "Why residual networks train".

* ``gradient_ratio`` / ``gradient_ratio_sweep`` - first block's weight-gradient norm over the last
  block's, at initialisation, for plain, post- and pre-activation stacks (``preact.dense_stack``).
* ``response_stds`` - standard deviation of each 3x3 layer's response after BatchNorm, before the
  ReLU or the addition (He et al. 2016, Figure 7).
* ``deletion_errors`` - error after deleting one block at a time (Veit et al. 2016).
* ``path_gradient`` / ``path_gradient_norms`` / ``path_length_counts`` - gradient that reaches
  the input along paths through exactly k residual branches (Veit et al. 2016, section 5).
* ``input_gradients_1d`` / ``neighbour_correlation`` / ``correlation_length`` - input gradients on
  a grid of nearby inputs, how correlated neighbours are, and over what distance the correlation
  lasts (Balduzzi et al. 2017, "shattered gradients"); ``input_gradient_sweep`` /
  ``shattered_sweep`` run them over depths, kinds and seeds.
* ``train_digits_net`` / ``train_digits_net_to_loss`` / ``train_dense_stack`` - the trained
  networks these probes look into (the second stops at a target training loss, so that networks
  of different depth can be compared at the same loss).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet_course.data import make_loader
from resnet_course.image_experiments import digits_loaders
from resnet_course.models import BasicBlock, ResNet, resnet_cifar
from resnet_course.preact import blocks_of, dense_stack
from resnet_course.train import History, error_rate, fit, set_seed


# ----------------------------------------------------------------------------------------------
# Gradients at initialisation: post- vs pre-activation
# ----------------------------------------------------------------------------------------------
def gradient_ratio(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """||dL/dW|| of the first block's first Linear over that of the last
    block's second Linear.

    One cross-entropy backward pass in train mode (BatchNorm uses the batch's
    statistics, as in training); 1 means both ends of the stack get gradients
    of the same size. Gradients are cleared afterwards and no parameter
    changes.
    """
    blocks = blocks_of(model)
    if not blocks:
        raise ValueError("gradient_ratio needs a model with DenseBlocks "
                         "(see preact.dense_stack)")  # fmt: skip
    was_training = model.training
    model.train()
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    first = blocks[0].linear1.weight.grad.norm().item()
    last = blocks[-1].linear2.weight.grad.norm().item()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return first / last


def gradient_ratio_sweep(
    X: torch.Tensor,
    y: torch.Tensor,
    num_blocks: Sequence[int],
    kinds: Iterable[str] = ("plain", "post", "pre"),
    seeds: Sequence[int] = (0, 1, 2),
    width: int = 64,
    dtype: torch.dtype = torch.float64,
) -> dict[str, np.ndarray]:
    """``gradient_ratio`` of freshly initialised stacks: {kind: array (len(seeds), len(depths))}.

    Every seed draws new weights; the batch (X, y) is the same for all. Float64 by default:
    a deep plain stack's first-layer gradient overflows float32.
    """
    X = X.to(dtype)
    num_classes = int(y.max()) + 1
    ratios = {}
    for kind in kinds:
        table = np.empty((len(seeds), len(num_blocks)))
        for i, seed in enumerate(seeds):
            for j, n in enumerate(num_blocks):
                set_seed(seed)
                model = dense_stack(kind, X.shape[1], width, n, num_classes).to(dtype)
                table[i, j] = gradient_ratio(model, X, y)
        ratios[kind] = table
    return ratios


# ----------------------------------------------------------------------------------------------
# He et al. (2016), Figure 7: response of each layer
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def response_stds(model: ResNet, X: torch.Tensor) -> list[float]:
    """Std of each 3x3 layer's response in ``model.stages``, after its
    BatchNorm and before the ReLU or the addition (``bn1`` and ``bn2`` of every
    BasicBlock), input side first.

    Eval mode (running statistics, as for a trained net on test images). The
    std is over every number of the response tensor (N, C, H, W); shortcut
    projections are not 3x3 layers and are left out. The model's mode is
    restored.
    """
    blocks = _basic_blocks(model)
    layers = [bn for block in blocks for bn in (block.bn1, block.bn2)]
    stds: list[float] = []

    def record(_module, _inputs, out):  # out: (N, C, H, W)
        stds.append(out.std().item())

    hooks = [bn.register_forward_hook(record) for bn in layers]
    was_training = model.training
    model.eval()
    try:
        model(X)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return stds


def _basic_blocks(model: nn.Module) -> list[BasicBlock]:
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    if not blocks:
        raise ValueError("expected a network of BasicBlocks, e.g. resnet_cifar(depth)")
    return blocks


# ----------------------------------------------------------------------------------------------
# Veit, Wilber and Belongie (2016): residual networks as ensembles of shallow paths
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def _error(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return (model(X).argmax(dim=1) != y).float().mean().item()


def deletable_blocks(model: ResNet) -> list[tuple[int, int]]:
    """``(stage, index)`` of every block whose output has its input's shape (stride 1, same
    channels): the blocks that can be replaced by the identity in the plain twin too."""
    return [
        (s, b)
        for s, stage in enumerate(model.stages)
        for b, block in enumerate(stage)
        if block.conv1.stride == (1, 1) and block.conv1.in_channels == block.conv2.out_channels
    ]


@torch.no_grad()
def deletion_errors(
    model: ResNet, X: torch.Tensor, y: torch.Tensor
) -> list[float]:
    """Error on (X, y), eval mode, with each deletable block replaced by the
    identity in turn.

    For a residual block whose input came out of a ReLU, the identity is
    exactly "drop the residual branch, keep the shortcut" (relu(x) = x for
    x >= 0); for the plain twin it removes two layers from the only path. The
    model is restored after each deletion.
    """
    was_training = model.training
    model.eval()
    errors = []
    try:
        for s, b in deletable_blocks(model):
            stage = model.stages[s]
            block = stage[b]
            stage[b] = nn.Identity()
            try:
                errors.append(_error(model, X, y))
            finally:
                stage[b] = block
    finally:
        model.train(was_training)
    return errors


def path_length_counts(num_blocks: int) -> np.ndarray:
    """Number of paths through exactly k of ``num_blocks`` residual branches, k = 0..n:
    the binomial coefficients C(n, k) (2**n paths in all)."""
    if not isinstance(num_blocks, int) or num_blocks < 0:
        raise ValueError(f"num_blocks must be an integer >= 0; got {num_blocks!r}")
    return np.array([math.comb(num_blocks, k) for k in range(num_blocks + 1)], dtype=float)


def _block_on_path(block: BasicBlock, x: torch.Tensor, through_branch: bool) -> torch.Tensor:
    # Same forward value as block(x); the backward pass goes through the branch only
    # (through_branch) or through the shortcut only: the other input is detached.
    x_branch, x_short = (x, x.detach()) if through_branch else (x.detach(), x)
    out = F.relu(block.bn1(block.conv1(x_branch)))
    out = block.bn2(block.conv2(out))
    return F.relu(out + block.shortcut(x_short))


def path_gradient(
    model: ResNet, X: torch.Tensor, y: torch.Tensor, through_branch: set[int]
) -> torch.Tensor:
    """dL/d(input of the first block), (N, C, H, W), along the paths that go
    through the residual branch of the blocks in ``through_branch`` (indices,
    input side first) and through the shortcut of every other block (Veit et
    al., section 5). L is the summed cross-entropy, so each example's gradient
    is its own. The caller chooses the mode (use eval mode).

    Summed over all 2**n subsets, these gradients give the ordinary full
    gradient.
    """
    blocks = _basic_blocks(model)
    if any(not b.residual for b in blocks):
        raise ValueError(
            "path gradients need a residual network (residual=True)"
        )
    with torch.no_grad():
        start = model.stem(X)  # (N, 16, H, W): the input of the first block
    x0 = start.requires_grad_(True)
    x = x0
    for i, block in enumerate(blocks):
        x = _block_on_path(block, x, i in through_branch)
    logits = model.fc(torch.flatten(model.pool(x), 1))  # (N, num_classes)
    loss = F.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x0)
    return grad


def path_gradient_norms(
    model: ResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    lengths: Iterable[int],
    num_samples: int = 8,
    generator: torch.Generator | None = None,
) -> dict[int, float]:
    """Mean norm (per example) of ``path_gradient`` through k residual branches, for each k.

    For each k, ``num_samples`` times: draw k of the n blocks at random and measure the gradient
    along the paths of length exactly k through them. Eval mode; returns {k: mean norm}.
    """
    n = len(_basic_blocks(model))
    was_training = model.training
    model.eval()
    norms = {}
    try:
        for k in lengths:
            if not 0 <= k <= n:
                raise ValueError(f"path lengths must be in [0, {n}]; got {k}")
            samples = []
            for _ in range(num_samples):
                chosen = set(torch.randperm(n, generator=generator)[:k].tolist())
                grad = path_gradient(model, X, y, chosen)
                samples.append(grad.flatten(1).norm(dim=1).mean().item())  # per example
            norms[k] = float(np.mean(samples))
    finally:
        model.train(was_training)
    return norms


# ----------------------------------------------------------------------------------------------
# Balduzzi et al. (2017): shattered gradients
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def calibrate_batchnorm_(model: nn.Module, X: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to those of the batch X (one forward pass with a
    cumulative average); leaves the model in eval mode, where examples no longer interact."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: after one batch, exactly its statistics
    model.train()
    model(X)
    return model.eval()


def input_gradients_1d(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """d model(x_i) / d x_i for each scalar input x_i of a grid:
    (N, 1) -> (N,) array.

    The model maps (N, 1) -> (N, 1); in eval mode the examples are
    independent, so one backward pass of the summed outputs gives every
    example's own derivative.
    """
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError("x must be a grid of scalar inputs, shape (N, 1); "
                         f"got {tuple(x.shape)}")  # fmt: skip
    if model.training:
        raise ValueError("put the model in eval mode "
                         "(e.g. calibrate_batchnorm_) first")  # fmt: skip
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    return grad[:, 0].numpy()


def neighbour_correlation(gradients: np.ndarray) -> float:
    """Pearson correlation between the gradients at neighbouring grid points
    (g_i, g_{i+1}).

    Near 1 for a smooth function of the input; near 0 for white noise
    ("shattered").
    """
    g = np.asarray(gradients, dtype=float)
    if g.ndim != 1 or len(g) < 3:
        raise ValueError("gradients must be a 1-D array of at least 3 values")
    return float(np.corrcoef(g[:-1], g[1:])[0, 1])


def correlation_length(
    gradients: np.ndarray, spacing: float, threshold: float = math.exp(-1)
) -> float:
    """Distance over which gradients on an evenly spaced grid stay correlated:
    the
    smallest lag (in input units, ``spacing`` per grid step) at which the
    autocorrelation ``corr(g_i, g_{i+k})`` falls below ``threshold`` (1/e),
    interpolated linearly between lags.

    A lag-0 correlation is 1 by definition, so a length below one ``spacing``
    means the grid does not resolve it (only an upper bound is measured). If the
    correlation never falls below ``threshold`` within a quarter of the grid,
    returns that lag (a lower bound).
    """
    g = np.asarray(gradients, dtype=float)
    if g.ndim != 1 or len(g) < 8:
        raise ValueError("gradients must be a 1-D array of at least 8 values")
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0; got {spacing!r}")
    previous = 1.0
    for k in range(1, len(g) // 4 + 1):
        r = float(np.corrcoef(g[:-k], g[k:])[0, 1])
        if r < threshold:
            return spacing * (k - 1 + (previous - threshold) / (previous - r))
        previous = r
    return spacing * (len(g) // 4)


def input_gradient_sweep(
    num_blocks: Sequence[int],
    kinds: Iterable[str] = ("plain", "post", "pre"),
    seeds: Sequence[int] = (0, 1, 2),
    width: int = 64,
    num_points: int = 256,
) -> dict[str, np.ndarray]:
    """``input_gradients_1d`` on a grid of ``num_points`` inputs in [-2, 2] (spacing
    4 / (num_points - 1)) for freshly initialised 1-input, 1-output stacks:
    {kind: array (len(seeds), len(depths), num_points)}. BatchNorm statistics are those of the
    grid (``calibrate_batchnorm_``). Every other point of a grid of 2n - 1 points is a grid of
    n points for the same networks, so one sweep gives several resolutions."""
    x = torch.linspace(-2, 2, num_points).unsqueeze(1)  # (num_points, 1)
    results = {}
    for kind in kinds:
        table = np.empty((len(seeds), len(num_blocks), num_points))
        for i, seed in enumerate(seeds):
            for j, n in enumerate(num_blocks):
                set_seed(seed)
                model = calibrate_batchnorm_(dense_stack(kind, 1, width, n, 1), x)
                table[i, j] = input_gradients_1d(model, x)
        results[kind] = table
    return results


def shattered_sweep(
    num_blocks: Sequence[int],
    kinds: Iterable[str] = ("plain", "post", "pre"),
    seeds: Sequence[int] = (0, 1, 2),
    width: int = 64,
    num_points: int = 256,
) -> dict[str, np.ndarray]:
    """``neighbour_correlation`` of the gradients of ``input_gradient_sweep``:
    {kind: (len(seeds), len(depths))}."""
    gradients = input_gradient_sweep(num_blocks, kinds, seeds, width, num_points)
    return {
        kind: np.apply_along_axis(neighbour_correlation, 2, table)
        for kind, table in gradients.items()
    }


# ----------------------------------------------------------------------------------------------
# Trained networks for the probes
# ----------------------------------------------------------------------------------------------
@dataclass
class TrainedNet:
    """A network trained on the digits, with the weights it started from."""

    model: nn.Module
    init_state: dict[str, torch.Tensor]  # parameters before training, by name
    history: History  # per-epoch training loss (errors are measured once, at the end)
    train_error: float  # fraction of the training digits misclassified after training
    val_error: float  # the same on the validation digits
    residual: bool
    seed: int
    steps: int = 0  # optimizer steps taken (``train_digits_net_to_loss``; 0: not counted)
    probe_loss: float = float("nan")  # loss on the probe batch at the end (nan: not measured)


def train_digits_net(
    depth: int,
    residual: bool,
    seed: int = 0,
    num_epochs: int = 4,
    lr: float = 0.05,
    milestones: Sequence[int] | None = (3,),
    batch_size: int = 32,
    weight_decay: float = 0.0,
) -> TrainedNet:
    """``resnet_cifar(depth, residual=residual)`` trained on the 8x8 digits (3 channels), CPU,
    SGD with momentum 0.9 (``weight_decay`` on every parameter, BatchNorm's too, as in He et
    al.'s setup); the same seed gives the same split, batches and initial weights for the plain
    and the residual net. Errors are measured once, after training (eval mode), to save time."""
    train_loader, val_loader = digits_loaders(size=8, batch_size=batch_size, seed=seed)
    set_seed(seed)
    model = resnet_cifar(depth, num_classes=10, residual=residual)
    init_state = {name: p.detach().clone() for name, p in model.named_parameters()}
    history = fit(model, train_loader, num_epochs=num_epochs, lr=lr, weight_decay=weight_decay,
                  milestones=milestones, device="cpu", progress=False,
                  track_train_error=False)  # fmt: skip
    train_error = error_rate(model, train_loader, "cpu")
    val_error = error_rate(model, val_loader, "cpu")
    return TrainedNet(model.eval(), init_state, history, train_error, val_error, bool(residual),
                      seed)  # fmt: skip


def train_digits_net_to_loss(
    depth: int,
    residual: bool,
    seed: int,
    X_probe: torch.Tensor,
    y_probe: torch.Tensor,
    target_loss: float,
    max_steps: int = 400,
    check_every: int = 10,
    lr: float = 0.05,
    batch_size: int = 32,
) -> TrainedNet:
    """``resnet_cifar(depth, residual=residual)`` trained on the digits with SGD
    (momentum 0.9, constant ``lr``) until its loss on the probe batch (X_probe,
    y_probe) is at most ``target_loss``, checked every ``check_every`` steps, or
    until ``max_steps``.

    The probe loss is ``landscape.probe_loss``: cross-entropy with BatchNorm on
    the probe batch's statistics, the quantity the loss-landscape slices show,
    so networks stopped at the same target sit at the same height of their
    landscapes. Same seed: same split, batch order and initial weights as
    ``train_digits_net``. ``steps`` and ``probe_loss`` say where it stopped;
    ``probe_loss > target_loss`` means it never got there.
    """
    # landscape imports nothing from here: no import cycle
    from resnet_course.landscape import probe_loss

    if not (target_loss > 0 and max_steps >= 1 and check_every >= 1):
        raise ValueError(
            "need target_loss > 0, max_steps >= 1 and check_every >= 1"
        )
    train_loader, val_loader = digits_loaders(8, batch_size, seed)
    set_seed(seed)
    model = resnet_cifar(depth, num_classes=10, residual=residual)
    init_state = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history, steps, loss_now = History(), 0, probe_loss(model, X_probe, y_probe)
    while steps < max_steps and loss_now > target_loss:
        model.train()
        for X, y in train_loader:
            loss = F.cross_entropy(model(X), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.step_losses.append(loss.item())
            steps += 1
            if steps % check_every == 0 or steps == max_steps:
                loss_now = probe_loss(model, X_probe, y_probe)
                if loss_now <= target_loss or steps == max_steps:
                    break
    model.eval()
    train_error = error_rate(model, train_loader, "cpu")
    val_error = error_rate(model, val_loader, "cpu")
    return TrainedNet(
        model, init_state, history, train_error, val_error, bool(residual),
        seed, steps, loss_now,
    )  # fmt: skip


def train_dense_stack(
    kind: str,
    num_blocks: int,
    X: torch.Tensor,
    y: torch.Tensor,
    seed: int = 0,
    width: int = 32,
    num_epochs: int = 5,
    lr: float = 0.02,
    batch_size: int = 64,
    final_norm: bool | None = None,
) -> History:
    """Train ``dense_stack(kind, ..., final_norm=final_norm)`` on flat inputs (N, F) with SGD
    (momentum 0.9); returns its History (training error per epoch, measured in eval mode on all
    of (X, y))."""
    set_seed(seed)
    model = dense_stack(kind, X.shape[1], width, num_blocks, int(y.max()) + 1, final_norm)
    loader = make_loader(X, y, batch_size, shuffle=True, seed=seed)
    return fit(model, loader, num_epochs=num_epochs, lr=lr, device="cpu", progress=False)
