"""resnet_course/plotting.py: each figure draws the data it is given (errors in percent, x from
1, one line or bar per label) on the Agg backend, returns its Axes, and refuses mismatched or
empty inputs with a message."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from resnet_course.plotting import (
    plot_curves,
    plot_decision_regions,
    plot_error_spread_vs_depth,
    plot_error_vs_depth,
    plot_gradient_norms,
    plot_grouped_bars,
    plot_seed_strip,
    plot_step_curves,
)
from resnet_course.train import History


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines(ax) -> dict[str, tuple[list, list]]:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_plot_curves_in_percent_from_epoch_1():
    ax = plot_curves({"plain": History(train_error=[0.5, 0.25]),
                      "residual": History(train_error=[0.1, 0.05])})
    assert lines(ax) == {"plain": ([1, 2], [50.0, 25.0]), "residual": ([1, 2], [10.0, 5.0])}
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "training error (%)"
    steps = plot_curves({"a": History(step_losses=[2.0, 1.0, 0.5])}, metric="step_losses")
    assert lines(steps)["a"] == ([1, 2, 3], [2.0, 1.0, 0.5]) and steps.get_xlabel() == "step"


@pytest.mark.parametrize("histories, metric, why", [
    ({"a": History()}, "val_error", "no val_error values"),
    ({"a": History(train_error=[0.1])}, "accuracy", "metric must be one of"),
    ({}, "train_error", "histories is empty"),
])
def test_plot_curves_refusals(histories, metric, why):
    with pytest.raises(ValueError, match=why):
        plot_curves(histories, metric=metric)


def test_error_vs_depth():
    ax = plot_error_vs_depth([8, 20], {"plain": [0.1, 0.3]})
    assert lines(ax)["plain"] == ([8, 20], [10.0, 30.0])
    assert list(ax.get_xticks()) == [8, 20]
    with pytest.raises(ValueError, match="1 errors for 2 depths"):
        plot_error_vs_depth([8, 20], {"plain": [0.1]})


def test_error_spread_vs_depth_draws_means_and_every_seed():
    ax = plot_error_spread_vs_depth([8, 20], {"plain": [[0.1, 0.3], [0.2]]})
    (container,) = ax.containers  # the error bar, labelled "plain"
    mean_line = container[0]
    assert container.get_label() == "plain"
    assert list(mean_line.get_xdata()) == [8, 20]
    assert np.allclose(mean_line.get_ydata(), [20.0, 20.0])  # the means
    dots = [line for line in ax.get_lines() if line.get_marker() == "."]
    assert sorted(float(y) for d in dots for y in d.get_ydata()) == pytest.approx([10, 20, 30])


def test_gradient_norms_on_a_log_scale():
    ax = plot_gradient_norms({"plain": [1e-6, 1e-3, 1.0]})
    assert ax.get_yscale() == "log" and lines(ax)["plain"][0] == [1, 2, 3]


def test_seed_strip_means():
    ax = plot_seed_strip({"a": [1.0, 100.0], "b": [4.0]}, log=True)
    means = [float(c.get_segments()[0][0][1]) for c in ax.collections]
    assert means == pytest.approx([10.0, 4.0])  # geometric on a log axis
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_step_curves_and_grouped_bars():
    ax = plot_step_curves({"run": [0.5, 0.25]})
    assert lines(ax)["run"] == ([1, 2], [50.0, 25.0])
    with pytest.raises(ValueError, match="curve 'run' is empty"):
        plot_step_curves({"run": []})
    bars = plot_grouped_bars({"wd": [1.0, 2.0], "none": [3.0, 4.0]}, ["b1", "b2"])
    assert sorted(p.get_height() for p in bars.patches) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="1 values for 2 categories"):
        plot_grouped_bars({"wd": [1.0]}, ["b1", "b2"])


def test_decision_regions_leave_the_model_in_its_mode():
    model = nn.Sequential(nn.Linear(2, 3))
    model.train()
    X, y = torch.randn(10, 2), torch.randint(0, 3, (10,))
    ax = plot_decision_regions(model, X, y, resolution=20)
    assert model.training
    assert len(ax.collections) >= 2  # the regions and the points
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_decision_regions(model, torch.randn(10, 3), y)


def test_draws_on_the_axes_given():
    _, ax = plt.subplots()
    assert plot_gradient_norms({"a": [1.0]}, ax=ax) is ax
