"""Figures for the chapters: training curves, error against depth, per-layer gradient norms and
decision regions. Each function draws on ``ax`` (a new figure when None) and returns the Axes,
never calls ``plt.show()``, and so works with the non-interactive Agg backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import nn

from .train import History

# y-axis label and whether the values are fractions shown in percent
METRICS = {
    "train_loss": ("training loss (cross-entropy, nats)", False),
    "train_error": ("training error (%)", True),
    "val_error": ("validation error (%)", True),
    "step_losses": ("training loss per step (cross-entropy, nats)", False),
}


def _new_axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    return ax


def _depth_axes(ax: Axes, depths: Sequence[int], ylabel: str) -> Axes:
    """Depth on x (one tick per depth), the error on y, legend and a light grid."""
    ax.set_xticks(list(depths))
    ax.set_xlabel("depth (layers with weights)")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_curves(
    histories: Mapping[str, History],
    metric: str = "train_error",
    ax: Axes | None = None,
    xlabel: str | None = None,
    **plot_kwargs,
) -> Axes:
    """One line per labelled History: ``metric`` against epoch (or step, for ``step_losses``).

    Errors (fractions in History) are shown in percent. Extra keyword arguments go to
    ``ax.plot`` (e.g. ``linestyle="--"`` to draw training and validation curves on one Axes).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}; got {metric!r}")
    if not histories:
        raise ValueError("histories is empty: pass {label: History, ...}")
    ylabel, percent = METRICS[metric]
    ax = _new_axes(ax)
    for label, history in histories.items():
        values = np.asarray(getattr(history, metric), dtype=float)
        if values.size == 0:
            raise ValueError(f"history {label!r} has no {metric} values (was it recorded?)")
        x = np.arange(1, len(values) + 1)  # epochs (or steps) count from 1
        ax.plot(x, 100 * values if percent else values, label=label, **plot_kwargs)
    ax.set_xlabel(xlabel or ("step" if metric == "step_losses" else "epoch"))
    ax.set_ylabel(ylabel)
    if percent:
        ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_error_vs_depth(
    depths: Sequence[int],
    errors_by_label: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    ylabel: str = "training error (%)",
    as_percent: bool = True,
) -> Axes:
    """Final error against network depth, one line per label (e.g. "plain" and "residual").

    Errors are fractions in [0, 1] and are drawn in percent (``as_percent=False`` draws them
    as given).
    """
    if not errors_by_label:
        raise ValueError("errors_by_label is empty: pass {label: [error for each depth], ...}")
    ax = _new_axes(ax)
    for label, errors in errors_by_label.items():
        if len(errors) != len(depths):
            raise ValueError(
                f"{label!r} has {len(errors)} errors for {len(depths)} depths; they must match"
            )
        values = np.asarray(errors, dtype=float)
        ax.plot(depths, 100 * values if as_percent else values, "o-", label=label)
    return _depth_axes(ax, depths, ylabel)


def plot_error_spread_vs_depth(
    depths: Sequence[int],
    errors_by_label: Mapping[str, Sequence[Sequence[float]]],
    ax: Axes | None = None,
    ylabel: str = "training error (%)",
) -> Axes:
    """Error against depth over several seeds: every seed as a dot, the mean as a line, and an
    error bar of one standard deviation. ``errors_by_label[label][i]`` holds the errors
    (fractions) of all seeds at ``depths[i]``; they are drawn in percent."""
    if not errors_by_label:
        raise ValueError("errors_by_label is empty: pass {label: [[error per seed] per depth]}")
    ax = _new_axes(ax)
    for label, per_depth in errors_by_label.items():
        if len(per_depth) != len(depths):
            raise ValueError(
                f"{label!r} has {len(per_depth)} entries for {len(depths)} depths; they must match"
            )
        values = [100 * np.asarray(seeds, dtype=float) for seeds in per_depth]
        means = [v.mean() for v in values]
        stds = [v.std(ddof=1) if v.size > 1 else 0.0 for v in values]
        line = ax.errorbar(depths, means, yerr=stds, fmt="o-", capsize=4, label=label)
        for depth, v in zip(depths, values, strict=True):
            ax.plot([depth] * v.size, v, ".", color=line[0].get_color(), alpha=0.5)
    return _depth_axes(ax, depths, ylabel)


def plot_gradient_norms(
    norms_by_label: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    ylabel: str = "gradient norm ‖∂L/∂W‖ (log scale)",
) -> Axes:
    """Per-layer gradient norms (input side first), one line per label, on a log scale."""
    if not norms_by_label:
        raise ValueError("norms_by_label is empty: pass {label: [norm for each layer], ...}")
    ax = _new_axes(ax)
    for label, norms in norms_by_label.items():
        ax.semilogy(np.arange(1, len(norms) + 1), np.asarray(norms, dtype=float), "o-", label=label)
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return ax


@torch.no_grad()
def plot_seed_strip(
    values_by_label: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    ylabel: str = "",
    log: bool = False,
    as_percent: bool = False,
) -> Axes:
    """One column per label: a dot per seed and a bar at the seeds' mean (chapter "Small branches").

    Shows the spread over seeds next to the mean, so a claim can be read off every run.
    """
    if not values_by_label:
        raise ValueError("values_by_label is empty: pass {label: [value per seed], ...}")
    ax = _new_axes(ax)
    scale = 100 if as_percent else 1
    for k, values in enumerate(values_by_label.values()):
        v = np.asarray(values, dtype=float) * scale
        offsets = np.linspace(-0.15, 0.15, len(v)) if len(v) > 1 else np.zeros(1)
        ax.plot(k + offsets, v, "o", alpha=0.7, color=f"C{k}")
        mean = np.exp(np.log(v).mean()) if log else v.mean()  # geometric mean on a log axis
        ax.hlines(mean, k - 0.3, k + 0.3, color=f"C{k}", linewidth=2)
    ax.set_xticks(range(len(values_by_label)), list(values_by_label), rotation=20, ha="right")
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    return ax


def plot_decision_regions(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    ax: Axes | None = None,
    resolution: int = 200,
) -> Axes:
    """Coloured regions of the class ``model`` predicts over the plane, with the points (X, y).

    ``X`` is (N, 2); the model is evaluated on a ``resolution`` x ``resolution`` grid on the CPU
    in eval mode, and left in the mode it was in.
    """
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must be (N, 2) points in the plane; got shape {tuple(X.shape)}")
    ax = _new_axes(ax)
    X_np, y_np = X.detach().cpu().numpy(), y.detach().cpu().numpy()
    lo, hi = X_np.min(axis=0) - 0.1, X_np.max(axis=0) + 0.1
    g0, g1 = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = torch.tensor(np.stack([g0.ravel(), g1.ravel()], axis=1), dtype=torch.float32)  # (R*R, 2)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        predicted = model(grid.to(device)).argmax(dim=1).cpu().numpy().reshape(g0.shape)
    finally:
        model.train(was_training)
    num_classes = int(max(y_np.max(), predicted.max())) + 1
    levels = np.arange(num_classes + 1) - 0.5  # one colour band per class
    ax.contourf(g0, g1, predicted, levels=levels, cmap="tab10", vmin=0, vmax=9, alpha=0.3)
    ax.scatter(X_np[:, 0], X_np[:, 1], c=y_np, cmap="tab10", vmin=0, vmax=9, s=10)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")
    return ax


def plot_step_curves(
    curves_by_label: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
    ylabel: str = "training error (%)",
    as_percent: bool = True,
    log_y: bool = False,
) -> Axes:
    """One line per label of a value recorded at every optimizer step (step 1 first).

    Fractions are drawn in percent unless ``as_percent=False``; ``log_y`` for losses that span
    orders of magnitude.
    """
    if not curves_by_label:
        raise ValueError("curves_by_label is empty: pass {label: [value at each step], ...}")
    ax = _new_axes(ax)
    for label, curve in curves_by_label.items():
        values = np.asarray(curve, dtype=float)
        if values.size == 0:
            raise ValueError(f"curve {label!r} is empty")
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, 100 * values if as_percent else values, label=label)
    if log_y:
        ax.set_yscale("log")
    elif as_percent:
        ax.set_ylim(bottom=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return ax


def plot_grouped_bars(
    values_by_label: Mapping[str, Sequence[float]],
    categories: Sequence[str],
    ax: Axes | None = None,
    xlabel: str = "",
    ylabel: str = "",
    as_percent: bool = False,
) -> Axes:
    """Side-by-side bars: one group per category, one bar per label within each group.

    E.g. the norm of each residual block's last weight matrix with and without weight decay
    (categories = block numbers, labels = settings).
    """
    if not values_by_label:
        raise ValueError("values_by_label is empty: pass {label: [value per category], ...}")
    ax = _new_axes(ax)
    x = np.arange(len(categories))
    width = 0.8 / len(values_by_label)
    for k, (label, values) in enumerate(values_by_label.items()):
        if len(values) != len(categories):
            raise ValueError(f"{label!r} has {len(values)} values for {len(categories)} categories")
        heights = np.asarray(values, dtype=float) * (100 if as_percent else 1)
        ax.bar(x + (k - (len(values_by_label) - 1) / 2) * width, heights, width, label=label)
    ax.set_xticks(x, list(categories))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return ax
