"""Measurements inside networks (resnet_course.probes)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from resnet_course.data import digits
from resnet_course.landscape import probe_loss
from resnet_course.models import resnet_cifar, zero_init_residual_
from resnet_course.preact import dense_stack
from resnet_course.probes import (
    calibrate_batchnorm_,
    correlation_length,
    deletable_blocks,
    deletion_errors,
    gradient_ratio,
    gradient_ratio_sweep,
    input_gradient_sweep,
    input_gradients_1d,
    neighbour_correlation,
    path_gradient,
    path_gradient_norms,
    path_length_counts,
    response_stds,
    shattered_sweep,
    train_dense_stack,
    train_digits_net,
    train_digits_net_to_loss,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 12, generator=g), torch.randint(0, 4, (64,), generator=g)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def _warm_bn(model, X):
    # a few train-mode passes give BatchNorm running statistics that differ from the defaults
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(X)
    return model.eval()


# ---------------------------------------------------------------------------- gradient ratio
def test_gradient_ratio_matches_a_manual_backward(batch):
    X, y = batch
    torch.manual_seed(0)
    model = dense_stack("post", 12, 8, 3, 4)
    before = [p.clone() for p in model.parameters()]
    ratio = gradient_ratio(model, X, y)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    torch.nn.functional.cross_entropy(model(X), y).backward()
    blocks = [m for m in model if hasattr(m, "linear1")]
    expected = blocks[0].linear1.weight.grad.norm() / blocks[-1].linear2.weight.grad.norm()
    assert ratio == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_ratio_needs_blocks(batch):
    with pytest.raises(ValueError, match="DenseBlocks"):
        gradient_ratio(nn.Sequential(nn.Linear(12, 4)), *batch)


def test_gradient_ratio_sweep_shape_and_plain_explodes(batch):
    X, y = batch
    ratios = gradient_ratio_sweep(X, y, [2, 20], kinds=("plain", "pre"), seeds=(0, 1), width=16)
    assert set(ratios) == {"plain", "pre"} and ratios["plain"].shape == (2, 2)
    assert np.isfinite(ratios["plain"]).all() and (ratios["pre"] > 0).all()
    # BatchNorm'd plain stacks: the first layer's gradient grows much faster with depth
    assert ratios["plain"][:, 1].min() > 10 * ratios["pre"][:, 1].max()


# ---------------------------------------------------------------------------- Figure 7
def test_response_stds_are_the_bn_outputs(images):
    X, _ = images
    torch.manual_seed(0)
    model = _warm_bn(resnet_cifar(20), X)
    stds = response_stds(model, X)
    assert len(stds) == 2 * 9  # two 3x3 layers in each of 9 blocks
    with torch.no_grad():
        block = model.stages[0][0]
        h = model.stem(X)
        first = block.bn1(block.conv1(h)).std().item()
        second = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(h))))).std().item()
    assert stds[:2] == pytest.approx([first, second], rel=1e-5)
    assert not model.training
    model.train()
    response_stds(model, X)
    assert model.training  # mode restored
    assert not any(bn._forward_hooks for bn in model.modules())  # hooks removed


def test_response_stds_of_a_zero_branch_is_zero(images):
    X, _ = images
    model = resnet_cifar(8).eval()
    zero_init_residual_(model.stages[1][0])
    stds = response_stds(model, X)
    assert stds[3] == 0 and stds[2] > 0  # stage 2's bn2 (zeroed) vs its bn1


# ---------------------------------------------------------------------------- ensembles
def test_deletable_blocks_skip_the_downsampling_ones():
    assert deletable_blocks(resnet_cifar(20)) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2),
                                                  (2, 1), (2, 2)]  # fmt: skip
    assert deletable_blocks(resnet_cifar(20, residual=False)) == deletable_blocks(resnet_cifar(20))


def test_deletion_of_a_zero_branch_changes_nothing(images):
    X, y = images
    torch.manual_seed(0)
    model = _warm_bn(resnet_cifar(14), X)
    zero_init_residual_(model.stages[0][1])  # this block is now exactly relu(x) = x
    intact = (model(X).argmax(1) != y).float().mean().item()
    with torch.no_grad():
        logits = model(X).clone()
    errors = deletion_errors(model, X, y)
    assert len(errors) == len(deletable_blocks(model)) == 4
    assert errors[1] == intact
    with torch.no_grad():
        torch.testing.assert_close(model(X), logits)  # every block is back in place
    assert all(isinstance(block, nn.Module) and not isinstance(block, nn.Identity)
               for stage in model.stages for block in stage)  # fmt: skip


def test_deletion_matches_a_rebuilt_net(images):
    X, y = images
    torch.manual_seed(0)
    model = _warm_bn(resnet_cifar(14, residual=False), X)
    errors = deletion_errors(model, X, y)
    s, b = deletable_blocks(model)[2]
    stages = [list(stage) for stage in model.stages]
    del stages[s][b]
    with torch.no_grad():
        h = model.stem(X)
        for stage in stages:
            for block in stage:
                h = block(h)
        logits = model.fc(torch.flatten(model.pool(h), 1))
    assert errors[2] == (logits.argmax(1) != y).float().mean().item()


def test_path_length_counts():
    counts = path_length_counts(6)
    assert counts.tolist() == [1, 6, 15, 20, 15, 6, 1]
    assert path_length_counts(54).sum() == 2.0**54
    with pytest.raises(ValueError):
        path_length_counts(-1)


def test_path_gradients_sum_to_the_full_gradient(images):
    X, y = images
    torch.manual_seed(0)
    model = _warm_bn(resnet_cifar(8), X)  # 3 blocks: 8 subsets of branches
    total = sum(path_gradient(model, X, y, set(subset))
                for k in range(4) for subset in itertools.combinations(range(3), k))  # fmt: skip
    start = model.stem(X).detach().requires_grad_(True)
    logits = model.fc(torch.flatten(model.pool(model.stages(start)), 1))
    (full,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, y, reduction="sum"),
                                  start)  # fmt: skip
    torch.testing.assert_close(total, full, rtol=1e-4, atol=1e-6)
    # and a single path is not the whole gradient
    assert not torch.allclose(path_gradient(model, X, y, {0, 1, 2}), full)


def test_path_gradient_norms(images):
    X, y = images
    torch.manual_seed(0)
    model = _warm_bn(resnet_cifar(8), X)
    g = torch.Generator().manual_seed(0)
    norms = path_gradient_norms(model, X, y, [0, 1, 3], num_samples=2, generator=g)
    assert set(norms) == {0, 1, 3} and all(v > 0 for v in norms.values())
    expected = path_gradient(model, X, y, {0, 1, 2}).flatten(1).norm(dim=1).mean().item()
    assert norms[3] == pytest.approx(expected, rel=1e-5)  # k = n: only one choice
    with pytest.raises(ValueError, match="path lengths"):
        path_gradient_norms(model, X, y, [4])
    with pytest.raises(ValueError, match="residual"):
        path_gradient_norms(resnet_cifar(8, residual=False), X, y, [1])


# ---------------------------------------------------------------------------- shattering
def test_calibrate_batchnorm_uses_the_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4))
    x = torch.randn(50, 1)
    calibrate_batchnorm_(model, x)
    assert not model.training
    with torch.no_grad():
        h = model[0](x)
    torch.testing.assert_close(model[1].running_mean, h.mean(0))
    torch.testing.assert_close(model[1].running_var, h.var(0))  # unbiased, as PyTorch keeps it


def test_input_gradients_1d():
    class Square(nn.Module):
        def forward(self, x):
            return x**2

    x = torch.linspace(-1, 1, 11).unsqueeze(1)
    grads = input_gradients_1d(Square().eval(), x)
    np.testing.assert_allclose(grads, 2 * x[:, 0].numpy(), rtol=1e-6)
    with pytest.raises(ValueError):
        input_gradients_1d(Square().eval(), x[:, 0])
    with pytest.raises(ValueError, match="eval"):
        input_gradients_1d(nn.BatchNorm1d(1).train(), x)


def test_neighbour_correlation():
    t = np.linspace(0, 2 * math.pi, 256)
    assert neighbour_correlation(np.sin(t)) > 0.99
    noise = np.random.default_rng(0).standard_normal(4096)
    assert abs(neighbour_correlation(noise)) < 0.05
    alternating = np.tile([1.0, -1.0], 50)
    assert neighbour_correlation(alternating) == pytest.approx(-1)


def test_shattered_sweep_plain_loses_correlation_with_depth():
    results = shattered_sweep([1, 24], kinds=("plain",), seeds=(0, 1), width=32, num_points=128)
    table = results["plain"]
    assert table.shape == (2, 2)
    assert table[:, 0].min() > 0.8 and table[:, 1].max() < 0.5


# ---------------------------------------------------------------------------- training helpers
def test_train_digits_net_keeps_the_initial_weights_and_is_seeded():
    a = train_digits_net(8, residual=True, seed=3, num_epochs=1, milestones=None)
    b = train_digits_net(8, residual=True, seed=3, num_epochs=1, milestones=None)
    assert 0 <= a.train_error <= 1 and 0 <= a.val_error <= 1 and len(a.history.train_loss) == 1
    assert a.train_error == b.train_error and a.history.train_loss == b.history.train_loss
    trained = dict(a.model.named_parameters())
    assert a.init_state.keys() == trained.keys()
    assert not torch.equal(a.init_state["fc.weight"], trained["fc.weight"])  # it trained
    torch.testing.assert_close(a.init_state["fc.weight"], b.init_state["fc.weight"])
    assert not a.model.training


def test_train_dense_stack_records_errors_per_epoch():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
    history = train_dense_stack("pre", 2, X, y, num_epochs=2, width=8)
    assert len(history.train_error) == 2 and all(0 <= e <= 1 for e in history.train_error)


def test_correlation_length_of_smoothed_noise():
    # a moving average over w points: autocorrelation 1 - k/w, below 1/e at k = w (1 - 1/e)
    w, spacing = 20, 0.01
    noise = np.random.default_rng(0).standard_normal(40_000)
    smooth = np.convolve(noise, np.ones(w), mode="valid")
    length = correlation_length(smooth, spacing)
    assert length == pytest.approx(spacing * w * (1 - math.exp(-1)), rel=0.05)
    # the same function on every other point: the same length, in input units
    assert correlation_length(smooth[::2], 2 * spacing) == pytest.approx(length, rel=0.1)
    # white noise: below one grid step (unresolved); a slow sine: the lower bound
    assert correlation_length(noise[:4096], spacing) < spacing
    assert correlation_length(np.sin(np.linspace(0, 1, 100)), 1.0) == 25
    with pytest.raises(ValueError):
        correlation_length(noise[:5], spacing)
    with pytest.raises(ValueError, match="spacing"):
        correlation_length(noise, 0.0)


def test_input_gradient_sweep_shapes_and_agrees_with_shattered_sweep():
    gradients = input_gradient_sweep([1, 3], kinds=("pre",), seeds=(0, 1), width=8, num_points=33)
    assert gradients["pre"].shape == (2, 2, 33)
    correlations = shattered_sweep([1, 3], kinds=("pre",), seeds=(0, 1), width=8, num_points=33)
    expected = np.apply_along_axis(neighbour_correlation, 2, gradients["pre"])
    np.testing.assert_allclose(correlations["pre"], expected)


def test_train_digits_net_to_loss_stops_at_the_target():
    X, y = digits(size=8, channels=3, seed=0)[:2]
    X, y = X[:64], y[:64]
    net = train_digits_net_to_loss(8, True, 0, X, y, target_loss=1.5, max_steps=200,
                                   check_every=5)  # fmt: skip
    assert net.probe_loss <= 1.5 and 0 < net.steps < 200 and net.steps % 5 == 0
    assert net.probe_loss == pytest.approx(probe_loss(net.model, X, y), rel=1e-6)
    again = train_digits_net_to_loss(8, True, 0, X, y, target_loss=1.5, max_steps=200,
                                     check_every=5)  # fmt: skip
    assert again.steps == net.steps and again.history.step_losses == net.history.step_losses
    short = train_digits_net_to_loss(8, False, 0, X, y, target_loss=1e-6, max_steps=3)
    assert short.steps == 3 and short.probe_loss > 1e-6  # ran out of steps
    with pytest.raises(ValueError):
        train_digits_net_to_loss(8, True, 0, X, y, target_loss=0.0)
