"""The MLP experiments of the chapters "The degradation problem" and "Why the
identity is easy".

Every experiment here is small enough to run on a laptop CPU in seconds:
multilayer perceptrons on the 2-D spirals (600 points), trained full-batch, so
that "training error after step t" is measured exactly on the whole training
set. The chapters import these functions and show their source, so the numbers
in the prose come from this code and nothing else. (The image experiments of
the later chapters live in ``image_experiments``; the result type here is
``MLPRun`` and the sweep ``mlp_depth_sweep``, so neither shares a name there.)

Vocabulary: a *plain* net is ``plain_mlp`` (Linear+ReLU layers); its *residual
twin* of the same depth is ``residual_mlp`` with ``(depth - 2) // 2`` blocks, so
both hold ``depth`` Linear layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from resnet_course.models import ResidualBlock, plain_mlp, residual_mlp
from resnet_course.train import set_seed
from resnet_course.validate import ints_at_least, is_int

KINDS = ("plain", "residual")


# ----------------------------------------------------------------------------------------------
# Building and measuring
# ----------------------------------------------------------------------------------------------
def make_net(
    kind: str, depth: int, in_features: int, width: int, num_classes: int
) -> nn.Module:
    """A plain MLP or its residual twin with ``depth`` Linear layers in all.

    The residual twin is Linear+ReLU, ``(depth - 2) // 2`` ResidualBlocks,
    Linear, so ``depth`` must be even (and >= 2) for it; the plain net takes
    any ``depth >= 1``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'plain' or 'residual'; got {kind!r}")
    if kind == "plain":
        return plain_mlp(in_features, width, depth, num_classes)
    if not is_int(depth) or depth < 2 or depth % 2:
        raise ValueError(
            f"a residual twin needs an even depth >= 2; got {depth!r}"
        )
    return residual_mlp(in_features, width, (depth - 2) // 2, num_classes)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's Linear layers in forward order (input side first)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def classification_error(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor
) -> float:
    """Fraction of the examples in (X, y) that ``model`` misclassifies."""
    logits = model(X)  # (N, num_classes)
    return (logits.argmax(dim=1) != y).float().mean().item()


# ----------------------------------------------------------------------------------------------
# Full-batch training that records every step
# ----------------------------------------------------------------------------------------------
@dataclass
class MLPRun:
    """One MLP training run: per-step loss and training error (before that
    step's update)."""

    kind: str
    depth: int
    step_loss: list[float] = field(default_factory=list)
    step_error: list[float] = field(default_factory=list)
    final_error: float = float("nan")  # training error after the last update
    model: nn.Module | None = None  # the trained network, for later figures
    seed: int = 0  # the seed of its initial weights
    lr: float = float("nan")  # the learning rate it was trained with


@ints_at_least(num_steps=1)
def train_full_batch(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    num_steps: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    optimizer: str = "sgd",
) -> tuple[list[float], list[float]]:
    """Train ``model`` in place on the whole of (X, y) for ``num_steps`` steps.

    Returns the cross-entropy and the training error at each step, both
    measured on the logits of that step's forward pass, i.e. before its update
    (so they cost no extra forward pass).
    """
    params = model.parameters()
    if optimizer == "sgd":
        opt = torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(
            f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}"
        )
    losses, errors = [], []
    model.train()
    for _ in range(num_steps):
        logits = model(X)  # (N, 2) -> (N, num_classes)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        wrong = logits.detach().argmax(dim=1) != y  # (N,) bool
        errors.append(wrong.float().mean().item())
    return losses, errors


# ----------------------------------------------------------------------------------------------
# Chapter "The degradation problem"
# ----------------------------------------------------------------------------------------------
def mlp_depth_sweep(
    X: torch.Tensor,
    y: torch.Tensor,
    depths: Sequence[int] = (4, 8, 16, 32),
    kinds: Iterable[str] = KINDS,
    width: int = 32,
    num_steps: int = 800,
    lr: float = 0.01,
    seeds: Sequence[int] = (0,),
) -> list[MLPRun]:
    """Train a plain net and its residual twin at each depth from each seed,
    same data and steps.

    SGD with momentum 0.9 on the full batch, PyTorch's default
    initialization, no normalization: within a seed, the only thing that
    changes between runs is the depth (and the shortcuts). One MLPRun per
    (kind, depth, seed), with its ``seed``.
    """
    num_classes = int(y.max()) + 1
    runs = []
    for kind in kinds:
        for depth in depths:
            for seed in seeds:
                set_seed(seed)  # same initial draw for every run of this seed
                model = make_net(kind, depth, X.shape[1], width, num_classes)
                losses, errors = train_full_batch(model, X, y, num_steps, lr)
                # after the last update
                final = classification_error(model, X, y)
                runs.append(
                    MLPRun(kind, depth, losses, errors, final, model, seed, lr)
                )
    return runs


# ----------------------------------------------------------------------------------------------
# Chapter "The degradation problem", in He et al.'s regime: BatchNorm and He initialization
# ----------------------------------------------------------------------------------------------
@ints_at_least(depth=2)
def bn_plain_mlp(
    in_features: int, width: int, depth: int, num_classes: int
) -> nn.Sequential:
    """A plain MLP as He et al. trained their plain nets: ``depth`` Linear
    layers in all.

    Every hidden layer is Linear (no bias: BatchNorm's shift makes it
    redundant), BatchNorm1d, ReLU; the last Linear gives the logits. Weights
    use He (Kaiming) normal initialization, std sqrt(2 / fan_in), which keeps
    the forward signal's scale through ReLUs.
    """
    layers: list[nn.Module] = []
    for i in range(depth - 1):
        # (N, in_features or width) -> (N, width)
        fan_in = in_features if i == 0 else width
        layers += [nn.Linear(fan_in, width, bias=False),
                   nn.BatchNorm1d(width), nn.ReLU()]  # fmt: skip
    # (N, width) -> (N, num_classes)
    layers.append(nn.Linear(width, num_classes))
    model = nn.Sequential(*layers)
    for layer in linear_layers(model):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return model


class BNResidualBlock(nn.Module):
    """The residual twin of two hidden layers of ``bn_plain_mlp``: the same
    Linear (no bias), BatchNorm1d, ReLU twice, with an identity shortcut
    added before the second ReLU, as in He et al.'s convolutional blocks.

    ``forward(a) = relu(bn2(linear2(relu(bn1(linear1(a))))) + a)``
    """

    def __init__(self, features: int):
        super().__init__()
        # two (Linear without bias, BatchNorm) pairs, each (N, f) -> (N, f)
        self.linear1, self.bn1 = _linear_bn(features)
        self.linear2, self.bn2 = _linear_bn(features)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.linear1(a)))  # (N, f): the first hidden layer
        # the shortcut joins before the second ReLU, as in He et al.'s blocks
        return F.relu(a + self.bn2(self.linear2(h)))


def _linear_bn(features: int) -> tuple[nn.Linear, nn.BatchNorm1d]:
    # no bias: BatchNorm's shift makes it redundant
    return nn.Linear(features, features, bias=False), nn.BatchNorm1d(features)


@ints_at_least(depth=2)
def bn_residual_mlp(
    in_features: int, width: int, depth: int, num_classes: int
) -> nn.Sequential:
    """The residual twin of ``bn_plain_mlp``: ``depth`` Linear layers in all,
    the same BatchNorm and He initialization.

    Linear, BatchNorm1d, ReLU into ``width``; ``(depth - 2) // 2``
    BNResidualBlocks; the Linear to the logits. ``depth`` must be even, so
    that the hidden layers pair up into blocks.
    """
    if depth % 2:
        raise ValueError(
            f"a residual twin needs an even depth >= 2; got {depth!r}"
        )
    model = nn.Sequential(
        nn.Linear(in_features, width, bias=False),  # (N, in) -> (N, width)
        nn.BatchNorm1d(width),
        nn.ReLU(),
        *[BNResidualBlock(width) for _ in range((depth - 2) // 2)],
        nn.Linear(width, num_classes),  # (N, width) -> (N, num_classes)
    )
    for layer in linear_layers(model):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return model


BN_NETS = {"plain-bn": bn_plain_mlp, "residual-bn": bn_residual_mlp}


def signal_norms(
    model: nn.Sequential, X: torch.Tensor, y: torch.Tensor
) -> dict[str, list[float]]:
    """Forward and backward signal of each hidden layer at one cross-entropy
    pass, input side first.

    ``forward``: root mean square of each hidden ReLU's output over the batch
    (the activation scale); ``backward``: Frobenius norm of each Linear layer's
    weight gradient. The model's parameters are unchanged and its gradients
    cleared; it is left in the mode it was in.
    """
    activations = []

    def record(_module, _inputs, out):  # out: (N, width)
        activations.append(out.pow(2).mean().sqrt())

    relus = [m for m in model if isinstance(m, nn.ReLU)]
    hooks = [relu.register_forward_hook(record) for relu in relus]
    try:
        model.zero_grad()
        F.cross_entropy(model(X), y).backward()
    finally:
        for hook in hooks:
            hook.remove()
    backward = [
        layer.weight.grad.norm().item() for layer in linear_layers(model)
    ]
    model.zero_grad(set_to_none=True)
    return {"forward": [a.item() for a in activations], "backward": backward}


def bn_depth_sweep(
    X: torch.Tensor,
    y: torch.Tensor,
    depths: Sequence[int] = (8, 16, 32, 64),
    seeds: Sequence[int] = (0, 1, 2),
    width: int = 32,
    num_steps: int = 800,
    lr: float = 0.01,
    kind: str = "plain-bn",
) -> list[MLPRun]:
    """Train ``bn_plain_mlp`` (``kind="plain-bn"``) or its residual twin
    ``bn_residual_mlp`` (``"residual-bn"``) at every depth from every seed:
    full-batch SGD, momentum 0.9.

    One MLPRun per (depth, seed), with the error at every step (measured on
    that step's forward pass, BatchNorm using the whole training set's
    statistics), so the error after any shorter budget can be read off the
    same run. ``final_error`` is measured the same way, after the last
    update (train-mode BatchNorm on the whole training set: the statistics
    the network was trained with, not a running average of past steps).
    """
    if kind not in BN_NETS:
        raise ValueError(f"kind must be one of {sorted(BN_NETS)}; got {kind!r}")
    num_classes = int(y.max()) + 1
    runs = []
    for depth in depths:
        for seed in seeds:
            set_seed(seed)
            model = BN_NETS[kind](X.shape[1], width, depth, num_classes)
            losses, errors = train_full_batch(model, X, y, num_steps, lr)
            model.train()  # BatchNorm: the whole training set's statistics
            final = classification_error(model, X, y)  # after the last update
            runs.append(
                MLPRun(kind, depth, losses, errors, final, model, seed, lr)
            )
    return runs


# ----------------------------------------------------------------------------------------------
# Chapter "Why the identity is easy"
# ----------------------------------------------------------------------------------------------
class PlainBlock(nn.Module):
    """A ResidualBlock without its shortcut:
    ``relu(linear2(relu(linear1(a))))``."""

    def __init__(self, features: int):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        # (N, features) -> (N, features)
        return F.relu(self.linear2(F.relu(self.linear1(a))))


def identity_learning(
    features: int = 16,
    num_examples: int = 512,
    num_steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Teach a plain two-layer block and a residual block the identity map
    a -> a.

    The inputs are non-negative, like any activation after a ReLU:
    a = relu(z), z ~ N(0, I). Both blocks start from the same weights (same
    seed) and take the same full-batch SGD steps on the mean squared error;
    returns the error at every step for each.
    """
    generator = torch.Generator().manual_seed(seed)
    Z = torch.randn(num_examples, features, generator=generator)
    A = F.relu(Z)  # (N, features), >= 0
    curves = {}
    blocks = (("plain", PlainBlock), ("residual", ResidualBlock))
    for kind, block_class in blocks:
        set_seed(seed)
        block = block_class(features)
        opt = torch.optim.SGD(block.parameters(), lr=lr, momentum=0.9)
        curve = []
        for _ in range(num_steps):
            # how far the block's output is from its input
            loss = F.mse_loss(block(A), A)
            opt.zero_grad()
            loss.backward()
            opt.step()
            curve.append(loss.item())
        with torch.no_grad():
            # after the last step
            curve.append(F.mse_loss(block(A), A).item())
        curves[kind] = curve
    return curves


def residual_branch_norms(model: nn.Module) -> list[float]:
    """Frobenius norm of each ResidualBlock's last weight matrix W[l+2]
    (``linear2.weight``)."""
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    return [block.linear2.weight.norm().item() for block in blocks]


def branch_ratios(model: nn.Sequential, X: torch.Tensor) -> list[float]:
    """||F(a)|| / ||a|| of each block on the data X: how much the block
    changes its input.

    ``a`` is the block's input (N, width) when X goes through ``model``, norms
    are Frobenius over the whole batch. Residual MLP:
    F(a) = linear2(relu(linear1(a))), the branch added to the shortcut. Plain
    MLP (the control): a block is a pair of hidden layers h (see
    ``block_spans``) and F(a) = h(a) - a, what a shortcut around h would leave
    its branch to compute. A ratio near 0 means the block is close to the
    identity *on these data*.
    """
    spans = block_spans(model)
    modules = list(model)
    ratios = []
    with torch.no_grad():
        # the first block's input, (N, width)
        a = nn.Sequential(*modules[: spans[0][0]])(X) if spans else X
        for start, stop in spans:
            block = nn.Sequential(*modules[start:stop])
            out = block(a)  # (N, width)
            if isinstance(modules[start], ResidualBlock):
                layer = modules[start]
                # the branch, before the addition
                change = layer.linear2(F.relu(layer.linear1(a)))
            else:
                change = out - a
            ratios.append((change.norm() / a.norm()).item())
            a = out
    return ratios


def weight_decay_study(
    X: torch.Tensor,
    y: torch.Tensor,
    weight_decays: Sequence[float] = (0.0, 1e-2),
    num_blocks: int = 6,
    width: int = 32,
    num_steps: int = 800,
    lr: float = 0.02,
    seed: int = 0,
    kind: str = "residual",
) -> dict[float, dict]:
    """Train the same net with each weight decay; measure every block before
    and after.

    ``kind="residual"`` is a residual MLP of ``num_blocks`` blocks,
    ``kind="plain"`` its plain twin (the control). Weight decay is SGD's
    ``weight_decay``, which decays *every* parameter, biases included. Returns
    ``{weight_decay: {...}}`` with ``init_ratios``/``ratios`` (see
    ``branch_ratios``, before and after training), ``init_norms``/``norms``
    (the Frobenius norm of each residual block's last weight matrix W[l+2];
    empty for the plain net) and ``error``, the final training error.
    """
    num_classes = int(y.max()) + 1
    depth = 2 * num_blocks + 2
    results = {}
    for weight_decay in weight_decays:
        set_seed(seed)  # the same initial weights for every weight decay
        model = make_net(kind, depth, X.shape[1], width, num_classes)
        init_norms = residual_branch_norms(model)
        init_ratios = branch_ratios(model, X)
        train_full_batch(
            model, X, y, num_steps, lr, weight_decay=weight_decay
        )
        results[weight_decay] = {
            "init_ratios": init_ratios,
            "ratios": branch_ratios(model, X),
            "init_norms": init_norms,
            "norms": residual_branch_norms(model),
            "error": classification_error(model, X, y),
        }
    return results


def residual_depth_study(
    X: torch.Tensor,
    y: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    depths: Sequence[int] = (4, 8, 16),
    seeds: Sequence[int] = (0, 1, 2),
    width: int = 8,
    num_steps: int = 800,
    lr: float = 0.01,
) -> dict[int, dict[str, list[float]]]:
    """Residual MLPs of several depths, each from several seeds: can a deeper
    one do *better*?

    Full-batch SGD (momentum 0.9) on (X, y), as in ``mlp_depth_sweep``.
    Returns ``{depth: {"train": [error per seed], "val": [error per seed]}}``,
    the validation error measured on (X_val, y_val).
    """
    num_classes = int(y.max()) + 1
    results = {}
    for depth in depths:
        train_errors, val_errors = [], []
        for seed in seeds:
            set_seed(seed)
            model = make_net(
                "residual", depth, X.shape[1], width, num_classes
            )
            train_full_batch(model, X, y, num_steps, lr)
            train_errors.append(classification_error(model, X, y))
            val_errors.append(classification_error(model, X_val, y_val))
        results[depth] = {"train": train_errors, "val": val_errors}
    return results


def gradient_norms_by_layer(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor
) -> list[float]:
    """L2 norm of each Linear layer's weight gradient after one cross-entropy
    backward pass.

    Input side first. The model's parameters are not changed; its gradients
    are cleared after.
    """
    layers = linear_layers(model)
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    norms = [layer.weight.grad.norm().item() for layer in layers]
    model.zero_grad(set_to_none=True)
    return norms


def block_spans(model: nn.Sequential) -> list[tuple[int, int]]:
    """Positions ``(start, stop)`` in ``model`` of each block a lesion can
    remove.

    Residual MLP: each ResidualBlock. Plain MLP: each pair of hidden
    width -> width layers (Linear, ReLU, Linear, ReLU), i.e. the same two
    Linear layers a residual block holds, minus the shortcut. The first Linear
    (input -> width) and the last (width -> classes) never count.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"block_spans needs an nn.Sequential; got {type(model).__name__}"
        )
    modules = list(model)
    residual = [
        i for i, m in enumerate(modules) if isinstance(m, ResidualBlock)
    ]
    if residual:
        return [(i, i + 1) for i in residual]
    # plain_mlp: [Linear, ReLU, (Linear, ReLU) * (depth - 2), Linear]
    hidden = [
        i for i, m in enumerate(modules[:-1])
        if isinstance(m, nn.Linear) and i > 0
    ]  # fmt: skip
    pairs = range(0, len(hidden) - 1, 2)
    return [(hidden[j], hidden[j + 1] + 2) for j in pairs]


def without_block(model: nn.Sequential, index: int) -> nn.Sequential:
    """``model`` with block ``index`` (see ``block_spans``) removed; shares
    the other layers."""
    spans = block_spans(model)
    if not 0 <= index < len(spans):
        raise ValueError(
            f"block index must be in [0, {len(spans)}); got {index!r}"
        )
    start, stop = spans[index]
    modules = list(model)
    return nn.Sequential(*modules[:start], *modules[stop:])


def lesion_study(
    model: nn.Sequential, X: torch.Tensor, y: torch.Tensor
) -> list[float]:
    """Training error of ``model`` with each of its blocks removed in turn
    (one at a time)."""
    return [
        classification_error(without_block(model, i), X, y)
        for i in range(len(block_spans(model)))
    ]


def train_for_lesion(
    kind: str,
    X: torch.Tensor,
    y: torch.Tensor,
    depth: int = 10,
    width: int = 32,
    num_steps: int = 600,
    lr: float = 3e-3,
    seed: int = 0,
) -> nn.Sequential:
    """A plain net or residual twin trained to fit (X, y), for the lesion
    study.

    Adam, not SGD: at this depth it fits *both* kinds of net to near-zero
    training error, so the lesion compares two nets that solve the task
    equally well before surgery.
    """
    set_seed(seed)
    model = make_net(kind, depth, X.shape[1], width, int(y.max()) + 1)
    train_full_batch(model, X, y, num_steps, lr, optimizer="adam")
    return model
