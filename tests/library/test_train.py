"""Tests for resnet_course.train (loops, History, options) and resnet_course.plotting."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_course.data import digits, make_loader, spirals
from resnet_course.models import plain_mlp, resnet_cifar
from resnet_course.plotting import (
    plot_curves,
    plot_decision_regions,
    plot_error_vs_depth,
    plot_gradient_norms,
    plot_grouped_bars,
    plot_step_curves,
)
from resnet_course.train import (
    History,
    error_rate,
    evaluate,
    fit,
    set_seed,
    train_one_epoch,
)

CPU = torch.device("cpu")


@pytest.fixture
def spiral_data():
    return spirals(n_per_class=30, num_classes=3, seed=0)  # 90 points


def small_bn_model() -> nn.Module:
    # BatchNorm makes train and eval mode compute different things
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


# ----------------------------------------------------------------------------------------------
# train_one_epoch / evaluate
# ----------------------------------------------------------------------------------------------
def test_train_one_epoch_returns_mean_loss_per_example(spiral_data):
    X, y = spiral_data
    set_seed(0)
    model = plain_mlp(2, 16, 3, 3)  # no BatchNorm/dropout: train mode == eval mode
    expected = F.cross_entropy(model(X), y).item()  # mean over all 90 examples
    # lr=0 leaves the weights unchanged; batches of 40, 40, 10 weigh by their sizes
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    step_losses = []
    loader = make_loader(X, y, batch_size=40)
    loss = train_one_epoch(model, loader, optimizer, CPU, step_losses=step_losses)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert len(step_losses) == 3
    # the unweighted mean of batch means would differ (the last batch holds only 10 examples)
    assert sum(step_losses) / 3 != pytest.approx(expected, rel=1e-5)


def test_train_one_epoch_trains_and_sets_train_mode(spiral_data):
    X, y = spiral_data
    set_seed(0)
    model = small_bn_model().eval()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, make_loader(X, y, 32), optimizer, "cpu")
    assert model.training
    # every parameter moved but the first bias, whose gradient BatchNorm cancels (it subtracts
    # the batch mean, so a constant shift before it changes nothing)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert changed == [True, False, True, True, True, True]


def test_evaluate_is_eval_mode_accuracy_without_gradients(spiral_data):
    X, y = spiral_data
    set_seed(0)
    model = small_bn_model()
    train_one_epoch(model, make_loader(X, y, 16), torch.optim.SGD(model.parameters(), 0.1), CPU)
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        expected = (model.eval()(X).argmax(1) == y).float().mean().item()
    model.train()
    accuracy = evaluate(model, make_loader(X, y, 7, shuffle=False), CPU)
    assert accuracy == pytest.approx(expected)
    assert model.training  # put back in the mode it was in
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert error_rate(model, make_loader(X, y, 50), CPU) == pytest.approx(1 - expected)
    assert not model.training


def test_empty_loader_is_an_error():
    model = plain_mlp(2, 4, 2, 3)
    empty = make_loader(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64), 4, shuffle=False)
    with pytest.raises(ValueError, match="yielded no examples"):
        evaluate(model, empty, CPU)
    with pytest.raises(ValueError, match="yielded no examples"):
        train_one_epoch(model, empty, torch.optim.SGD(model.parameters(), 0.1), CPU)


def test_amp_and_channels_last_run_on_cpu():
    set_seed(0)
    X, y = torch.randn(12, 3, 8, 8), torch.randint(0, 10, (12,))
    model = resnet_cifar(8).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = train_one_epoch(
        model, make_loader(X, y, 6), optimizer, CPU, amp=True, channels_last=True
    )
    assert math.isfinite(loss)
    accuracy = evaluate(model, make_loader(X, y, 6), CPU, amp=True, channels_last=True)
    assert 0 <= accuracy <= 1


# ----------------------------------------------------------------------------------------------
# fit and History
# ----------------------------------------------------------------------------------------------
def test_fit_records_history_and_schedule(spiral_data):
    X, y = spiral_data
    set_seed(0)
    model = small_bn_model()
    train_loader, val_loader = make_loader(X, y, 32), make_loader(X, y, 64, shuffle=False)
    history = fit(
        model, train_loader, val_loader, num_epochs=4, lr=0.1, device="cpu",
        progress=False, milestones=[2, 3],
    )  # fmt: skip
    assert isinstance(history, History)
    assert len(history.train_loss) == len(history.train_error) == len(history.val_error) == 4
    assert len(history.step_losses) == 4 * 3  # 3 batches of (32, 32, 26) per epoch
    assert history.lr == pytest.approx([0.1, 0.1, 0.01, 0.001])
    assert history.epochs == [1, 2, 3, 4]
    assert all(0 <= e <= 1 for e in history.train_error + history.val_error)
    # the recorded training error is the eval-mode error over the training set after the epoch
    assert history.train_error[-1] == pytest.approx(error_rate(model, train_loader, CPU))
    assert model.training


def test_fit_without_validation_or_train_error(spiral_data):
    X, y = spiral_data
    history = fit(
        plain_mlp(2, 16, 2, 3), make_loader(X, y, 30), num_epochs=2, lr=0.01,
        optimizer="adam", device="cpu", progress=False, track_train_error=False,
    )  # fmt: skip
    assert len(history.train_loss) == 2 and history.train_error == [] and history.val_error == []


def test_fit_learns_spirals_with_adam(spiral_data):
    X, y = spiral_data
    set_seed(0)
    model = plain_mlp(2, 64, 3, 3)
    history = fit(
        model, make_loader(X, y, 30), num_epochs=60, lr=0.01, optimizer="adam",
        device="cpu", progress=False,
    )  # fmt: skip
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.train_error[-1] < 0.5


def run_short_fit(seed: int) -> tuple[History, dict]:
    set_seed(seed)
    X, y = spirals(n_per_class=20, seed=0)
    model = small_bn_model()
    history = fit(
        model, make_loader(X, y, 16, seed=seed), num_epochs=3, lr=0.05, device="cpu",
        progress=False,
    )  # fmt: skip
    return history, model.state_dict()


def test_same_seed_same_result():
    (h1, s1), (h2, s2), (h3, _) = run_short_fit(7), run_short_fit(7), run_short_fit(8)
    assert h1 == h2  # every recorded number but the wall-clock epoch_seconds
    assert len(h1.epoch_seconds) == 3 and all(t > 0 for t in h1.epoch_seconds)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1.step_losses != h3.step_losses


def test_resnet20_fits_digits():
    """A CIFAR ResNet-20 learns the real digits (8x8 pixels, 3 channels) to >= 95% training
    accuracy in a few seconds of CPU time."""
    set_seed(0)
    X_train, y_train, _, _ = digits(size=8, channels=3, val_fraction=0.2, seed=0)
    X_train, y_train = X_train[:512], y_train[:512]
    model = resnet_cifar(20)
    fit(
        model, make_loader(X_train, y_train, 64), num_epochs=6, lr=0.05, device="cpu",
        progress=False, track_train_error=False,
    )  # fmt: skip
    accuracy = evaluate(model, make_loader(X_train, y_train, 256, shuffle=False), CPU)
    assert accuracy >= 0.95, f"training accuracy {accuracy:.3f} after 6 epochs"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_epochs": -1}, "num_epochs must be an integer >= 0; got -1"),
        ({"lr": 0}, "lr must be a positive number; got 0"),
        ({"lr": float("nan")}, "lr must be a positive number"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\); got 1.0"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
        ({"optimizer": "rmsprop"}, "optimizer must be 'sgd' or 'adam'; got 'rmsprop'"),
        ({"milestones": [5, 3]}, r"milestones must be increasing positive epoch numbers"),
    ],
)
def test_fit_bad_arguments(spiral_data, kwargs, message):
    X, y = spiral_data
    with pytest.raises(ValueError, match=message):
        fit(plain_mlp(2, 4, 2, 3), make_loader(X, y, 30), device="cpu", progress=False, **kwargs)


# ----------------------------------------------------------------------------------------------
# plotting
# ----------------------------------------------------------------------------------------------
def test_plot_curves_draws_one_labelled_line_per_history():
    a = History(train_loss=[2.0, 1.0], train_error=[0.5, 0.25], step_losses=[3, 2, 1])
    b = History(train_loss=[2.0, 1.5], train_error=[0.6, 0.4])
    ax = plot_curves({"plain": a, "residual": b}, metric="train_error")
    assert [line.get_label() for line in ax.get_lines()] == ["plain", "residual"]
    assert list(ax.get_lines()[0].get_ydata()) == [50.0, 25.0]  # fractions shown in percent
    assert ax.get_xlabel() == "epoch" and "%" in ax.get_ylabel()
    ax = plot_curves({"a": a}, metric="step_losses")
    assert ax.get_xlabel() == "step" and len(ax.get_lines()[0].get_xdata()) == 3
    with pytest.raises(ValueError, match="metric must be one of"):
        plot_curves({"a": a}, metric="accuracy")
    with pytest.raises(ValueError, match="has no val_error values"):
        plot_curves({"a": a}, metric="val_error")
    plt.close("all")


def test_plot_error_vs_depth_and_gradient_norms():
    fig, (ax1, ax2) = plt.subplots(1, 2)
    returned = plot_error_vs_depth([20, 32, 44], {"plain": [0.1, 0.12, 0.15]}, ax=ax1)
    assert returned is ax1
    assert list(ax1.get_lines()[0].get_ydata()) == pytest.approx([10, 12, 15])
    assert ax1.get_xlabel().startswith("depth") and ax1.get_ylabel() == "training error (%)"
    with pytest.raises(ValueError, match="has 2 errors for 3 depths"):
        plot_error_vs_depth([20, 32, 44], {"plain": [0.1, 0.2]}, ax=ax1)
    plot_gradient_norms({"plain": [1e-4, 1e-2, 1.0]}, ax=ax2)
    assert ax2.get_yscale() == "log"
    plt.close(fig)


def test_plot_decision_regions(spiral_data):
    X, y = spiral_data
    model = plain_mlp(2, 8, 2, 3).train()
    ax = plot_decision_regions(model, X, y, resolution=20)
    assert ax.get_xlabel() and ax.get_ylabel()
    assert model.training
    with pytest.raises(ValueError, match=r"X must be \(N, 2\)"):
        plot_decision_regions(model, torch.zeros(3, 4), y[:3])
    plt.close("all")


def test_plot_step_curves():
    ax = plot_step_curves({"plain": [0.5, 0.25, 0.1]})
    assert list(ax.get_lines()[0].get_ydata()) == pytest.approx([50, 25, 10])
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    ax = plot_step_curves({"mse": [1.0, 1e-3]}, as_percent=False, log_y=True, ylabel="mse")
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "mse"
    with pytest.raises(ValueError, match="is empty"):
        plot_step_curves({"plain": []})
    plt.close("all")


def test_plot_grouped_bars():
    ax = plot_grouped_bars({"a": [0.1, 0.2], "b": [0.3, 0.4]}, ["1", "2"], as_percent=True)
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [10, 20, 30, 40]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    with pytest.raises(ValueError, match="has 1 values for 2 categories"):
        plot_grouped_bars({"a": [0.1]}, ["1", "2"])
    plt.close("all")
