"""Experiment runners for the chapters "Matching dimensions" and "ResNets on images".

The chapters call these functions and show their source, so every number they print comes from a
run of this code. Everything trains on scikit-learn's handwritten digits (no download), on the
CPU, in seconds: the point is the *pattern* He et al. (2016) report, not their accuracy.

* ``train_digits_resnet`` - train one ``resnet_cifar`` (plain or residual) on the digits.
* ``depth_sweep`` / ``shortcut_sweep`` - several such runs (the chapters' Figure-6 and A/B/C runs).
* ``check_depth_pattern`` - raises unless the runs (mean over their seeds) show the paper's
  Figure-6 pattern, so a book build fails instead of printing a claim the measurement does not
  support.
* ``parameter_rows`` / ``shortcut_parameter_rows`` / ``trace_shapes`` - tables computed from the
  models themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

from resnet_course.data import digits, make_loader
from resnet_course.models import count_parameters, resnet_cifar
from resnet_course.train import History, fit, set_seed
from resnet_course.validate import check_int


# ----------------------------------------------------------------------------------------------
# One training run
# ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One trained network: what it was, how big, and what ``fit`` measured."""

    depth: int
    residual: bool
    shortcut: str
    num_parameters: int
    history: History
    seconds: float  # wall-clock time of the whole run (training and evaluation)
    seed: int = 0  # data split, batch order and initial weights

    @property
    def label(self) -> str:
        """ "plain-20" or "ResNet-20"."""
        return f"{'ResNet' if self.residual else 'plain'}-{self.depth}"

    @property
    def final_train_error(self) -> float:
        """Training error (fraction, eval mode, whole training set) after the last epoch."""
        return self.history.train_error[-1]

    @property
    def final_val_error(self) -> float:
        """Validation error (fraction in [0, 1]) after the last epoch."""
        return self.history.val_error[-1]


def digits_loaders(size: int = 8, batch_size: int = 32, seed: int = 0):
    """Train and validation loaders over the digits as 3-channel images (N, 3, size, size)."""
    X_train, y_train, X_val, y_val = digits(size=size, channels=3, seed=seed)
    train_loader = make_loader(X_train, y_train, batch_size, shuffle=True, seed=seed)
    val_loader = make_loader(X_val, y_val, batch_size=512, shuffle=False)
    return train_loader, val_loader


def train_digits_resnet(
    depth: int,
    residual: bool = True,
    shortcut: str = "A",
    size: int = 8,
    num_epochs: int = 6,
    lr: float = 0.1,
    batch_size: int = 32,
    milestones: Sequence[int] | None = None,
    seed: int = 0,
) -> Run:
    """Train ``resnet_cifar(depth, shortcut=shortcut, residual=residual)`` on
    the digits, on the CPU.

    SGD with momentum 0.9 and no weight decay, so the training error shows
    how well the optimizer fits the data. The same ``seed`` gives the same
    data split, batch order and initial weights.
    """
    check_int("num_epochs", num_epochs)  # at least one, to measure anything
    train_loader, val_loader = digits_loaders(size, batch_size, seed)
    # the initial weights depend only on the seed, not on earlier runs
    set_seed(seed)
    model = resnet_cifar(depth, shortcut=shortcut, residual=residual)
    start = time.perf_counter()
    history = fit(
        model,
        train_loader,
        val_loader,
        num_epochs=num_epochs,
        lr=lr,
        milestones=milestones,
        device="cpu",
        progress=False,
    )
    seconds = time.perf_counter() - start
    parameters = count_parameters(model)
    return Run(
        depth, bool(residual), shortcut, parameters, history, seconds, seed
    )


def depth_sweep(
    depths: Iterable[int],
    residual_options: Iterable[bool] = (False, True),
    seeds: Sequence[int] | None = None,
    **train_kwargs,
) -> list[Run]:
    """``train_digits_resnet`` for every (residual, depth) pair, and every seed
    of
    ``seeds`` (None: one run with ``train_kwargs``' seed): plain nets first,
    then ResNets, each depth's seeds together.
    """
    seed_runs = [{}] if seeds is None else [{"seed": seed} for seed in seeds]
    return [
        train_digits_resnet(depth, residual=residual, **seed_kw, **train_kwargs)
        for residual in residual_options
        for depth in depths
        for seed_kw in seed_runs
    ]


def shortcut_sweep(
    depth: int,
    options: Iterable[str] = ("A", "B", "C"),
    seeds: Sequence[int] | None = None,
    **train_kwargs,
) -> list[Run]:
    """``train_digits_resnet`` for one depth and each shortcut option (same seed,
    same data), and every seed of ``seeds`` (None: one run with
    ``train_kwargs``' seed).
    """
    seed_runs = [{}] if seeds is None else [{"seed": seed} for seed in seeds]
    return [
        train_digits_resnet(depth, shortcut=option, **seed_kw, **train_kwargs)
        for option in options
        for seed_kw in seed_runs
    ]


# ----------------------------------------------------------------------------------------------
# The claim of the paper's Figure 6, checked on our own runs
# ----------------------------------------------------------------------------------------------
def _mean_final_errors(runs: Sequence[Run], residual: bool) -> dict[int, list[float]]:
    """{depth: final training errors of its runs (one per seed)}, depths ascending."""
    errors: dict[int, list[float]] = {}
    for run in runs:
        if run.residual == residual:
            errors.setdefault(run.depth, []).append(run.final_train_error)
    return dict(sorted(errors.items()))


def check_depth_pattern(
    runs: Sequence[Run], min_gap: float = 0.05, tolerance: float = 0.01
) -> dict:
    """Check the pattern of He et al.'s Figure 6 on the final training
    errors of ``runs``, averaged over the runs (seeds) of each depth.

    * plain nets: each deeper one ends no lower than the one before, and
      the deepest at least ``min_gap`` above the shallowest (deeper is
      worse: the degradation problem);
    * ResNets: every one ends no more than ``tolerance`` above the
      shallowest (deeper is not worse), and the deepest at least
      ``min_gap`` below the plain net of its depth.

    Raises RuntimeError naming the failed part; returns the means it
    compared otherwise, with ``<key>_min`` / ``<key>_max`` over the seeds
    and ``seeds``, the smallest number of runs behind a mean.
    """
    plain, res = _mean_final_errors(runs, False), _mean_final_errors(runs, True)
    if len(plain) < 2 or len(res) < 2:
        raise ValueError(
            "need at least two plain and two residual runs of different depths"
        )
    if max(plain) != max(res) or min(plain) != min(res):
        raise ValueError(
            "plain and residual runs must cover the same shallowest and "
            "deepest depth"
        )
    shallow, deep = min(plain), max(plain)
    mean = {("plain", d): sum(e) / len(e) for d, e in plain.items()}
    mean |= {("ResNet", d): sum(e) / len(e) for d, e in res.items()}
    counts = [len(e) for e in [*plain.values(), *res.values()]]
    numbers = {"shallow": shallow, "deep": deep, "seeds": min(counts)}
    groups = {
        "plain_shallow": plain[shallow],
        "plain_deep": plain[deep],
        "resnet_shallow": res[shallow],
        "resnet_deep": res[deep],
    }
    for key, errors in groups.items():
        numbers[key] = sum(errors) / len(errors)
        numbers[f"{key}_min"], numbers[f"{key}_max"] = min(errors), max(errors)
    problems = []
    for before, after in pairwise(plain):
        if mean["plain", after] < mean["plain", before]:
            problems.append(
                f"plain-{after} training error "
                f"{mean['plain', after]:.3f} is below "
                f"plain-{before}'s {mean['plain', before]:.3f}"
            )
    if numbers["plain_deep"] < numbers["plain_shallow"] + min_gap:
        problems.append(
            f"plain-{deep} training error {numbers['plain_deep']:.3f} is not "
            f"at least {min_gap} above plain-{shallow}'s "
            f"{numbers['plain_shallow']:.3f}"
        )
    for depth in list(res)[1:]:
        if mean["ResNet", depth] > numbers["resnet_shallow"] + tolerance:
            problems.append(
                f"ResNet-{depth} training error {mean['ResNet', depth]:.3f} is "
                f"more than {tolerance} above ResNet-{shallow}'s "
                f"{numbers['resnet_shallow']:.3f}"
            )
    if numbers["resnet_deep"] > numbers["plain_deep"] - min_gap:
        problems.append(
            f"ResNet-{deep} training error {numbers['resnet_deep']:.3f} is "
            f"not at least {min_gap} below plain-{deep}'s "
            f"{numbers['plain_deep']:.3f}"
        )
    if problems:
        raise RuntimeError(
            "the runs do not show the Figure-6 pattern (means over seeds): "
            + "; ".join(problems)
        )
    return numbers


# ----------------------------------------------------------------------------------------------
# Tables computed from the models
# ----------------------------------------------------------------------------------------------
def parameter_rows(
    depths: Iterable[int], build: Callable[[int], nn.Module] = resnet_cifar
) -> list[tuple[int, int]]:
    """(depth, number of parameters) of ``build(depth)`` for each depth."""
    return [(depth, count_parameters(build(depth))) for depth in depths]


def shortcut_parameter_rows(
    build: Callable[..., nn.Module], options: Iterable[str] = ("A", "B", "C")
) -> list[tuple[str, int, int]]:
    """(option, parameters, parameters in shortcuts) of
    ``build(shortcut=option)``.

    Shortcut parameters are those of modules named ``shortcut`` (the
    projections of B and C).
    """
    rows = []
    for option in options:
        model = build(shortcut=option)
        in_shortcuts = sum(
            count_parameters(module)
            for name, module in model.named_modules()
            if name.rsplit(".", 1)[-1] == "shortcut"
        )
        rows.append((option, count_parameters(model), in_shortcuts))
    return rows


def trace_shapes(
    model: nn.Module, X: torch.Tensor, names: Iterable[str]
) -> list[tuple[str, tuple]]:
    """Output shape of each named submodule (``model.named_modules()``
    names) for input ``X``.

    Forward hooks record the shapes during one forward pass without
    gradients; the model's mode is left as it was.
    """
    modules = dict(model.named_modules())
    wanted = list(names)
    missing = [name for name in wanted if name not in modules]
    if missing:
        raise ValueError(
            f"no submodules named {missing}; see model.named_modules()"
        )
    shapes: dict[str, tuple] = {}

    def recorder(name: str):
        # a hook that returns None leaves the output unchanged
        def hook(_module, _inputs, output) -> None:
            # first call only, if the module is used twice
            shapes.setdefault(name, tuple(output.shape))

        return hook

    hooks = [
        modules[name].register_forward_hook(recorder(name)) for name in wanted
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(X)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    traced = [(name, shapes[name]) for name in wanted]
    return [("input", tuple(X.shape)), *traced]
